"""An incident's escalation policy as a state machine: which level to page, when to repeat, when to climb, when a
business-hours level waits — computed from the state, the policy and a time, with no I/O.

    state = Escalation.start(severity="P1", now=now)
    state, step = advance(state, policy, now=now)      # step: Page(level=0, attempt=1, roles=("platform",))
    state.due_at                                         # when to call advance() again (repeat or timeout)

A step is taken only when due; a process that was down when several repeats fell due takes one step at
start-up (one page, the next repeat counted from now), never one per missed repeat. Every page is numbered
(level, attempt) so the outbox can deliver each person's page once per attempt whoever takes the step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.oncall.rotation import WEEKDAYS, local_instant
from playbooks.schema import BusinessHours, EscalationPolicy

State = Literal["paging", "acknowledged", "resolved", "exhausted"]


@dataclass(frozen=True)
class Escalation:
    """Where an incident is on its policy. `attempt` counts pages at `level` (0: not paged there yet)."""

    severity: str
    level: int
    attempt: int
    level_since: datetime
    due_at: datetime | None
    state: State = "paging"
    waiting_until: datetime | None = None  # a business-hours level holding its page until then

    @classmethod
    def start(cls, *, severity: str, now: datetime) -> Escalation:
        return cls(severity=severity, level=0, attempt=0, level_since=now, due_at=now)

    @property
    def open(self) -> bool:
        return self.state == "paging"


@dataclass(frozen=True)
class Page:
    level: int
    attempt: int
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Wait:
    """The level pages only in business hours: nothing goes out until `until` (said once in the thread)."""

    level: int
    until: datetime


@dataclass(frozen=True)
class Nothing:
    pass


Step = Page | Wait | Nothing


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(0) if text == "24:00" else time(int(hours), int(minutes))


def next_opening(hours: BusinessHours, at: datetime) -> datetime:
    """`at` itself when it falls in business hours, else when they next open (aware UTC)."""
    tz = ZoneInfo(hours.timezone)
    days = {WEEKDAYS.index(day) for day in hours.days}
    opens, closes = _clock(hours.start), _clock(hours.end)
    local_day = at.astimezone(tz).date()
    for offset in range(8):
        day = local_day + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        start = local_instant(day, opens, tz)
        end = local_instant(day + timedelta(days=1), time(0), tz) if hours.end == "24:00" else local_instant(
            day, closes, tz)
        if at < end:
            return max(at, start)
    raise ValueError(f"business hours {hours.days} open on no day")  # the schema requires at least one day


def advance(state: Escalation, policy: EscalationPolicy, *, now: datetime) -> tuple[Escalation, Step]:
    """Take the step due at `now` (if any) and say when the next one is due."""
    if not state.open or state.due_at is None or state.due_at > now:
        return state, Nothing()
    level = policy.levels[state.level]
    if state.attempt > 0 and level.timeout is not None and now >= state.level_since + level.timeout:
        if state.level + 1 < len(policy.levels):
            state = replace(state, level=state.level + 1, attempt=0, level_since=now, waiting_until=None)
            level = policy.levels[state.level]
    if level.business_hours is not None:
        opening = next_opening(level.business_hours, now)
        if opening > now:
            said = state.waiting_until == opening
            state = replace(state, due_at=opening, waiting_until=opening)
            return state, Nothing() if said else Wait(level=state.level, until=opening)
    state = replace(state, attempt=state.attempt + 1, waiting_until=None)
    step = Page(level=state.level, attempt=state.attempt, roles=level.roles)
    candidates = []
    if level.repeat is not None:
        candidates.append(now + level.repeat)
    if level.timeout is not None and state.level + 1 < len(policy.levels):
        candidates.append(state.level_since + level.timeout)
    if candidates:
        return replace(state, due_at=min(candidates)), step
    return replace(state, due_at=None, state="exhausted"), step


def escalate_now(state: Escalation, policy: EscalationPolicy, *, now: datetime) -> Escalation:
    """`/incident escalate`: the next level, paged at once (the last level is paged again)."""
    level = min(state.level + 1, len(policy.levels) - 1)
    return replace(state, level=level, attempt=0, level_since=now, due_at=now, state="paging", waiting_until=None)


def acknowledge(state: Escalation) -> Escalation:
    """Someone answered: nothing more is due."""
    return replace(state, state="acknowledged", due_at=None, waiting_until=None)


def resolve(state: Escalation) -> Escalation:
    return replace(state, state="resolved", due_at=None, waiting_until=None)
