"""Benchmarks of the web pages (issue 16) against a real `warroom serve` on SQLite.

    .venv/bin/python -m bench.web [--entries 10000] [--rate 200] [--seconds 10] [--streams 100]

1. the incident page of an incident with 10,000 timeline entries: server time measured in-process (the ASGI app
   called directly, no network) and over HTTP from a separate client; target ≤ 300 ms;
2. /status under an open-loop load of 200 requests/s (latency counted from when each request was scheduled);
   target p99 ≤ 50 ms with the cache on;
3. 100 open live-update (SSE) connections: the server's CPU time and RSS (from /proc) while they are open,
   against the same server idle.

Prints a table and writes bench/web-results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc(pid: int) -> tuple[float, int]:
    """(CPU seconds user+system, RSS bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = next(int(line.split()[1]) * 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return cpu, rss


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def seed(settings, entries: int) -> str:
    """INC-1 with `entries` timeline rows, one published update, and a session; returns the session token."""
    from adapters.memory import MemoryChat
    from bot.app.bootstrap import build
    from bot.incident.domain import chat_message
    from bot.incident.service import Context
    from bot.ports import Actor, Room

    app = await build(settings, chat={"console": MemoryChat("console")})
    try:
        ctx = Context(actor=Actor("alice", "alice"), room=Room("console", "#incidents"))
        await app.service.run_command(ctx, '/incident declare P1 "Payments down"')
        await app.service.run_command(ctx, '/incident public INC-1 identified "Payments are delayed." areas=payments')
        start = datetime.now(UTC) - timedelta(hours=5)
        async with app.service._uow() as uow:  # bench seeding: straight into the repository, in one transaction
            await uow.incidents.append_timeline([
                (1, chat_message(by=f"user{i % 7}", text=f"message {i}: <b>checking</b> shard {i % 13}",
                                 now=start + timedelta(seconds=i), message_ref=f"m{i}")) for i in range(entries)])
            await uow.commit()
        link = await app.sign_in.issue_link(name="bench")
        signed = await app.sign_in.redeem(link.split("token=", 1)[1])
        return signed.token  # type: ignore[union-attr]
    finally:
        await app.close()


async def in_process_page_times(settings, token: str, runs: int, path: str = "/web/incidents/1"
                                ) -> list[float]:
    import httpx

    from adapters.http import build_http_app
    from adapters.memory import MemoryChat
    from adapters.web.app import COOKIE, WebApp
    from bot.app.bootstrap import build

    app = await build(settings, chat={"console": MemoryChat("console")})
    web = WebApp(views=app.web, sign_in=app.sign_in, service=app.service, settings=settings.web)
    times = []
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_http_app(web.routes())),
                                     base_url="http://bench", cookies={COOKIE: token}) as client:
            for _ in range(runs):
                started = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and ("message 9999" in response.text or path != "/web/incidents/1")
    finally:
        await web.close()
        await app.close()
    return times


async def http_times(session, url: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            assert response.status == 200, response.status
        times.append((time.perf_counter() - started) * 1000)
    return times


async def open_loop(session, url: str, rate: float, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(scheduled: float) -> None:
        nonlocal errors
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        try:
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
        except Exception:
            errors += 1
        latencies.append((loop.time() - scheduled) * 1000)

    total = int(rate * seconds)
    await asyncio.gather(*(one(start + i / rate) for i in range(total)))
    return {"requests": total, "errors": errors, "p50_ms": _quantile(latencies, 0.5),
            "p99_ms": _quantile(latencies, 0.99), "max_ms": max(latencies)}


async def streams(base: str, token: str, count: int, seconds: float, pid: int) -> dict:
    import aiohttp

    cpu0, rss0 = _proc(pid)
    await asyncio.sleep(seconds)  # the server idle, for comparison
    cpu1, rss_idle = _proc(pid)
    opened = []
    async with aiohttp.ClientSession(cookies={"warroom_session": token},
                                     timeout=aiohttp.ClientTimeout(total=None)) as session:
        for _ in range(count):
            response = await session.get(f"{base}/web/incidents/1/events?after=999999999")
            assert response.status == 200
            await response.content.readline()  # "retry: 1000": the stream is open
            opened.append(response)
        cpu2, _ = _proc(pid)
        await asyncio.sleep(seconds)
        cpu3, rss_open = _proc(pid)
        for response in opened:
            response.close()
    return {"connections": count, "seconds": seconds,
            "idle_cpu_percent": 100 * (cpu1 - cpu0) / seconds, "open_cpu_percent": 100 * (cpu3 - cpu2) / seconds,
            "rss_idle_mb": rss_idle / 2**20, "rss_open_mb": rss_open / 2**20,
            "rss_per_connection_kb": (rss_open - rss_idle) / 1024 / count, "rss_before_mb": rss0 / 2**20}


async def main_async(args: argparse.Namespace) -> dict:
    import aiohttp

    from bot.app.settings import Settings, WebSettings

    work = Path(tempfile.mkdtemp(prefix="warroom-web-bench-"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "WARROOM_DATABASE_URL": f"sqlite:///{work}/bench.db",
           "WARROOM_WEB_BASE_URL": base, "WARROOM_LOG_LEVEL": "WARNING", "WARROOM_LADDER": "P1-P3",
           "WARROOM_WEB_STATUS_COMPONENTS": "payments,api,dashboard"}
    settings = Settings(_env_file=None, database_url=env["WARROOM_DATABASE_URL"], ladder="P1-P3",
                        web=WebSettings(_env_file=None, WARROOM_WEB_BASE_URL=base),
                        postmortem_dir=work / "postmortems")
    token = await seed(settings, args.entries)
    in_process = await in_process_page_times(settings, token, args.runs)
    status_in_process = await in_process_page_times(settings, token, 2000, "/status")
    # Popen returns once the child is spawned, between measurements with nothing else on the loop; the server
    # outlives this coroutine's awaits and is stopped in `finally`.
    server = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "bot.app.cli", "serve", "--port", str(port)], cwd=work,
        env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
        stderr=open(work / "server.log", "wb"))  # noqa: ASYNC230
    try:
        async with aiohttp.ClientSession(cookies={"warroom_session": token}) as session:
            for _ in range(200):  # the server answers /health once it listens
                try:
                    async with session.get(f"{base}/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            over_http = await http_times(session, f"{base}/web/incidents/1", args.runs)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            # warm: a pool of keep-alive connections, as a steady stream of customers would have
            await asyncio.gather(*(http_times(session, f"{base}/status", 3) for _ in range(50)))
            status = await open_loop(session, f"{base}/status", args.rate, args.seconds)
        sse = await streams(base, token, args.streams, args.seconds, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "entries": args.entries,
        "incident_page_in_process_ms": {"median": statistics.median(in_process), "p95": _quantile(in_process, .95),
                                        "runs": len(in_process)},
        "incident_page_http_ms": {"median": statistics.median(over_http), "p95": _quantile(over_http, .95)},
        "status_in_process_ms": {"median": statistics.median(status_in_process),
                                 "p99": _quantile(status_in_process, .99), "runs": len(status_in_process)},
        "status_open_loop": {"rate": args.rate, "seconds": args.seconds, **status},
        "sse": sse,
        "load_average": os.getloadavg(), "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web")
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--streams", type=int, default=100)
    results = asyncio.run(main_async(parser.parse_args()))
    page, http, status, sse = (results["incident_page_in_process_ms"], results["incident_page_http_ms"],
                               results["status_open_loop"], results["sse"])
    print(f"incident page, {results['entries']} entries: in-process median {page['median']:.0f} ms, "
          f"p95 {page['p95']:.0f} ms; over HTTP median {http['median']:.0f} ms, p95 {http['p95']:.0f} ms "
          f"(target ≤ 300 ms)")
    print(f"/status at {status['rate']:.0f} req/s for {status['seconds']:.0f} s: p50 {status['p50_ms']:.1f} ms, "
          f"p99 {status['p99_ms']:.1f} ms, max {status['max_ms']:.0f} ms, errors {status['errors']} "
          f"(target p99 ≤ 50 ms)")
    inproc = results["status_in_process_ms"]
    print(f"/status server time in-process (cached), {inproc['runs']} requests: median {inproc['median']:.2f} ms, "
          f"p99 {inproc['p99']:.2f} ms")
    print(f"{sse['connections']} open SSE connections: CPU {sse['open_cpu_percent']:.1f}% "
          f"(idle {sse['idle_cpu_percent']:.1f}%), RSS {sse['rss_open_mb']:.1f} MB (idle {sse['rss_idle_mb']:.1f} MB, "
          f"{sse['rss_per_connection_kb']:.0f} KB per connection)")
    print(f"load average {results['load_average']}, {results['cpus']} CPUs")
    (ROOT / "bench" / "web-results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
