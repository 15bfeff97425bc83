"""Neutral messages the core posts: the incident card, checklists, nudges, escalations, playbooks, lists.

These are `bot.ports.Message` values; each adapter renders them for its platform and escapes user text.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from bot.incident.domain import Incident, Status, format_duration
from bot.ports import Button, ChecklistLine, Field, Message
from playbooks.schema import Scenario, SeverityLevel


def target_text(delta: timedelta | None) -> str:
    return "none" if delta is None else format_duration(delta)


def clock(moment: datetime, tz: tzinfo) -> str:
    local = moment.astimezone(tz)
    return f"{local:%H:%M} {local.tzname()}"


def incident_card(incident: Incident, level: SeverityLevel, tz: tzinfo) -> Message:
    note = f" ({level.targets_note})" if level.targets_note else ""
    cadence = f"every {format_duration(level.update_cadence)}" if level.update_cadence else "none"
    fields = [
        Field("Severity", f"{level.name} — {level.label}: {level.definition}"),
        Field("Status", incident.status.value + (" · deploy freeze ON" if incident.frozen else "")),
        Field("Targets", f"respond {target_text(level.response_target)} · resolve "
                         f"{target_text(level.resolution_target)}{note}"),
        Field("Updates", cadence),
        Field("Declared", f"{clock(incident.declared_at, tz)} by {incident.reporter}"),
        Field("Roles", incident.holder_summary()),
    ]
    if incident.impact:
        fields.insert(1, Field("Impact", incident.impact))
    buttons: tuple[Button, ...] = ()
    if incident.status.is_open:
        ack = () if incident.acknowledged_at else (Button("ack", "Acknowledge", incident.key, "primary"),)
        buttons = (*ack, Button("update", "Post update", incident.key),
                   Button("resolve", "Resolve", incident.key, "danger"))
    return Message(
        title=f"{incident.key} · {level.name} · {incident.title}",
        fields=tuple(fields),
        buttons=buttons,
        footer=f"Run commands in this thread: /incident help · {incident.key}",
        incident_key=incident.key,
        kind="card",
    )


def checklist_message(incident: Incident, section: str) -> Message | None:
    lines = tuple(
        ChecklistLine(number=item.number, text=item.text, done=item.checked_at is not None)
        for item in incident.checklist if item.section == section
    )
    if not lines:
        return None
    return Message(title=f"{section.capitalize()} checklist", checklist=lines,
                   footer="Tick an item: /incident check <n>", incident_key=incident.key, kind="checklist")


def playbook_message(scenario: Scenario, *, suggested: bool = False) -> Message:
    lead = "Suggested playbook" if suggested else "Playbook"
    parts = [f"Symptoms: {'; '.join(scenario.symptoms)}"]
    if scenario.diagnosis:
        parts.append("Diagnose:\n" + "\n".join(f"  - {line}" for line in scenario.diagnosis))
    parts.append("Steps:\n" + "\n".join(f"  {i}. {line}" for i, line in enumerate(scenario.steps, 1)))
    if scenario.prevention:
        parts.append("Prevention:\n" + "\n".join(f"  - {line}" for line in scenario.prevention))
    return Message(title=f"{lead}: {scenario.title} ({scenario.name})", text="\n".join(parts), kind="playbook")


def playbook_list(scenarios: list[Scenario], suggested: str | None) -> Message:
    ordered = sorted(scenarios, key=lambda s: (s.name != suggested, s.name))
    lines = [f"{'★ ' if s.name == suggested else '  '}{s.name} — {s.title}" for s in ordered]
    hint = "★ suggested for this incident. " if suggested else ""
    return Message(title="Scenario playbooks", text="\n".join(lines),
                   footer=f"{hint}Post one: /incident playbook <name>", kind="playbook")


def nudge(incident: Incident, level: SeverityLevel, since: timedelta) -> Message:
    return Message(
        text=(f"{incident.key} ({level.name}): no status update for {format_duration(since)}. "
              f"Post one with /incident status \"…\" — updates are due every "
              f"{format_duration(level.update_cadence or timedelta())}."),
        buttons=(Button("update", "Post update", incident.key, "primary"),
                 Button("snooze", "Snooze 30m", incident.key)),
        incident_key=incident.key,
        kind="nudge",
    )


def ack_escalation(incident: Incident, level: SeverityLevel, target: str) -> Message:
    return Message(
        text=(f"ESCALATION {incident.key}: not acknowledged within the {level.name} response target "
              f"({target_text(level.response_target)}). Escalating to {target}. "
              f"Acknowledge with /incident ack."),
        buttons=(Button("ack", "Acknowledge", incident.key, "primary"),),
        incident_key=incident.key,
        kind="escalation",
    )


def resolution_escalation(incident: Incident, level: SeverityLevel, target: str) -> Message:
    return Message(
        text=(f"ESCALATION {incident.key}: open past the {level.name} resolution target "
              f"({target_text(level.resolution_target)}). Escalating to {target}. "
              f"Consider rollback, or raise the severity if the impact is growing."),
        incident_key=incident.key,
        kind="escalation",
    )


def postmortem_due(incident: Incident, due_after: timedelta) -> Message:
    return Message(
        text=(f"{incident.key}: the post-mortem is due ({format_duration(due_after)} after resolution). "
              f"Compile it with /incident postmortem; add rootcause/contributing/wentwell notes first."),
        incident_key=incident.key,
        kind="reminder",
    )


def action_overdue(incident: Incident, number: int) -> Message:
    item = incident.actions[number - 1]
    owner = f" (owner {item.owner})" if item.owner else ""
    return Message(text=f"{incident.key}: action item {number} is overdue since {item.due}: {item.text}{owner}. "
                        f"Mark it done with /incident action done {number}.",
                   incident_key=incident.key, kind="reminder")


def incident_line(incident: Incident, now: datetime, tz: tzinfo) -> str:
    age = format_duration(now - incident.declared_at)
    last = incident.last_update_at or incident.declared_at
    return (f"{incident.key} {incident.severity} [{incident.status.value}] {incident.title} — "
            f"open {age}, last update {clock(last, tz)}" + (" · FROZEN" if incident.frozen else ""))


def incident_list(incidents: list[Incident], now: datetime, tz: tzinfo) -> Message:
    if not incidents:
        return Message(text="No open incidents.", kind="info")
    return Message(title=f"{len(incidents)} open incident(s)",
                   text="\n".join(incident_line(i, now, tz) for i in incidents), kind="info")


def incident_summary(incident: Incident, level: SeverityLevel, now: datetime, tz: tzinfo) -> Message:
    card = incident_card(incident, level, tz)
    done = sum(1 for item in incident.checklist if item.checked_at)
    open_actions = sum(1 for a in incident.actions if not a.is_done)
    extra = [Field("Checklist", f"{done}/{len(incident.checklist)} done"),
             Field("Action items", f"{open_actions} open of {len(incident.actions)}")]
    if incident.status in (Status.RESOLVED, Status.CLOSED) and incident.resolved_at:
        extra.append(Field("Duration", format_duration(incident.resolved_at - incident.declared_at)))
    return Message(title=card.title, fields=card.fields + tuple(extra), incident_key=incident.key, kind="info")
