"""Shared fixtures: a real warroom on the in-memory chat, a SQLite file and a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.ports import ManualClock
from bot.settings import Settings
from tests.support import START, Harness, make_settings, start_harness


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def team(settings: Settings, clock: ManualClock) -> AsyncIterator[Harness]:
    harness = await start_harness(settings, clock)
    yield harness
    await harness.app.close()
