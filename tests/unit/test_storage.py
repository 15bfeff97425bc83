"""Storage details that matter for correctness: aware UTC times, SQLite pragmas, database URLs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from storage.engine import async_url, create_engine
from storage.migrate import upgrade
from storage.unit_of_work import SqlUnitOfWorkFactory


def test_urls_people_write_get_async_drivers():
    assert async_url("sqlite:///warroom.db") == "sqlite+aiosqlite:///warroom.db"
    assert async_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    with pytest.raises(ValueError, match="Unsupported database URL scheme 'mysql'"):
        async_url("mysql://u@h/db")


async def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar() == "wal"
    await engine.dispose()


async def test_a_transaction_waits_for_another_process_lock_without_blocking_the_event_loop(tmp_path):
    import asyncio
    import sqlite3

    path = tmp_path / "w.db"
    engine = create_engine(f"sqlite:///{path}")
    await upgrade(engine)
    other = sqlite3.connect(path, isolation_level=None)  # another process's connection, as SQLite sees it
    other.execute("BEGIN IMMEDIATE")
    factory = SqlUnitOfWorkFactory(engine)

    async def record() -> bool:
        async with factory() as uow:
            first = await uow.deliveries.first_time("evt-1", datetime(2026, 1, 1, tzinfo=UTC))
            await uow.commit()
            return first

    waiting = asyncio.create_task(record())
    ticks = 0
    while ticks < 20:  # the loop keeps turning while the transaction waits for the lock
        await asyncio.sleep(0.005)
        ticks += 1
    assert not waiting.done()
    other.rollback()
    assert await asyncio.wait_for(waiting, 5) is True
    other.close()
    await engine.dispose()


async def test_waiting_for_a_lock_gives_up_after_the_lock_timeout(tmp_path):
    import sqlite3

    from storage.inline_sqlite import inline_connector

    path = tmp_path / "w.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")
    connection = await inline_connector(str(path), lock_timeout=0.05)()
    cursor = await connection.cursor()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        await cursor.execute("BEGIN IMMEDIATE")
    other.rollback()
    await cursor.execute("BEGIN IMMEDIATE")
    await cursor.execute("INSERT INTO t VALUES (1)")
    await connection.commit()
    assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    other.close()
    await connection.close()


async def test_naive_datetimes_are_refused(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    await upgrade(engine)
    uow_factory = SqlUnitOfWorkFactory(engine)
    async with uow_factory() as uow:
        with pytest.raises(Exception, match="naive datetime refused"):
            await uow.deliveries.first_time("evt", datetime(2026, 1, 1))
    await engine.dispose()


async def test_delivery_ids_are_recorded_once(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    await upgrade(engine)
    factory = SqlUnitOfWorkFactory(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with factory() as uow:
        assert await uow.deliveries.first_time("evt-1", now)
        await uow.commit()
    async with factory() as uow:
        assert not await uow.deliveries.first_time("evt-1", now)
        assert await uow.deliveries.first_time("evt-2", now)
    await engine.dispose()


async def test_a_rolled_back_unit_of_work_keeps_nothing_not_even_its_savepoints(database_url):
    """sqlite3's own SAVEPOINT handling used to commit a delivery id on its own; a unit of work is all or nothing."""

    engine = create_engine(database_url)
    await upgrade(engine)
    factory = SqlUnitOfWorkFactory(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with factory() as uow:
        assert await uow.deliveries.first_time("evt-rolled-back", now)
        # leaving without commit: a crash between recording the delivery and the change it guards
    async with factory() as uow:
        assert await uow.deliveries.first_time("evt-rolled-back", now)
    await engine.dispose()
