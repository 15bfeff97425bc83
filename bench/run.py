"""The benchmark driver: `python -m bench [--quick] [--scenario NAME ...] [--runs N] [--root DIR]`.

Every server under test is a subprocess (`warroom serve`, or the bare Bolt app); the fake Slack Web API is a
subprocess; load comes from a subprocess (`bench.load`). This process only seeds databases, starts and stops
processes, reads their CPU and RSS from /proc (psutil), waits and reports. Results: a table on stdout and
bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench import seed
from bench.common import SECRET, TOKEN, command_body, free_port, percentile, signed_headers, summary

BENCH = Path(__file__).resolve().parent
# What `warroom serve` with Slack configured cannot start without (start-up row: the floor on this machine).
FLOOR_IMPORTS = ("slack_bolt.async_app", "aiohttp", "sqlmodel", "sqlalchemy.ext.asyncio", "pydantic_settings",
                 "apscheduler.schedulers.asyncio", "starlette.applications", "uvicorn", "yaml")
SCENARIOS = ("ack", "reminders", "postmortem", "startup", "declare", "postgres", "lossy", "restart")
MB = 1024 * 1024


@dataclass
class Config:
    name: str
    runs: int = 3
    # 1, 2: declares + thread messages, warroom then bare Bolt, SQLite
    ack_seconds: float = 60.0
    command_rate: float = 50.0
    event_rate: float = 500.0
    warmup_seconds: float = 3.0
    threads: int = 20
    # 3, 5: reminders
    open_incidents: int = 10_000
    reminders_due: int = 10_000
    reminder_window: float = 60.0
    reminder_lead: float = 3.0
    tick_seconds: float | None = None  # None: warroom's default (WARROOM_TICK_SECONDS unset)
    # 4: post-mortem
    timeline_messages: int = 10_000
    postmortem_compiles: int = 5
    # 6, 7: start-up and idle
    startup_runs: int = 10
    idle_seconds: float = 3.0
    # 8: sequential declares
    declares: int = 200
    # 9: PostgreSQL replicas
    pg_seconds: float = 60.0
    saturate_seconds: float = 20.0
    saturate_concurrency: int = 32
    # 10: declare burst against a Slack that loses answers and rate-limits users.info
    lossy_declares: int = 200
    lossy_concurrency: int = 5
    lossy_fraction: float = 0.1


FULL = Config(name="full")
QUICK = Config(name="quick", runs=2, ack_seconds=15.0, reminders_due=2_500, reminder_window=15.0,
               postmortem_compiles=3, startup_runs=5, declares=60, pg_seconds=15.0, saturate_seconds=8.0,
               lossy_declares=100)

TARGETS = {  # metric → (target, comparison)
    "ack.command_p99_ms": (100.0, "<="),
    "ack.lost": (0, "<="),
    "ack.cpu_ratio": (2.0, "<="),
    "reminders.lateness_p99_s": (1.0, "<="),
    "reminders.duplicates": (0, "<="),
    "reminders.missing": (0, "<="),
    "postmortem.command_s": (0.5, "<="),
    "reminders.rss_peak_mb": (200.0, "<="),
    "startup.health_s": (0.8, "<="),
    "startup.idle_rss_mb": (85.0, "<="),
    "declare.e2e_median_ms": (10.0, "<="),
    "declare.cpu_ms": (6.0, "<="),
    "postgres.r2_command_p99_ms": (100.0, "<="),
    "postgres.r2_lost": (0, "<="),
    "lossy.ack_p99_ms": (1000.0, "<="),
    "lossy.duplicates": (0, "<="),
    "lossy.missing_cards": (0, "<="),
    "restart.claimed_delivered_s": (5.0, "<="),
    "restart.duplicates": (0, "<="),
}


# -- processes ---------------------------------------------------------------------------------------------


class Proc:
    """A subprocess under measurement: CPU (user + system) and RSS read from /proc through psutil."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path, started: float) -> None:
        self.name = name
        self.process = process
        self.log = log
        self.started = started
        self.ps = psutil.Process(process.pid)
        self.url = ""

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def rss(self) -> int:
        return self.ps.memory_info().rss

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Bench:
    def __init__(self, config: Config, root: Path, work: Path, verbose: bool) -> None:
        self.config = config
        self.root = root
        self.work = work
        self.verbose = verbose
        self.procs: list[Proc] = []
        self.http: aiohttp.ClientSession | None = None
        self.results: dict[str, Any] = {}
        self.counter = 0
        self.profile: Path | None = None

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def rundir(self, name: str) -> Path:
        self.counter += 1
        path = self.work / f"{self.counter:02d}-{name}"
        path.mkdir(parents=True)
        return path

    async def spawn(self, name: str, args: list[str], *, env: dict[str, str], cwd: Path,
                    stdout: Any = asyncio.subprocess.DEVNULL) -> Proc:
        log = cwd / f"{name}.log"
        handle = await asyncio.to_thread(open, log, "ab")
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(*args, env=env, cwd=cwd, stdout=stdout, stderr=handle)
        handle.close()
        proc = Proc(name, process, log, started)
        self.procs.append(proc)
        return proc

    def base_env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("SLACK_", "WARROOM_", "WHATSAPP_", "DISCORD_", "PYTHON"))}
        return {**clean, "PYTHONPATH": str(self.root), "PYTHONUNBUFFERED": "1"}

    async def fake(self, cwd: Path, *extra: str) -> Proc:
        port = free_port()
        proc = await self.spawn("fake-slack", [sys.executable, "-m", "bench.fake_slack", str(port), *extra],
                                env={**self.base_env(), "PYTHONPATH": str(BENCH.parent)}, cwd=cwd)
        proc.url = f"http://127.0.0.1:{port}"
        await self.wait_health(proc, path="/bench/counts", timeout=30)
        return proc

    def server_env(self, db: str, fake: Proc, port: int, cwd: Path, **extra: str) -> dict[str, str]:
        env = {**self.base_env(), "WARROOM_DATABASE_URL": db, "SLACK_BOT_TOKEN": TOKEN,
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": f"{fake.url}/api/", "WARROOM_HTTP_HOST": "127.0.0.1",
               "WARROOM_HTTP_PORT": str(port), "WARROOM_POSTMORTEM_DIR": str(cwd / "postmortems"), **extra}
        if self.config.tick_seconds is not None:
            env.setdefault("WARROOM_TICK_SECONDS", str(self.config.tick_seconds))
        return env

    def warroom_command(self) -> list[str]:
        script = Path(sys.executable).with_name("warroom")
        if self.root == BENCH.parent and script.exists():
            return [str(script), "serve"]  # what an operator runs
        return [sys.executable, "-m", "bot.app.cli", "serve"]  # the code under --root

    async def warroom(self, db: str, fake: Proc, cwd: Path, *, name: str = "warroom", wait: bool = True,
                      **extra: str) -> Proc:
        port = free_port()
        proc = await self.spawn(name, self.warroom_command(), env=self.server_env(db, fake, port, cwd, **extra),
                                cwd=cwd)
        proc.url = f"http://127.0.0.1:{port}"
        if wait:
            await self.wait_health(proc)
        if self.profile is not None and wait:
            await self.attach_profiler(proc)
        return proc

    async def attach_profiler(self, proc: Proc) -> None:
        """py-spy samples the server until it exits (collapsed stacks: one line per stack with its count)."""
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.profile.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        out = self.profile / f"{proc.log.parent.name}-{proc.name}.txt"  # type: ignore[operator]
        await self.spawn(f"py-spy-{proc.name}", [spy, "record", "--pid", str(proc.process.pid), "--format", "raw",
                                                  "--rate", "250", "--nonblocking", "-o", str(out)],
                         env=self.base_env(), cwd=proc.log.parent)
        await asyncio.sleep(0.5)

    async def bare(self, fake: Proc, cwd: Path) -> Proc:
        port = free_port()
        env = {**self.base_env(), "PYTHONPATH": str(BENCH.parent), "SLACK_BOT_TOKEN": TOKEN,
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": f"{fake.url}/api/"}
        proc = await self.spawn("bare-bolt", [sys.executable, "-m", "bench.bare_bolt", str(port)], env=env, cwd=cwd)
        proc.url = f"http://127.0.0.1:{port}"
        await self.wait_health(proc)
        return proc

    async def migrate(self, db: str, cwd: Path) -> None:
        """Migrate with the code under test (its own `warroom db upgrade`)."""
        env = {**self.base_env(), "WARROOM_DATABASE_URL": db}
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.app.cli", "db", "upgrade", env=env,
                                                       cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"warroom db upgrade failed:\n{err.decode()[-2000:]}")

    async def wait_health(self, proc: Proc, *, path: str = "/health", timeout: float = 60.0,
                          interval: float = 0.002) -> float:
        """Poll until `path` answers 200 (a raw HTTP/1.0 GET, cheap enough to poll every 2 ms); returns the
        monotonic time it first did."""
        host, port = proc.url.removeprefix("http://").split(":")
        request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.process.returncode is not None:
                raise RuntimeError(f"{proc.name} exited ({proc.process.returncode}):\n{proc.tail()}")
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(request)
                status = await reader.readline()
                writer.close()
                if b" 200 " in status:
                    return time.monotonic()
            except OSError:
                pass
            await asyncio.sleep(interval)
        raise RuntimeError(f"{proc.name} did not answer {path} within {timeout}s:\n{proc.tail()}")

    async def load(self, spec: dict, cwd: Path) -> dict:
        """Run the load process to completion and return what it measured."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.load", env={**self.base_env(), "PYTHONPATH": str(BENCH.parent)}, cwd=cwd,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate(json.dumps(spec).encode())
        if process.returncode != 0:
            raise RuntimeError(f"load process failed:\n{err.decode()[-3000:]}")
        return json.loads(out)

    async def get(self, proc: Proc, path: str, **params: Any) -> dict:
        assert self.http is not None
        async with self.http.get(f"{proc.url}{path}", params={k: str(v) for k, v in params.items()},
                                 timeout=aiohttp.ClientTimeout(total=None)) as response:
            return await response.json()

    async def command(self, proc: Proc, text: str, *, trigger: str, user: str = "U0BENCH0001") -> tuple[int, str]:
        assert self.http is not None
        body = command_body(text, user=user, trigger=trigger)
        async with self.http.post(f"{proc.url}/slack/events", data=body.encode(),
                                  headers=signed_headers(body, "application/x-www-form-urlencoded"),
                                  timeout=aiohttp.ClientTimeout(total=120)) as response:
            return response.status, await response.text()

    async def quiet(self, fake: Proc, servers: list[Proc] = (), *, settle: float = 1.0,  # type: ignore[assignment]
                    limit: float = 300.0) -> float:
        """Wait until the fake Slack API has received no post for `settle` seconds (the outbox drained) and the
        servers are idle (under 5% of a core: a backlog of requests whose clients gave up is still work);
        returns the monotonic time of the last post or busy moment."""
        last_count, last_change = -1, time.monotonic()
        cpu = sum(s.cpu() for s in servers)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            count = (await self.get(fake, "/bench/counts"))["posts"]
            now_cpu = sum(s.cpu() for s in servers)
            busy = now_cpu - cpu > 0.2 * 0.05 * max(1, len(servers))
            cpu = now_cpu
            if count != last_count or busy:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change >= settle:
                break
        return last_change

    async def stop_all(self) -> None:
        spies = [p for p in self.procs if p.name.startswith("py-spy")]
        for proc in reversed(self.procs):
            if proc not in spies:
                await proc.stop()
        for spy in spies:  # py-spy writes its file when the process it samples exits
            try:
                await asyncio.wait_for(spy.process.wait(), 30)
            except TimeoutError:
                spy.process.send_signal(signal.SIGINT)
                await spy.process.wait()
        self.procs.clear()

    # -- scenarios ---------------------------------------------------------------------------------------

    def open_spec(self, targets: list[str], threads: list[str], run: str, seconds: float) -> dict:
        return {"mode": "open", "targets": targets, "duration": seconds, "command_rate": self.config.command_rate,
                "event_rate": self.config.event_rate, "threads": threads, "run": run}

    async def mixed_load(self, servers: list[Proc], fake: Proc, threads: list[str], run: str, cwd: Path,
                         seconds: float, db: str | None) -> dict:
        """Warm up, then 50 declares/s + 500 thread messages/s; CPU over the load and the outbox drain after it."""
        targets = [s.url for s in servers]
        await self.load(self.open_spec(targets, threads, f"warm{run}", self.config.warmup_seconds), cwd)
        await self.quiet(fake, servers, settle=1.0)
        cpu0 = [s.cpu() for s in servers]
        posts0 = (await self.get(fake, "/bench/counts"))["posts"]
        started = time.monotonic()
        result = await self.load(self.open_spec(targets, threads, run, seconds), cwd)
        load_end = time.monotonic()
        drained = await self.quiet(fake, servers, settle=1.0)
        cpu = sum(s.cpu() for s in servers) - sum(cpu0)
        posts = (await self.get(fake, "/bench/counts"))["posts"] - posts0
        requests = result["commands_sent"] + result["events_sent"]
        out = {
            "seconds": seconds, "commands": result["commands_sent"], "events": result["events_sent"],
            "declared": result["declared"], "events_acked": len(result["events_acked"]), "status": result["status"],
            "errors": result["errors"], "max_schedule_lag_s": result["max_schedule_lag"],
            "unanswered": sum(kind.get("error", 0) for kind in result["status"].values()),
            "command_p50_ms": percentile(result["latency"]["command"], 50) * 1000,
            "command_p99_ms": percentile(result["latency"]["command"], 99) * 1000,
            "command_max_ms": max(result["latency"]["command"]) * 1000,
            "event_p50_ms": percentile(result["latency"]["event"], 50) * 1000,
            "event_p99_ms": percentile(result["latency"]["event"], 99) * 1000,
            "posts": posts, "drain_after_load_s": max(0.0, drained - load_end),
            "cpu_s": cpu, "cpu_per_request_ms": cpu / requests * 1000, "wall_s": drained - started,
            "rss_mb": [s.rss() / MB for s in servers],
        }
        if db is not None:
            stored = await seed.stored_messages(db, run)
            kept = set(stored)
            out.update(stored=len(kept), lost=sum(1 for n in result["events_acked"] if n not in kept),
                       duplicated=len(stored) - len(kept))
        return out

    async def saturate(self, servers: list[Proc], fake: Proc, threads: list[str], run: str, cwd: Path) -> dict:
        """Closed loop: `saturate_concurrency` requests always in flight (1 declare in 11), for
        `saturate_seconds`: the request rate the server sustains, and its CPU per request there."""
        cpu0 = sum(s.cpu() for s in servers)
        result = await self.load({"mode": "closed", "targets": [s.url for s in servers],
                                  "duration": self.config.saturate_seconds,
                                  "concurrency": self.config.saturate_concurrency, "threads": threads, "run": run},
                                 cwd)
        done = sum(v for kind in result["status"].values() for k, v in kind.items() if k == "200")
        await self.quiet(fake, servers, settle=1.0)
        cpu = sum(s.cpu() for s in servers) - cpu0
        latencies = result["latency"]["command"] + result["latency"]["event"]
        return {"rps": done / result["elapsed"], "p50_ms": percentile(latencies, 50) * 1000,
                "p99_ms": percentile(latencies, 99) * 1000, "cpu_per_request_ms": cpu / max(1, done) * 1000}

    async def scenario_ack(self) -> None:
        """Rows 1 and 2: warroom on SQLite, then bare Bolt, the same load, pair by pair."""
        runs = []
        for i in range(self.config.runs):
            cwd = self.rundir(f"ack-{i}")
            db = f"sqlite:///{cwd / 'warroom.db'}"
            await self.migrate(db, cwd)
            threads = await seed.seed_incidents(db, self.config.threads)
            fake = await self.fake(cwd)
            server = await self.warroom(db, fake, cwd)
            self.say(f"ack run {i + 1}/{self.config.runs}: warroom, {self.config.ack_seconds:g} s")
            ours = await self.mixed_load([server], fake, threads, f"r{i}", cwd, self.config.ack_seconds, db)
            ours["saturated"] = await self.saturate([server], fake, threads, f"rs{i}", cwd)
            await self.stop_all()
            fake = await self.fake(cwd)
            bare = await self.bare(fake, cwd)
            self.say(f"ack run {i + 1}/{self.config.runs}: bare Bolt, {self.config.ack_seconds:g} s")
            floor = await self.mixed_load([bare], fake, threads, f"b{i}", cwd, self.config.ack_seconds, None)
            floor["saturated"] = await self.saturate([bare], fake, threads, f"bs{i}", cwd)
            await self.stop_all()
            ratio = ours["cpu_per_request_ms"] / floor["cpu_per_request_ms"]
            runs.append({"warroom": ours, "bare": floor, "cpu_ratio": ratio})
            self.say(f"  warroom ack p50 {ours['command_p50_ms']:.1f} ms p99 {ours['command_p99_ms']:.1f} ms, "
                     f"events p99 {ours['event_p99_ms']:.1f} ms, lost {ours['lost']}, "
                     f"cpu/req {ours['cpu_per_request_ms']:.2f} ms; bare p99 {floor['command_p99_ms']:.1f} ms "
                     f"cpu/req {floor['cpu_per_request_ms']:.2f} ms; ratio {ratio:.2f}; saturated "
                     f"{ours['saturated']['rps']:.0f} vs bare {floor['saturated']['rps']:.0f} req/s")
        self.results["ack"] = {"runs": runs, "metrics": {
            "command_p50_ms": summary([r["warroom"]["command_p50_ms"] for r in runs]),
            "command_p99_ms": summary([r["warroom"]["command_p99_ms"] for r in runs]),
            "event_p50_ms": summary([r["warroom"]["event_p50_ms"] for r in runs]),
            "event_p99_ms": summary([r["warroom"]["event_p99_ms"] for r in runs]),
            "lost": summary([r["warroom"]["lost"] for r in runs]),
            "unanswered": summary([r["warroom"]["unanswered"] for r in runs]),
            "stored": summary([r["warroom"]["stored"] for r in runs]),
            "duplicated": summary([r["warroom"]["duplicated"] for r in runs]),
            "cpu_per_request_ms": summary([r["warroom"]["cpu_per_request_ms"] for r in runs]),
            "bare_cpu_per_request_ms": summary([r["bare"]["cpu_per_request_ms"] for r in runs]),
            "bare_command_p99_ms": summary([r["bare"]["command_p99_ms"] for r in runs]),
            "cpu_ratio": summary([r["cpu_ratio"] for r in runs]),
            "saturated_rps": summary([r["warroom"]["saturated"]["rps"] for r in runs]),
            "bare_saturated_rps": summary([r["bare"]["saturated"]["rps"] for r in runs]),
            "drain_after_load_s": summary([r["warroom"]["drain_after_load_s"] for r in runs]),
        }}

    async def scenario_reminders(self) -> None:
        """Rows 3 and 5: 10,000 open incidents, update nudges falling due over the window; RSS throughout."""
        config, runs = self.config, []
        for i in range(config.runs):
            cwd = self.rundir(f"reminders-{i}")
            db = f"sqlite:///{cwd / 'warroom.db'}"
            await self.migrate(db, cwd)
            await seed.seed_incidents(db, config.open_incidents, severity="P1")
            fake = await self.fake(cwd)
            server = await self.warroom(db, fake, cwd, WARROOM_LADDER="P1-P3")
            rss_samples: list[int] = []
            sampling = asyncio.create_task(self._sample_rss(server, rss_samples))
            start = datetime.now(UTC) + timedelta(seconds=config.reminder_lead)
            step = config.reminder_window / config.reminders_due
            due = {n: start + timedelta(seconds=step * (n - 1)) for n in range(1, config.reminders_due + 1)}
            later = list(range(config.reminders_due + 1, config.open_incidents + 1))
            self.say(f"reminders run {i + 1}/{config.runs}: {config.open_incidents} open incidents, "
                     f"{config.reminders_due} nudges due over {config.reminder_window:g} s")
            cpu0 = server.cpu()
            await seed.schedule_nudges(db, due, later, timedelta(minutes=15))
            await self.get(fake, "/bench/wait_posts", count=config.reminders_due,
                           timeout=config.reminder_lead + config.reminder_window + 60)
            await asyncio.sleep(2.0)  # a second firing of anything would land now
            cpu = server.cpu() - cpu0
            posts = (await self.get(fake, "/bench/posts"))["posts"]
            by_thread: dict[str, list[float]] = {}
            for _mono, wall, _channel, thread, text, _ts in posts:
                if thread and "no status update" in text:
                    by_thread.setdefault(thread, []).append(wall)
            due_by_thread = {seed.thread_ts(n): when.timestamp() for n, when in due.items()}
            lateness = [min(times) - due_by_thread[t] for t, times in by_thread.items() if t in due_by_thread]
            duplicates = sum(len(times) - 1 for times in by_thread.values())
            unexpected = sum(1 for t in by_thread if t not in due_by_thread)
            rss_fired = server.rss()
            # Every open incident in memory at once: /incident list loads all of them.
            status, text = await self.command(server, "list", trigger=f"list-{i}")
            await asyncio.sleep(0.5)
            sampling.cancel()
            run = {"due": config.reminders_due, "fired": len(lateness), "missing": config.reminders_due - len(lateness),
                   "duplicates": duplicates, "unexpected": unexpected,
                   "lateness_p50_s": percentile(lateness, 50), "lateness_p99_s": percentile(lateness, 99),
                   "lateness_max_s": max(lateness) if lateness else None,
                   "cpu_s": cpu, "cpu_per_reminder_ms": cpu / max(1, len(lateness)) * 1000,
                   "rss_peak_mb": max(rss_samples + [server.rss()]) / MB, "rss_after_fire_mb": rss_fired / MB,
                   "rss_after_list_mb": server.rss() / MB, "list_status": status, "list_bytes": len(text)}
            runs.append(run)
            self.say(f"  lateness p50 {run['lateness_p50_s']:.3f} s p99 {run['lateness_p99_s']:.3f} s "
                     f"max {run['lateness_max_s']:.3f} s, duplicates {duplicates}, missing {run['missing']}, "
                     f"rss peak {run['rss_peak_mb']:.0f} MB")
            await self.stop_all()
        self.results["reminders"] = {"runs": runs, "metrics": {
            key: summary([r[key] for r in runs]) for key in (
                "lateness_p50_s", "lateness_p99_s", "lateness_max_s", "duplicates", "missing", "rss_peak_mb",
                "rss_after_list_mb", "cpu_per_reminder_ms")}}

    async def _sample_rss(self, proc: Proc, samples: list[int]) -> None:
        while True:
            try:
                samples.append(proc.rss())
            except psutil.Error:
                return
            await asyncio.sleep(0.1)

    async def scenario_postmortem(self) -> None:
        """Row 4: `/incident postmortem INC-1 md` over HTTP on an incident with 10,000 timeline messages
        (the answer comes after the document is compiled, written and recorded)."""
        config, runs = self.config, []
        for i in range(config.runs):
            cwd = self.rundir(f"postmortem-{i}")
            db = f"sqlite:///{cwd / 'warroom.db'}"
            await self.migrate(db, cwd)
            await seed.seed_incidents(db, 1, severity="P2")
            await seed.seed_timeline(db, 1, config.timeline_messages)
            fake = await self.fake(cwd)
            server = await self.warroom(db, fake, cwd)
            self.say(f"postmortem run {i + 1}/{config.runs}: {config.timeline_messages} timeline messages")
            await self.command(server, "show INC-1", trigger=f"warm-{i}")
            times, cpus = [], []
            for k in range(config.postmortem_compiles):
                cpu0, started = server.cpu(), time.monotonic()
                status, text = await self.command(server, "postmortem INC-1 md", trigger=f"pm-{i}-{k}")
                times.append(time.monotonic() - started)
                cpus.append(server.cpu() - cpu0)
                if status != 200 or "Post-mortem for INC-1" not in text:
                    raise RuntimeError(f"postmortem failed: {status} {text[:300]}")
                await self.quiet(fake, settle=0.5)  # the upload goes out in the background; let it finish
            document = max((cwd / "postmortems").glob("*.md"), key=lambda p: p.stat().st_mtime)
            run = {"command_s": statistics.median(times), "command_all_s": times, "cpu_s": statistics.median(cpus),
                   "document_bytes": document.stat().st_size}
            runs.append(run)
            self.say(f"  compile over HTTP median {run['command_s']:.3f} s (cpu {run['cpu_s']:.3f} s), "
                     f"{run['document_bytes'] / 1024:.0f} KiB")
            await self.stop_all()
        self.results["postmortem"] = {"runs": runs, "metrics": {
            "command_s": summary([r["command_s"] for r in runs]), "cpu_s": summary([r["cpu_s"] for r in runs])}}

    async def scenario_startup(self) -> None:
        """Rows 6 and 7: process start → GET /health 200 with Slack configured (database at head), then RSS
        after `idle_seconds` of idling."""
        config = self.config
        cwd = self.rundir("startup")
        db = f"sqlite:///{cwd / 'warroom.db'}"
        fake = await self.fake(cwd)
        first = await self.warroom(db, fake, cwd, name="warroom-first")  # migrates the empty database
        first_start = await self.wait_health(first) - first.started
        await first.stop()
        starts, idle = [], []
        for i in range(config.startup_runs):
            server = await self.warroom(db, fake, cwd, name=f"warroom-{i}", wait=False)
            ready = await self.wait_health(server)
            starts.append(ready - server.started)
            await asyncio.sleep(config.idle_seconds)
            idle.append(server.rss() / MB)
            await server.stop()
        # The floor on this machine now: a bare interpreter importing only the libraries a Slack server needs.
        floor = []
        for _ in range(config.startup_runs):
            began = time.perf_counter()
            process = await asyncio.create_subprocess_exec(sys.executable, "-c", f"import {', '.join(FLOOR_IMPORTS)}")
            await process.wait()
            floor.append(time.perf_counter() - began)
        self.say(f"start-up median {statistics.median(starts):.3f} s (first start, migrating: {first_start:.3f} s), "
                 f"idle RSS median {statistics.median(idle):.1f} MB; importing the libraries alone "
                 f"{statistics.median(floor):.3f} s")
        await self.stop_all()
        self.results["startup"] = {"runs": {"health_s": starts, "idle_rss_mb": idle, "first_start_s": first_start,
                                            "import_floor_s": floor},
                                   "metrics": {"health_s": summary(starts), "idle_rss_mb": summary(idle),
                                               "import_floor_s": summary(floor)}}

    async def scenario_declare(self) -> None:
        """Row 8: one declare at a time, command in → card and both checklists received by the fake API."""
        config, runs = self.config, []
        for i in range(config.runs):
            cwd = self.rundir(f"declare-{i}")
            db = f"sqlite:///{cwd / 'warroom.db'}"
            fake = await self.fake(cwd)
            server = await self.warroom(db, fake, cwd)
            self.say(f"declare run {i + 1}/{config.runs}: {config.declares} sequential declares")
            for k in range(10):  # warm-up: auth.test, users.info, first-use imports
                await self._declare(server, fake, f"warm {i} {k}")
            latencies, acks = [], []
            cpu0 = server.cpu()
            for k in range(config.declares):
                e2e, ack = await self._declare(server, fake, f"seq {i} {k}")
                latencies.append(e2e)
                acks.append(ack)
            cpu = server.cpu() - cpu0
            run = {"e2e_median_ms": statistics.median(latencies) * 1000,
                   "e2e_p99_ms": percentile(latencies, 99) * 1000, "ack_median_ms": statistics.median(acks) * 1000,
                   "cpu_ms": cpu / config.declares * 1000}
            runs.append(run)
            self.say(f"  end to end median {run['e2e_median_ms']:.1f} ms (ack {run['ack_median_ms']:.1f} ms), "
                     f"bot CPU {run['cpu_ms']:.2f} ms per declare")
            await self.stop_all()
        self.results["declare"] = {"runs": runs, "metrics": {
            key: summary([r[key] for r in runs]) for key in ("e2e_median_ms", "e2e_p99_ms", "ack_median_ms", "cpu_ms")}}

    async def _declare(self, server: Proc, fake: Proc, title: str) -> tuple[float, float]:
        marker = f"bench {title}"
        started = time.monotonic()
        status, text = await self.command(server, f'declare P2 "{marker}"', trigger=f"t-{title}")
        acked = time.monotonic()
        if status != 200 or "Declared INC-" not in text:
            raise RuntimeError(f"declare failed: {status} {text[:300]}")
        answer = await self.get(fake, "/bench/wait_declare", title=marker, replies=2, timeout=10)
        if not answer["ok"]:
            raise RuntimeError(f"card and checklists for {marker!r} never reached the fake Slack API")
        return max(answer["times"]) - started, acked - started

    async def scenario_lossy(self) -> None:
        """Row 10: a burst of declares, each from a user warroom has not seen, against a Slack that stores every
        post but loses the answer to `lossy_fraction` of them (500 or dropped connection) and answers 429 to
        users.info and users.list. Ack latency, and duplicates: outbox keys that reached Slack twice."""
        config, runs = self.config, []
        for i in range(config.runs):
            cwd = self.rundir(f"lossy-{i}")
            db = f"sqlite:///{cwd / 'warroom.db'}"
            fake = await self.fake(cwd, "--lose", str(config.lossy_fraction), "--users-429")
            server = await self.warroom(db, fake, cwd, WARROOM_TICK_SECONDS="1")
            self.say(f"lossy run {i + 1}/{config.runs}: {config.lossy_declares} declares, "
                     f"{config.lossy_concurrency} at a time, {config.lossy_fraction:.0%} answers lost")
            limit = asyncio.Semaphore(config.lossy_concurrency)
            acks: list[float] = []
            failures: list[str] = []

            async def declare(k: int, i: int = i, server: Proc = server, limit: asyncio.Semaphore = limit,
                              acks: list[float] = acks, failures: list[str] = failures) -> None:
                async with limit:
                    started = time.monotonic()
                    status, text = await self.command(server, f'declare P2 "lossy {i} {k}"', trigger=f"l-{i}-{k}",
                                                      user=f"U0L{i:02d}{k:05d}")
                    acks.append(time.monotonic() - started)
                    if status != 200 or "Declared INC-" not in text:
                        failures.append(f"{status} {text[:200]}")

            started = time.monotonic()
            await asyncio.gather(*(declare(k) for k in range(config.lossy_declares)))
            burst = time.monotonic() - started
            await self.quiet(fake, [server], settle=3.0)  # retries of lost answers wait a tick (1 s) or more
            counts = await self.get(fake, "/bench/counts")
            posts = (await self.get(fake, "/bench/posts"))["posts"]
            cards = [p for p in posts if p[3] is None and f"lossy {i} " in p[4]]
            titles = {p[4] for p in cards}
            run = {"declares": config.lossy_declares, "failed": len(failures), "burst_s": burst,
                   "ack_p50_ms": percentile(acks, 50) * 1000, "ack_p99_ms": percentile(acks, 99) * 1000,
                   "ack_max_ms": max(acks) * 1000, "posts": counts["posts"], "lost_answers": counts["lost_answers"],
                   "duplicates": counts["duplicates"], "cards": len(cards),
                   "missing_cards": config.lossy_declares - len(titles),
                   "users_info_calls": counts["counts"].get("users.info", 0)}
            runs.append(run)
            self.say(f"  ack p50 {run['ack_p50_ms']:.1f} ms p99 {run['ack_p99_ms']:.1f} ms max "
                     f"{run['ack_max_ms']:.1f} ms; {run['lost_answers']} answers lost, {run['duplicates']} "
                     f"duplicates, {run['missing_cards']} cards missing, {run['failed']} declares failed")
            await self.stop_all()
        self.results["lossy"] = {"runs": runs, "metrics": {
            key: summary([r[key] for r in runs])
            for key in ("ack_p50_ms", "ack_p99_ms", "ack_max_ms", "duplicates", "missing_cards", "lost_answers")}}

    async def scenario_postgres(self) -> None:
        """Row 9: the mixed load on PostgreSQL, 1 replica then 2 (round robin, as a load balancer would), and
        closed-loop saturation throughput of each."""
        config, runs = self.config, []
        if await seed.postgres_version() is None:
            self.say("postgres: no PostgreSQL at 127.0.0.1:5432 — skipped")
            self.results["postgres"] = {"skipped": "no PostgreSQL at 127.0.0.1:5432"}
            return
        for i in range(config.runs):
            run: dict[str, Any] = {}
            for replicas in (1, 2):
                cwd = self.rundir(f"postgres-{i}-{replicas}")
                db = await seed.create_postgres_database()
                try:
                    await self.migrate(db, cwd)
                    threads = await seed.seed_incidents(db, config.threads)
                    fake = await self.fake(cwd)
                    servers = await asyncio.gather(*(self.warroom(db, fake, cwd, name=f"warroom-{r}")
                                                     for r in range(replicas)))
                    self.say(f"postgres run {i + 1}/{config.runs}: {replicas} replica(s), {config.pg_seconds:g} s")
                    mixed = await self.mixed_load(list(servers), fake, threads, f"p{i}x{replicas}", cwd,
                                                  config.pg_seconds, db)
                    saturated = await self.saturate(list(servers), fake, threads, f"s{i}x{replicas}", cwd)
                    mixed["saturated_rps"] = saturated["rps"]
                    mixed["saturated"] = saturated
                    run[f"r{replicas}"] = mixed
                    self.say(f"  ack p50 {mixed['command_p50_ms']:.1f} ms p99 {mixed['command_p99_ms']:.1f} ms, "
                             f"lost {mixed['lost']}; saturated {mixed['saturated_rps']:.0f} req/s")
                finally:
                    await self.stop_all()
                    await seed.drop_postgres_database(db)
            run["throughput_ratio"] = run["r2"]["saturated_rps"] / run["r1"]["saturated_rps"]
            runs.append(run)
        self.results["postgres"] = {"runs": runs, "metrics": {
            "r1_command_p50_ms": summary([r["r1"]["command_p50_ms"] for r in runs]),
            "r1_command_p99_ms": summary([r["r1"]["command_p99_ms"] for r in runs]),
            "r2_command_p50_ms": summary([r["r2"]["command_p50_ms"] for r in runs]),
            "r2_command_p99_ms": summary([r["r2"]["command_p99_ms"] for r in runs]),
            "r2_event_p99_ms": summary([r["r2"]["event_p99_ms"] for r in runs]),
            "r2_lost": summary([r["r2"]["lost"] for r in runs]),
            "r2_unanswered": summary([r["r2"]["unanswered"] for r in runs]),
            "r1_saturated_rps": summary([r["r1"]["saturated_rps"] for r in runs]),
            "r2_saturated_rps": summary([r["r2"]["saturated_rps"] for r in runs]),
            "throughput_ratio": summary([r["throughput_ratio"] for r in runs]),
        }}


    async def scenario_restart(self) -> None:
        """Row 10: two replicas on PostgreSQL; Slack hangs on a burst one replica claimed, it is killed -9 and
        restarted under the same WARROOM_INSTANCE_ID (lease: the default 120 s). Time from the restarted process
        listening to its claimed messages all delivered, and duplicates (the hung writes land in Slack)."""
        if await seed.postgres_version() is None:
            self.say("restart: no PostgreSQL at 127.0.0.1:5432 — skipped")
            self.results["restart"] = {"skipped": "no PostgreSQL at 127.0.0.1:5432"}
            return
        runs = []
        for i in range(self.config.runs):
            db = await seed.create_postgres_database()
            try:
                runs.append(await _restart_run(db, self.rundir(f"restart-{i}"), burst=20))
                self.say(f"restart run {i + 1}/{self.config.runs}: {runs[-1]['claimed']} claimed, delivered "
                         f"{runs[-1]['seconds']:.2f} s after the restarted process listened "
                         f"({runs[-1]['from_spawn_s']:.2f} s after it was spawned), "
                         f"{runs[-1]['duplicates']} duplicates")
            finally:
                await seed.drop_postgres_database(db)
        self.results["restart"] = {"runs": runs, "metrics": {
            "claimed_delivered_s": summary([r["seconds"] for r in runs]),
            "from_spawn_s": summary([r["from_spawn_s"] for r in runs]),
            "duplicates": summary([r["duplicates"] for r in runs]),
        }}


async def _restart_run(db: str, cwd: Path, *, burst: int) -> dict[str, Any]:
    import httpx
    import sqlalchemy as sa

    from storage.engine import create_engine
    from storage.migrate import upgrade
    from tests.fakes.slack_api import FakeSlackApi
    from tests.processes import ServeProcess, slash_command

    engine = create_engine(db)
    await upgrade(engine)

    async def claims() -> list[Any]:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text("SELECT claimed_by FROM outbox WHERE status = 'sending'"))).all())

    async def waiting() -> int:
        async with engine.connect() as conn:
            return (await conn.execute(sa.text("SELECT count(*) FROM outbox WHERE status IN ('pending', "
                                               "'sending')"))).scalar_one()

    fake = await FakeSlackApi(users={"U0ALICE01": "alice"}).start()
    started: list[ServeProcess] = []

    async def serve(name: str) -> ServeProcess:
        env = {"WARROOM_DATABASE_URL": db, "WARROOM_LADDER": "P1-P3", "SLACK_BOT_TOKEN": TOKEN,
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.url, "WARROOM_INSTANCE_ID": name,
               "WARROOM_POSTMORTEM_DIR": str(cwd / "pm")}
        served = await ServeProcess.start(cwd=cwd, env=env, ready="Uvicorn running on")
        started.append(served)
        return served

    def burst_posts() -> list[str]:
        return [c.params["text"] for c in fake.of("chat.postMessage")
                if c.params.get("text", "").startswith("Status update from alice: burst")]

    try:
        await asyncio.to_thread(cwd.mkdir, parents=True, exist_ok=True)
        replicas = dict(zip(("replica-a", "replica-b"),
                                await asyncio.gather(serve("replica-a"), serve("replica-b")), strict=True))
        a = replicas["replica-a"]
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
            await slash_command(http, SECRET, text='declare P1 "restart bench"', user="U0ALICE01",
                                channel="C0INCIDENTS", trigger="t-declare")
            await fake.wait_calls("chat.postMessage", where=lambda c: c.params.get("text") == "Triage checklist")
            fake.hold("chat.postMessage", lambda params: "burst" in params.get("text", ""))
            await asyncio.gather(*(slash_command(http, SECRET, text=f'status INC-1 "burst {n}"', user="U0ALICE01",
                                                 channel="C0INCIDENTS", trigger=f"t-{n}") for n in range(burst)))
        deadline = time.monotonic() + 30
        # The claims and the outbox live in the database the server processes write: polling it is the only wait.
        while not (claimed := await claims()) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        victim = claimed[0][0]  # whichever replica claimed the burst (both drain)
        await replicas[victim].kill()
        fake.release()  # the held writes land in Slack; replica A never hears the answers
        # `waiting` drops in the fake's request handlers, which signal nothing when it does.
        while fake.waiting:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        spawned = time.monotonic()
        await serve(victim)
        restarted = time.monotonic()
        while (await waiting() or len(set(burst_posts())) < burst) and time.monotonic() - restarted < 300:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        seconds = time.monotonic() - restarted
        posts = burst_posts()
        return {"claimed": len(claimed), "seconds": seconds, "from_spawn_s": time.monotonic() - spawned,
                "duplicates": len(posts) - len(set(posts))}
    finally:
        for served in started:
            await served.kill()
        fake.release()
        await fake.close()
        await engine.dispose()


# -- report ------------------------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit in ("", "×"):
        return f"{value:.2f}{unit}" if isinstance(value, float) and not value.is_integer() else f"{value:g}{unit}"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:.1f} {unit}"


def _cell(metric: dict | None, unit: str) -> tuple[str, str]:
    if not metric or metric.get("median") is None:
        return "not run", ""
    return _fmt(metric["median"], unit), f"{_fmt(metric['min'], unit)} – {_fmt(metric['max'], unit)}"


def _verdict(key: str, metric: dict | None) -> str:
    if key not in TARGETS or not metric or metric.get("median") is None:
        return ""
    target, _ = TARGETS[key]
    return "met" if metric["median"] <= target else "MISSED"


ROWS = [  # scenario label, measure label, metric key, unit, target text
    ("1 declare 50/s + 500 msg/s (SQLite)", "ack p50", "ack.command_p50_ms", "ms", ""),
    ("", "ack p99", "ack.command_p99_ms", "ms", "≤ 100 ms"),
    ("", "thread-message ack p99", "ack.event_p99_ms", "ms", ""),
    ("", "messages lost (acked, not stored)", "ack.lost", "", "0"),
    ("", "requests unanswered within 60 s", "ack.unanswered", "", ""),
    ("2 same load, bare slack-bolt AsyncApp", "CPU/request warroom", "ack.cpu_per_request_ms", "ms", ""),
    ("", "CPU/request bare Bolt", "ack.bare_cpu_per_request_ms", "ms", ""),
    ("", "ratio warroom / bare (pairwise)", "ack.cpu_ratio", "×", "≤ 2.0"),
    ("", "saturated req/s warroom (closed loop)", "ack.saturated_rps", "", ""),
    ("", "saturated req/s bare Bolt", "ack.bare_saturated_rps", "", ""),
    ("3 10,000 incidents, nudges due over window", "lateness p50", "reminders.lateness_p50_s", "s", ""),
    ("", "lateness p99", "reminders.lateness_p99_s", "s", "≤ 1 s"),
    ("", "duplicates", "reminders.duplicates", "", "0"),
    ("", "missing", "reminders.missing", "", "0"),
    ("4 post-mortem, 10,000 timeline messages", "/incident postmortem md", "postmortem.command_s", "s", "≤ 0.5 s"),
    ("5 10,000 open incidents loaded", "RSS peak", "reminders.rss_peak_mb", "MB", "≤ 200 MB"),
    ("6 start-up, Slack configured", "start → /health 200", "startup.health_s", "s", "≤ 0.8 s"),
    ("", "the libraries alone: python -c 'import …'", "startup.import_floor_s", "s", ""),
    ("7 idle, Slack configured", "RSS", "startup.idle_rss_mb", "MB", "≤ 85 MB"),
    ("8 one declare end to end, sequential", "median latency", "declare.e2e_median_ms", "ms", "≤ 10 ms"),
    ("", "bot CPU per declare", "declare.cpu_ms", "ms", "≤ 6 ms"),
    ("9 scenario 1 on PostgreSQL", "ack p99, 1 replica", "postgres.r1_command_p99_ms", "ms", ""),
    ("", "ack p99, 2 replicas", "postgres.r2_command_p99_ms", "ms", "≤ 100 ms"),
    ("", "messages lost, 2 replicas", "postgres.r2_lost", "", "0"),
    ("", "unanswered within 60 s, 2 replicas", "postgres.r2_unanswered", "", ""),
    ("", "saturated req/s, 1 replica", "postgres.r1_saturated_rps", "", ""),
    ("", "saturated req/s, 2 replicas", "postgres.r2_saturated_rps", "", ""),
    ("", "throughput 2 replicas / 1", "postgres.throughput_ratio", "×", ""),
    ("10 declare burst, 10% answers lost, users.info 429", "ack p99", "lossy.ack_p99_ms", "ms", "≤ 1 s"),
    ("", "duplicates (outbox keys posted twice)", "lossy.duplicates", "", "0"),
    ("", "cards missing", "lossy.missing_cards", "", "0"),
    ("", "answers lost by the fake", "lossy.lost_answers", "", ""),
    ("10 replica kill -9, restart", "claimed messages delivered after restart", "restart.claimed_delivered_s", "s",
     "≤ 5 s"),
    ("", "same, from spawning the process", "restart.from_spawn_s", "s", ""),
    ("", "duplicates", "restart.duplicates", "", "0"),
]


def table(results: dict) -> list[list[str]]:
    rows = []
    for scenario, measure, key, unit, target in ROWS:
        section, name = key.split(".", 1)
        metric = (results.get(section) or {}).get("metrics", {}).get(name)
        median, spread = _cell(metric, unit)
        rows.append([scenario, measure, median, spread, target, _verdict(key, metric)])
    return rows


def render_table(rows: list[list[str]]) -> str:
    header = ["scenario", "measure", "median", "min – max", "target", ""]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def machine() -> dict:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import sqlite3
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in ("slack-bolt", "slack-sdk", "sqlalchemy", "sqlmodel", "uvicorn", "starlette", "aiohttp", "aiosqlite",
                 "asyncpg"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
            "python": platform.python_version(), "kernel": platform.release(), "sqlite": sqlite3.sqlite_version,
            "packages": packages}


async def _main(args: argparse.Namespace) -> int:
    config = QUICK if args.quick else FULL
    if args.runs:
        config = Config(**{**asdict(config), "runs": args.runs})
    if args.tick is not None:
        config = Config(**{**asdict(config), "tick_seconds": args.tick})
    scenarios = args.scenario or list(SCENARIOS)
    # Path.resolve below runs before any task is started: nothing else on the loop waits for it.
    root = Path(args.root).resolve() if args.root else BENCH.parent  # noqa: ASYNC240
    work = Path(tempfile.mkdtemp(prefix="warroom-bench-"))
    bench = Bench(config, root, work, args.verbose)
    bench.profile = Path(args.profile).resolve() if args.profile else None  # noqa: ASYNC240
    info = machine()
    info["postgres"] = await seed.postgres_version()
    bench.say(f"config {config.name}: {json.dumps(asdict(config))}")
    bench.say(f"code under test: {root}; work dir {work}; machine: {info['cpus']} CPUs, {info['cpu_model']}")
    started = datetime.now(UTC)
    try:
        async with aiohttp.ClientSession() as http:
            bench.http = http
            for name in scenarios:
                load_before = os.getloadavg()
                try:
                    await getattr(bench, f"scenario_{name}")()
                    if isinstance(bench.results.get(name), dict):
                        # Other work on the machine skews everything: say how busy it was around each scenario.
                        bench.results[name]["loadavg_before_after"] = [load_before[0], os.getloadavg()[0]]
                except Exception as problem:
                    bench.say(f"{name} FAILED: {problem!r}")
                    bench.results[name] = {"error": repr(problem)}
                    await bench.stop_all()
    finally:
        await bench.stop_all()
    rows = table(bench.results)
    text = render_table(rows)
    print()
    print(f"warroom benchmarks — config '{config.name}'"
          f" ({config.runs} runs; load {config.ack_seconds:g} s; reminders {config.reminders_due} due over "
          f"{config.reminder_window:g} s among {config.open_incidents} open; tick "
          f"{config.tick_seconds if config.tick_seconds is not None else 'default'}) on {info['cpus']} CPUs")
    print(text)
    output = Path(args.output) if args.output else BENCH / "results.json"
    previous = {}
    if args.scenario and output.exists():
        try:
            previous = json.loads(output.read_text()).get("scenarios", {})
        except ValueError:
            previous = {}
    merged = {**previous, **bench.results} if args.scenario else bench.results
    output.write_text(json.dumps({"config": asdict(config), "machine": info, "root": str(root),
                                  "started": started.isoformat(), "finished": datetime.now(UTC).isoformat(),
                                  "scenarios": merged, "table": table(merged)}, indent=2, default=str))
    print(f"\nresults: {output}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work dir kept: {work}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short durations and 2 runs (about 12 minutes; full: about 25)")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS,
                        help="run only this scenario (repeatable); results.json keeps the others' last results")
    parser.add_argument("--runs", type=int, help="runs per scenario (default: 3 full, 2 quick)")
    parser.add_argument("--tick", type=float, help="WARROOM_TICK_SECONDS for the server (default: warroom's own)")
    parser.add_argument("--root", help="the warroom tree to benchmark (default: this checkout)")
    parser.add_argument("--output", help="results file (default: bench/results.json)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (databases, server logs)")
    parser.add_argument("--profile", metavar="DIR", help="sample every warroom server with py-spy into DIR "
                        "(collapsed stacks, one file per server process)")
    parser.add_argument("--verbose", action="store_true")
    return asyncio.run(_main(parser.parse_args(argv)))
