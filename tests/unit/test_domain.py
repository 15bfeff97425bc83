"""The Incident aggregate and the reminder plan: pure logic, no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.incident.domain import DomainError, EventKind, Incident, Role, Status
from bot.incident.reminders import plan
from bot.ports import FastClock, ManualClock
from playbooks.loader import load_playbooks

T0 = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
EAT = ZoneInfo("Africa/Nairobi")
LADDER = load_playbooks().ladder("P1-P3")
P1, P3 = LADDER.level("P1"), LADDER.level("P3")


def _incident(severity: str = "P1") -> Incident:
    incident = Incident.declare(number=7, title="DB down", severity=severity, impact=None, reporter="alice", now=T0,
                                checklist=[("triage", "check db")], suggested_playbook=None)
    incident.take_new_timeline()
    return incident


def test_every_change_appends_exactly_one_timeline_event():
    incident = _incident()
    incident.acknowledge(by="bob", now=T0 + timedelta(minutes=3))
    incident.assign_role(by="bob", role=Role.IC, user="alice", now=T0)
    incident.post_status(by="bob", text="looking", now=T0)
    kinds = [e.kind for e in incident.take_new_timeline()]
    assert kinds == [EventKind.ACKNOWLEDGED, EventKind.ROLE_ASSIGNED, EventKind.STATUS_UPDATE]


def test_rejected_changes_leave_state_and_timeline_untouched():
    incident = _incident()
    incident.resolve(by="a", summary=None, now=T0)
    incident.take_new_timeline()
    with pytest.raises(DomainError, match="already resolved"):
        incident.resolve(by="a", summary=None, now=T0)
    with pytest.raises(DomainError, match="Cannot acknowledge"):
        incident.acknowledge(by="a", now=T0)
    assert incident.status is Status.RESOLVED
    assert incident.take_new_timeline() == []


def test_backdated_note_cannot_be_in_the_future():
    incident = _incident()
    with pytest.raises(DomainError, match="cannot be in the future"):
        incident.add_note(by="a", text="x", now=T0, occurred_at=T0 + timedelta(minutes=1))


def test_plan_nudges_from_the_latest_of_update_and_nudge():
    incident = _incident()
    assert plan(incident, P1, LADDER, EAT)[0].due_at == T0 + timedelta(minutes=15)
    incident.record_nudge(now=T0 + timedelta(minutes=20), text="nudge")
    assert plan(incident, P1, LADDER, EAT)[0].due_at == T0 + timedelta(minutes=35)
    incident.post_status(by="a", text="x", now=T0 + timedelta(minutes=30))
    assert plan(incident, P1, LADDER, EAT)[0].due_at == T0 + timedelta(minutes=45)


def test_plan_for_cosmetic_level_has_no_nudge_but_action_items_still_count():
    incident = _incident("P3")
    kinds = {p.kind for p in plan(incident, P3, LADDER, EAT)}
    assert "update_nudge" not in kinds
    incident.add_action(by="a", text="fix", owner=None, due=date(2026, 11, 30), now=T0)
    [overdue] = [p for p in plan(incident, P3, LADDER, EAT) if p.kind == "action_overdue"]
    assert overdue.due_at == datetime(2026, 11, 30, 21, 0, tzinfo=UTC)  # midnight EAT after the due day


def test_escalations_walk_up_the_ladder_until_acknowledged():
    incident = _incident()
    steps = []
    for _ in range(5):
        due = [p for p in plan(incident, P1, LADDER, EAT) if p.kind == "ack_escalation"]
        if not due:
            break
        steps.append(due[0].subject)
        incident.record_escalation(now=due[0].due_at, text="esc", resolution=False)
    assert steps == list(range(1, len(LADDER.escalation)))


def test_resolved_incident_plans_only_the_postmortem_reminder():
    incident = _incident()
    incident.resolve(by="a", summary=None, now=T0 + timedelta(hours=1))
    assert [(p.kind, p.due_at) for p in plan(incident, P1, LADDER, EAT)] == [
        ("postmortem_due", T0 + timedelta(hours=1) + P1.postmortem_due)]
    incident.record_postmortem(by="a", now=T0 + timedelta(hours=2), path=None)
    assert plan(incident, P1, LADDER, EAT) == []


def test_fast_clock_runs_time_faster_and_waits_add_up():
    base = ManualClock(T0)
    fast = FastClock(60, base=base)
    base.advance(seconds=1)
    assert fast.now() == T0 + timedelta(minutes=1)
    fast.advance(minutes=20)
    assert fast.now() == T0 + timedelta(minutes=21)


def test_an_outbox_message_survives_its_round_trip_through_json_with_every_field():
    import json

    from bot.delivery.outbox import message_from_json, message_to_json
    from bot.ports import Attachment, Button, ChecklistLine, Field, Message

    message = Message(text="t", title="INC-1", fields=(Field("Severity", "P1"),),
                      checklist=(ChecklistLine(1, "page the owner", done=True),),
                      buttons=(Button("ack", "Acknowledge", "INC-1", style="primary"),), footer="f",
                      incident_key="INC-1", kind="card",
                      attachment=Attachment("pm.md", b"# PM\n\xe2\x9c\x93", title="post-mortem"))

    assert message_from_json(json.loads(json.dumps(message_to_json(message)))) == message


def test_message_revisions_commute_so_any_delivery_order_ends_the_same() -> None:
    import itertools

    from bot.incident.domain import MessageRevision

    revisions = [MessageRevision(text="edited"), MessageRevision(deleted=True), MessageRevision(pinned=True)]
    outcomes = set()
    for order in itertools.permutations(revisions):
        state = ("said", False, False)
        for revision in order:
            state = revision.applied_to(text=state[0], deleted=state[1], pinned=state[2])
        outcomes.add(state)
    assert outcomes == {("", True, True)}  # deleted keeps no words, whatever came first
