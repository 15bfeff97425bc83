"""Who is on call: computed from a rotation's rule, its overrides and a time — never stored as a list of shifts.

A weekly rotation hands off on a weekday at a wall-clock time in an IANA timezone (`mon 09:00
Europe/London`): the hand-off stays at 09:00 local across daylight-saving changes, so a shift is 167 or 169
hours long in the weeks the clocks move. The k-th hand-off is computed from the first one's local date plus
k weeks, then converted to UTC — never by adding 7×24 hours to an instant.

    rotation = Rotation(role="platform", people=("alice", "bob"), weekday=0, at=time(9), timezone="Europe/London",
                        starts_at=datetime(2026, 3, 23, 9, tzinfo=timezone.utc))
    on_call(rotation, overrides, at=clock.now())      # → Shift(person="alice", …) or None (a gap)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def zone(name: str) -> ZoneInfo:
    """The IANA timezone `name`, or ValueError naming what is valid."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}; use an IANA name such as Africa/Nairobi, Europe/London, "
                         "America/New_York or UTC") from None


def weekday_number(name: str) -> int:
    """'mon' or 'monday' (any case) → 0."""
    key = name.strip().lower()
    for number, short in enumerate(WEEKDAYS):
        if key in (short, FULL_WEEKDAYS[number]):
            return number
    raise ValueError(f"unknown weekday {name!r}; use one of {', '.join(WEEKDAYS)}")


def clock_time(text: str) -> time:
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"expected a time as HH:MM on a 24-hour clock (e.g. 09:00), got {text!r}") from None


def local_instant(day: date, at: time, tz: tzinfo) -> datetime:
    """`day` at wall-clock `at` in `tz`, as aware UTC. A wall time the clocks skip (01:30 on a spring-forward
    night) is read with the offset before the change, i.e. it lands one hour later in real time; a time that
    happens twice (autumn) is its first occurrence."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Rotation:
    """People taking turns in `role`, handing off weekly on `weekday` (0 = Monday) at `at` in `timezone`.
    `starts_at` is the first hand-off (to `people[0]`); before it the rotation covers nobody."""

    role: str
    people: tuple[str, ...]
    weekday: int
    at: time
    timezone: str
    starts_at: datetime

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def handoff(self, k: int) -> datetime:
        """The k-th hand-off (k = 0 is `starts_at`), as aware UTC."""
        first_day = self.starts_at.astimezone(self.tz).date()
        return local_instant(first_day + timedelta(weeks=k), self.at, self.tz)

    def index_at(self, at: datetime) -> int:
        """The number of the hand-off that began the shift running at `at` (-1 before the first)."""
        if at < self.starts_at:
            return -1
        k = (at - self.starts_at) // timedelta(weeks=1)  # within one of the answer: DST moves hand-offs by ≤ 1 h
        while k > 0 and self.handoff(k) > at:
            k -= 1
        while self.handoff(k + 1) <= at:
            k += 1
        return k

    def describe(self) -> str:
        return (f"{self.role}: weekly, {WEEKDAYS[self.weekday]} {self.at:%H:%M} {self.timezone}, "
                f"{' → '.join(self.people)}")


def first_handoff(*, weekday: int, at: time, tz: ZoneInfo, on_or_before: datetime) -> datetime:
    """The latest `weekday` `at` local time not after `on_or_before`: a rotation saved now with this as its
    start has its first person on call now."""
    local_day = on_or_before.astimezone(tz).date()
    day = local_day - timedelta(days=(local_day.weekday() - weekday) % 7)
    instant = local_instant(day, at, tz)
    return instant if instant <= on_or_before else local_instant(day - timedelta(weeks=1), at, tz)


def first_handoff_from(*, weekday: int, at: time, tz: ZoneInfo, day: date) -> datetime:
    """The first `weekday` `at` local time on or after the local date `day`."""
    start = day + timedelta(days=(weekday - day.weekday()) % 7)
    return local_instant(start, at, tz)


@dataclass(frozen=True)
class Override:
    """`person` holds `role` from `starts_at` until `ends_at` (aware UTC), whatever the rotation says."""

    role: str
    person: str
    starts_at: datetime
    ends_at: datetime
    id: int | None = None
    created_by: str | None = None

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def overlaps(self, other: Override) -> bool:
        return self.role == other.role and self.starts_at < other.ends_at and other.starts_at < self.ends_at


@dataclass(frozen=True)
class Shift:
    role: str
    person: str
    starts_at: datetime
    ends_at: datetime
    override: bool = False


@dataclass(frozen=True)
class Gap:
    role: str
    starts_at: datetime
    ends_at: datetime | None  # None: uncovered from then on (no rotation, nothing after)


def _rotation_shifts(rotation: Rotation, start: datetime, end: datetime) -> list[Shift]:
    shifts: list[Shift] = []
    k = max(rotation.index_at(start), 0)
    while True:
        begins, ends = rotation.handoff(k), rotation.handoff(k + 1)
        if begins >= end:
            return shifts
        if ends > start:
            shifts.append(Shift(rotation.role, rotation.people[k % len(rotation.people)], max(begins, start),
                                min(ends, end)))
        k += 1


def shifts(role: str, rotation: Rotation | None, overrides: Sequence[Override], start: datetime,
           end: datetime) -> list[Shift]:
    """Who holds `role` over [start, end), in order; overrides win over the rotation. Time nobody holds the role
    is absent from the list (see `gaps`)."""
    base = _rotation_shifts(rotation, start, end) if rotation is not None else []
    mine = sorted((o for o in overrides if o.role == role and o.ends_at > start and o.starts_at < end),
                  key=lambda o: o.starts_at)
    result: list[Shift] = []
    for shift in base:
        pieces = [(shift.starts_at, shift.ends_at)]
        for override in mine:
            cut: list[tuple[datetime, datetime]] = []
            for a, b in pieces:
                if override.ends_at <= a or override.starts_at >= b:
                    cut.append((a, b))
                    continue
                if a < override.starts_at:
                    cut.append((a, override.starts_at))
                if override.ends_at < b:
                    cut.append((override.ends_at, b))
            pieces = cut
        result += [Shift(role, shift.person, a, b) for a, b in pieces]
    result += [Shift(role, o.person, max(o.starts_at, start), min(o.ends_at, end), override=True) for o in mine]
    return sorted(result, key=lambda s: s.starts_at)


def gaps(role: str, rotation: Rotation | None, overrides: Sequence[Override], start: datetime,
         end: datetime) -> list[Gap]:
    """The stretches of [start, end) in which nobody holds `role`."""
    found: list[Gap] = []
    cursor = start
    for shift in shifts(role, rotation, overrides, start, end):
        if shift.starts_at > cursor:
            found.append(Gap(role, cursor, shift.starts_at))
        cursor = max(cursor, shift.ends_at)
    if cursor < end:
        found.append(Gap(role, cursor, None if rotation is None and not overrides else end))
    return found


def on_call(role: str, rotation: Rotation | None, overrides: Sequence[Override], at: datetime) -> Shift | None:
    """The shift running at `at` (its full extent), or None when nobody holds `role` then."""
    for override in overrides:
        if override.role == role and override.covers(at):
            return Shift(role, override.person, override.starts_at, override.ends_at, override=True)
    if rotation is None or rotation.index_at(at) < 0:
        return None
    k = rotation.index_at(at)
    begins, ends = rotation.handoff(k), rotation.handoff(k + 1)
    # an override starting later in this shift ends it early; one that ended earlier in it starts it late
    for override in overrides:
        if override.role == role and begins <= override.starts_at and override.starts_at > at:
            ends = min(ends, override.starts_at)
        if override.role == role and override.ends_at <= at and override.ends_at > begins:
            begins = max(begins, override.ends_at)
    return Shift(role, rotation.people[k % len(rotation.people)], begins, ends)


def next_shift(role: str, rotation: Rotation | None, overrides: Sequence[Override], at: datetime,
               horizon: timedelta = timedelta(weeks=8)) -> Shift | None:
    """The first shift after the one running at `at` with someone else in it (a gap is skipped), within
    `horizon`; None if nobody else is scheduled."""
    current = on_call(role, rotation, overrides, at)
    for shift in shifts(role, rotation, overrides, at, at + horizon):
        if shift.starts_at > at and (current is None or shift.person != current.person):
            return shift
    return None
