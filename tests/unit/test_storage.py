"""Storage details that matter for correctness: aware UTC times, SQLite pragmas, database URLs."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from storage.engine import async_url, create_engine
from storage.migrate import upgrade
from storage.repository import SqlUnitOfWorkFactory


def test_urls_people_write_get_async_drivers():
    assert async_url("sqlite:///warroom.db") == "sqlite+aiosqlite:///warroom.db"
    assert async_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    with pytest.raises(ValueError, match="Unsupported database URL scheme 'mysql'"):
        async_url("mysql://u@h/db")


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(sa.text("PRAGMA busy_timeout"))).scalar() == 5000
    await engine.dispose()


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
    from datetime import timezone
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    async with factory() as uow:
        assert await uow.deliveries.first_time("evt-1", now)
        await uow.commit()
    async with factory() as uow:
        assert not await uow.deliveries.first_time("evt-1", now)
        assert await uow.deliveries.first_time("evt-2", now)
    await engine.dispose()


async def test_a_rolled_back_unit_of_work_keeps_nothing_not_even_its_savepoints(database_url):
    """sqlite3's own SAVEPOINT handling used to commit a delivery id on its own; a unit of work is all or nothing."""
    from datetime import timezone

    engine = create_engine(database_url)
    await upgrade(engine)
    factory = SqlUnitOfWorkFactory(engine)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    async with factory() as uow:
        assert await uow.deliveries.first_time("evt-rolled-back", now)
        # leaving without commit: a crash between recording the delivery and the change it guards
    async with factory() as uow:
        assert await uow.deliveries.first_time("evt-rolled-back", now)
    await engine.dispose()
