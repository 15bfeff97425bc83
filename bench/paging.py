"""Paging under load: N open incidents whose first pages fall due evenly over a window, each repeating every minute,
taken by the real tick (APScheduler, woken for the next due step) in one or more replica processes.

    .venv/bin/python -m bench.paging                          # SQLite, one process, 1,000 incidents, 60 s
    .venv/bin/python -m bench.paging --db postgres --replicas 2

Measured by a recording pager in each replica (wall clock when the page was handed to the pager):
- first-page lateness: sent − the due time the driver seeded (p50, p99, max);
- repeat lateness: (sent − the same incident's previous page) − 60 s;
- duplicates: two pages of one incident less than 30 s apart (a step taken twice), and incidents never paged.
Prints a table and writes bench/paging-results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

PLAN = """\
name: bench
description: bench plan
ladder: P1-P3
roles: [{name: platform}]
policies:
  - severity: P1
    levels: [{roles: [platform], repeat: 1m}]
"""
ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


class FilePager:
    """Records every page with the wall-clock time it reached the pager, one JSON line each."""

    channel = "pagerduty"

    def __init__(self, path: Path) -> None:
        from bot.ports import PagerCapabilities

        self.capabilities = PagerCapabilities(acknowledge=True, inbound_acks=False)
        self._file = path.open("a", encoding="utf-8")

    async def page(self, *, request) -> str:
        self._file.write(json.dumps({"key": request.incident_key, "action": request.action,
                                     "at": time.time(), "pid": os.getpid()}) + "\n")
        self._file.flush()
        return request.incident_key


def settings_for(url: str, folder: Path):
    from bot.app.settings import Settings

    return Settings(_env_file=None, database_url=url, ladder="P1-P3", playbooks=folder, oncall="bench",
                    timezone="UTC", postmortem_dir=folder / "pm", tick_seconds=1.0)


async def seed(url: str, folder: Path, incidents: int) -> None:
    from adapters.memory import MemoryChat
    from bot.app.bootstrap import build
    from bot.incident.service import Context
    from bot.ports import Actor, Room

    app = await build(settings_for(url, folder), chat={"console": MemoryChat("console")})
    try:
        await app.oncall.add_person(name="alice", pagerduty="bench-key")
        await app.oncall.set_rotation(role="platform", weekday="mon", at="09:00", timezone="UTC", people=["alice"])
        ctx = Context(actor=Actor(id="seed", name="seed"), room=Room("console", "#incidents"))
        for n in range(incidents):
            await app.service.run_command(ctx, f'/incident declare P1 "Outage {n}"')
    finally:
        await app.close()


async def schedule(url: str, incidents: int, start: datetime, window: float) -> None:
    """First pages due evenly over the window from `start` (the declares made them due at once)."""
    import sqlalchemy as sa

    from storage.engine import open_database
    from storage.tables import EscalationRow

    engine = await open_database(url, migrate=False)
    table = EscalationRow.__table__
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.update(table).where(table.c.incident_number == sa.bindparam("n"))
                               .values(due_at=sa.bindparam("due"), level_since=sa.bindparam("due")),
                               [{"n": n, "due": start + timedelta(seconds=window * (n - 1) / incidents)}
                                for n in range(1, incidents + 1)])
    finally:
        await engine.dispose()


async def replica(url: str, folder: Path, out: Path, seconds: float) -> None:
    from adapters.memory import MemoryChat
    from bot.app.bootstrap import build

    app = await build(settings_for(url, folder), chat={"console": MemoryChat("console")}, deliver_inline=False,
                      pagers={"pagerduty": FilePager(out)})
    try:
        app.start_scheduler()
        await asyncio.sleep(seconds)
    finally:
        await app.close()


async def create_postgres(base: str) -> str:
    import asyncpg

    name = f"warroom_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.rsplit("/", 1)[0] + "/" + name


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paging")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--postgres", default=os.environ.get("WARROOM_TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--replica", nargs=4, metavar=("URL", "FOLDER", "OUT", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replica:
        url, folder, out, seconds = args.replica
        asyncio.run(replica(url, Path(folder), Path(out), float(seconds)))
        return 0
    if args.db == "sqlite" and args.replicas != 1:
        parser.error("SQLite runs one scheduler; use --db postgres for replicas")
    work = Path(tempfile.mkdtemp(prefix="warroom-bench-paging-"))
    (work / "oncall").mkdir()
    (work / "oncall" / "bench.yaml").write_text(PLAN)
    url = f"sqlite:///{work / 'bench.db'}" if args.db == "sqlite" else asyncio.run(create_postgres(args.postgres))
    t_seed = time.time()
    asyncio.run(seed(url, work, args.incidents))
    start = datetime.now(UTC) + timedelta(seconds=10)  # the replicas are up before the first is due
    asyncio.run(schedule(url, args.incidents, start, args.window))
    print(f"seeded {args.incidents} incidents in {time.time() - t_seed:.1f}s; first page due {start:%H:%M:%S}")
    run_for = (start - datetime.now(UTC)).total_seconds() + args.window + 75
    outs = [work / f"pages-{i}.jsonl" for i in range(args.replicas)]
    procs = [subprocess.Popen([sys.executable, "-m", "bench.paging", "--replica", url, str(work), str(out),
                               str(run_for)], cwd=ROOT) for out in outs]
    for proc in procs:
        proc.wait()
    pages = [json.loads(line) for out in outs if out.exists() for line in out.read_text().splitlines()]
    triggers: dict[int, list[float]] = {}
    for page in pages:
        if page["action"] == "trigger":
            triggers.setdefault(int(page["key"].split("-")[1]), []).append(page["at"])
    first, repeats, duplicates = [], [], 0
    for n in range(1, args.incidents + 1):
        sent = sorted(triggers.get(n, []))
        if not sent:
            continue
        due = (start + timedelta(seconds=args.window * (n - 1) / args.incidents)).timestamp()
        first.append(sent[0] - due)
        for before, after in zip(sent, sent[1:], strict=False):
            if after - before < 30:
                duplicates += 1
            else:
                repeats.append(after - before - 60)
    never = args.incidents - len(first)
    result = {"db": args.db, "replicas": args.replicas, "incidents": args.incidents, "window_s": args.window,
              "pages": sum(len(v) for v in triggers.values()), "never_paged": never, "duplicates": duplicates,
              "first_page_lateness_s": {"p50": percentile(first, 50), "p99": percentile(first, 99),
                                        "max": max(first, default=None)},
              "repeat_lateness_s": {"p50": percentile(repeats, 50), "p99": percentile(repeats, 99),
                                    "max": max(repeats, default=None), "count": len(repeats)},
              "by_replica": {str(i): sum(1 for _ in out.open()) if out.exists() else 0 for i, out in enumerate(outs)}}
    print(json.dumps(result, indent=2))
    results = ROOT / "bench" / "paging-results.json"
    previous = json.loads(results.read_text()) if results.exists() else []
    results.write_text(json.dumps([*previous, result], indent=2))
    return 0 if duplicates == 0 and never == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
