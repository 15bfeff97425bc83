"""The on-call roster as a use case: people and their contact points, rotations, overrides, who is on call.

Every change is checked whole before anything is written (unknown role, person or timezone, an override that
overlaps another, a rotation with nobody), then written in one unit of work: a refusal leaves nothing behind.

    roster = Roster(uow=uow, clock=clock, plan=playbooks.oncall_plan("default"), tz=settings.tz)
    await roster.add_person(name="alice", slack="U123", whatsapp="+254700000011")
    saved = await roster.set_rotation(role="platform", weekday="mon", at="09:00", timezone="Africa/Nairobi",
                                      people=["alice", "bob"])
    board = await roster.board()          # now and next per role
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from bot.briefs.templates import normalize_phone
from bot.oncall.rotation import (
    WEEKDAYS,
    Gap,
    Override,
    Rotation,
    Shift,
    clock_time,
    first_handoff,
    first_handoff_from,
    gaps,
    local_instant,
    next_shift,
    on_call,
    shifts,
    weekday_number,
    zone,
)
from bot.ports import Clock, UnitOfWork, UnitOfWorkFactory
from playbooks.schema import OnCallPlan

PERSON_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
GAP_HORIZON = timedelta(weeks=4)  # how far ahead a saved rotation or override is checked for uncovered time


class RosterError(ValueError):
    """Bad input to a roster change; the message names what is valid. Nothing was saved."""


@dataclass(frozen=True)
class Person:
    name: str
    slack: str | None = None
    discord: str | None = None
    whatsapp: str | None = None
    pagerduty: str | None = None

    @property
    def contact_points(self) -> tuple[str, ...]:
        return tuple(kind for kind in ("slack", "discord", "whatsapp", "pagerduty") if getattr(self, kind))


@dataclass(frozen=True)
class RoleWatch:
    """Who holds a role now and who is next (None: nobody; a gap)."""

    role: str
    now: Shift | None
    next: Shift | None


@dataclass(frozen=True)
class Saved:
    """What a roster change saved, and the uncovered time it leaves in the next weeks (reported, not refused)."""

    description: str
    gaps: tuple[Gap, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _person_name(raw: str) -> str:
    name = raw.strip().lstrip("@").lower()
    if not PERSON_NAME.match(name):
        raise RosterError(f"{raw!r} is not a person's name: use lowercase letters, digits, '.', '-' or '_' "
                          "(up to 64), e.g. alice")
    return name


def _platform_id(raw: str | None, what: str) -> str | None:
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if not re.match(r"^[A-Za-z0-9_.:-]{1,64}$", value):
        raise RosterError(f"{what} {raw!r} is not an id: letters, digits, '_', '.', ':' or '-', up to 64")
    return value


def parse_when(text: str, tz: tzinfo, *, end: bool) -> datetime:
    """`YYYY-MM-DD` (the start of that day; as an end, the end of it) or `YYYY-MM-DDTHH:MM`, local to `tz`."""
    value = text.strip()
    try:
        if "T" in value.upper():
            day_text, clock_text = value.upper().split("T", 1)
            return local_instant(date.fromisoformat(day_text), clock_time(clock_text), tz)
        day = date.fromisoformat(value)
    except ValueError:
        raise RosterError(f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM, e.g. 2026-12-24") from None
    return local_instant(day + timedelta(days=1) if end else day, time(0), tz)


class Roster:
    """People, rotations and overrides, checked against the roles of the on-call plan (playbooks/oncall/)."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, plan: OnCallPlan, tz: tzinfo) -> None:
        self._uow = uow
        self._clock = clock
        self.plan = plan
        self._tz = tz  # for dates of overrides of a role without a rotation, and for showing times

    def now(self) -> datetime:
        return self._clock.now()

    @property
    def roles(self) -> tuple[str, ...]:
        return self.plan.role_names

    def _role(self, raw: str) -> str:
        role = raw.strip().lower()
        if role not in self.roles:
            raise RosterError(f"unknown role {raw!r}; roles: {', '.join(self.roles)} (playbooks/oncall/"
                              f"{self.plan.name}.yaml)")
        return role

    # -- people -------------------------------------------------------------------------------------------

    async def add_person(self, *, name: str, slack: str | None = None, discord: str | None = None,
                         whatsapp: str | None = None, pagerduty: str | None = None,
                         replace: bool = False) -> Person:
        """Add someone (or, with `replace`, change their contact points). At least one contact point."""
        try:
            phone = normalize_phone(whatsapp) if whatsapp and whatsapp.strip() else None
        except ValueError as problem:
            raise RosterError(str(problem)) from None
        person = Person(name=_person_name(name), slack=_platform_id(slack, "Slack user id"),
                        discord=_platform_id(discord, "Discord user id"), whatsapp=phone,
                        pagerduty=_platform_id(pagerduty, "PagerDuty routing key"))
        if not person.contact_points:
            raise RosterError(f"{person.name} needs at least one contact point: --slack <user id>, "
                              "--discord <user id>, --whatsapp <+E.164 phone> or --pagerduty <routing key>")
        async with self._uow() as uow:
            if not await uow.oncall.save_person(person, now=self._clock.now(), replace=replace):
                raise RosterError(f"{person.name} already exists; add --replace to change their contact points")
            await uow.commit()
        return person

    async def people(self) -> list[Person]:
        async with self._uow() as uow:
            return await uow.oncall.people()

    async def remove_person(self, name: str) -> None:
        """Remove someone who is in no rotation and no override still to come."""
        person = _person_name(name)
        async with self._uow() as uow:
            if await uow.oncall.person(person) is None:
                raise RosterError(await self._unknown_person(uow, name))
            rotations = [r.role for r in await uow.oncall.rotations() if person in r.people]
            upcoming = [o for o in await uow.oncall.overrides(ending_after=self._clock.now()) if o.person == person]
            if rotations or upcoming:
                where = [f"rotation {r}" for r in rotations] + [f"override #{o.id} ({o.role})" for o in upcoming]
                raise RosterError(f"{person} is still in {', '.join(where)}; change those first")
            await uow.oncall.remove_person(person)
            await uow.commit()

    async def _find_person(self, uow: UnitOfWork, raw: str) -> Person | None:
        """By name (`alice`, `@alice`), else by a chat id (`<@U123>` from Slack, `<@123>` from Discord)."""
        token = raw.strip().removeprefix("<").removesuffix(">").lstrip("@!")
        repo = uow.oncall
        return await repo.person(token.lower()) or await repo.person_by_address(token)

    async def _unknown_person(self, uow: UnitOfWork, raw: str) -> str:
        known = [p.name for p in await uow.oncall.people()]
        listed = ", ".join(known) if known else "nobody yet (warroom oncall person add alice --slack U…)"
        return f"unknown person {raw!r}; people: {listed}"

    # -- rotations ----------------------------------------------------------------------------------------

    async def set_rotation(self, *, role: str, weekday: str, at: str, timezone: str, people: Sequence[str],
                           starting: str | None = None) -> Saved:
        """Make `people` take turns in `role`, handing off weekly. Replaces the role's rotation. The first
        person is on call from the latest hand-off (now), or from the first hand-off on/after `starting`."""
        role = self._role(role)
        try:
            tz = zone(timezone)
            day = weekday_number(weekday)
            handoff = clock_time(at)
        except ValueError as problem:
            raise RosterError(str(problem)) from None
        names = [_person_name(p) for p in people]
        if not names:
            raise RosterError(f"a rotation needs at least one person: warroom oncall rotation add {role} --weekly "
                              f"{WEEKDAYS[day]} {handoff:%H:%M} {timezone} alice bob")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise RosterError(f"{', '.join(twice)} named twice; name each person once, in turn order")
        now = self._clock.now()
        if starting:
            try:
                first = first_handoff_from(weekday=day, at=handoff, tz=tz, day=date.fromisoformat(starting))
            except ValueError:
                raise RosterError(f"{starting!r} is not a date: use YYYY-MM-DD") from None
        else:
            first = first_handoff(weekday=day, at=handoff, tz=tz, on_or_before=now)
        rotation = Rotation(role=role, people=tuple(names), weekday=day, at=handoff, timezone=tz.key,
                            starts_at=first)
        async with self._uow() as uow:
            known = {p.name for p in await uow.oncall.people()}
            unknown = [n for n in names if n not in known]
            if unknown:
                listed = ", ".join(sorted(known)) or "nobody yet (warroom oncall person add alice --slack U…)"
                raise RosterError(f"unknown person {', '.join(unknown)}; people: {listed}")
            await uow.oncall.save_rotation(rotation, now=now)
            overrides = await uow.oncall.overrides(ending_after=now)
            await uow.commit()
        return Saved(description=rotation.describe(),
                     gaps=tuple(gaps(role, rotation, overrides, now, now + GAP_HORIZON)))

    async def rotations(self) -> list[Rotation]:
        async with self._uow() as uow:
            return await uow.oncall.rotations()

    # -- overrides ----------------------------------------------------------------------------------------

    async def add_override(self, *, role: str, person: str, starts: str, ends: str, by: str | None = None) -> Saved:
        """`person` holds `role` from `starts` to `ends` (dates in the rotation's timezone; an end date is
        inclusive). Refused when it overlaps another override of the role or is already over."""
        role = self._role(role)
        now = self._clock.now()
        async with self._uow() as uow:
            found = await self._find_person(uow, person)
            if found is None:
                raise RosterError(await self._unknown_person(uow, person))
            name = found.name
            rotation = await uow.oncall.rotation(role)
            tz = rotation.tz if rotation is not None else self._tz
            begins, finishes = parse_when(starts, tz, end=False), parse_when(ends, tz, end=True)
            if finishes <= begins:
                raise RosterError(f"the override ends ({ends}) before it starts ({starts})")
            if finishes <= now:
                raise RosterError(f"the override ({starts} – {ends}) is already over")
            override = Override(role=role, person=name, starts_at=begins, ends_at=finishes, created_by=by)
            existing = await uow.oncall.overrides(ending_after=now, role=role)
            clash = next((o for o in existing if o.overlaps(override)), None)
            if clash is not None:
                raise RosterError(
                    f"overlaps override #{clash.id}: {clash.person} holds {role} from "
                    f"{self.show(clash.starts_at, tz)} to {self.show(clash.ends_at, tz)}; pick other dates or "
                    "remove that one first")
            await uow.oncall.add_override(override, now=now)
            await uow.commit()
            everything = [*existing, override]
        return Saved(description=f"{name} holds {role} from {self.show(begins, tz)} to {self.show(finishes, tz)}",
                     gaps=tuple(gaps(role, rotation, everything, now, now + GAP_HORIZON)))

    async def remove_override(self, override_id: int) -> None:
        async with self._uow() as uow:
            if not await uow.oncall.remove_override(override_id):
                upcoming = await uow.oncall.overrides(ending_after=self._clock.now())
                listed = ", ".join(f"#{o.id}" for o in upcoming) or "none"
                raise RosterError(f"no override #{override_id}; overrides: {listed}")
            await uow.commit()

    # -- reading ------------------------------------------------------------------------------------------

    async def board(self, at: datetime | None = None) -> list[RoleWatch]:
        """Who holds each role now and who is next, in the plan's order."""
        at = at or self._clock.now()
        async with self._uow() as uow:
            rotations = {r.role: r for r in await uow.oncall.rotations()}
            overrides = await uow.oncall.overrides(ending_after=at)
        return [RoleWatch(role, on_call(role, rotations.get(role), overrides, at),
                          next_shift(role, rotations.get(role), overrides, at)) for role in self.roles]

    async def shifts(self, *, start: datetime, end: datetime) -> list[Shift]:
        async with self._uow() as uow:
            rotations = {r.role: r for r in await uow.oncall.rotations()}
            overrides = await uow.oncall.overrides(ending_after=start)
        found: list[Shift] = []
        for role in self.roles:
            found += shifts(role, rotations.get(role), overrides, start, end)
        return found

    async def gaps(self, *, start: datetime, end: datetime) -> list[Gap]:
        """Uncovered time per role with a rotation or an override (roles nobody was ever given are not
        listed: they are simply not staffed)."""
        async with self._uow() as uow:
            rotations = {r.role: r for r in await uow.oncall.rotations()}
            overrides = await uow.oncall.overrides(ending_after=start)
        staffed = [role for role in self.roles if role in rotations or any(o.role == role for o in overrides)]
        return [gap for role in staffed for gap in gaps(role, rotations.get(role), overrides, start, end)]

    def show(self, at: datetime, tz: tzinfo | None = None) -> str:
        return f"{at.astimezone(tz or self._tz):%a %Y-%m-%d %H:%M %Z}"


def render_ics(shifts: Sequence[Shift], *, now: datetime, calendar: str = "warroom on-call") -> str:
    """Shifts as an iCalendar (RFC 5545) file, times in UTC; one event per shift, stable UIDs (role, person and
    start) so a subscribed calendar updates rather than duplicates."""
    def stamp(at: datetime) -> str:
        return f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}"

    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//warroom//on-call//EN", "CALSCALE:GREGORIAN",
             f"X-WR-CALNAME:{calendar}"]
    for shift in shifts:
        summary = f"On call: {shift.role} — {shift.person}" + (" (override)" if shift.override else "")
        lines += ["BEGIN:VEVENT", f"UID:{shift.role}-{shift.person}-{stamp(shift.starts_at)}@warroom",
                  f"DTSTAMP:{stamp(now)}", f"DTSTART:{stamp(shift.starts_at)}", f"DTEND:{stamp(shift.ends_at)}",
                  f"SUMMARY:{summary}", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"
