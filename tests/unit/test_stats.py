"""Incident statistics on a constructed history: exact medians, p90s and shares within target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.incident.domain import Incident, Status
from bot.reports.stats import compute_stats, percentile, render_stats
from playbooks.loader import load_playbooks

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=30)
MIN = timedelta(minutes=1)
EAT = ZoneInfo("Africa/Nairobi")


@pytest.fixture(scope="module")
def ladder():
    return load_playbooks().ladder("P1-P3")  # P1: respond 15m, resolve 2h, post-mortem 48h; P2: 1h, 8h, 1w


def incident(number: int, severity: str, *, declared: datetime, ack: int | None = None, resolved: int | None = None,
             postmortem: int | None = None) -> Incident:
    """`ack` and `resolved` in minutes after declaring; `postmortem` in hours after resolving."""
    item = Incident(number=number, title=f"incident {number}", severity=severity, impact=None, reporter="alice",
                    declared_at=declared)
    if ack is not None:
        item.acknowledged_at = declared + ack * MIN
        item.status = Status.ACKNOWLEDGED
    if resolved is not None:
        item.resolved_at = declared + resolved * MIN
        item.status = Status.RESOLVED
    if postmortem is not None:
        item.postmortem_at = item.resolved_at + timedelta(hours=postmortem)  # type: ignore[operator]
    return item


@pytest.mark.parametrize(("minutes", "q", "expected"), [
    ([10, 20, 30, 40], 0.5, 25), ([10, 20, 30, 40], 0.9, 37), ([5, 10, 20, 40], 0.9, 34),
    ([7], 0.5, 7), ([7], 0.9, 7), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9, 9.1), ([3, 1, 2], 0.5, 2),
])
def test_percentile_interpolates_between_closest_ranks(minutes, q, expected):
    assert percentile([m * MIN for m in minutes], q) == timedelta(minutes=expected)


def test_percentile_of_nothing_is_none():
    assert percentile([], 0.9) is None


def test_stats_per_severity_on_a_constructed_history(ladder):
    day = NOW - timedelta(days=5)
    history = [
        # P1: acknowledged after 5, 10, 20, 40 min (target 15 min) and resolved after 60, 90, 180 min (target 2 h)
        incident(1, "P1", declared=day, ack=5, resolved=60, postmortem=24),  # post-mortem within 48 h
        incident(2, "P1", declared=day, ack=10, resolved=90, postmortem=72),  # late
        incident(3, "P1", declared=day, ack=20, resolved=180),  # resolved 5 days ago, none written: late
        incident(4, "P1", declared=day, ack=40),  # still open past its 2 h: missed resolution
        # P1 declared 10 minutes ago, not acknowledged: within reach of both targets, not judged yet
        incident(5, "P1", declared=NOW - 10 * MIN),
        # P2: one acknowledged in 30 min and resolved in 7 h (within 1 h / 8 h), one never acknowledged (missed)
        incident(6, "P2", declared=day, ack=30, resolved=420),
        incident(7, "P2", declared=NOW - 3 * timedelta(hours=1)),
        # outside the window: not counted
        incident(8, "P1", declared=SINCE - MIN, ack=1, resolved=2),
    ]
    report = compute_stats(history, ladder, now=NOW, since=SINCE)
    assert report.total == 7
    p1, p2, p3 = report.severities
    assert (p1.severity, p1.count, p1.open) == ("P1", 5, 2)
    assert (p1.acknowledge.count, p1.acknowledge.median, p1.acknowledge.p90) == (4, 15 * MIN, 34 * MIN)
    assert (p1.resolve.count, p1.resolve.median, p1.resolve.p90) == (3, 90 * MIN, 162 * MIN)
    assert (p1.within_response.met, p1.within_response.judged) == (2, 4)
    assert (p1.within_resolution.met, p1.within_resolution.judged) == (2, 4)
    assert (p1.postmortems_on_time.met, p1.postmortems_on_time.judged) == (1, 3)
    assert p1.within_response.percent == 50.0

    assert (p2.count, p2.acknowledge.median, p2.resolve.median) == (2, 30 * MIN, 420 * MIN)
    assert (p2.within_response.met, p2.within_response.judged) == (1, 2)
    assert (p2.within_resolution.met, p2.within_resolution.judged) == (1, 1)  # the open one still has 5 h
    assert p2.postmortems_on_time.judged == 0  # P2 in this ladder: post-mortem due in a week, none resolved late
    assert (p3.count, p3.acknowledge.count) == (0, 0)


def test_rendered_stats_read_like_a_report(ladder):
    day = NOW - timedelta(days=2)
    history = [incident(1, "P1", declared=day, ack=5, resolved=60, postmortem=1),
               incident(2, "P1", declared=day - timedelta(days=1), ack=25, resolved=150)]
    report = compute_stats(history, ladder, now=NOW, since=SINCE)
    message = render_stats(report, EAT, period=timedelta(days=30))
    assert message.title == "Incident stats, last 30 d: 2 incidents"
    lines = message.text.splitlines()
    assert lines[:6] == [
        "P1 (Critical) — 2 incidents",
        "  acknowledge: median 15 min, p90 23 min (2 acknowledged)",
        "  resolve: median 1 h 45 min, p90 2 h 21 min (2 resolved)",
        "  within response target (15 min): 1/2 (50%)",
        "  within resolution target (2 h): 1/2 (50%)",
        "  post-mortems on time (2 d after resolution): 1/2 (50%)",
    ]
    assert "P2 — no incidents" in lines and "P3 — no incidents" in lines
    assert message.footer.startswith("Declared since 2026-10-25 15:00 EAT")


def test_an_incident_at_a_severity_no_longer_in_the_ladder_is_still_counted(ladder):
    report = compute_stats([incident(1, "SEV9", declared=NOW - MIN)], ladder, now=NOW, since=SINCE)
    assert [(s.severity, s.count) for s in report.severities][-1] == ("SEV9", 1)


def _changed(number_minutes: int, previous: str, to: str, declared: datetime):
    from bot.incident.domain import EventKind, TimelineEvent

    at = declared + number_minutes * MIN
    return TimelineEvent(kind=EventKind.SEVERITY_CHANGED, author="bob", text=f"severity {previous} → {to}",
                         occurred_at=at, recorded_at=at)


def test_targets_are_judged_against_the_severity_in_force_at_the_time(ladder):
    day = NOW - timedelta(days=2)
    history = [
        # P1 acknowledged after 16 min (P1 target 15 min), downgraded to P2 at 20 min: missed, stays missed
        incident(1, "P2", declared=day, ack=16, resolved=300),
        # P2 upgraded to P1 at 20 min, acknowledged at 25 min: acknowledged under P1, so missed
        incident(2, "P1", declared=day, ack=25, resolved=60),
        # P1 downgraded to P2 at 10 min, acknowledged at 30: the P1 target never passed under P1, P2's 1 h met
        incident(3, "P2", declared=day, ack=30, resolved=120),
    ]
    timelines = {1: [_changed(20, "P1", "P2", day)], 2: [_changed(20, "P2", "P1", day)],
                 3: [_changed(10, "P1", "P2", day)]}
    report = compute_stats(history, ladder, now=NOW, since=SINCE, timelines=timelines)
    p1, p2 = report.severities[0], report.severities[1]
    assert (p2.within_response.met, p2.within_response.judged) == (1, 2)  # INC-1 missed, INC-3 met
    assert (p1.within_response.met, p1.within_response.judged) == (0, 1)
    # INC-1 resolved at 5 h: P1's 2 h resolution target had not passed under P1 (downgraded at 20 min): met
    assert (p2.within_resolution.met, p2.within_resolution.judged) == (2, 2)
    # Without the timelines (the old behaviour), INC-1 would count as within P2's 1 h.
    old = compute_stats(history, ladder, now=NOW, since=SINCE)
    assert old.severities[1].within_response.met == 2
