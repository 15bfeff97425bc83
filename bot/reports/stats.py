"""Incident statistics per severity: how fast we acknowledge and resolve, and how often within the targets.

Pure functions of incidents, the ladder and "now"; `/incident stats [30d]` renders them.

Definitions (the same for every team, so numbers compare across months):

- An incident counts in the window when it was *declared* in it, whatever its status now; it is counted
  under its current severity, but each target is judged against the severity in force at the time (see
  bot.incident.targets): a P1 acknowledged after 16 min and then downgraded to P2 missed its response target.
- Time to acknowledge = acknowledged_at − declared_at (mitigating or resolving an unacknowledged incident
  acknowledges it). Time to resolve = resolved_at − declared_at, for incidents resolved now.
- Median and p90 use linear interpolation between the closest ranks (numpy's default, `statistics.quantiles`
  with method="inclusive"): p90 of [10, 20, 30, 40] minutes is 37 min.
- Within response target: acknowledged within the level's response_target. An incident not acknowledged yet
  counts as missed once the target has passed and is left out while it still could make it. Resolution and
  post-mortems the same way: a post-mortem is on time when compiled within postmortem_due of resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from bot.incident.domain import Incident, TimelineEvent, format_duration
from bot.incident.targets import judge, severity_changes, severity_periods
from bot.ports import Message
from playbooks.schema import Ladder


def percentile(values: Sequence[timedelta], q: float) -> timedelta | None:
    """The q-th quantile (0 ≤ q ≤ 1) by linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


@dataclass(frozen=True)
class Share:
    """`met` of `judged` within a target (incidents still within reach of it are not judged yet)."""

    met: int = 0
    judged: int = 0

    @property
    def percent(self) -> float | None:
        return None if self.judged == 0 else 100.0 * self.met / self.judged

    def text(self) -> str:
        if self.judged == 0:
            return "n/a"
        return f"{self.met}/{self.judged} ({self.percent:.0f}%)"


@dataclass(frozen=True)
class Durations:
    count: int
    median: timedelta | None
    p90: timedelta | None

    @classmethod
    def of(cls, values: Sequence[timedelta]) -> Durations:
        return cls(count=len(values), median=percentile(values, 0.5), p90=percentile(values, 0.9))

    def text(self, what: str) -> str:
        if not self.count or self.median is None or self.p90 is None:  # no values: no quantiles either
            return f"none {what} yet"
        return f"median {format_duration(self.median)}, p90 {format_duration(self.p90)} ({self.count} {what})"


@dataclass(frozen=True)
class SeverityStats:
    severity: str
    label: str
    count: int
    open: int
    acknowledge: Durations
    resolve: Durations
    response_target: timedelta | None
    resolution_target: timedelta | None
    postmortem_due: timedelta | None
    within_response: Share
    within_resolution: Share
    postmortems_on_time: Share


@dataclass(frozen=True)
class StatsReport:
    since: datetime
    now: datetime
    total: int
    severities: tuple[SeverityStats, ...]


def _share(verdicts: Sequence[bool | None]) -> Share:
    judged = [v for v in verdicts if v is not None]
    return Share(met=sum(1 for v in judged if v), judged=len(judged))


def compute_stats(incidents: Sequence[Incident], ladder: Ladder, *, now: datetime, since: datetime,
                  timelines: Mapping[int, Sequence[TimelineEvent]] | None = None) -> StatsReport:
    """Per-severity numbers for the incidents declared in [since, now], in the ladder's order.

    `timelines`: each incident's timeline (its severity changes suffice), to judge targets against the severity
    in force at the time; an incident without one is judged against its current severity."""
    window = [i for i in incidents if since <= i.declared_at <= now]
    periods = {i.number: severity_periods(i, severity_changes((timelines or {}).get(i.number, ()))) for i in window}

    def target(attribute: str) -> Callable[[str], timedelta | None]:
        return lambda name: getattr(ladder.level(name), attribute, None)

    def verdict(incident: Incident, start: datetime | None, done_at: datetime | None, attribute: str) -> bool | None:
        if start is None:
            return None
        return judge(start=start, done_at=done_at, now=now, periods=periods[incident.number],
                     target_of=target(attribute)).met

    severities = []
    known = {level.name for level in ladder.levels}
    names = list(ladder.level_names) + sorted({i.severity for i in window} - known)
    for name in names:
        level = ladder.level(name)
        group = [i for i in window if i.severity == name]
        if not group and level is None:
            continue
        response = level.response_target if level else None
        resolution = level.resolution_target if level else None
        due = level.postmortem_due if level else None
        acknowledged = [i.acknowledged_at - i.declared_at for i in group if i.acknowledged_at is not None]
        resolved = [i.resolved_at - i.declared_at for i in group if i.resolved_at is not None]
        severities.append(SeverityStats(
            severity=name, label=level.label if level else "not in this ladder", count=len(group),
            open=sum(1 for i in group if i.status.is_open),
            acknowledge=Durations.of(acknowledged), resolve=Durations.of(resolved),
            response_target=response, resolution_target=resolution, postmortem_due=due,
            within_response=_share([verdict(i, i.declared_at, i.acknowledged_at, "response_target") for i in group]),
            within_resolution=_share([verdict(i, i.declared_at, i.resolved_at, "resolution_target") for i in group]),
            postmortems_on_time=_share([verdict(i, i.resolved_at, i.postmortem_at, "postmortem_due")
                                        for i in group if i.resolved_at is not None]),
        ))
    return StatsReport(since=since, now=now, total=len(window), severities=tuple(severities))


def _period_text(period: timedelta) -> str:
    hours = int(period.total_seconds() // 3600)
    return f"{hours // 24} d" if hours % 24 == 0 else f"{hours} h"


def render_stats(report: StatsReport, tz: tzinfo, *, period: timedelta) -> Message:
    since = report.since.astimezone(tz)
    lines = []
    for s in report.severities:
        if s.count == 0:
            lines.append(f"{s.severity} — no incidents")
            continue
        still_open = f", {s.open} still open" if s.open else ""
        lines.append(f"{s.severity} ({s.label}) — {s.count} incident{'s' if s.count != 1 else ''}{still_open}")
        lines.append(f"  acknowledge: {s.acknowledge.text('acknowledged')}")
        lines.append(f"  resolve: {s.resolve.text('resolved')}")
        if s.response_target is not None:
            lines.append(f"  within response target ({format_duration(s.response_target)}): "
                         f"{s.within_response.text()}")
        if s.resolution_target is not None:
            lines.append(f"  within resolution target ({format_duration(s.resolution_target)}): "
                         f"{s.within_resolution.text()}")
        if s.postmortem_due is not None:
            lines.append(f"  post-mortems on time ({format_duration(s.postmortem_due)} after resolution): "
                         f"{s.postmortems_on_time.text()}")
    return Message(
        title=f"Incident stats, last {_period_text(period)}: {report.total} incident{'s' if report.total != 1 else ''}",
        text="\n".join(lines),
        footer=f"Declared since {since:%Y-%m-%d %H:%M} {since.tzname()}; medians and p90 interpolate between ranks.",
        kind="info",
    )


__all__ = ["Durations", "SeverityStats", "Share", "StatsReport", "compute_stats", "percentile", "render_stats"]
