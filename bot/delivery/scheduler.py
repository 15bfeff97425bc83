"""The reminder tick: APScheduler runs it on an interval; the due times themselves live in the database.

APScheduler only provides the heartbeat. Its own job store is not used for reminders because it cannot be
shared safely between processes; a tick claims due rows instead, so restarts and replicas stay exact.

A heartbeat alone makes a reminder up to one interval late. After each tick the ticker asks when the next
reminder is due and, when that is sooner than the next beat, moves the job's next run to that moment (never
closer than `min_gap_seconds` to the last, so reminders due close together share a tick).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.ports import Clock

log = logging.getLogger("warroom.scheduler")
JOB_ID = "warroom-reminders"


class ReminderTicker:
    def __init__(self, fire_due: Callable[[], Awaitable[int]], *, interval_seconds: float,
                 next_due: Callable[[], datetime | None] | None = None, clock: Clock | None = None,
                 min_gap_seconds: float = 0.05) -> None:
        """`next_due` tells when the next reminder is due, on `clock` (the service's clock; due times are
        compared with its now, and the wait is then scheduled on the wall clock APScheduler runs on)."""
        self._fire_due = fire_due
        self._interval = interval_seconds
        self._next_due = next_due
        self._clock = clock
        self._min_gap = min_gap_seconds
        self._scheduler: AsyncIOScheduler | None = None
        self._running: asyncio.Task[object] | None = None
        self._stopped = False
        self.ticks = 0

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        # One tick at a time; a tick that overruns is skipped, not queued, because the next one catches up.
        scheduler.add_job(self.tick, "interval", seconds=self._interval, max_instances=1, coalesce=True,
                          next_run_time=datetime.now(UTC), id=JOB_ID)
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
            self._run_early_if_due()

    def _run_early_if_due(self) -> None:
        """Move the next run forward to the next due reminder when it comes before the next beat."""
        if self._next_due is None or self._clock is None or self._scheduler is None or self._stopped:
            return
        due = self._next_due()
        if due is None:
            return
        wait = max((due - self._clock.now()).total_seconds(), self._min_gap)
        if wait >= self._interval:
            return  # the heartbeat comes first anyway
        try:
            self._scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC) + timedelta(seconds=wait))
        except Exception:  # the job is gone (shutting down): the heartbeat is the fallback
            log.debug("could not move the next reminder tick forward", exc_info=True)

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
