"""Database set-up for the benchmarks, done by the driver (never by the server under test): bulk-insert
incidents, reminders and timeline rows with SQLAlchemy Core (SQLite and PostgreSQL), the way
tests/integration/test_processes.py seeds 1,000 reminders.

Migrations are run by the code under test (`warroom db upgrade`, see bench.run), and tables are reflected from
the database, so the driver does not depend on the schema version of the tree it runs from.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import CHANNEL

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def thread_ts(number: int) -> str:
    return f"1690000000.{number:06d}"


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}[parsed.drivername.split("+")[0]]
    return create_async_engine(parsed.set(drivername=driver), connect_args={"timeout": 30} if driver.startswith(
        "sqlite") else {})


async def _tables(conn: sa.ext.asyncio.AsyncConnection, *names: str) -> list[sa.Table]:
    metadata = sa.MetaData()
    await conn.run_sync(lambda sync: metadata.reflect(sync, only=list(names)))
    return [metadata.tables[name] for name in names]


def _utc(conn: sa.ext.asyncio.AsyncConnection, value: datetime) -> datetime:
    """Aware UTC for PostgreSQL; naive UTC for SQLite, as warroom's UTCDateTime stores it."""
    value = value.astimezone(UTC)
    return value.replace(tzinfo=None) if conn.dialect.name == "sqlite" else value


def _times(conn: sa.ext.asyncio.AsyncConnection, row: dict) -> dict:
    return {k: _utc(conn, v) if isinstance(v, datetime) else v for k, v in row.items()}


def incident_row(number: int, *, at: datetime, severity: str = "P2", title: str | None = None) -> dict:
    return {"number": number, "title": title or f"seeded incident {number}", "severity": severity, "impact": None,
            "reporter": "bench", "status": "acknowledged", "declared_at": at, "acknowledged_at": at,
            "acknowledged_by": "bench", "last_update_at": at, "roles": {}, "frozen": False, "checklist": [],
            "escalations_sent": 0, "resolution_escalated": False, "platform": "slack", "channel": CHANNEL,
            "thread": thread_ts(number), "card_message": thread_ts(number)}


async def seed_incidents(url: str, count: int, *, severity: str = "P2", at: datetime | None = None) -> list[str]:
    """`count` open, acknowledged incidents INC-1…INC-count, each with a Slack thread; returns the threads."""
    at = at or datetime.now(UTC)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            [incident] = await _tables(conn, "incident")
            rows = [_times(conn, incident_row(n, at=at, severity=severity)) for n in range(1, count + 1)]
            for start in range(0, len(rows), 2000):
                await conn.execute(sa.insert(incident), rows[start:start + 2000])
            await conn.execute(sa.text("UPDATE counter SET value = :n WHERE name = 'incident'"), {"n": count})
    finally:
        await engine.dispose()
    return [thread_ts(n) for n in range(1, count + 1)]


async def schedule_nudges(url: str, due: dict[int, datetime], later: list[int], cadence: timedelta) -> None:
    """Make each incident in `due` owe a status update at its time (last update = due − cadence) with a pending
    update_nudge row, and give every incident in `later` its next nudge one cadence from now — the state the
    bot itself would have planned."""
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            table, reminder = await _tables(conn, "incident", "reminder")
            update = (sa.update(table).where(table.c.number == sa.bindparam("n"))
                      .values(last_update_at=sa.bindparam("t"), declared_at=sa.bindparam("t"),
                              acknowledged_at=sa.bindparam("t")))
            states = [_times(conn, {"n": n, "t": when - cadence}) for n, when in due.items()]
            states += [_times(conn, {"n": n, "t": now}) for n in later]
            reminders = [{"incident_number": n, "kind": "update_nudge", "subject": 0, "due_at": when,
                          "status": "pending", "created_at": now} for n, when in due.items()]
            reminders += [{"incident_number": n, "kind": "update_nudge", "subject": 0, "due_at": now + cadence,
                           "status": "pending", "created_at": now} for n in later]
            reminders = [_times(conn, r) for r in reminders]
            for start in range(0, len(states), 2000):
                await conn.execute(update, states[start:start + 2000])
            for start in range(0, len(reminders), 2000):
                await conn.execute(sa.insert(reminder), reminders[start:start + 2000])
    finally:
        await engine.dispose()


async def seed_timeline(url: str, number: int, count: int) -> None:
    """`count` chat messages in INC-`number`'s timeline, half a second apart, as captured from its thread."""
    start = datetime.now(UTC) - timedelta(seconds=count / 2 + 60)
    words = ("checked the callback logs", "p99 is back under 300 ms", "rolling back 2026.11.3 now",
             "seeing 403s from the provider on /callbacks", "db connections at 480/500, pool is saturated",
             "customer support has 14 tickets about double charges", "deploy frozen, announcing in #eng")
    rows = [{"incident_number": number, "kind": "declared", "author": "bench", "text": "Declared", "occurred_at": start,
             "recorded_at": start, "source": "command", "message_ref": None, "pinned": False, "deleted": False}]
    for i in range(count):
        when = start + timedelta(seconds=i / 2 + 1)
        rows.append({"incident_number": number, "kind": "message", "author": f"user-{i % 9}",
                     "text": f"{words[i % len(words)]} (#{i}, see <https://status.example.com/{i}|status>)",
                     "occurred_at": when, "recorded_at": when, "source": "chat",
                     "message_ref": f"1690000001.{i:06d}", "pinned": i % 500 == 0, "deleted": False})
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            [timeline] = await _tables(conn, "timeline_event")
            rows = [_times(conn, row) for row in rows]
            for first in range(0, len(rows), 2000):
                await conn.execute(sa.insert(timeline), rows[first:first + 2000])
    finally:
        await engine.dispose()


async def scalar(url: str, query: str, **params: object) -> object:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(sa.text(query), params)).scalar()
    finally:
        await engine.dispose()


async def stored_messages(url: str, run: str) -> list[int]:
    """Which of run `run`'s thread messages (by number, once per timeline row) are in timelines."""
    engine = create_engine(url)
    prefix = f"bench {run} message "
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text(
                "SELECT text FROM timeline_event WHERE kind = 'message' AND text LIKE :pattern"),
                {"pattern": prefix + "%"})).all()
            return [int(text[len(prefix):]) for (text,) in rows]
    finally:
        await engine.dispose()


async def create_postgres_database() -> str:
    import asyncpg

    name = f"warroom_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def drop_postgres_database(url: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


async def postgres_version() -> str | None:
    try:
        import asyncpg

        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            return str(await admin.fetchval("SHOW server_version"))
        finally:
            await admin.close()
    except Exception:
        return None
