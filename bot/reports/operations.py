"""Operations use cases: the daily digest on its schedule, the deploy-freeze status, the numbers behind /metrics.

The digest's due time lives in the database (the `schedule` row), like reminders: a tick claims it with a
compare-and-set, so across restarts and replicas each day's digest is posted once. A digest missed while the
bot was down is posted once at the next start (for the latest missed day only), and the outbox dedupe key
(`digest:<local date of the slot>`) keeps even a race between a claim and a crash from doubling it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.incident.key import key_of
from bot.ports import (
    Clock,
    FreezeEntry,
    Message,
    MetricsSnapshot,
    Outbound,
    Room,
    UnitOfWorkFactory,
)
from bot.reports.digest import DigestSchedule, build_digest
from playbooks.schema import Ladder

if TYPE_CHECKING:
    from bot.delivery.notifier import Notifier

log = logging.getLogger("warroom.operations")

DIGEST = "digest"
# The digest looks back to the start of yesterday (at most two days); older incidents come in only while open,
# owing a post-mortem, or holding a dated action item.
_DAYS_2 = timedelta(days=2)


@dataclass(frozen=True)
class FreezeStatus:
    """Whether deploys are frozen: any open incident with the freeze on. `since` = the earliest freeze's start."""

    incidents: tuple[FreezeEntry, ...]

    @property
    def frozen(self) -> bool:
        return bool(self.incidents)

    @property
    def since(self) -> datetime | None:
        return min((entry.since for entry in self.incidents), default=None)

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"frozen": self.frozen,
                                   "incidents": [key_of(e.incident_number) for e in self.incidents]}
        since = self.since  # None exactly when nothing is frozen
        if self.frozen and since is not None:
            body["since"] = since.isoformat()
            body["details"] = [{"incident": key_of(e.incident_number), "severity": e.severity, "title": e.title,
                                "since": e.since.isoformat()} for e in self.incidents]
        return body


class Operations:
    def __init__(self, *, notifier: Notifier, uow: UnitOfWorkFactory, clock: Clock, ladder: Ladder,
                 room: Room, schedule: DigestSchedule | None, tz: ZoneInfo) -> None:
        self._notify = notifier
        self._uow = uow
        self._clock = clock
        self._ladder = ladder
        self.room = room
        self.schedule = schedule
        self._tz = tz
        self._known_due: datetime | None = None  # skip the database until then

    # -- digest --------------------------------------------------------------------------------------------

    async def digest(self, *, now: datetime | None = None, due: datetime | None = None) -> Message:
        """The digest as of now (for `warroom digest` and for the scheduled post)."""
        now = now or self._clock.now()
        postmortem_levels = [level.name for level in self._ladder.levels if level.postmortem_due is not None]
        async with self._uow() as uow:
            incidents = await uow.reports.for_digest(since=now - _DAYS_2, postmortem_severities=postmortem_levels)
        return build_digest(incidents, self._ladder, now=now, tz=self._tz, due=due)

    async def run_due(self) -> bool:
        """Post the digest if it is due and this process wins it; True when it did. Called by every tick."""
        schedule = self.schedule
        if schedule is None:
            return False
        now = self._clock.now()
        if self._known_due is not None and now < self._known_due:
            return False
        async with self._uow() as uow:
            due = await uow.schedules.due_at(DIGEST)
            if due is None:
                # First start on this database: the first digest is the next one, not one right now.
                first = schedule.next_after(now)
                if not await uow.schedules.create(DIGEST, due_at=first):
                    return False  # another process created it; read it next tick
                await uow.commit()
                self._known_due = first
                return False
            if due > now:
                if not schedule.is_slot(due):  # WARROOM_DIGEST_TIME or its timezone changed since it was planned
                    moved = schedule.next_after(now)
                    if await uow.schedules.move(DIGEST, seen_due=due, next_due=moved, ran_at=None):
                        await uow.commit()
                        due = moved
                self._known_due = due
                return False
            following = schedule.next_after(now)
            if not await uow.schedules.move(DIGEST, seen_due=due, next_due=following, ran_at=now):
                self._known_due = None
                return False  # another replica posted it
            slot = schedule.latest_at_or_before(now)
            postmortem_levels = [level.name for level in self._ladder.levels if level.postmortem_due is not None]
            incidents = await uow.reports.for_digest(since=now - _DAYS_2, postmortem_severities=postmortem_levels)
            message = build_digest(incidents, self._ladder, now=now, tz=self._tz, due=slot)
            day = slot.astimezone(self._tz).date()
            await uow.outbox.enqueue(Outbound(platform=self.room.platform, operation="post", message=message,
                                              dedupe_key=f"digest:{day.isoformat()}", room=self.room), now)
            await uow.commit()
        self._known_due = following
        log.info("daily digest for %s queued for %s %s", day, self.room.platform, self.room.channel)
        await self._notify.deliver()
        return True

    # -- freeze and metrics ------------------------------------------------------------------------------

    async def freeze(self) -> FreezeStatus:
        async with self._uow() as uow:
            return FreezeStatus(incidents=tuple(await uow.reports.frozen()))

    async def metrics(self) -> MetricsSnapshot:
        async with self._uow() as uow:
            return await uow.reports.metrics()

__all__ = ["DIGEST", "FreezeStatus", "Operations"]
