"""The ports the core talks through: chat platforms, storage, time.

Every call the core makes to a chat platform is a method of `ChatAdapter` with keyword-only arguments and
neutral message values; adapters render them (Block Kit, embeds, WhatsApp text, terminal lines) and declare
what they can do in `Capabilities` instead of the core probing at send time.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from bot.briefs.templates import Brief, Contact, Recipient
    from bot.incident.domain import Incident, MessageRevision, TimelineEvent
    from bot.oncall.escalation import Escalation
    from bot.oncall.roster import Person
    from bot.oncall.rotation import Override, Rotation
    from bot.operators.roster import Operator
    from bot.web.public import PublicUpdate

# A JSON object as stored in an outbox row or an alert group (customer, work and page payloads): its shape depends
# on the operation that wrote it and is read back key by key, so its values are as dynamic as JSON itself.
JsonObject = dict[str, Any]


# -- neutral messages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    label: str
    value: str


@dataclass(frozen=True)
class Button:
    """A button whose press comes back as `ButtonPressed(action=..., value=...)`."""

    action: Literal["ack", "update", "resolve", "snooze", "brief_send", "declare"]
    label: str
    value: str  # the incident key, e.g. "INC-7" (a brief's id for brief_send, "alert-3" for an alert's declare)
    style: Literal["primary", "danger", "default"] = "default"


@dataclass(frozen=True)
class ChecklistLine:
    number: int
    text: str
    done: bool = False


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "text/markdown"
    title: str | None = None


@dataclass(frozen=True)
class Message:
    """A platform-neutral message. `text` is plain prose: user-supplied parts are NOT pre-escaped, the
    adapter escapes them for its platform. `title`/`fields`/`checklist` make it a card."""

    text: str = ""
    title: str | None = None
    fields: tuple[Field, ...] = ()
    checklist: tuple[ChecklistLine, ...] = ()
    buttons: tuple[Button, ...] = ()
    footer: str | None = None
    incident_key: str | None = None  # for platforms without threads, which prefix "[INC-7]"
    kind: Literal["card", "checklist", "update", "nudge", "escalation", "reminder", "playbook", "postmortem",
                  "reply", "error", "info", "alert", "digest"] = "info"
    attachment: Attachment | None = None
    # The platform whose user wrote the user text in this message ("slack" for a Slack user's status update).
    # Only there may that platform's own mention syntax stay a live mention; None (unknown, mixed, or the
    # bot's own) means no platform treats anything in it as a mention.
    mentions_from: str | None = None


# -- where things are ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Room:
    """A place messages go: a channel, optionally a thread in it."""

    platform: str
    channel: str
    thread: str | None = None


@dataclass(frozen=True)
class Posted:
    room: Room
    message_id: str


@dataclass(frozen=True)
class Delivery:
    """Which outbox message a send is. `maybe_sent`: an earlier attempt may have reached the platform (the
    sender crashed or timed out mid-send), so an adapter that can look its own messages up should return the
    earlier one instead of posting again."""

    key: str
    maybe_sent: bool = False


@dataclass(frozen=True)
class Capabilities:
    threads: bool
    edits: bool
    buttons: bool
    files: bool
    ephemeral: bool
    max_text: int = 4000
    max_buttons: int = 5


class ChatAdapter(Protocol):
    """A chat platform as the core sees it.

    Example: ``posted = await chat.post(room=Room("console", "#incidents"), message=Message(text="hi"))``
    """

    platform: str
    capabilities: Capabilities

    async def open_incident_room(self, *, channel: str, incident_key: str, title: str, card: Message,
                                 delivery: Delivery | None = None) -> Posted:
        """Post the card in `channel` and open the incident's room (a thread on it, or a new channel).
        Returns the card message; `posted.room` is the incident's room."""
        ...

    async def post(self, *, room: Room, message: Message, delivery: Delivery | None = None) -> Posted:
        ...

    async def update(self, *, posted: Posted, message: Message) -> None:
        """Edit a posted message in place. Only called when `capabilities.edits`."""
        ...

    async def reply_privately(self, *, room: Room, user: str, message: Message) -> None:
        """Answer only the user who ran a command (ephemeral where the platform has it)."""
        ...

    async def display_name(self, *, user: str) -> str:
        """The human-friendly name for a platform user id (cached by the adapter)."""
        ...


# -- inbound, neutral ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    id: str
    name: str


@dataclass(frozen=True)
class CommandReceived:
    room: Room
    actor: Actor
    text: str
    delivery_id: str | None = None  # platform event id, for idempotency


@dataclass(frozen=True)
class MessagePosted:
    room: Room
    actor: Actor
    text: str
    message_id: str
    delivery_id: str | None = None


@dataclass(frozen=True)
class MessageEdited:
    room: Room
    message_id: str
    text: str
    delivery_id: str | None = None


@dataclass(frozen=True)
class MessageDeleted:
    room: Room
    message_id: str
    delivery_id: str | None = None


@dataclass(frozen=True)
class MessagePinned:
    room: Room
    message_id: str
    delivery_id: str | None = None


@dataclass(frozen=True)
class ButtonPressed:
    room: Room
    actor: Actor
    action: str
    value: str
    delivery_id: str | None = None


@dataclass(frozen=True)
class Reply:
    """What the core answers to whoever triggered an inbound event."""

    message: Message
    ok: bool = True
    private: bool = True
    incident: int | None = None  # the incident the reply is about where the caller needs it (a new declare)


# -- customers (WhatsApp briefs) -------------------------------------------------------------------------


class CustomerMessenger(Protocol):
    """Messages to customers' phones (WhatsApp Cloud API). Both methods return the platform's message id and
    raise `DeliveryError` on failure (`window_closed` when free text is refused outside the 24-hour window;
    rate limits with `retry_after`; invalid numbers: permanent).

    Example: ``wamid = await whatsapp.send_template(to="+254700000001", template="incident_investigating",
    language="en", parameters=("payments", "30"))``
    """

    async def send_template(self, *, to: str, template: str, language: str, parameters: Sequence[str]) -> str: ...

    async def send_text(self, *, to: str, text: str) -> str: ...


@dataclass(frozen=True)
class CustomerMessageReceived:
    """A customer wrote to us (opens the 24-hour free-text window; STOP/START opt out and in)."""

    phone: str  # E.164, with the leading +
    text: str
    message_id: str
    at: datetime
    profile_name: str | None = None
    button_payload: str | None = None  # an interactive reply button's id, when the message is a button press


@dataclass(frozen=True)
class CustomerMessageStatus:
    """WhatsApp's sent / delivered / read / failed report for a message we sent."""

    message_id: str
    status: str
    at: datetime
    phone: str | None = None
    error_code: int | None = None
    error_title: str | None = None
    # The adapter's reading of the error: free text refused outside the customer-care window (WhatsApp 131047).
    window_closed: bool = False


# -- code host (GitHub, a local git clone) -------------------------------------------------------------


@dataclass(frozen=True)
class FileChange:
    """A file to add or replace, at a path relative to the repository's root."""

    path: str
    content: str


@dataclass(frozen=True)
class ChangeSet:
    """Files to put on a branch and, where the host has pull requests, the pull request that proposes them."""

    branch: str
    files: tuple[FileChange, ...]
    commit_message: str
    title: str
    body: str


@dataclass(frozen=True)
class Published:
    """Where a change set landed: the branch, and the pull request when the host has them."""

    branch: str
    url: str | None = None
    number: int | None = None
    created: bool = False  # the pull request was opened now (not found from an earlier attempt or compile)


@dataclass(frozen=True)
class IssueDraft:
    title: str
    body: str
    labels: tuple[str, ...] = ()
    assignee: str | None = None


@dataclass(frozen=True)
class IssueRef:
    number: int
    url: str


@dataclass(frozen=True)
class CodeHostCapabilities:
    pull_requests: bool  # a local clone has branches and commits but no pull requests
    issues: bool = False


class CodeHost(Protocol):
    """Where the team's code and runbooks live (GitHub, a local clone). Failures raise `DeliveryError`
    (`retry_after` for rate limits, `permanent` for refusals a retry cannot fix); every method is safe to call
    again after an attempt whose answer was lost — it finds what the first attempt did instead of doing it twice.

    Example: ``published = await host.publish(change=ChangeSet(branch="incident/inc-7", files=(...), ...))``
    """

    capabilities: CodeHostCapabilities

    async def publish(self, *, change: ChangeSet) -> Published:
        """Create the branch (from the base branch) unless it exists, put the files on it, and open the pull
        request for it unless one is open (then it is updated)."""
        ...

    async def open_issue(self, *, issue: IssueDraft, marker: str) -> IssueRef:
        """Open an issue carrying `marker` in its body, unless one with the same marker and the same labels
        exists (an earlier attempt's): then that one. Only called when `capabilities.issues`."""
        ...

    async def set_issue_state(self, *, number: int, open: bool) -> None:
        """Close or reopen an issue (nothing happens when it is in that state already)."""
        ...


# -- paging ---------------------------------------------------------------------------------------------


PageAction = Literal["trigger", "acknowledge", "resolve"]
PageSeverity = Literal["critical", "error", "warning", "info"]


@dataclass(frozen=True)
class PageRequest:
    """One page to one person through one pager. `incident_key` (INC-7) is the dedup key the pager groups by, so
    a retry after a lost answer does not page twice and `acknowledge`/`resolve` find the page."""

    action: PageAction
    incident_key: str
    address: str  # where on that pager: a PagerDuty routing (integration) key
    summary: str
    severity: PageSeverity = "critical"
    person: str = ""


@dataclass(frozen=True)
class PagerCapabilities:
    acknowledge: bool  # the page can be acknowledged (and resolved) from our side
    inbound_acks: bool  # the pager reports acknowledgements back (a signed webhook)


class Pager(Protocol):
    """A paging service as the core sees it. Raises `DeliveryError` (permanent on a rejected payload,
    `retry_after` on a rate limit). Returns the pager's own id for the page.

    Example: ``await pagerduty.page(request=PageRequest(action="trigger", incident_key="INC-7", address=key,
    summary="P1 Payments down"))``
    """

    channel: str
    capabilities: PagerCapabilities

    async def page(self, *, request: PageRequest) -> str: ...


# -- time ---------------------------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC now."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class ManualClock:
    """A clock tests and scripts move by hand: `clock.advance(minutes=20)`."""

    current: datetime = field(default_factory=lambda: datetime(2026, 11, 24, 6, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        self.current += delta if delta is not None else timedelta(**parts)
        return self.current


class FastClock:
    """Real time scaled by `speed` from the moment it is made (console --speed 60 for demos), plus any
    manual offset from `/wait`."""

    def __init__(self, speed: float, base: Clock | None = None) -> None:
        self._base = base or SystemClock()
        self._start = self._base.now()
        self._speed = speed
        self._offset = timedelta()

    def now(self) -> datetime:
        return self._start + (self._base.now() - self._start) * self._speed + self._offset

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        self._offset += delta if delta is not None else timedelta(**parts)
        return self.now()


# -- storage ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderPlan:
    """A reminder that should exist: kind + due time; `subject` tells apart several of a kind (action items)."""

    kind: Literal["update_nudge", "ack_escalation", "resolution_escalation", "postmortem_due", "action_overdue",
                  "customer_update_due"]
    due_at: datetime
    subject: int = 0


@dataclass(frozen=True)
class DueReminder:
    id: int
    incident_number: int
    kind: str
    due_at: datetime
    subject: int


class IncidentRepository(Protocol):
    async def next_number(self) -> int: ...
    async def add(self, incident: Incident) -> None: ...
    async def get(self, number: int) -> Incident | None: ...
    async def get_by_room(self, room: Room) -> Incident | None: ...
    async def number_of_issue(self, issue: int) -> int | None: ...
    async def get_many(self, numbers: Sequence[int]) -> dict[int, Incident]: ...
    async def attach_room(self, number: int, *, platform: str, channel: str, thread: str | None,
                          card_message: str | None) -> None: ...
    async def numbers_by_room(self, rooms: Collection[Room]) -> dict[Room, int]: ...
    async def append_timeline(self, events: Sequence[tuple[int, TimelineEvent]]) -> None: ...
    async def save(self, incident: Incident) -> None: ...
    async def list(self, *, open_only: bool) -> builtins.list[Incident]: ...
    async def timeline(self, number: int) -> builtins.list[TimelineEvent]: ...
    async def find_message(self, number: int, message_ref: str) -> TimelineEvent | None: ...
    async def edit_message(self, event_id: int, *, text: str | None = None, deleted: bool | None = None,
                           pinned: bool | None = None) -> None: ...
    async def revise_message(self, number: int, message_ref: str, revision: MessageRevision) -> bool: ...
    async def hold_revision(self, number: int, message_ref: str, revision: MessageRevision,
                            now: datetime) -> None: ...
    async def apply_held_revisions(self, messages: Collection[tuple[int, str]]) -> int: ...


class ReminderRepository(Protocol):
    async def replace_pending(self, incident_number: int, plans: Sequence[ReminderPlan], now: datetime) -> None: ...
    async def claim_due(self, now: datetime, limit: int) -> list[DueReminder]: ...
    async def next_due(self) -> datetime | None: ...


class DeliveryLog(Protocol):
    async def first_time(self, delivery_id: str, now: datetime) -> bool:
        """Record an inbound delivery id; False when it was seen before (platform retry or duplicate)."""
        ...

    async def first_times(self, delivery_ids: Collection[str], now: datetime) -> set[str]:
        """Record several delivery ids; returns the ones seen for the first time."""
        ...


class DeliveryError(Exception):
    """An adapter could not deliver. `retry_after` (seconds) when the platform said when to come back (429);
    `permanent` when retrying cannot help (unknown channel, bad token, invalid recipient)."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False,
                 code: int | None = None, window_closed: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.code = code  # the platform's error code where it has one, for people (logs, thread); the core
        # never branches on it: adapters map codes to the neutral flags below
        # Free text refused because the customer-care window is closed: an approved template would get through.
        self.window_closed = window_closed


OutboundOperation = Literal["open_room", "post", "update_card", "customer_message", "code_host", "page"]


@dataclass(frozen=True)
class Outbound:
    """A message to deliver, written to the outbox in the transaction of the change that caused it.

    `operation`: open_room (post the card and open the incident's room), post (into `room`, or the incident's
    room when `room` is None), update_card (edit the incident's card, or post it anew where edits are not
    possible), code_host (`work` for the code host: a post-mortem pull request, an issue). `dedupe_key` is
    unique: enqueueing the same key twice keeps one row.

    code_host rows carry no `incident_number`: the outbox sends an incident's messages in order and holds the
    rest back after a failure, and a code host that is down must never hold back the incident's chat."""

    platform: str
    operation: OutboundOperation
    message: Message
    dedupe_key: str
    incident_number: int | None = None
    room: Room | None = None
    # customer_message: {"recipient_id", "incident_number", "template", "language", "parameters", "text"}
    customer: JsonObject | None = None
    # code_host: {"job": "postmortem_pr", "incident": 7, "by": "alice"} (see bot.followups.service)
    work: JsonObject | None = None
    # page: PageRequest fields ({"action", "incident_key", "address", "summary", "severity", "person"}); `platform`
    # names the pager (pagerduty). Pages carry no incident_number: a failing pager never holds the thread's chain.
    page: JsonObject | None = None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    outbound: Outbound
    attempts: int
    reclaimed: bool = False  # taken over from a sender whose lease ran out (it crashed or hung mid-send)

    @property
    def delivery(self) -> Delivery:
        return Delivery(key=self.outbound.dedupe_key, maybe_sent=self.reclaimed or self.attempts > 0)


class OutboxRepository(Protocol):
    async def enqueue(self, outbound: Outbound, now: datetime) -> None: ...
    async def claim(self, now: datetime, limit: int, lease: timedelta, *, by: str | None = None
                    ) -> list[OutboxItem]: ...
    async def release_claims(self, now: datetime, *, by: str | None = None) -> int: ...
    async def find_sent(self, *, platform: str, platform_message_id: str) -> Outbound | None: ...
    async def delivered_many(self, sent: Sequence[tuple[int, str | None]], now: datetime) -> None: ...
    async def release(self, ids: Sequence[int]) -> None: ...
    async def retry_later(self, item_id: int, at: datetime, error: str, *, count_attempt: bool = True) -> None: ...
    async def give_up(self, item_id: int, now: datetime, error: str) -> None: ...


class CustomerRepository(Protocol):
    """Contacts by tenant, briefs and their recipients (see storage.repositories.customers.SqlCustomerRepository)."""

    async def tenants(self) -> list[str]: ...
    async def add_contact(self, *, tenant: str, name: str, phone: str, now: datetime) -> Contact: ...

    async def remove_contact(self, *, phone: str, tenant: str | None, now: datetime) -> int:
        """How many contacts with that phone were removed (in `tenant` only, or in every tenant)."""
        ...

    async def contacts(self, tenant: str | None = None) -> list[Contact]: ...
    async def contacts_by_phone(self, phone: str) -> list[Contact]: ...
    async def contact(self, contact_id: int) -> Contact | None: ...
    async def mark_inbound(self, *, phone: str, at: datetime) -> int: ...
    async def set_opt_out(self, *, phone: str, at: datetime | None) -> int: ...
    async def create_brief(self, *, incident_number: int, template: str, kind: str, parameters: dict[str, str],
                           text: str, target: str, eta_minutes: int | None, created_by: str, now: datetime,
                           contacts: list[Contact]) -> Brief: ...
    async def brief(self, brief_id: int) -> Brief | None: ...
    async def mark_brief_sent(self, brief_id: int, now: datetime) -> bool: ...
    async def recipients(self, brief_id: int) -> list[Recipient]: ...
    async def brief_deliveries(self, incident_number: int) -> list[tuple[Brief, list[Recipient]]]:
        """(brief, recipients) for each brief the incident sent, with each recipient's delivery state."""
        ...
    async def recipient(self, recipient_id: int) -> Recipient | None: ...
    async def recipient_by_message(self, message_id: str) -> Recipient | None: ...
    async def update_recipient(self, recipient_id: int, *, now: datetime, status: str,
                               message_id: str | None = None, via: str | None = None,
                               error: str | None = None) -> None: ...
    async def latest_open_incident_for(self, tenants: list[str]) -> int | None: ...
    async def close_window(self, *, phone: str, at: datetime) -> int: ...
    async def keep_early_status(self, event: CustomerMessageStatus, now: datetime) -> None: ...
    async def take_early_statuses(self, message_id: str | None = None) -> list[CustomerMessageStatus]: ...


class OperatorRepository(Protocol):
    """WhatsApp operators and incident followers (see storage.repositories.operators.SqlOperatorRepository)."""

    async def add(self, *, phone: str, name: str, now: datetime, source: str = "cli") -> bool: ...
    async def remove(self, phone: str) -> bool: ...
    async def listed_elsewhere(self, listed: set[str]) -> list[str]: ...
    async def get(self, phone: str) -> Operator | None: ...
    async def all(self) -> list[Operator]: ...
    async def set_current(self, phone: str, number: int) -> None: ...
    async def follow(self, *, number: int, platform: str, address: str, now: datetime) -> bool: ...
    async def unfollow(self, *, number: int, platform: str, address: str) -> bool: ...
    async def followers(self, number: int) -> list[tuple[str, str]]: ...


# -- operations: alerts, schedules, reports -------------------------------------------------------------


class ConcurrentChange(Exception):
    """Another transaction changed the same thing first (a unique key or a compare-and-set lost); retry the
    whole unit of work, which will then see the other's result."""


@dataclass(frozen=True)
class AlertGroupRecord:
    """An alert group (Alertmanager group or one generic alert) and what became of it.

    `state`: proposed (a Declare button is waiting), declared (`incident_number` set), ignored (no rule, or an
    ignore rule)."""

    id: int
    key: str
    source: str
    state: str
    status: str  # firing | resolved: the group's latest
    title: str
    incident_number: int | None = None
    rule: str | None = None
    severity: str | None = None
    auto_resolve: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    proposed_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class AlertRecord:
    """The latest known state of one alert (fingerprint) in a group."""

    fingerprint: str
    status: str
    title: str
    first_seen_at: datetime
    last_seen_at: datetime
    notifications: int = 1


class AlertRepository(Protocol):
    async def group(self, key: str) -> AlertGroupRecord | None: ...
    async def group_by_id(self, group_id: int) -> AlertGroupRecord | None: ...

    async def add_group(self, *, key: str, source: str, state: str, status: str, title: str,
                        incident_number: int | None, rule: str | None, severity: str | None, auto_resolve: bool,
                        labels: dict[str, str], now: datetime) -> AlertGroupRecord:
        """Raises ConcurrentChange when another transaction added the same key first."""
        ...

    async def update_group(self, group_id: int, *, expected_incident: int | None, now: datetime,
                           **values: object) -> None:
        """Compare-and-set on the group's incident: raises ConcurrentChange when another transaction moved it."""
        ...

    async def alerts(self, group_id: int) -> dict[str, AlertRecord]: ...
    async def record_alert(self, group_id: int, *, fingerprint: str, status: str, title: str,
                           labels: dict[str, str], now: datetime) -> None: ...
    async def forget_alerts(self, group_id: int) -> None: ...


class ScheduleRepository(Protocol):
    """Named recurring jobs (the daily digest) whose next due time lives in the database."""

    async def due_at(self, name: str) -> datetime | None: ...

    async def create(self, name: str, *, due_at: datetime) -> bool:
        """Add the schedule unless it exists; False when another process created it first."""
        ...

    async def move(self, name: str, *, seen_due: datetime, next_due: datetime, ran_at: datetime | None) -> bool:
        """Set the next due time if it is still `seen_due`: exactly one process wins a due run."""
        ...


@dataclass(frozen=True)
class FreezeEntry:
    incident_number: int
    title: str
    severity: str
    since: datetime


@dataclass(frozen=True)
class MetricsSnapshot:
    """Counts read from the database at scrape time, so every replica reports the same numbers."""

    open_by_severity: dict[str, int]
    declared_total: int
    reminders_fired: dict[str, int]  # by kind
    escalations_total: int
    outbox: dict[str, int]  # by status
    frozen: int  # open incidents with the deploy freeze on
    alert_groups: dict[str, int]  # by state: declared, proposed, ignored


class ReportRepository(Protocol):
    """Reads across incidents for the digest, stats, the freeze API and /metrics."""

    async def declared_since(self, since: datetime) -> list[Incident]: ...

    async def severity_changes(self, numbers: Sequence[int]) -> dict[int, list[TimelineEvent]]:
        """The severity-change events of these incidents (every number is a key), in time order."""
        ...

    async def for_digest(self, *, since: datetime, postmortem_severities: Sequence[str]) -> list[Incident]:
        """Open incidents, ones declared or resolved since `since`, resolved ones without a post-mortem at the
        given severities, and any with an action item not yet done that has a due date."""
        ...

    async def frozen(self) -> list[FreezeEntry]: ...
    async def metrics(self) -> MetricsSnapshot: ...


class Metrics(Protocol):
    """Process-local instrumentation (counters and histograms); `adapters.ops_http.PrometheusMetrics` exports it.

    Example: ``metrics.webhook_rejected(endpoint="alertmanager", reason="unauthorized")``
    """

    def command_finished(self, *, command: str, seconds: float, ok: bool) -> None: ...
    def webhook_rejected(self, *, endpoint: str, reason: str) -> None: ...
    def alerts_received(self, *, source: str, status: str, count: int) -> None: ...


class NoMetrics:
    def command_finished(self, *, command: str, seconds: float, ok: bool) -> None:
        pass

    def webhook_rejected(self, *, endpoint: str, reason: str) -> None:
        pass

    def alerts_received(self, *, source: str, status: str, count: int) -> None:
        pass


class WebRepository(Protocol):
    """Public status-page updates, sign-in links and browser sessions, and the web pages' extra reads."""

    async def publish(self, *, incident_number: int, state: str, text: str, areas: Sequence[str],
                      now: datetime) -> None: ...
    async def public_updates(self, *, since: datetime) -> list[PublicUpdate]: ...
    async def last_public_state(self, incident_number: int) -> str | None: ...
    async def known_tenants(self) -> set[str]: ...
    async def incidents_of_tenant(self, tenant: str) -> set[int]: ...
    async def add_token(self, *, digest: str, kind: str, name: str, csrf: str | None, now: datetime,
                        expires_at: datetime) -> None: ...
    async def link_state(self, digest: str, now: datetime) -> str: ...  # ok | used | expired | unknown
    async def use_link(self, digest: str, now: datetime) -> str | None:
        """Mark a valid, unused link used; its name, or None if it was not (any more) valid."""
    async def session(self, digest: str, now: datetime) -> tuple[str, str] | None: ...  # (name, csrf)
    async def end_session(self, digest: str, now: datetime) -> None: ...
    async def timeline_after(self, after_id: int, numbers: Collection[int],
                             limit: int) -> list[tuple[int, TimelineEvent]]: ...
    async def timeline_window(self, number: int, *, latest: int | None) -> tuple[list[TimelineEvent], int, int]: ...
    async def timeline_of_kinds(self, number: int, kinds: Collection[str]) -> list[TimelineEvent]: ...
    async def last_timeline_id(self) -> int: ...
    async def pending_reminders(self, incident_number: int) -> list[ReminderPlan]: ...
    async def briefs_of(self, incident_number: int) -> list[tuple[Brief, list[Recipient]]]: ...


class OnCallRepository(Protocol):
    """People who can be on call, rotations (rules) and overrides
    (see storage.repositories.oncall.SqlOnCallRepository)."""

    async def save_person(self, person: Person, *, now: datetime, replace: bool) -> bool:
        """Add a person (or replace their contact points when `replace`); False when they exist and not `replace`."""
        ...

    async def person(self, name: str) -> Person | None: ...
    async def person_by_address(self, address: str) -> Person | None: ...
    async def people(self) -> list[Person]: ...
    async def remove_person(self, name: str) -> None: ...
    async def save_rotation(self, rotation: Rotation, *, now: datetime) -> None: ...
    async def rotation(self, role: str) -> Rotation | None: ...
    async def rotations(self) -> list[Rotation]: ...
    async def add_override(self, override: Override, *, now: datetime) -> int: ...
    async def overrides(self, *, ending_after: datetime, role: str | None = None) -> list[Override]: ...
    async def remove_override(self, override_id: int) -> bool: ...


@dataclass(frozen=True)
class EscalationRecord:
    """An incident's escalation state as stored, with the version a compare-and-set saves against."""

    incident_number: int
    state: Escalation
    version: int
    paged: tuple[tuple[str, str, str], ...] = ()  # (person, pager, address) paged so far, for acknowledge/resolve


class EscalationRepository(Protocol):
    async def start(self, incident_number: int, state: Escalation, *, now: datetime) -> None: ...
    async def get(self, incident_number: int) -> EscalationRecord | None: ...
    async def due(self, now: datetime, limit: int) -> list[EscalationRecord]: ...
    async def next_due(self) -> datetime | None: ...

    async def save(self, record: EscalationRecord, state: Escalation, *,
                   paged: Sequence[tuple[str, str, str]] = ()) -> bool:
        """Compare-and-set on the record's version (adding to `paged`); False when another process moved first."""
        ...

    async def cancel_pages(self, incident_number: int) -> int:
        """Pending pages of the incident are not sent (someone answered)."""
        ...


class UnitOfWork(Protocol):
    """One transaction. `async with uow: ...; await uow.commit()` — leaving without commit rolls back."""

    # Read-only for the core (properties), so an implementation may hold its own concrete repositories.
    @property
    def incidents(self) -> IncidentRepository: ...
    @property
    def reminders(self) -> ReminderRepository: ...
    @property
    def deliveries(self) -> DeliveryLog: ...
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def customers(self) -> CustomerRepository: ...
    @property
    def alerts(self) -> AlertRepository: ...
    @property
    def schedules(self) -> ScheduleRepository: ...
    @property
    def reports(self) -> ReportRepository: ...
    @property
    def operators(self) -> OperatorRepository: ...
    @property
    def web(self) -> WebRepository: ...
    @property
    def oncall(self) -> OnCallRepository: ...
    @property
    def escalations(self) -> EscalationRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
