"""The daily digest: what an operator should know at the start of the day, as one neutral message.

Pure: `build_digest` takes incidents, the ladder, "now" and the team's timezone. "Yesterday" and "today" are
local calendar days in that timezone, so an incident resolved at 00:30 EAT (21:30 UTC the day before) reads as
resolved yesterday in a 07:00 EAT digest. `DigestSchedule` says when the digest is due.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.incident.domain import Incident, Status, format_duration
from bot.ports import Message
from playbooks.schema import Ladder

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class DigestSchedule:
    """Every day at `at` local time in `tz`."""

    at: time
    tz: ZoneInfo

    def slot(self, day: date) -> datetime:
        """The digest time on a local calendar day, in UTC (a DST gap moves it, never skips the day)."""
        local = datetime.combine(day, self.at, tzinfo=self.tz)
        return local.astimezone(UTC)

    def next_after(self, moment: datetime) -> datetime:
        day = moment.astimezone(self.tz).date()
        for offset in range(0, 3):
            candidate = self.slot(day + timedelta(days=offset))
            if candidate > moment:
                return candidate
        raise AssertionError("unreachable: a day always has a digest time")

    def latest_at_or_before(self, moment: datetime) -> datetime:
        day = moment.astimezone(self.tz).date()
        for offset in range(0, 3):
            candidate = self.slot(day - timedelta(days=offset))
            if candidate <= moment:
                return candidate
        raise AssertionError("unreachable: a day always has a digest time")

    def is_slot(self, moment: datetime) -> bool:
        return self.slot(moment.astimezone(self.tz).date()) == moment


def _clock(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local:%H:%M} {local.tzname()}"


def _day_word(moment: datetime, now: datetime, tz: ZoneInfo) -> str:
    day, today = moment.astimezone(tz).date(), now.astimezone(tz).date()
    if day == today:
        return "today"
    if day == today - timedelta(days=1):
        return "yesterday"
    return f"{day:%a %d %b}"


def _when(moment: datetime, now: datetime, tz: ZoneInfo) -> str:
    return f"{_day_word(moment, now, tz)} {_clock(moment, tz)}"


def _section(title: str, lines: list[str]) -> str:
    if not lines:
        return f"{title}: none"
    return f"{title} ({len(lines)}):\n" + "\n".join(f"  • {line}" for line in lines)


def missed_targets(incident: Incident, ladder: Ladder, *, start: datetime, now: datetime) -> list[str]:
    """Targets whose deadline fell in (start, now] and were not met by it."""
    level = ladder.level(incident.severity)
    if level is None:
        return []
    missed = []
    checks = (("response", level.response_target, incident.acknowledged_at, "acknowledged", "not acknowledged"),
              ("resolution", level.resolution_target, incident.resolved_at, "resolved", "still open"))
    for name, target, done_at, done_word, open_word in checks:
        if target is None:
            continue
        deadline = incident.declared_at + target
        if not start < deadline <= now:
            continue
        if done_at is None:
            state = open_word if name == "response" or incident.status.is_open else "not resolved"
            missed.append(f"{incident.key} {incident.severity} {name} target {format_duration(target)} missed "
                          f"({state} after {format_duration(now - incident.declared_at)}): {incident.title}")
        elif done_at > deadline:
            missed.append(f"{incident.key} {incident.severity} {name} target {format_duration(target)} missed "
                          f"({done_word} after {format_duration(done_at - incident.declared_at)}): {incident.title}")
    return missed


def build_digest(incidents: Sequence[Incident], ladder: Ladder, *, now: datetime, tz: ZoneInfo,
                 due: datetime | None = None) -> Message:
    """The digest as of `now`. `due`: when it was scheduled, if it is posted late (after a restart)."""
    local_now = now.astimezone(tz)
    today = local_now.date()
    start_of_yesterday = datetime.combine(today - timedelta(days=1), time(0, 0), tzinfo=tz).astimezone(UTC)

    open_lines = []
    for i in sorted((i for i in incidents if i.status.is_open), key=lambda i: (ladder.level_names.index(i.severity)
                    if i.severity in ladder.level_names else 99, i.number)):
        last = i.last_update_at or i.declared_at
        freeze = " · deploy freeze ON" if i.frozen else ""
        open_lines.append(f"{i.key} {i.severity} [{i.status.value}] {i.title} — "
                          f"open {format_duration(now - i.declared_at)}, "
                          f"last update {_when(last, now, tz)} ({format_duration(now - last)} ago){freeze}")

    missed = [line for i in incidents for line in missed_targets(i, ladder, start=now - WINDOW, now=now)]

    postmortems = []
    for i in incidents:
        level = ladder.level(i.severity)
        if (level is None or level.postmortem_due is None or i.resolved_at is None or i.postmortem_at is not None
                or i.status.is_open):
            continue
        due_at = i.resolved_at + level.postmortem_due
        if due_at < now:
            postmortems.append(f"{i.key} {i.severity} {i.title} — due {_when(due_at, now, tz)}, "
                               f"{format_duration(now - due_at)} overdue: /incident postmortem {i.key}")

    actions = []
    for i in incidents:
        for item in i.actions:
            if item.is_done or item.due is None or item.due >= today:
                continue
            owner = f", owner {item.owner}" if item.owner else ""
            days = (today - item.due).days
            actions.append(f"{i.key} action {item.number}: {item.text} — due {item.due:%Y-%m-%d} "
                           f"({days} day{'s' if days != 1 else ''} overdue{owner})")

    resolved_lines = []
    resolved = [(i.resolved_at, i) for i in incidents if i.resolved_at is not None
                and i.resolved_at >= start_of_yesterday and i.status in (Status.RESOLVED, Status.CLOSED)]
    for resolved_at, i in sorted(resolved, key=lambda pair: pair[0]):
        took = format_duration(resolved_at - i.declared_at)
        resolved_lines.append(f"{i.key} {i.severity} {i.title} — resolved {_when(resolved_at, now, tz)} "
                              f"after {took}" + (f" ({i.status.value})" if i.status is Status.CLOSED else ""))

    sections = [
        _section("Open incidents", open_lines),
        _section("Targets missed in the last 24 h", missed),
        _section("Post-mortems overdue", postmortems),
        _section("Action items overdue", actions),
        _section("Resolved since yesterday", resolved_lines),
    ]
    late = ""
    if due is not None and now - due > timedelta(minutes=10):
        late = f" Due {_when(due, now, tz)}; posted late (the bot was not running)."
    return Message(title=f"Daily incident digest — {local_now:%a %d %b %Y}",
                   text="\n\n".join(sections),
                   footer=f"As of {_clock(now, tz)}.{late} Details: /incident list · /incident stats",
                   kind="digest")


__all__ = ["DigestSchedule", "build_digest", "missed_targets"]
