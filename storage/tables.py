"""Tables. Times are stored as aware UTC; SQLite hands back naive values, so `UTCDateTime` re-attaches UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: warroom stores aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class IncidentRow(SQLModel, table=True):
    __tablename__ = "incident"
    __table_args__ = (sa.Index("ix_incident_room", "platform", "channel", "thread"),)

    number: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    title: str
    severity: str = Field(max_length=16)
    impact: str | None = None
    reporter: str
    status: str = Field(max_length=16, index=True)
    declared_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    acknowledged_at: datetime | None = _when()
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = _when()
    resolved_at: datetime | None = _when()
    closed_at: datetime | None = _when()
    summary: str | None = None
    roles: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    frozen: bool = False
    frozen_at: datetime | None = _when()  # when the deploy freeze went on
    checklist: list[Any] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    suggested_playbook: str | None = None
    last_update_at: datetime | None = _when()
    last_nudge_at: datetime | None = _when()
    snoozed_until: datetime | None = _when()
    escalations_sent: int = 0
    resolution_escalated: bool = False
    postmortem_at: datetime | None = _when()
    postmortem_reminded_at: datetime | None = _when()
    customer_update_due_at: datetime | None = _when()  # a brief promised customers an update by then
    platform: str | None = Field(default=None, max_length=32)
    channel: str | None = Field(default=None, max_length=128)
    thread: str | None = Field(default=None, max_length=128)
    card_message: str | None = Field(default=None, max_length=128)


class ActionRow(SQLModel, table=True):
    __tablename__ = "action_item"
    __table_args__ = (sa.UniqueConstraint("incident_number", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_number: int = Field(foreign_key="incident.number", index=True)
    number: int
    text: str
    owner: str | None = None
    due: date | None = None
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    done_at: datetime | None = _when()
    done_by: str | None = None
    overdue_reminded: bool = False
    issue_number: int | None = Field(default=None, index=True)  # its issue on the code host (GitHub)
    issue_url: str | None = Field(default=None, max_length=300)


class TimelineRow(SQLModel, table=True):
    __tablename__ = "timeline_event"
    __table_args__ = (
        sa.Index("ix_timeline_incident_time", "incident_number", "occurred_at", "id"),
        sa.Index("ix_timeline_message", "incident_number", "message_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_number: int = Field(foreign_key="incident.number")
    kind: str = Field(max_length=32)
    author: str
    text: str
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    recorded_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    source: str = Field(max_length=16)
    message_ref: str | None = Field(default=None, max_length=128)
    pinned: bool = False
    deleted: bool = False


class PendingRevisionRow(SQLModel, table=True):
    """An edit, delete or pin that arrived before the message it revises was captured (replays, concurrent
    deliveries); applied, in arrival order, and removed when the message is captured."""

    __tablename__ = "pending_revision"
    __table_args__ = (sa.Index("ix_pending_revision_message", "incident_number", "message_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_number: int = Field(foreign_key="incident.number")
    message_ref: str = Field(max_length=128)
    text: str | None = None
    deleted: bool = False
    pinned: bool = False
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class ReminderRow(SQLModel, table=True):
    __tablename__ = "reminder"
    __table_args__ = (sa.Index("ix_reminder_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_number: int = Field(foreign_key="incident.number", index=True)
    kind: str = Field(max_length=32)
    subject: int = 0
    due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status: str = Field(default="pending", max_length=16)  # pending | fired | cancelled
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    fired_at: datetime | None = _when()


class CounterRow(SQLModel, table=True):
    """Gapless sequences (incident numbers): a row-locked increment inside the declaring transaction."""

    __tablename__ = "counter"

    name: str = Field(primary_key=True, max_length=32)
    value: int = 0


class DeliveryRow(SQLModel, table=True):
    """Inbound delivery ids already processed; the primary key makes a retry a no-op on every replica."""

    __tablename__ = "inbound_delivery"

    delivery_id: str = Field(primary_key=True, max_length=200)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class OutboxRow(SQLModel, table=True):
    """Outbound messages, written with the change that caused them and delivered by
    `bot.delivery.outbox.OutboxSender`."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_ready", "status", "next_attempt_at", "id"),
        sa.Index("ix_outbox_incident", "incident_number", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    platform: str = Field(max_length=32)
    operation: str = Field(max_length=16)  # open_room | post | update_card | customer_message | code_host
    incident_number: int | None = Field(default=None, foreign_key="incident.number")
    room_channel: str | None = Field(default=None, max_length=128)
    room_thread: str | None = Field(default=None, max_length=128)
    message: dict[str, Any] = Field(sa_type=sa.JSON, nullable=False)
    customer: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)  # a customer send: recipient, template, text
    work: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)  # a code host job: post-mortem PR, issue
    page: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)  # a page: bot.ports.PageRequest's fields
    status: str = Field(default="pending", max_length=16)  # pending | sending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    claimed_until: datetime | None = _when()
    # The process (WARROOM_INSTANCE_ID) that claimed it: a restarted replica takes back its own claims at once.
    claimed_by: str | None = Field(default=None, max_length=128)
    last_error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    delivered_at: datetime | None = _when()
    platform_message_id: str | None = Field(default=None, max_length=128)


class ContactRow(SQLModel, table=True):
    """A customer's WhatsApp number, grouped by tenant (the customer organisation an incident can affect)."""

    __tablename__ = "contact"
    __table_args__ = (sa.UniqueConstraint("tenant", "phone"), sa.Index("ix_contact_phone", "phone"))

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=64, index=True)
    name: str = Field(max_length=200)
    phone: str = Field(max_length=20)  # E.164 with '+'
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    opted_out_at: datetime | None = _when()
    last_inbound_at: datetime | None = _when()  # opens WhatsApp's 24-hour free-text window
    # WhatsApp refused free text (outside the window) at this time: templates only until the customer writes again
    window_closed_at: datetime | None = _when()


class EarlyStatusRow(SQLModel, table=True):
    """A delivery status (WhatsApp webhook) for a message id not recorded yet: applied once the send is."""

    __tablename__ = "early_status"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=128, index=True)
    status: str = Field(max_length=16)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    phone: str | None = Field(default=None, max_length=20)
    error_code: int | None = None
    error_title: str | None = Field(default=None, max_length=500)
    window_closed: bool = False
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class IncidentTenantRow(SQLModel, table=True):
    __tablename__ = "incident_tenant"

    incident_number: int = Field(foreign_key="incident.number", primary_key=True)
    tenant: str = Field(max_length=64, primary_key=True)


class BriefRow(SQLModel, table=True):
    __tablename__ = "brief"

    id: int | None = Field(default=None, primary_key=True)
    incident_number: int = Field(foreign_key="incident.number", index=True)
    template: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    parameters: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    text: str
    target: str = Field(max_length=200)
    eta_minutes: int | None = None
    status: str = Field(default="preview", max_length=16)  # preview | sent
    created_by: str
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    sent_at: datetime | None = _when()


class BriefRecipientRow(SQLModel, table=True):
    __tablename__ = "brief_recipient"
    __table_args__ = (sa.UniqueConstraint("brief_id", "contact_id"),)

    id: int | None = Field(default=None, primary_key=True)
    brief_id: int = Field(foreign_key="brief.id", index=True)
    contact_id: int = Field(foreign_key="contact.id")
    tenant: str = Field(max_length=64)
    name: str = Field(max_length=200)
    phone: str = Field(max_length=20)
    status: str = Field(default="queued", max_length=16)  # queued | sent | delivered | read | failed | skipped
    message_id: str | None = Field(default=None, max_length=128, index=True)
    via: str | None = Field(default=None, max_length=16)  # template | text
    error: str | None = None
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class OperatorRow(SQLModel, table=True):
    """A WhatsApp number allowed to run incidents (an operator), and the incident it is working on."""

    __tablename__ = "operator"

    phone: str = Field(primary_key=True, max_length=20)
    name: str = Field(max_length=200)
    added_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    current_incident: int | None = Field(default=None, foreign_key="incident.number")
    # env: listed in WARROOM_WHATSAPP_OPERATORS (kept in step with the list at every start); cli: `operators add`.
    source: str = Field(default="cli", max_length=8, sa_column_kwargs={"server_default": "cli"})


class FollowerRow(SQLModel, table=True):
    """Someone outside an incident's room who gets its messages mirrored (a WhatsApp operator's phone)."""

    __tablename__ = "follower"

    incident_number: int = Field(foreign_key="incident.number", primary_key=True)
    platform: str = Field(max_length=32, primary_key=True)
    address: str = Field(max_length=128, primary_key=True)
    since: datetime = Field(sa_type=UTCDateTime, nullable=False)


class AlertGroupRow(SQLModel, table=True):
    """An alert group (an Alertmanager group, or one generic alert) → the incident it declared or proposed.
    The unique key is what stops two concurrent deliveries of the same alert from declaring twice."""

    __tablename__ = "alert_group"
    __table_args__ = (sa.Index("ix_alert_group_incident", "incident_number"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    source: str = Field(max_length=64)
    state: str = Field(max_length=16)  # proposed | declared | ignored
    status: str = Field(max_length=16)  # firing | resolved
    title: str
    incident_number: int | None = Field(default=None, foreign_key="incident.number")
    rule: str | None = Field(default=None, max_length=64)
    severity: str | None = Field(default=None, max_length=16)
    auto_resolve: bool = False
    labels: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    proposed_at: datetime | None = _when()


class AlertRow(SQLModel, table=True):
    """The latest state of one alert (fingerprint) in a group: a repeat of an unchanged alert is not news."""

    __tablename__ = "alert"
    __table_args__ = (sa.UniqueConstraint("group_id", "fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="alert_group.id")
    fingerprint: str = Field(max_length=200)
    status: str = Field(max_length=16)  # firing | resolved
    title: str
    labels: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    first_seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    notifications: int = 1


class ScheduleRow(SQLModel, table=True):
    """A recurring job's next due time (the daily digest); moved forward by whoever runs it, once."""

    __tablename__ = "schedule"

    name: str = Field(primary_key=True, max_length=32)
    due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_run_at: datetime | None = _when()


class PublicUpdateRow(SQLModel, table=True):
    """Text written on purpose for the public status page (`/incident public …`): the only incident text it shows."""

    __tablename__ = "public_update"
    __table_args__ = (sa.Index("ix_public_update_time", "published_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_number: int = Field(foreign_key="incident.number", index=True)
    status: str = Field(max_length=16)  # investigating | identified | monitoring | resolved
    text: str
    areas: list[Any] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    published_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class WebTokenRow(SQLModel, table=True):
    """A one-time sign-in link or a browser session, stored as a SHA-256 of the token (never the token)."""

    __tablename__ = "web_token"

    digest: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=8)  # link | session
    name: str = Field(max_length=200)
    csrf: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = _when()


class OnCallPersonRow(SQLModel, table=True):
    """Someone who can be on call, and where they can be reached (any may be empty)."""

    __tablename__ = "oncall_person"

    name: str = Field(primary_key=True, max_length=64)
    slack: str | None = Field(default=None, max_length=64)
    discord: str | None = Field(default=None, max_length=64)
    whatsapp: str | None = Field(default=None, max_length=20)
    pagerduty: str | None = Field(default=None, max_length=64)  # an Events API v2 routing (integration) key
    added_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class OnCallRotationRow(SQLModel, table=True):
    """A role's rotation as a rule (weekly hand-off in a timezone, people in order); shifts are computed."""

    __tablename__ = "oncall_rotation"

    role: str = Field(primary_key=True, max_length=60)
    people: list[Any] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    weekday: int
    handoff_time: str = Field(max_length=5)  # HH:MM, wall clock in `timezone`
    timezone: str = Field(max_length=64)
    starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class OnCallOverrideRow(SQLModel, table=True):
    """Someone holds a role for a while instead of whoever the rotation says."""

    __tablename__ = "oncall_override"
    __table_args__ = (sa.Index("ix_oncall_override_role", "role", "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    role: str = Field(max_length=60)
    person: str = Field(foreign_key="oncall_person.name", max_length=64)
    starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    ends_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class EscalationRow(SQLModel, table=True):
    """An incident's place on its escalation policy; the tick claims rows whose `due_at` passed (compare-and-set
    on `version`), so one process takes each step."""

    __tablename__ = "escalation"

    incident_number: int = Field(foreign_key="incident.number", primary_key=True,
                                 sa_column_kwargs={"autoincrement": False})
    severity: str = Field(max_length=16)
    level: int = 0
    attempt: int = 0
    level_since: datetime = Field(sa_type=UTCDateTime, nullable=False)
    due_at: datetime | None = _when(index=True)
    state: str = Field(max_length=16)  # paging | acknowledged | resolved | exhausted
    waiting_until: datetime | None = _when()
    paged: list[Any] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)  # [person, pager, address]
    version: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
