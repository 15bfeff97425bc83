"""The daily digest's content and schedule, pure: "yesterday" and "today" are days in the team's timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.incident.domain import ActionItem, Incident, Status
from bot.reports.digest import DigestSchedule, build_digest
from playbooks.loader import load_playbooks

EAT = ZoneInfo("Africa/Nairobi")  # UTC+3, no DST
UTC = UTC
NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # 07:00 EAT, Wednesday 25 November


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def incident(number: int, severity: str, declared: datetime, *, ack: datetime | None = None,
             resolved: datetime | None = None, title: str | None = None) -> Incident:
    item = Incident(number=number, title=title or f"incident {number}", severity=severity, impact=None,
                    reporter="alice", declared_at=declared, last_update_at=declared)
    item.acknowledged_at = ack
    if ack:
        item.status = Status.ACKNOWLEDGED
    if resolved:
        item.resolved_at, item.status = resolved, Status.RESOLVED
        item.acknowledged_at = item.acknowledged_at or resolved
    return item


@pytest.fixture(scope="module")
def ladder():
    return load_playbooks().ladder("P1-P3")


def test_digest_sections_across_the_eat_utc_day_boundary(ladder):
    history = [
        # Resolved 21:30 UTC on the 23rd = 00:30 EAT on the 24th: "yesterday" in Nairobi, two UTC days ago.
        incident(1, "P1", at(23, 20), ack=at(23, 20, 5), resolved=at(23, 21, 30), title="Payments down"),
        # Resolved 20:30 UTC on the 23rd = 23:30 EAT on the 23rd: the day before yesterday, left out.
        incident(2, "P2", at(23, 19), ack=at(23, 19, 10), resolved=at(23, 20, 30), title="Slow exports"),
        # Resolved 22:00 UTC on the 24th = 01:00 EAT on the 25th: "today" in Nairobi, yesterday in UTC.
        incident(3, "P2", at(24, 20), ack=at(24, 20, 10), resolved=at(24, 22), title="Webhook retries"),
        # Open since 23:00 UTC (02:00 EAT), never acknowledged: both P1 targets missed within the last 24 h.
        incident(4, "P1", at(24, 23), title="Checkout errors"),
        # Resolved five days ago, no post-mortem (P1: due 48 h after resolution), and action items.
        incident(5, "P1", at(20, 9), ack=at(20, 9, 5), resolved=at(20, 10), title="Ledger duplicates"),
    ]
    history[3].frozen = True
    history[4].actions = [
        ActionItem(number=1, text="Add replica lag alert", owner="bob", due=date(2026, 11, 24), created_by="alice",
                   created_at=at(20, 11)),
        ActionItem(number=2, text="Due today, not overdue", owner=None, due=date(2026, 11, 25), created_by="alice",
                   created_at=at(20, 11)),
        ActionItem(number=3, text="Done already", owner=None, due=date(2026, 11, 21), created_by="alice",
                   created_at=at(20, 11), done_at=at(21, 9), done_by="bob"),
    ]
    message = build_digest(history, ladder, now=NOW, tz=EAT)
    assert message.title == "Daily incident digest — Wed 25 Nov 2026"
    assert message.kind == "digest"
    assert message.text.split("\n\n") == [
        "Open incidents (1):\n"
        "  • INC-4 P1 [declared] Checkout errors — open 5 h, last update today 02:00 EAT (5 h ago) · deploy freeze ON",
        "Targets missed in the last 24 h (2):\n"
        "  • INC-4 P1 response target 15 min missed (not acknowledged after 5 h): Checkout errors\n"
        "  • INC-4 P1 resolution target 2 h missed (still open after 5 h): Checkout errors",
        "Post-mortems overdue (1):\n"
        "  • INC-5 P1 Ledger duplicates — due Sun 22 Nov 13:00 EAT, 2 d 18 h overdue: /incident postmortem INC-5",
        "Action items overdue (1):\n"
        "  • INC-5 action 1: Add replica lag alert — due 2026-11-24 (1 day overdue, owner bob)",
        "Resolved since yesterday (2):\n"
        "  • INC-1 P1 Payments down — resolved yesterday 00:30 EAT after 1 h 30 min\n"
        "  • INC-3 P2 Webhook retries — resolved today 01:00 EAT after 2 h",
    ]
    assert message.footer == "As of 07:00 EAT. Details: /incident list · /incident stats"


def test_a_quiet_day_says_none_in_every_section(ladder):
    message = build_digest([], ladder, now=NOW, tz=EAT)
    assert message.text.count(": none") == 5


def test_a_late_digest_says_when_it_was_due(ladder):
    message = build_digest([], ladder, now=NOW + timedelta(hours=2), tz=EAT, due=NOW)
    assert "Due today 07:00 EAT; posted late" in message.footer


def test_a_late_acknowledgement_within_the_window_counts_as_missed(ladder):
    late = incident(1, "P1", at(24, 12), ack=at(24, 12, 40), resolved=at(24, 13))
    [line] = build_digest([late], ladder, now=NOW, tz=EAT).text.split("\n\n")[1].splitlines()[1:]
    assert line == "  • INC-1 P1 response target 15 min missed (acknowledged after 40 min): incident 1"


def test_targets_missed_before_the_last_24_hours_are_not_repeated(ladder):
    old = incident(1, "P1", at(23, 1), ack=at(23, 3))
    assert "Targets missed in the last 24 h: none" in build_digest([old], ladder, now=NOW, tz=EAT).text


# ------------------------------------------------------------------------------------------------------- schedule


def test_schedule_is_seven_in_the_morning_in_nairobi():
    schedule = DigestSchedule(at=time(7, 0), tz=EAT)
    assert schedule.next_after(at(24, 3, 59)) == at(24, 4)
    assert schedule.next_after(at(24, 4)) == at(25, 4)  # strictly after: a digest just posted is not due again
    assert schedule.next_after(at(24, 22)) == at(25, 4)  # 01:00 EAT on the 25th: later that morning
    assert schedule.latest_at_or_before(at(24, 4)) == at(24, 4)
    assert schedule.latest_at_or_before(at(27, 3)) == at(26, 4)
    assert schedule.is_slot(at(24, 4)) and not schedule.is_slot(at(24, 5))


def test_schedule_survives_a_daylight_saving_gap():
    berlin = ZoneInfo("Europe/Berlin")  # 2026-03-29 02:00 → 03:00
    schedule = DigestSchedule(at=time(2, 30), tz=berlin)
    start = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    first = schedule.next_after(start)
    second = schedule.next_after(first)
    assert first.astimezone(berlin).date() == date(2026, 3, 29)
    assert second.astimezone(berlin).date() == date(2026, 3, 30)
