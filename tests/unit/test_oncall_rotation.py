"""Rotations are computed from the rule and a time: hand-offs stay at the local wall-clock time across
daylight-saving changes, overrides win, gaps are found."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.oncall.rotation import (
    Override,
    Rotation,
    first_handoff,
    gaps,
    next_shift,
    on_call,
    shifts,
    weekday_number,
    zone,
)

UTC = UTC


def weekly(tz: str, first_local: datetime, people: tuple[str, ...] = ("alice", "bob", "carol")) -> Rotation:
    zone_ = ZoneInfo(tz)
    starts = first_local.replace(tzinfo=zone_).astimezone(UTC)
    return Rotation(role="platform", people=people, weekday=first_local.weekday(), at=first_local.time(),
                    timezone=tz, starts_at=starts)


@pytest.mark.parametrize(("tz", "first_local", "weeks", "expected_hours"), [
    # Europe/London springs forward on Sun 2026-03-29: the shift Mon 23 → Mon 30 March is 167 hours
    ("Europe/London", datetime(2026, 3, 23, 9), 0, 167),
    # and falls back on Sun 2026-10-25: Mon 19 → Mon 26 October is 169 hours
    ("Europe/London", datetime(2026, 10, 19, 9), 0, 169),
    # America/New_York: spring forward Sun 2026-03-08, fall back Sun 2026-11-01
    ("America/New_York", datetime(2026, 3, 2, 9), 0, 167),
    ("America/New_York", datetime(2026, 10, 26, 9), 0, 169),
    # Africa/Nairobi has no daylight saving: every shift is 168 hours
    ("Africa/Nairobi", datetime(2026, 3, 23, 9), 0, 168),
    ("Africa/Nairobi", datetime(2026, 10, 19, 9), 30, 168),
])
def test_weekly_handoff_stays_at_local_time_across_dst(tz: str, first_local: datetime, weeks: int,
                                                       expected_hours: int) -> None:
    rotation = weekly(tz, first_local)
    begins, ends = rotation.handoff(weeks), rotation.handoff(weeks + 1)
    assert (ends - begins) == timedelta(hours=expected_hours)
    for instant in (begins, ends):
        local = instant.astimezone(ZoneInfo(tz))
        assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)


def test_london_on_call_person_changes_exactly_at_local_nine_after_the_clocks_go_forward() -> None:
    rotation = weekly("Europe/London", datetime(2026, 3, 23, 9))  # 09:00 GMT = 09:00 UTC
    # Mon 30 March 09:00 BST is 08:00 UTC: bob takes over then, not at 09:00 UTC
    assert on_call("platform", rotation, [], datetime(2026, 3, 30, 7, 59, tzinfo=UTC)).person == "alice"
    shift = on_call("platform", rotation, [], datetime(2026, 3, 30, 8, 0, tzinfo=UTC))
    assert shift.person == "bob"
    assert shift.starts_at == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert shift.ends_at == datetime(2026, 4, 6, 8, 0, tzinfo=UTC)


def test_new_york_on_call_wraps_round_the_people_after_the_fall_back() -> None:
    rotation = weekly("America/New_York", datetime(2026, 10, 19, 9))  # 09:00 EDT = 13:00 UTC
    # three weeks on, after the fall back on 1 November: Mon 9 Nov 09:00 EST = 14:00 UTC, alice again
    assert on_call("platform", rotation, [], datetime(2026, 11, 9, 13, 59, tzinfo=UTC)).person == "carol"
    assert on_call("platform", rotation, [], datetime(2026, 11, 9, 14, 0, tzinfo=UTC)).person == "alice"


def test_nairobi_a_year_of_weekly_shifts_has_no_holes_and_every_handoff_at_nine_local() -> None:
    rotation = weekly("Africa/Nairobi", datetime(2026, 1, 5, 9))
    start = rotation.starts_at
    year = shifts("platform", rotation, [], start, start + timedelta(weeks=52))
    assert len(year) == 52
    assert [s.person for s in year[:4]] == ["alice", "bob", "carol", "alice"]
    assert all(a.ends_at == b.starts_at for a, b in zip(year, year[1:], strict=False))
    assert all(s.starts_at.astimezone(ZoneInfo("Africa/Nairobi")).hour == 9 for s in year)


def test_an_override_wins_over_the_rotation_and_the_rotation_resumes_after_it() -> None:
    rotation = weekly("Africa/Nairobi", datetime(2026, 12, 21, 9), people=("alice", "bob"))
    override = Override(role="platform", person="dave", starts_at=datetime(2026, 12, 24, tzinfo=UTC),
                        ends_at=datetime(2026, 12, 27, tzinfo=UTC))
    assert on_call("platform", rotation, [override], datetime(2026, 12, 25, tzinfo=UTC)).person == "dave"
    before = on_call("platform", rotation, [override], datetime(2026, 12, 22, tzinfo=UTC))
    assert before.person == "alice" and before.ends_at == override.starts_at
    after = on_call("platform", rotation, [override], datetime(2026, 12, 27, 1, tzinfo=UTC))
    assert after.person == "alice" and after.starts_at == override.ends_at
    assert next_shift("platform", rotation, [override], datetime(2026, 12, 22, tzinfo=UTC)).person == "dave"
    week = shifts("platform", rotation, [override], rotation.starts_at, rotation.handoff(1))
    assert [(s.person, s.override) for s in week] == [("alice", False), ("dave", True), ("alice", False)]
    assert week[0].ends_at == week[1].starts_at and week[1].ends_at == week[2].starts_at


def test_an_override_for_another_role_changes_nothing() -> None:
    rotation = weekly("Africa/Nairobi", datetime(2026, 12, 21, 9))
    other = Override(role="dba", person="dave", starts_at=datetime(2026, 12, 21, tzinfo=UTC),
                     ends_at=datetime(2026, 12, 28, tzinfo=UTC))
    assert on_call("platform", rotation, [other], datetime(2026, 12, 22, tzinfo=UTC)).person == "alice"


def test_gaps_before_a_rotation_starts_and_when_there_is_none() -> None:
    rotation = weekly("Europe/London", datetime(2026, 12, 7, 9))
    start = datetime(2026, 12, 1, tzinfo=UTC)
    found = gaps("platform", rotation, [], start, start + timedelta(weeks=2))
    assert [(g.starts_at, g.ends_at) for g in found] == [(start, rotation.starts_at)]
    assert on_call("platform", rotation, [], start) is None
    nobody = gaps("dba", None, [], start, start + timedelta(days=1))
    assert len(nobody) == 1 and nobody[0].ends_at is None
    override_only = [Override("dba", "dave", start, start + timedelta(hours=8))]
    hole = gaps("dba", None, override_only, start, start + timedelta(days=1))
    assert [(g.starts_at, g.ends_at) for g in hole] == [(start + timedelta(hours=8), start + timedelta(days=1))]


def test_first_handoff_is_the_latest_one_not_after_now_in_local_time() -> None:
    tz = ZoneInfo("America/New_York")
    # Mon 2026-11-02 08:00 EST (13:00 UTC) is before Monday's 09:00 hand-off: the first is the Monday before
    first = first_handoff(weekday=0, at=time(9), tz=tz, on_or_before=datetime(2026, 11, 2, 13, tzinfo=UTC))
    assert first == datetime(2026, 10, 26, 13, tzinfo=UTC)  # 09:00 EDT
    first = first_handoff(weekday=0, at=time(9), tz=tz, on_or_before=datetime(2026, 11, 2, 14, tzinfo=UTC))
    assert first == datetime(2026, 11, 2, 14, tzinfo=UTC)  # 09:00 EST


def test_bad_weekday_and_timezone_say_what_is_valid() -> None:
    assert weekday_number("Monday") == 0 and weekday_number("sun") == 6
    with pytest.raises(ValueError, match="mon, tue, wed, thu, fri, sat, sun"):
        weekday_number("someday")
    with pytest.raises(ValueError, match="IANA name such as Africa/Nairobi"):
        zone("Mars/Olympus")
