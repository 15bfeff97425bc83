"""Judge an incident's targets against the severity in force at the time, not the severity it ends with.

A P1 acknowledged after 16 min (target 15 min) and downgraded to P2 afterwards missed its response target: the
bot escalated for it. So a target is judged by walking the severity changes in the timeline:

- a target is missed as soon as the deadline of the severity in force passes while that severity is in force
  (a deadline missed under P1 stays missed after a downgrade to P2);
- otherwise the acknowledgement (or resolution) is judged against the severity in force when it happened.

Pure functions of the incident, its timeline and the targets per severity; the post-mortem and `/incident stats`
both use them, so they always agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.incident.domain import EventKind, Incident, TimelineEvent

# The text Incident.change_severity records: "severity P1 → P2".
_CHANGE = re.compile(r"^severity (?P<previous>\S+) → (?P<to>\S+)$")


@dataclass(frozen=True)
class SeverityChange:
    at: datetime
    previous: str
    to: str
    by: str


@dataclass(frozen=True)
class Verdict:
    """`met`: True / False, or None when there is no target or it is not decided yet. `severity` and `target`:
    the level whose target decided it (the one missed, or the one in force when it was done)."""

    met: bool | None
    severity: str
    target: timedelta | None


def severity_changes(timeline: Iterable[TimelineEvent]) -> list[SeverityChange]:
    """The severity changes recorded in a timeline, oldest first."""
    changes = []
    for event in timeline:
        if event.kind is not EventKind.SEVERITY_CHANGED:
            continue
        match = _CHANGE.match(event.text.strip())
        if match:
            changes.append(SeverityChange(at=event.occurred_at, previous=match["previous"], to=match["to"],
                                          by=event.author))
    return sorted(changes, key=lambda change: change.at)


def severity_periods(incident: Incident, changes: Sequence[SeverityChange]) -> list[tuple[datetime, str]]:
    """(from, severity) for each stretch of the incident's life, starting at its declaration."""
    first = changes[0].previous if changes else incident.severity
    return [(incident.declared_at, first)] + [(change.at, change.to) for change in changes]


def peak_severity(periods: Sequence[tuple[datetime, str]], order: Sequence[str]) -> str:
    """The most severe level the incident ever had (`order`: the ladder's levels, most severe first)."""
    ranks = {name.upper(): index for index, name in enumerate(order)}
    return min((severity for _, severity in periods), key=lambda s: ranks.get(s.upper(), len(ranks)))


def judge(*, start: datetime, done_at: datetime | None, now: datetime, periods: Sequence[tuple[datetime, str]],
          target_of: Callable[[str], timedelta | None]) -> Verdict:
    """Was the thing (acknowledge, resolve, …) started at `start` done within its target?

    `periods` are (from, severity) in time order; `target_of(severity)` the target of a level (None: no target).
    """
    end = done_at if done_at is not None else now
    in_force = periods[0][1]
    for index, (since, severity) in enumerate(periods):
        until = periods[index + 1][0] if index + 1 < len(periods) else None
        if since > end:
            break
        in_force = severity
        if until is not None and until <= start:
            continue
        target = target_of(severity)
        if target is None:
            continue
        deadline = start + target
        # Missed while this severity was in force: it stays missed whatever the severity becomes later.
        if max(since, start) <= deadline < end and (until is None or deadline < until):
            return Verdict(met=False, severity=severity, target=target)
    target = target_of(in_force)
    if target is None:
        return Verdict(met=None, severity=in_force, target=None)
    deadline = start + target
    if done_at is not None:
        return Verdict(met=done_at <= deadline, severity=in_force, target=target)
    return Verdict(met=False if now > deadline else None, severity=in_force, target=target)


__all__ = ["SeverityChange", "Verdict", "judge", "peak_severity", "severity_changes", "severity_periods"]
