"""Which reminders an incident should have right now: a pure function of its state and its severity level.

The service calls `plan()` after every change and stores the result as reminder rows; the scheduler fires
rows that fall due. Because the plan is recomputed from state, a status update, a snooze or a severity
change simply yields a different plan — there is no timer to find and cancel.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from bot.incident.domain import Incident, Status
from bot.ports import ReminderPlan
from playbooks.schema import Ladder, SeverityLevel

POSTMORTEM_REPEAT = timedelta(days=1)


def escalation_target(ladder: Ladder, step: int) -> str:
    """The escalation level named by the `step`-th escalation (step 1 = the level above the first responder)."""
    levels = ladder.escalation
    level = levels[min(step, len(levels) - 1)]
    return f"{level.name} ({level.who})"


def plan(incident: Incident, level: SeverityLevel, ladder: Ladder, tz: tzinfo) -> list[ReminderPlan]:
    plans: list[ReminderPlan] = []
    if incident.status.is_open:
        if level.update_cadence is not None:
            since = max(t for t in (incident.last_update_at, incident.last_nudge_at, incident.declared_at) if t)
            due = since + level.update_cadence
            if incident.snoozed_until is not None and incident.snoozed_until > due:
                due = incident.snoozed_until
            plans.append(ReminderPlan(kind="update_nudge", due_at=due))
        if (incident.acknowledged_at is None and level.response_target is not None
                and incident.escalations_sent < max(1, len(ladder.escalation) - 1)):
            step = incident.escalations_sent + 1
            plans.append(ReminderPlan(kind="ack_escalation", due_at=incident.declared_at + level.response_target * step,
                                      subject=step))
        if incident.customer_update_due_at is not None:
            plans.append(ReminderPlan(kind="customer_update_due", due_at=incident.customer_update_due_at))
        if level.resolution_target is not None and not incident.resolution_escalated:
            plans.append(ReminderPlan(kind="resolution_escalation",
                                      due_at=incident.declared_at + level.resolution_target))
    elif (incident.status in (Status.RESOLVED, Status.CLOSED) and level.postmortem_due is not None
          and incident.postmortem_at is None and incident.resolved_at is not None):
        due = (incident.postmortem_reminded_at + POSTMORTEM_REPEAT if incident.postmortem_reminded_at
               else incident.resolved_at + level.postmortem_due)
        plans.append(ReminderPlan(kind="postmortem_due", due_at=due))
    for action in incident.actions:
        if action.due is not None and not action.is_done and not action.overdue_reminded:
            # Overdue once the due day is over where the team lives.
            end_of_day = datetime.combine(action.due + timedelta(days=1), time(0, 0), tzinfo=tz)
            plans.append(ReminderPlan(kind="action_overdue", due_at=end_of_day.astimezone(UTC),
                                      subject=action.number))
    return plans
