"""Shared fixtures: a real warroom on the in-memory chat, a SQLite file and a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app.settings import Settings
from bot.ports import ManualClock
from tests.support import (
    BACKEND,
    START,
    Harness,
    create_postgres_database,
    drop_postgres_database,
    make_settings,
    start_harness,
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"warroom test database: {BACKEND}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    if BACKEND == "postgres":
        url = await create_postgres_database()
        yield url
        await drop_postgres_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'warroom.db'}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
async def team(settings: Settings, clock: ManualClock) -> AsyncIterator[Harness]:
    harness = await start_harness(settings, clock)
    yield harness
    await harness.app.close()
