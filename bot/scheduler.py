"""The reminder tick: APScheduler runs it on an interval; the due times themselves live in the database.

APScheduler only provides the heartbeat. Its own job store is not used for reminders because it cannot be
shared safely between processes; a tick claims due rows instead, so restarts and replicas stay exact.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger("warroom.scheduler")


class ReminderTicker:
    def __init__(self, fire_due: Callable[[], Awaitable[int]], *, interval_seconds: float) -> None:
        self._fire_due = fire_due
        self._interval = interval_seconds
        self._scheduler: AsyncIOScheduler | None = None
        self.ticks = 0

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=timezone.utc)
        # One tick at a time; a tick that overruns is skipped, not queued, because the next one catches up.
        scheduler.add_job(self.tick, "interval", seconds=self._interval, max_instances=1, coalesce=True,
                          next_run_time=datetime.now(timezone.utc), id="warroom-reminders")
        scheduler.start()
        self._scheduler = scheduler

    async def tick(self) -> int:
        self.ticks += 1
        try:
            return await self._fire_due()
        except Exception:
            log.exception("reminder tick failed; the next tick retries the same due rows")
            return 0

    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
