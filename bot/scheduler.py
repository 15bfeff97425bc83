"""The reminder tick: APScheduler runs it on an interval; the due times themselves live in the database.

APScheduler only provides the heartbeat. Its own job store is not used for reminders because it cannot be
shared safely between processes; a tick claims due rows instead, so restarts and replicas stay exact.
"""

from __future__ import annotations

import asyncio
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
        self._running: asyncio.Task | None = None
        self._stopped = False
        self.ticks = 0

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=timezone.utc)
        # One tick at a time; a tick that overruns is skipped, not queued, because the next one catches up.
        scheduler.add_job(self.tick, "interval", seconds=self._interval, max_instances=1, coalesce=True,
                          next_run_time=datetime.now(timezone.utc), id="warroom-reminders")
        scheduler.start()
        self._scheduler = scheduler
        self._stopped = False

    async def tick(self) -> int:
        if self._stopped:  # a tick APScheduler launched just as we stopped: the database may be closing
            return 0
        self.ticks += 1
        self._running = asyncio.current_task()
        try:
            return await self._fire_due()
        except Exception:
            log.exception("reminder tick failed; the next tick retries the same due rows")
            return 0
        finally:
            self._running = None

    def shutdown(self) -> None:
        """Stop ticking now. APScheduler cancels a tick that is running, so prefer `stop()`, which lets it
        finish first (a tick cancelled inside a database call can hang the process as it exits)."""
        self._stopped = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop launching ticks, let a running one finish, then shut APScheduler down."""
        self._stopped = True
        if self._scheduler is not None:
            self._scheduler.pause()
        running = self._running
        if running is not None and running is not asyncio.current_task() and not running.done():
            try:
                await asyncio.wait_for(asyncio.shield(running), timeout)
            except Exception:
                log.warning("a reminder tick did not finish within %.0f s of shutdown", timeout)
        self.shutdown()
