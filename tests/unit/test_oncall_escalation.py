"""The escalation policy state machine, driven by an injected time: repeats, level timeouts, one page for many
missed repeats, business hours that hold a page (said once), manual escalation, acknowledgement stops it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.oncall.escalation import Escalation, Nothing, Page, Wait, acknowledge, advance, escalate_now, next_opening
from playbooks.schema import BusinessHours, EscalationPolicy

UTC = UTC
T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # Tue 09:00 in Nairobi


def policy(**first: object) -> EscalationPolicy:
    return EscalationPolicy.model_validate({"severity": "P1", "levels": [
        {"roles": ["platform"], "repeat": "5m", "timeout": "15m", **first},
        {"roles": ["coordinator"], "repeat": "10m"},
    ]})


def run(state: Escalation, p: EscalationPolicy, at: datetime) -> tuple[Escalation, object]:
    return advance(state, p, now=at)


def test_pages_repeat_on_the_interval_then_climb_after_the_timeout() -> None:
    p = policy()
    state = Escalation.start(severity="P1", now=T0)
    steps = []
    at = T0
    for _ in range(6):
        state, step = run(state, p, at)
        steps.append((at - T0, step))
        at = state.due_at
    assert steps == [
        (timedelta(0), Page(level=0, attempt=1, roles=("platform",))),
        (timedelta(minutes=5), Page(level=0, attempt=2, roles=("platform",))),
        (timedelta(minutes=10), Page(level=0, attempt=3, roles=("platform",))),
        (timedelta(minutes=15), Page(level=1, attempt=1, roles=("coordinator",))),
        (timedelta(minutes=25), Page(level=1, attempt=2, roles=("coordinator",))),
        (timedelta(minutes=35), Page(level=1, attempt=3, roles=("coordinator",))),
    ]


def test_a_step_not_yet_due_does_nothing() -> None:
    state, _ = run(Escalation.start(severity="P1", now=T0), policy(), T0)
    assert run(state, policy(), T0 + timedelta(minutes=4)) == (state, Nothing())


def test_many_missed_repeats_while_down_are_one_page_and_the_next_counts_from_now() -> None:
    p = EscalationPolicy.model_validate({"severity": "P1", "levels": [{"roles": ["platform"], "repeat": "5m"}]})
    state, _ = run(Escalation.start(severity="P1", now=T0), p, T0)
    back = T0 + timedelta(minutes=47)  # nine repeats fell due while the bot was down
    state, step = run(state, p, back)
    assert step == Page(level=0, attempt=2, roles=("platform",))
    assert state.due_at == back + timedelta(minutes=5)


def test_acknowledgement_stops_every_further_step() -> None:
    state, _ = run(Escalation.start(severity="P1", now=T0), policy(), T0)
    state = acknowledge(state)
    assert state.due_at is None
    assert run(state, policy(), T0 + timedelta(hours=5)) == (state, Nothing())


def test_escalate_now_pages_the_next_level_at_once_and_the_last_level_again() -> None:
    p = policy()
    state, _ = run(Escalation.start(severity="P1", now=T0), p, T0)
    state = escalate_now(state, p, now=T0 + timedelta(minutes=1))
    state, step = run(state, p, T0 + timedelta(minutes=1))
    assert step == Page(level=1, attempt=1, roles=("coordinator",))
    state = escalate_now(state, p, now=T0 + timedelta(minutes=2))
    assert run(state, p, T0 + timedelta(minutes=2))[1] == Page(level=1, attempt=1, roles=("coordinator",))


def test_a_last_level_without_repeat_is_paged_once_and_then_exhausted() -> None:
    p = EscalationPolicy.model_validate({"severity": "P3", "levels": [{"roles": ["platform"]}]})
    state, step = run(Escalation.start(severity="P3", now=T0), p, T0)
    assert isinstance(step, Page) and state.state == "exhausted" and state.due_at is None


NAIROBI_OFFICE = {"timezone": "Africa/Nairobi", "days": ["mon", "tue", "wed", "thu", "fri"],
                  "start": "09:00", "end": "17:00"}


def test_a_business_hours_level_waits_until_opening_and_says_so_once() -> None:
    p = policy(business_hours=NAIROBI_OFFICE)
    friday_night = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)  # Fri 20:30 in Nairobi
    state, step = run(Escalation.start(severity="P1", now=friday_night), p, friday_night)
    monday_nine = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert step == Wait(level=0, until=monday_nine) and state.due_at == monday_nine
    state, step = run(state, p, monday_nine)
    assert step == Page(level=0, attempt=1, roles=("platform",))


def test_next_opening_follows_the_timezone_across_dst() -> None:
    hours = BusinessHours.model_validate({"timezone": "Europe/London", "days": ["mon"], "start": "09:00",
                                          "end": "17:00"})
    # Sunday 29 March 2026 the clocks go forward: Monday's 09:00 BST is 08:00 UTC
    assert next_opening(hours, datetime(2026, 3, 28, 12, tzinfo=UTC)) == datetime(2026, 3, 30, 8, tzinfo=UTC)
    inside = datetime(2026, 3, 30, 10, tzinfo=UTC)
    assert next_opening(hours, inside) == inside
