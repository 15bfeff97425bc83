"""The Incident aggregate: the only place incident state changes.

Every method validates, changes state, and appends a TimelineEvent to `new_timeline`; the service layer
saves the aggregate and those events in one unit of work. No I/O happens here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from bot.incident.key import key_of


class DomainError(ValueError):
    """A command is not valid for the incident's current state; the message says why and what to do."""


class Status(StrEnum):
    DECLARED = "declared"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self in (Status.DECLARED, Status.ACKNOWLEDGED, Status.MITIGATED)


class Role(StrEnum):
    IC = "ic"
    OPS = "ops"
    COMMS = "comms"
    SCRIBE = "scribe"

    @property
    def title(self) -> str:  # type: ignore[override]  # a StrEnum is a str: the role's title shadows str.title
        return ROLE_TITLES[self]


ROLE_TITLES = {
    Role.IC: "incident commander",
    Role.OPS: "ops lead",
    Role.COMMS: "comms lead",
    Role.SCRIBE: "scribe",
}


class EventKind(StrEnum):
    DECLARED = "declared"
    ACKNOWLEDGED = "acknowledged"
    STATUS_UPDATE = "status_update"
    SEVERITY_CHANGED = "severity_changed"
    ROLE_ASSIGNED = "role_assigned"
    NOTE = "note"
    ROOT_CAUSE = "root_cause"
    CONTRIBUTING = "contributing"
    WENT_WELL = "went_well"
    CHECKLIST_TICKED = "checklist_ticked"
    SNOOZED = "snoozed"
    PLAYBOOK_POSTED = "playbook_posted"
    FREEZE = "freeze"
    ACTION_ADDED = "action_added"
    ACTION_DONE = "action_done"
    ACTION_REOPENED = "action_reopened"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"
    MESSAGE = "message"
    NUDGE = "nudge"
    ESCALATION = "escalation"
    POSTMORTEM_REMINDER = "postmortem_reminder"
    ACTION_OVERDUE = "action_overdue"
    POSTMORTEM = "postmortem"
    TENANTS_LINKED = "tenants_linked"
    BRIEF_SENT = "brief_sent"
    BRIEF_FAILED = "brief_failed"
    CUSTOMER_REPLY = "customer_reply"
    CUSTOMER_UPDATE_DUE = "customer_update_due"
    ALERT = "alert"
    PUBLIC_UPDATE = "public_update"
    FOLLOWUP = "followup"  # where the paper trail went: a post-mortem pull request, an issue


# Note kinds a user can tag; each fills a section of the post-mortem.
NOTE_TAGS = {
    "rootcause": EventKind.ROOT_CAUSE,
    "contributing": EventKind.CONTRIBUTING,
    "wentwell": EventKind.WENT_WELL,
}

# Events the bot itself produces; the post-mortem collapses runs of them.
BOT_REMINDER_KINDS = frozenset({EventKind.NUDGE, EventKind.POSTMORTEM_REMINDER, EventKind.ACTION_OVERDUE,
                                EventKind.CUSTOMER_UPDATE_DUE})

BOT_AUTHOR = "warroom"


@dataclass(frozen=True)
class TimelineEvent:
    """One line of the incident's history. `occurred_at` differs from `recorded_at` for back-dated notes."""

    kind: EventKind
    author: str
    text: str
    occurred_at: datetime
    recorded_at: datetime
    source: str = "command"  # command | chat | bot
    message_ref: str | None = None  # platform message id, for edits/deletes of chat messages
    pinned: bool = False
    deleted: bool = False
    id: int | None = None


def chat_message(*, by: str, text: str, now: datetime, message_ref: str | None,
                 at: datetime | None = None) -> TimelineEvent:
    """The timeline entry for a human message in an incident's room. It needs nothing from the incident (a
    message is recorded in any state, even after close), so many can be written without loading incidents.
    `at` is when the platform says it was written (Slack `ts`, Discord snowflake, WhatsApp `timestamp`); a
    message replayed after a reconnect still sits where it was said. `now` (arrival) when it has none."""
    return TimelineEvent(kind=EventKind.MESSAGE, author=by, text=text, occurred_at=at or now, recorded_at=now,
                         source="chat", message_ref=message_ref)


@dataclass(frozen=True)
class MessageRevision:
    """An edit (`text`), delete or pin of a chat message, applied to its timeline entry whenever both are known.

    Revisions commute, so the timeline ends the same whatever order a platform delivers a message and its
    revisions in (replays after a reconnect, concurrent webhooks): a delete is final and keeps no words (a
    deleted message never survives into a post-mortem), an edit of a deleted message changes nothing, a pin
    stays. A revision that arrives before its message is kept and applied when the message is captured."""

    text: str | None = None
    deleted: bool = False
    pinned: bool = False

    def applied_to(self, *, text: str, deleted: bool, pinned: bool) -> tuple[str, bool, bool]:
        """(text, deleted, pinned) of an entry after this revision (storage applies the same rule in one
        statement on the row's current values, so concurrent revisions cannot overwrite each other)."""
        if deleted or self.deleted:
            return "", True, pinned or self.pinned
        return (self.text if self.text is not None else text), False, pinned or self.pinned


@dataclass
class ChecklistItem:
    number: int
    section: str
    text: str
    checked_by: str | None = None
    checked_at: datetime | None = None


@dataclass
class ActionItem:
    number: int
    text: str
    owner: str | None
    due: date | None
    created_by: str
    created_at: datetime
    done_at: datetime | None = None
    done_by: str | None = None
    overdue_reminded: bool = False
    issue: int | None = None  # its issue on the code host (GitHub), once opened
    issue_url: str | None = None

    @property
    def is_done(self) -> bool:
        return self.done_at is not None


@dataclass
class Incident:
    number: int
    title: str
    severity: str
    impact: str | None
    reporter: str
    declared_at: datetime
    status: Status = Status.DECLARED
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    summary: str | None = None
    roles: dict[Role, str] = field(default_factory=dict)
    frozen: bool = False
    frozen_at: datetime | None = None  # when the deploy freeze went on (GET /api/freeze's "since")
    checklist: list[ChecklistItem] = field(default_factory=list)
    actions: list[ActionItem] = field(default_factory=list)
    suggested_playbook: str | None = None
    # Reminder bookkeeping: the clocks the scheduler plans from.
    last_update_at: datetime | None = None
    last_nudge_at: datetime | None = None
    snoozed_until: datetime | None = None
    escalations_sent: int = 0
    resolution_escalated: bool = False
    postmortem_at: datetime | None = None
    postmortem_reminded_at: datetime | None = None
    customer_update_due_at: datetime | None = None
    tenants: list[str] = field(default_factory=list)
    # Where the incident lives in chat (thread or channel), set once its room is open.
    platform: str | None = None
    channel: str | None = None
    thread: str | None = None
    card_message: str | None = None
    new_timeline: list[TimelineEvent] = field(default_factory=list, repr=False)

    @property
    def key(self) -> str:
        return key_of(self.number)

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def declare(
        cls,
        *,
        number: int,
        title: str,
        severity: str,
        impact: str | None,
        reporter: str,
        now: datetime,
        checklist: list[tuple[str, str]],
        suggested_playbook: str | None,
        platform: str | None = None,
    ) -> Incident:
        incident = cls(
            number=number,
            platform=platform,  # the room (channel, thread) is attached once the platform has opened it
            title=title,
            severity=severity,
            impact=impact,
            reporter=reporter,
            declared_at=now,
            last_update_at=now,
            suggested_playbook=suggested_playbook,
            checklist=[
                ChecklistItem(number=index, section=section, text=text)
                for index, (section, text) in enumerate(checklist, start=1)
            ],
        )
        impact_text = f" Impact: {impact}" if impact else ""
        incident._record(EventKind.DECLARED, reporter, now, f"declared {severity}: {title}.{impact_text}")
        return incident

    # -- commands -----------------------------------------------------------------------------------

    def acknowledge(self, *, by: str, now: datetime) -> timedelta:
        self._require_open("acknowledge")
        if self.acknowledged_at is not None:
            raise DomainError(f"{self.key} was already acknowledged by {self.acknowledged_by}.")
        self.acknowledged_at, self.acknowledged_by = now, by
        if self.status is Status.DECLARED:
            self.status = Status.ACKNOWLEDGED
        elapsed = now - self.declared_at
        self._record(EventKind.ACKNOWLEDGED, by, now, f"acknowledged after {format_duration(elapsed)}")
        return elapsed

    def publish(self, *, by: str, state: str, text: str, now: datetime) -> None:
        """Text written for the public status page; the timeline keeps who published what."""
        self._record(EventKind.PUBLIC_UPDATE, by, now, f"published to the status page ({state}): {text}")

    def post_status(self, *, by: str, text: str, now: datetime) -> None:
        self._require_not_closed("post a status update")
        self.last_update_at = now
        self.snoozed_until = None
        self._record(EventKind.STATUS_UPDATE, by, now, text)

    def change_severity(self, *, by: str, to: str, now: datetime) -> str:
        self._require_not_closed("change severity")
        if to == self.severity:
            raise DomainError(f"{self.key} is already {to}.")
        previous, self.severity = self.severity, to
        # A new level brings new targets; escalations are re-judged against them from scratch.
        self.escalations_sent = 0
        self.resolution_escalated = False
        self._record(EventKind.SEVERITY_CHANGED, by, now, f"severity {previous} → {to}")
        return previous

    def assign_role(self, *, by: str, role: Role, user: str, now: datetime) -> str | None:
        self._require_not_closed("assign a role")
        previous = self.roles.get(role)
        self.roles[role] = user
        change = f" (was {previous})" if previous and previous != user else ""
        self._record(EventKind.ROLE_ASSIGNED, by, now, f"assigned {role.title} to {user}{change}")
        return previous

    def add_note(self, *, by: str, text: str, now: datetime, kind: EventKind = EventKind.NOTE,
                 occurred_at: datetime | None = None) -> None:
        self._require_not_closed("add a note")
        if occurred_at is not None and occurred_at > now:
            raise DomainError("A back-dated note (--at) cannot be in the future.")
        self._record(kind, by, now, text, occurred_at=occurred_at)

    def tick_checklist(self, *, by: str, number: int, now: datetime) -> ChecklistItem:
        self._require_not_closed("tick a checklist item")
        if not 1 <= number <= len(self.checklist):
            raise DomainError(f"No checklist item {number}; {self.key}'s checklist has items 1–{len(self.checklist)}.")
        item = self.checklist[number - 1]
        if item.checked_at is not None:
            raise DomainError(f"Item {number} was already ticked by {item.checked_by}.")
        item.checked_by, item.checked_at = by, now
        self._record(EventKind.CHECKLIST_TICKED, by, now, f"✓ {number}. {item.text}")
        return item

    def snooze(self, *, by: str, until: datetime, now: datetime) -> None:
        self._require_open("snooze update reminders")
        self.snoozed_until = until
        self._record(EventKind.SNOOZED, by, now, f"update nudges snoozed for {format_duration(until - now)}")

    def note_playbook(self, *, by: str, name: str, now: datetime) -> None:
        self._record(EventKind.PLAYBOOK_POSTED, by, now, f"playbook posted: {name}")

    def set_freeze(self, *, by: str, on: bool, now: datetime) -> None:
        self._require_not_closed("change the deploy freeze")
        if self.frozen == on:
            raise DomainError(f"Deploy freeze is already {'on' if on else 'off'} for {self.key}.")
        self.frozen = on
        self.frozen_at = now if on else None
        self._record(EventKind.FREEZE, by, now, f"deploy freeze {'on' if on else 'off'}")

    def add_action(self, *, by: str, text: str, owner: str | None, due: date | None, now: datetime) -> ActionItem:
        if self.status is Status.CLOSED:
            raise DomainError(f"{self.key} is closed; reopen it to add action items.")
        item = ActionItem(
            number=len(self.actions) + 1, text=text, owner=owner, due=due, created_by=by, created_at=now
        )
        self.actions.append(item)
        details = ", ".join(part for part in (f"owner {owner}" if owner else "", f"due {due}" if due else "") if part)
        self._record(EventKind.ACTION_ADDED, by, now,
                     f"action {item.number}: {text}" + (f" ({details})" if details else ""))
        return item

    def complete_action(self, *, by: str, number: int, now: datetime) -> ActionItem:
        if not 1 <= number <= len(self.actions):
            valid = f"1–{len(self.actions)}" if self.actions else "none yet"
            raise DomainError(f"No action item {number}; {self.key}'s action items: {valid}.")
        item = self.actions[number - 1]
        if item.is_done:
            raise DomainError(f"Action item {number} is already done.")
        item.done_at, item.done_by = now, by
        self._record(EventKind.ACTION_DONE, by, now, f"action {number} done: {item.text}")
        return item

    def reopen_action(self, *, by: str, number: int, now: datetime) -> ActionItem:
        item = self.action(number)
        if not item.is_done:
            raise DomainError(f"Action item {number} is not done.")
        item.done_at = item.done_by = None
        self._record(EventKind.ACTION_REOPENED, by, now, f"action {number} reopened: {item.text}")
        return item

    def action(self, number: int) -> ActionItem:
        if not 1 <= number <= len(self.actions):
            valid = f"1–{len(self.actions)}" if self.actions else "none yet"
            raise DomainError(f"No action item {number}; {self.key}'s action items: {valid}.")
        return self.actions[number - 1]

    def action_of_issue(self, issue: int) -> ActionItem | None:
        return next((item for item in self.actions if item.issue == issue), None)

    def link_action_issue(self, *, number: int, issue: int, url: str, now: datetime) -> ActionItem:
        """Remember an action item's issue (once: a second link for the same item keeps the first)."""
        item = self.action(number)
        if item.issue is None:
            item.issue, item.issue_url = issue, url
            self._record(EventKind.FOLLOWUP, BOT_AUTHOR, now, f"action {number} is issue #{issue}: {url}")
        return item

    def mitigate(self, *, by: str, now: datetime) -> None:
        self._require_open("mitigate")
        if self.status is Status.MITIGATED:
            raise DomainError(f"{self.key} is already mitigated; `resolve` when the fix is verified.")
        self.status, self.mitigated_at = Status.MITIGATED, now
        if self.acknowledged_at is None:
            self.acknowledged_at, self.acknowledged_by = now, by
        self._record(EventKind.MITIGATED, by, now, "mitigated: impact stopped, fix not yet verified")

    def resolve(self, *, by: str, summary: str | None, now: datetime) -> None:
        if not self.status.is_open:
            raise DomainError(f"{self.key} is already {self.status}; `reopen` it first if it is back.")
        self.status, self.resolved_at, self.summary = Status.RESOLVED, now, summary or self.summary
        if self.acknowledged_at is None:
            self.acknowledged_at, self.acknowledged_by = now, by
        self.snoozed_until = None
        self._record(EventKind.RESOLVED, by, now, "resolved" + (f": {summary}" if summary else ""))

    def close(self, *, by: str, now: datetime) -> None:
        if self.status is Status.CLOSED:
            raise DomainError(f"{self.key} is already closed.")
        if self.status is not Status.RESOLVED:
            raise DomainError(f"{self.key} is {self.status}; `resolve` it before closing.")
        self.status, self.closed_at = Status.CLOSED, now
        self._record(EventKind.CLOSED, by, now, "closed")

    def reopen(self, *, by: str, now: datetime) -> None:
        if self.status.is_open:
            raise DomainError(f"{self.key} is still open ({self.status}); nothing to reopen.")
        self.status = Status.ACKNOWLEDGED if self.acknowledged_at else Status.DECLARED
        self.resolved_at = self.closed_at = None
        self.last_update_at = now
        self._record(EventKind.REOPENED, by, now, "reopened")

    def record_postmortem(self, *, by: str, now: datetime, path: str | None) -> None:
        first = self.postmortem_at is None
        self.postmortem_at = now
        where = f" → {path}" if path else ""
        self._record(EventKind.POSTMORTEM, by, now, f"post-mortem {'compiled' if first else 'recompiled'}{where}")

    def record_followup(self, *, now: datetime, text: str) -> None:
        """Where the paper trail went (a pull request's link); not part of the post-mortem it points to."""
        self._record(EventKind.FOLLOWUP, BOT_AUTHOR, now, text)

    def link_tenants(self, *, by: str, tenants: list[str], now: datetime) -> list[str]:
        """Mark customer tenants as affected; returns the ones newly linked."""
        self._require_not_closed("link affected customers")
        added = [t for t in tenants if t not in self.tenants]
        if not added:
            raise DomainError(f"{self.key} already affects {', '.join(tenants)}.")
        self.tenants.extend(added)
        self._record(EventKind.TENANTS_LINKED, by, now, f"affects {', '.join(added)}")
        return added

    def promise_customer_update(self, *, by: datetime) -> None:
        """A brief told customers when the next update comes; the thread is reminded then."""
        self.customer_update_due_at = by

    def record_brief_sent(self, *, by: str, now: datetime, text: str) -> None:
        """One recipient's brief went out."""
        self._record(EventKind.BRIEF_SENT, by, now, text, source="bot" if by == BOT_AUTHOR else "command")

    def record_brief_failed(self, *, now: datetime, text: str) -> None:
        self._record(EventKind.BRIEF_FAILED, BOT_AUTHOR, now, text, source="bot")

    def record_customer_reply(self, *, customer: str, text: str, now: datetime, message_ref: str) -> None:
        self._record(EventKind.CUSTOMER_REPLY, customer, now, text, source="customer", message_ref=message_ref)

    def record_customer_update_due(self, *, now: datetime, text: str) -> None:
        self.customer_update_due_at = None
        self._record(EventKind.CUSTOMER_UPDATE_DUE, BOT_AUTHOR, now, text, source="bot")

    def record_alert(self, *, source: str, text: str, now: datetime) -> None:
        """A monitoring alert about this incident fired, fired again or resolved; recorded even after close."""
        self._record(EventKind.ALERT, source, now, text, source="alert")

    # -- chat and bot events ------------------------------------------------------------------------

    def capture_message(self, *, by: str, text: str, now: datetime, message_ref: str | None,
                        at: datetime | None = None) -> None:
        """A human message in the incident's room; recorded even after close (late context still matters)."""
        self.new_timeline.append(chat_message(by=by, text=text, now=now, message_ref=message_ref, at=at))

    def record_nudge(self, *, now: datetime, text: str) -> None:
        self.last_nudge_at = now
        self.snoozed_until = None  # a snooze postpones one nudge, not all of them
        self._record(EventKind.NUDGE, BOT_AUTHOR, now, text, source="bot")

    def record_escalation(self, *, now: datetime, text: str, resolution: bool) -> None:
        if resolution:
            self.resolution_escalated = True
        else:
            self.escalations_sent += 1
        self._record(EventKind.ESCALATION, BOT_AUTHOR, now, text, source="bot")

    def record_postmortem_reminder(self, *, now: datetime, text: str) -> None:
        self.postmortem_reminded_at = now
        self._record(EventKind.POSTMORTEM_REMINDER, BOT_AUTHOR, now, text, source="bot")

    def record_action_overdue(self, *, number: int, now: datetime, text: str) -> None:
        self.actions[number - 1].overdue_reminded = True
        self._record(EventKind.ACTION_OVERDUE, BOT_AUTHOR, now, text, source="bot")

    # -- helpers ------------------------------------------------------------------------------------

    def holder_summary(self) -> str:
        if not self.roles:
            return "none assigned"
        return "; ".join(f"{role.title}: {self.roles[role]}" for role in Role if role in self.roles)

    def _require_open(self, what: str) -> None:
        if not self.status.is_open:
            raise DomainError(f"Cannot {what}: {self.key} is {self.status}. `reopen` it first if it is back.")

    def _require_not_closed(self, what: str) -> None:
        if self.status is Status.CLOSED:
            raise DomainError(f"Cannot {what}: {self.key} is closed. `reopen` it first.")

    def _record(self, kind: EventKind, author: str, now: datetime, text: str, *, source: str | None = None,
                occurred_at: datetime | None = None, message_ref: str | None = None) -> None:
        self.new_timeline.append(
            TimelineEvent(
                kind=kind,
                author=author,
                text=text,
                occurred_at=occurred_at or now,
                recorded_at=now,
                source=source or ("bot" if author == BOT_AUTHOR else "command"),
                message_ref=message_ref,
            )
        )

    def take_new_timeline(self) -> list[TimelineEvent]:
        events, self.new_timeline = self.new_timeline, []
        return events


def format_duration(delta: timedelta) -> str:
    """'45s', '12 min', '2 h 5 min', '3 d 4 h' — short, for chat."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


__all__ = [
    "ActionItem", "BOT_AUTHOR", "ChecklistItem", "DomainError", "EventKind", "Incident", "NOTE_TAGS", "Role",
    "Status", "TimelineEvent", "format_duration", "replace",
]
