"""Several processes on one database, and upgrading a database that already holds incidents."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC

import pytest
import sqlalchemy as sa

from storage.engine import SchedulerLock, create_engine
from storage.migrate import upgrade
from tests.support import BACKEND, START, start_harness


async def test_concurrent_declares_on_two_services_get_unique_gapless_numbers(settings, clock):
    a = await start_harness(settings, clock)
    b = await start_harness(settings, clock, chat=a.chat)
    replies = await asyncio.gather(*(h.ok(f'declare P2 "incident {n}"') for n in range(15) for h in (a, b)))
    assert all(r.ok for r in replies)
    numbers = sorted(i.number for i in await a.service.incidents(open_only=False))
    assert numbers == list(range(1, 31))
    await a.app.close()
    await b.app.close()


@pytest.mark.skipif(BACKEND != "sqlite", reason="the single-scheduler rule is SQLite's")
async def test_a_second_process_on_sqlite_refuses_to_run_the_scheduler_and_says_why(settings, clock, caplog):
    first = await start_harness(settings, clock)
    second = await start_harness(settings, clock)
    assert first.app.start_scheduler()
    with caplog.at_level(logging.WARNING, logger="warroom"):
        assert not second.app.start_scheduler()
    assert "already runs the reminder scheduler on this SQLite database" in caplog.text
    assert "set WARROOM_DATABASE_URL to PostgreSQL" in caplog.text
    await first.app.close()  # releasing the lock lets the next process take over
    assert second.app.start_scheduler()
    await second.app.close()


def test_postgres_has_no_single_scheduler_rule():
    assert SchedulerLock("postgresql://u@h/db").acquire()


@pytest.mark.empty_database
async def test_an_old_database_with_data_migrates_to_head(settings, clock):
    engine = create_engine(settings.database_url)
    await upgrade(engine, "0001")
    declared = START.astimezone(UTC)
    async with engine.begin() as conn:
        params = {"t": declared if BACKEND == "postgres" else declared.replace(tzinfo=None)}
        await conn.execute(sa.text(
            "INSERT INTO incident (number, title, severity, impact, reporter, status, declared_at, roles, frozen, "
            "checklist, escalations_sent, resolution_escalated, last_update_at, platform, channel, thread, "
            "card_message) VALUES (1, 'Legacy outage', 'P1', NULL, 'alice', 'acknowledged', :t, '{}', false, "
            "'[]', 0, false, :t, 'console', '#incidents', 'm1', 'm1')"), params)
        await conn.execute(sa.text(
            "INSERT INTO timeline_event (incident_number, kind, author, text, occurred_at, recorded_at, source, "
            "pinned, deleted) VALUES (1, 'declared', 'alice', 'declared P1: Legacy outage', :t, :t, 'command', "
            "false, false)"), params)
        await conn.execute(sa.text("UPDATE counter SET value = 1 WHERE name = 'incident'"))
    await engine.dispose()

    team = await start_harness(settings, clock)  # start-up migrates to head
    [legacy] = await team.service.incidents(open_only=True)
    assert legacy.key == "INC-1" and legacy.title == "Legacy outage" and legacy.declared_at == declared
    await team.ok('status INC-1 "still here after the upgrade"')
    await team.ok('declare P2 "after the upgrade"')
    assert [i.key for i in await team.service.incidents(open_only=True)] == ["INC-1", "INC-2"]
    markdown = await team.service.export_postmortem(1)
    assert "declared P1: Legacy outage" in markdown and "still here after the upgrade" in markdown
    await team.app.close()


async def test_migrations_at_head_match_the_table_models(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import storage.tables  # noqa: F401 - the models

    engine = create_engine(database_url)
    await upgrade(engine)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata))
    await engine.dispose()
    assert diff == [], f"the models changed without a migration: {diff}"
