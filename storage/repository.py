"""The unit of work and repositories over SQLModel's async session.

One `SqlUnitOfWork` is one transaction: the service changes an Incident, saves it (row, action items, new
timeline events) and re-plans its reminders, and all of it commits or none of it does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.briefs.templates import Brief, Contact, Recipient
from bot.delivery.outbox import message_from_json, message_to_json
from bot.incident.domain import (
    ActionItem,
    ChecklistItem,
    EventKind,
    Incident,
    MessageRevision,
    Role,
    Status,
    TimelineEvent,
)
from bot.oncall.escalation import Escalation
from bot.oncall.roster import Person
from bot.oncall.rotation import Override, Rotation
from bot.operators.roster import Operator
from bot.ports import (
    AlertGroupRecord,
    AlertRecord,
    ConcurrentChange,
    CustomerMessageStatus,
    DueReminder,
    EscalationRecord,
    FreezeEntry,
    MetricsSnapshot,
    Outbound,
    OutboxItem,
    ReminderPlan,
    Room,
)
from bot.web.public import PublicUpdate
from storage.tables import (
    ActionRow,
    AlertGroupRow,
    AlertRow,
    BriefRecipientRow,
    BriefRow,
    ContactRow,
    CounterRow,
    DeliveryRow,
    EarlyStatusRow,
    EscalationRow,
    FollowerRow,
    IncidentRow,
    IncidentTenantRow,
    OnCallOverrideRow,
    OnCallPersonRow,
    OnCallRotationRow,
    OperatorRow,
    OutboxRow,
    PendingRevisionRow,
    PublicUpdateRow,
    ReminderRow,
    ScheduleRow,
    TimelineRow,
    WebTokenRow,
)

_INCIDENT_COUNTER = "incident"
_SCALARS = (
    "title", "severity", "impact", "reporter", "declared_at", "acknowledged_at", "acknowledged_by", "mitigated_at",
    "resolved_at", "closed_at", "summary", "frozen", "frozen_at", "suggested_playbook", "last_update_at", "last_nudge_at",
    "snoozed_until", "escalations_sent", "resolution_escalated", "postmortem_at", "postmortem_reminded_at",
    "customer_update_due_at", "platform", "channel", "thread", "card_message",
)


def _dt(value: datetime | str | None) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _to_incident(row: IncidentRow, actions: Sequence[ActionRow], tenants: Sequence[str] = ()) -> Incident:
    incident = Incident(
        number=row.number,
        status=Status(row.status),
        roles={Role(role): user for role, user in row.roles.items()},
        checklist=[
            ChecklistItem(number=item["number"], section=item["section"], text=item["text"],
                          checked_by=item.get("checked_by"), checked_at=_dt(item.get("checked_at")))
            for item in row.checklist
        ],
        actions=[
            ActionItem(number=a.number, text=a.text, owner=a.owner, due=a.due, created_by=a.created_by,
                       created_at=a.created_at, done_at=a.done_at, done_by=a.done_by,
                       overdue_reminded=a.overdue_reminded, issue=a.issue_number, issue_url=a.issue_url)
            for a in sorted(actions, key=lambda a: a.number)
        ],
        tenants=sorted(tenants),
        **{name: getattr(row, name) for name in _SCALARS},
    )
    return incident


def _row_values(incident: Incident) -> dict[str, Any]:
    values = {name: getattr(incident, name) for name in _SCALARS}
    values["status"] = incident.status.value
    values["roles"] = {role.value: user for role, user in incident.roles.items()}
    values["checklist"] = [
        {"number": item.number, "section": item.section, "text": item.text, "checked_by": item.checked_by,
         "checked_at": item.checked_at.isoformat() if item.checked_at else None}
        for item in incident.checklist
    ]
    return values


def _to_event(row: Any) -> TimelineEvent:
    """A TimelineEvent from a timeline row (ORM object or Core row: the same attribute names)."""
    return TimelineEvent(
        id=row.id, kind=EventKind(row.kind), author=row.author, text=row.text, occurred_at=row.occurred_at,
        recorded_at=row.recorded_at, source=row.source, message_ref=row.message_ref, pinned=row.pinned,
        deleted=row.deleted,
    )


def _timeline_values(number: int, event: TimelineEvent) -> dict[str, Any]:
    return {"incident_number": number, "kind": event.kind.value, "author": event.author, "text": event.text,
            "occurred_at": event.occurred_at, "recorded_at": event.recorded_at, "source": event.source,
            "message_ref": event.message_ref, "pinned": event.pinned, "deleted": event.deleted}


# Built once: statements compiled per call would cost more than the work they do on the hot paths.
_INSERT_TIMELINE = sa.insert(TimelineRow.__table__)
_NUMBER_OF_THREAD = sa.select(sa.func.max(IncidentRow.number)).where(
    IncidentRow.platform == sa.bindparam("platform"), IncidentRow.channel == sa.bindparam("channel"),
    IncidentRow.thread == sa.bindparam("thread"))
_NUMBER_OF_CHANNEL = sa.select(sa.func.max(IncidentRow.number)).where(
    IncidentRow.platform == sa.bindparam("platform"), IncidentRow.channel == sa.bindparam("channel"),
    IncidentRow.thread.is_(None))  # type: ignore[union-attr]

_INCIDENT = IncidentRow.__table__
_NEXT_NUMBER = (sa.update(CounterRow.__table__).where(CounterRow.__table__.c.name == _INCIDENT_COUNTER)
                .values(value=CounterRow.__table__.c.value + 1).returning(CounterRow.__table__.c.value))
_INSERT_INCIDENT = sa.insert(_INCIDENT)
# The SET clause comes from the parameters' keys (every scalar column), the row from `incident_key`.
_UPDATE_INCIDENT = sa.update(_INCIDENT).where(_INCIDENT.c.number == sa.bindparam("incident_key"))
_ATTACH_ROOM = (sa.update(_INCIDENT).where(_INCIDENT.c.number == sa.bindparam("incident_key"),
                                          _INCIDENT.c.channel.is_(None))
                .values(platform=sa.bindparam("to_platform"), channel=sa.bindparam("to_channel"),
                        thread=sa.bindparam("to_thread"), card_message=sa.bindparam("to_card")))
_ACTIONS_OF = select(ActionRow).where(ActionRow.incident_number == sa.bindparam("number"))
_TENANTS_OF = select(IncidentTenantRow.tenant).where(IncidentTenantRow.incident_number == sa.bindparam("number"))
_REMINDER = ReminderRow.__table__
_PENDING_REMINDERS = sa.select(_REMINDER.c.id, _REMINDER.c.kind, _REMINDER.c.subject, _REMINDER.c.due_at).where(
    _REMINDER.c.incident_number == sa.bindparam("number"), _REMINDER.c.status == "pending")
_DELETE_REMINDERS = sa.delete(_REMINDER).where(_REMINDER.c.id.in_(sa.bindparam("ids", expanding=True)))
_INSERT_REMINDERS = sa.insert(_REMINDER)
_TIMELINE = TimelineRow.__table__
_PENDING_REVISION = PendingRevisionRow.__table__
_HELD_REVISIONS = (sa.select(_PENDING_REVISION)
                   .where(_PENDING_REVISION.c.incident_number.in_(sa.bindparam("numbers", expanding=True)),
                          _PENDING_REVISION.c.message_ref.in_(sa.bindparam("refs", expanding=True)))
                   .order_by(_PENDING_REVISION.c.id))
_DROP_HELD = sa.delete(_PENDING_REVISION).where(_PENDING_REVISION.c.id.in_(sa.bindparam("ids", expanding=True)))
_TIMELINE_OF = (sa.select(_TIMELINE).where(_TIMELINE.c.incident_number == sa.bindparam("number"))
                .order_by(_TIMELINE.c.occurred_at, _TIMELINE.c.id))
_NEXT_DUE = sa.select(sa.func.min(_REMINDER.c.due_at)).where(_REMINDER.c.status == "pending")
_FOLLOWERS_OF = (select(FollowerRow.platform, FollowerRow.address)
                 .where(FollowerRow.incident_number == sa.bindparam("number")).order_by(FollowerRow.since))

_NEW_ROWS: dict[tuple[str, str, bool], Any] = {}


async def _run(session: AsyncSession, statement: Any, params: Any = None, *, fetch: str | None = None) -> Any:
    """A Core statement on the session's connection in one call into SQLAlchemy's synchronous core: no ORM
    execution machinery and one greenlet switch (these statements run on every command and chat message).
    `fetch`: "all" rows, "scalar", "scalars" (a list), or None (the row count)."""
    def execute(sync_session: Any) -> Any:
        result = sync_session.connection().execute(statement, params)
        if fetch == "all":
            return result.all()
        if fetch == "scalar":
            return result.scalar()
        if fetch == "scalars":
            return result.scalars().all()
        return result.rowcount

    return await session.run_sync(execute)


def _insert_quietly(session: AsyncSession, table: sa.Table, key: str) -> Any:
    """`INSERT … ON CONFLICT (key) DO NOTHING` without RETURNING: for many rows at once (executemany)."""
    return _insert_new(session, table, key, returning=False)


def _insert_new(session: AsyncSession, table: sa.Table, key: str, *, returning: bool = True) -> Any:
    """`INSERT … ON CONFLICT (key) DO NOTHING RETURNING key` for the session's dialect (SQLite and PostgreSQL):
    one statement instead of a savepoint around an insert that may fail, built once and executed with
    parameters. A row comes back only when it was inserted."""
    dialect = session.bind.dialect.name
    statement = _NEW_ROWS.get((dialect, table.name, returning))
    if statement is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(table).on_conflict_do_nothing(index_elements=[key])
        if returning:
            statement = statement.returning(table.c[key])
        _NEW_ROWS[(dialect, table.name, returning)] = statement
    return statement


class SqlIncidentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # What this unit of work read or wrote per incident (row values, tenant links, action rows), so that a
        # save writes only what changed instead of re-reading the children and rewriting the whole row.
        self._known: dict[int, tuple[dict[str, Any], set[str], dict[int, ActionRow]]] = {}

    def _remember(self, incident: Incident, actions: Sequence[ActionRow], tenants: Sequence[str]) -> Incident:
        self._known[incident.number] = (_row_values(incident), set(tenants), {a.number: a for a in actions})
        return incident

    async def next_number(self) -> int:
        # A row-locked increment in the declaring transaction: numbers stay unique and gapless, because a
        # rolled-back declare rolls its increment back too.
        value = await _run(self._session, _NEXT_NUMBER, fetch="scalar")
        if value is None:
            raise RuntimeError("incident counter row missing: run `warroom db upgrade`")
        return value

    async def add(self, incident: Incident) -> None:
        values = _row_values(incident)
        await _run(self._session, _INSERT_INCIDENT, {"number": incident.number, **values})
        self._known[incident.number] = (values, set(), {})
        await self._write_children(incident)

    async def save(self, incident: Incident) -> None:
        values = _row_values(incident)
        known = self._known.get(incident.number)
        if known is None or known[0] != values:  # a message captured into the timeline changes no column
            await _run(self._session, _UPDATE_INCIDENT, {"incident_key": incident.number, **values})
            if known is not None:
                self._known[incident.number] = (values, known[1], known[2])
        await self._write_children(incident)

    async def _write_children(self, incident: Incident) -> None:
        known = self._known.get(incident.number)
        if known is not None:
            linked, existing = known[1], known[2]
        else:
            linked = set((await self._session.exec(
                select(IncidentTenantRow.tenant).where(IncidentTenantRow.incident_number == incident.number))).all())
            existing = {
                row.number: row
                for row in (await self._session.exec(
                    select(ActionRow).where(ActionRow.incident_number == incident.number))).all()
            }
        added = False
        for tenant in incident.tenants:
            if tenant not in linked:
                self._session.add(IncidentTenantRow(incident_number=incident.number, tenant=tenant))
                linked.add(tenant)
                added = True
        for item in incident.actions:
            row = existing.get(item.number)
            if row is None:
                row = existing[item.number] = ActionRow(incident_number=incident.number, number=item.number,
                                                        text=item.text, created_by=item.created_by,
                                                        created_at=item.created_at)
            elif (row.text, row.owner, row.due, row.done_at, row.done_by, row.overdue_reminded, row.issue_number,
                  row.issue_url) == (item.text, item.owner, item.due, item.done_at, item.done_by,
                                     item.overdue_reminded, item.issue, item.issue_url):
                continue
            row.text, row.owner, row.due = item.text, item.owner, item.due
            row.done_at, row.done_by, row.overdue_reminded = item.done_at, item.done_by, item.overdue_reminded
            row.issue_number, row.issue_url = item.issue, item.issue_url
            self._session.add(row)
            added = True
        if added:
            await self._session.flush()
        await self.append_timeline([(incident.number, event) for event in incident.take_new_timeline()])

    async def _load(self, row: IncidentRow | None) -> Incident | None:
        if row is None:
            return None
        actions = (await self._session.exec(_ACTIONS_OF, params={"number": row.number})).all()
        tenants = (await self._session.exec(_TENANTS_OF, params={"number": row.number})).all()
        return self._remember(_to_incident(row, actions, tenants), actions, tenants)

    async def number_of_issue(self, issue: int) -> int | None:
        """The incident whose action item is code host issue `issue`, if any."""
        return (await self._session.exec(select(ActionRow.incident_number).where(
            ActionRow.issue_number == issue).limit(1))).first()

    async def get(self, number: int) -> Incident | None:
        return await self._load(await self._session.get(IncidentRow, number))

    async def get_by_room(self, room: Room) -> Incident | None:
        number = (await self.numbers_by_room([room])).get(room)
        return await self.get(number) if number is not None else None

    async def attach_room(self, number: int, *, platform: str, channel: str, thread: str | None,
                          card_message: str | None) -> None:
        """Record where an incident's room opened (once: a room never moves), without loading the incident."""
        await _run(self._session, _ATTACH_ROOM, {"incident_key": number, "to_platform": platform,
                                                 "to_channel": channel, "to_thread": thread, "to_card": card_message})
        self._known.pop(number, None)

    async def numbers_by_room(self, rooms: Collection[Room]) -> dict[Room, int]:
        """Which incident each room belongs to (the newest; in channel mode a room is a whole channel); rooms of
        no incident left out.
        One indexed lookup per distinct room: a batch of chat messages comes from a handful of rooms, and a
        statement without a variable-length IN list is compiled once and runs on the connection directly."""
        def lookup(sync_session: Any) -> dict[Room, int]:
            connection = sync_session.connection()
            found: dict[Room, int] = {}
            for room in rooms:
                if room.thread is None:
                    number = connection.execute(_NUMBER_OF_CHANNEL, {
                        "platform": room.platform, "channel": room.channel}).scalar()
                else:
                    number = connection.execute(_NUMBER_OF_THREAD, {
                        "platform": room.platform, "channel": room.channel, "thread": room.thread}).scalar()
                if number is not None:
                    found[room] = number
            return found

        return await self._session.run_sync(lookup)

    async def append_timeline(self, events: Sequence[tuple[int, TimelineEvent]]) -> None:
        """Add events to incidents' timelines without loading the incidents (chat messages, many at once)."""
        if events:
            await _run(self._session, _INSERT_TIMELINE, [_timeline_values(number, event) for number, event in events])

    async def get_many(self, numbers: Sequence[int]) -> dict[int, Incident]:
        """Several incidents in three queries (rows, action items, tenants), by number; unknown ones left out."""
        found: dict[int, Incident] = {}
        unique = sorted(set(numbers))
        for start in range(0, len(unique), 500):
            query = select(IncidentRow).where(IncidentRow.number.in_(unique[start:start + 500]))  # type: ignore[attr-defined]
            found.update((incident.number, incident) for incident in await self.load_many(query))
        return found

    async def list(self, *, open_only: bool) -> list[Incident]:
        query = select(IncidentRow).order_by(IncidentRow.number)
        if open_only:
            query = query.where(IncidentRow.status.in_([s.value for s in Status if s.is_open]))  # type: ignore[attr-defined]
        return await self.load_many(query)

    async def load_many(self, query: Any) -> list[Incident]:
        """Incidents for a select of IncidentRow, with their action items and tenants in two more queries."""
        rows = (await self._session.exec(query)).all()
        numbers = [row.number for row in rows]
        actions: dict[int, list[ActionRow]] = {n: [] for n in numbers}
        tenants: dict[int, list[str]] = {n: [] for n in numbers}
        if numbers:
            for action in (await self._session.exec(
                    select(ActionRow).where(ActionRow.incident_number.in_(numbers)))).all():  # type: ignore[attr-defined]
                actions[action.incident_number].append(action)
            for link in (await self._session.exec(select(IncidentTenantRow).where(
                    IncidentTenantRow.incident_number.in_(numbers)))).all():  # type: ignore[attr-defined]
                tenants[link.incident_number].append(link.tenant)
        return [self._remember(_to_incident(row, actions[row.number], tenants[row.number]), actions[row.number],
                               tenants[row.number]) for row in rows]

    async def timeline(self, number: int) -> list[TimelineEvent]:
        # Plain rows, not ORM objects: a post-mortem reads thousands of them.
        rows = await _run(self._session, _TIMELINE_OF, {"number": number}, fetch="all")
        return [_to_event(row) for row in rows]

    async def find_message(self, number: int, message_ref: str) -> TimelineEvent | None:
        row = (await self._session.exec(
            select(TimelineRow).where(TimelineRow.incident_number == number, TimelineRow.message_ref == message_ref)
            .order_by(TimelineRow.id).limit(1)  # type: ignore[arg-type]
        )).first()
        return _to_event(row) if row else None

    async def edit_message(self, event_id: int, *, text: str | None = None, deleted: bool | None = None,
                           pinned: bool | None = None) -> None:
        values = {k: v for k, v in (("text", text), ("deleted", deleted), ("pinned", pinned)) if v is not None}
        if values:
            await self._session.exec(sa.update(TimelineRow).where(TimelineRow.id == event_id).values(**values))

    async def revise_message(self, number: int, message_ref: str, revision: MessageRevision) -> bool:
        """Apply an edit/delete/pin to the message's timeline entry; False when it is not captured (yet)."""
        # `MessageRevision.applied_to` as one UPDATE on the row's current values, not read-modify-write: two
        # revisions applied at once (a delete and a pin racing on PostgreSQL) cannot overwrite each other.
        values: dict[str, Any] = {}
        if revision.deleted:
            values.update(deleted=True, text="")
        elif revision.text is not None:
            values["text"] = sa.case((_TIMELINE.c.deleted, _TIMELINE.c.text), else_=sa.literal(revision.text))
        if revision.pinned:
            values["pinned"] = True
        where = (_TIMELINE.c.incident_number == number) & (_TIMELINE.c.message_ref == message_ref)
        if not values:
            return bool(await _run(self._session, sa.select(sa.func.count()).where(where), fetch="scalar"))
        return bool(await _run(self._session, sa.update(_TIMELINE).where(where).values(**values)))

    async def hold_revision(self, number: int, message_ref: str, revision: MessageRevision, now: datetime) -> None:
        """Keep a revision whose message is not captured yet (see `apply_held_revisions`)."""
        await _run(self._session, sa.insert(_PENDING_REVISION), {
            "incident_number": number, "message_ref": message_ref, "text": revision.text,
            "deleted": revision.deleted, "pinned": revision.pinned, "received_at": now})

    async def apply_held_revisions(self, messages: Collection[tuple[int, str]]) -> int:
        """Apply, in arrival order, the held revisions of these (incident number, message ref) whose message is
        now captured, and drop them. How many were applied."""
        if not messages:
            return 0
        numbers = sorted({number for number, _ in messages})
        refs = sorted({ref for _, ref in messages})
        held = await _run(self._session, _HELD_REVISIONS, {"numbers": numbers, "refs": refs}, fetch="all")
        applied = []
        for row in held:
            if (row.incident_number, row.message_ref) not in messages:
                continue
            revision = MessageRevision(text=row.text, deleted=row.deleted, pinned=row.pinned)
            if await self.revise_message(row.incident_number, row.message_ref, revision):
                applied.append(row.id)
        if applied:
            await _run(self._session, _DROP_HELD, {"ids": applied})
        return len(applied)


class SqlReminderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def replace_pending(self, incident_number: int, plans: Sequence[ReminderPlan], now: datetime) -> None:
        """Make the incident's pending reminders exactly `plans`; unchanged ones keep their rows."""
        pending = await _run(self._session, _PENDING_REMINDERS, {"number": incident_number}, fetch="all")
        wanted = {(plan.kind, plan.subject, plan.due_at) for plan in plans}
        kept = set()
        dropped = []
        for row_id, kind, subject, due_at in pending:
            key = (kind, subject, due_at)
            if key in wanted and key not in kept:
                kept.add(key)
            else:
                dropped.append(row_id)
        if dropped:
            await _run(self._session, _DELETE_REMINDERS, {"ids": dropped})
        added = [{"incident_number": incident_number, "kind": kind, "subject": subject, "due_at": due_at,
                  "status": "pending", "created_at": now}
                 for kind, subject, due_at in sorted(wanted - kept, key=lambda k: (k[2], k[0], k[1]))]
        if added:
            await _run(self._session, _INSERT_REMINDERS, added)

    async def claim_due(self, now: datetime, limit: int) -> list[DueReminder]:
        """Claim due reminders for this transaction. The conditional UPDATE (status still 'pending') is what
        makes a reminder fire once; on PostgreSQL SKIP LOCKED also lets replicas claim disjoint batches."""
        candidates = (
            select(ReminderRow.id)
            .where(ReminderRow.status == "pending", ReminderRow.due_at <= now)
            .order_by(ReminderRow.due_at, ReminderRow.id)  # type: ignore[arg-type]
            .limit(limit)
        )
        if self._session.bind.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = list((await self._session.exec(candidates)).all())
        if not ids:
            return []
        result = await self._session.exec(
            sa.update(ReminderRow)
            .where(ReminderRow.id.in_(ids), ReminderRow.status == "pending")  # type: ignore[union-attr]
            .values(status="fired", fired_at=now)
            .returning(ReminderRow.id, ReminderRow.incident_number, ReminderRow.kind, ReminderRow.due_at,
                       ReminderRow.subject)
        )
        claimed = [DueReminder(id=r[0], incident_number=r[1], kind=r[2], due_at=r[3], subject=r[4]) for r in result]
        return sorted(claimed, key=lambda r: (r.due_at, r.id))

    async def next_due(self) -> datetime | None:
        """When the earliest pending reminder is due (None when none is pending)."""
        return await _run(self._session, _NEXT_DUE, fetch="scalar")

    async def pending(self, incident_number: int | None = None) -> list[ReminderPlan]:
        query = select(ReminderRow).where(ReminderRow.status == "pending")
        if incident_number is not None:
            query = query.where(ReminderRow.incident_number == incident_number)
        rows = (await self._session.exec(query.order_by(ReminderRow.due_at))).all()  # type: ignore[arg-type]
        return [ReminderPlan(kind=row.kind, due_at=row.due_at, subject=row.subject) for row in rows]  # type: ignore[arg-type]


class SqlDeliveryLog:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def first_time(self, delivery_id: str, now: datetime) -> bool:
        return delivery_id in await self.first_times([delivery_id], now)

    async def first_times(self, delivery_ids: Collection[str], now: datetime) -> set[str]:
        """Record several delivery ids at once; returns those seen for the first time."""
        wanted = {delivery_id[:200]: delivery_id for delivery_id in delivery_ids}
        if not wanted:
            return set()
        inserted = await _run(self._session, _insert_new(self._session, DeliveryRow.__table__, "delivery_id"),
                              [{"delivery_id": key, "received_at": now} for key in wanted], fetch="scalars")
        return {wanted[key] for key in inserted}


@dataclass(frozen=True)
class OutboxEntry:
    """An outbox row as `warroom outbox list` shows it."""

    id: int
    status: str
    platform: str
    operation: str
    incident_number: int | None
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    summary: str


_NO_SYNC = {"synchronize_session": False}  # no outbox rows are loaded in the session these updates run in
# The claim's statements are built once (parameters: now, limit, ids, until): building them is most of a
# claim's cost, and the outbox is claimed after every change.
_READY = sa.or_(
    sa.and_(OutboxRow.status == "pending", OutboxRow.next_attempt_at <= sa.bindparam("now")),
    # A sender that crashed mid-delivery leaves 'sending' rows; once their lease ends they are retried.
    sa.and_(OutboxRow.status == "sending", OutboxRow.claimed_until < sa.bindparam("now")),  # type: ignore[operator]
)
_EARLIER = aliased(OutboxRow)
# Per incident only the oldest waiting message is deliverable, so a thread reads in the order things
# happened (and posts wait for the room they go into).
_BLOCKED = sa.exists().where(_EARLIER.incident_number == OutboxRow.incident_number, _EARLIER.id < OutboxRow.id,
                             _EARLIER.status.in_(("pending", "sending")))
_CLAIMABLE = (
    select(OutboxRow.id, OutboxRow.status, OutboxRow.incident_number)
    .where(_READY, sa.or_(OutboxRow.incident_number.is_(None), ~_BLOCKED))  # type: ignore[union-attr]
    .order_by(OutboxRow.id).limit(sa.bindparam("limit"))  # type: ignore[arg-type]
)
_CLAIMABLE_LOCKED = _CLAIMABLE.with_for_update(skip_locked=True, of=OutboxRow)  # replicas claim disjoint rows
_CLAIM = (
    sa.update(OutboxRow.__table__).where(OutboxRow.__table__.c.id.in_(sa.bindparam("ids", expanding=True)), _READY)
    .values(status="sending", claimed_until=sa.bindparam("until"), claimed_by=sa.bindparam("by"))
    .returning(*OutboxRow.__table__.columns)
)
# The waiting messages of the incidents whose oldest one was claimed: the ready ones right behind it go with it.
_WAITING_BEHIND = (
    select(OutboxRow.id, OutboxRow.incident_number, OutboxRow.status, OutboxRow.next_attempt_at,
           OutboxRow.claimed_until)
    .where(OutboxRow.incident_number.in_(sa.bindparam("numbers", expanding=True)),  # type: ignore[union-attr]
           OutboxRow.status.in_(("pending", "sending")))  # type: ignore[attr-defined]
    .order_by(OutboxRow.incident_number, OutboxRow.id)  # type: ignore[arg-type]
)
_WAITING_BEHIND_LOCKED = _WAITING_BEHIND.with_for_update(of=OutboxRow)
_CHAIN_LIMIT = 50
_OUTBOX = OutboxRow.__table__
# Core statements on the table (not the ORM entity): executed with a list of parameter sets they are one
# executemany, which the ORM would turn into a bulk update by primary key.
_DELIVERED = (
    sa.update(_OUTBOX).where(_OUTBOX.c.id == sa.bindparam("item_id"))
    .values(status="delivered", delivered_at=sa.bindparam("at"), platform_message_id=sa.bindparam("message_id"),
            claimed_until=None, attempts=_OUTBOX.c.attempts + 1)
)
_RELEASE = (
    sa.update(_OUTBOX).where(_OUTBOX.c.id.in_(sa.bindparam("ids", expanding=True)), _OUTBOX.c.status == "sending")
    .values(status="pending", claimed_until=None)
)


def _claim_rows(connection: Any, *, now: datetime, limit: int, lease: timedelta, postgres: bool,
                by: str | None = None) -> tuple[list[Any], set[int]]:
    found = connection.execute(_CLAIMABLE_LOCKED if postgres else _CLAIMABLE, {"now": now, "limit": limit}).all()
    ids = [row_id for row_id, _, _ in found]
    reclaimed = {row_id for row_id, status, _ in found if status == "sending"}
    if not ids:
        return [], reclaimed
    heads = {number: row_id for row_id, _, number in found if number is not None}
    if heads:
        # Only the oldest waiting message of an incident can be claimed by anyone (on PostgreSQL under SKIP
        # LOCKED), so the ones behind a head we hold are ours to take: no other sender can get there.
        behind = connection.execute(_WAITING_BEHIND_LOCKED if postgres else _WAITING_BEHIND,
                                    {"numbers": list(heads)}).all()
        taken: dict[int, int] = {}
        stopped: set[int] = set()
        for row_id, number, status, next_attempt_at, claimed_until in behind:
            if row_id <= heads[number] or number in stopped:
                continue
            ready = (next_attempt_at <= now) if status == "pending" else (
                claimed_until is not None and claimed_until < now)
            if not ready or taken.get(number, 0) >= _CHAIN_LIMIT:
                stopped.add(number)  # order: nothing after a message that must wait
                continue
            taken[number] = taken.get(number, 0) + 1
            ids.append(row_id)
            if status == "sending":
                reclaimed.add(row_id)
    rows = connection.execute(_CLAIM, {"ids": ids, "now": now, "until": now + lease, "by": by}).all()
    return sorted(rows, key=lambda r: r.id), reclaimed


class SqlOutboxRepository:
    _WAITING = ("pending", "sending")

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._queued: list[dict[str, Any]] = []

    async def enqueue(self, outbound: Outbound, now: datetime) -> None:
        """Queue a message in this transaction. Rows are written together (one executemany) before the
        transaction commits or anything reads the outbox in it; a command queues several."""
        values = {
            "dedupe_key": outbound.dedupe_key, "platform": outbound.platform, "operation": outbound.operation,
            "incident_number": outbound.incident_number,
            "room_channel": outbound.room.channel if outbound.room else None,
            "room_thread": outbound.room.thread if outbound.room else None,
            "message": message_to_json(outbound.message), "status": "pending", "attempts": 0,
            "next_attempt_at": now, "claimed_until": None, "delivered_at": None, "platform_message_id": None,
            "last_error": None, "created_at": now, "customer": outbound.customer, "work": outbound.work,
            "page": outbound.page,
        }
        self._queued.append(values)

    async def flush(self) -> int:
        """Write the queued rows; returns how many were queued."""
        if not self._queued:
            return 0
        queued, self._queued = self._queued, []
        # Same dedupe key already queued: one message, not two.
        await _run(self._session, _insert_quietly(self._session, OutboxRow.__table__, "dedupe_key"), queued)
        return len(queued)

    async def claim(self, now: datetime, limit: int, lease: timedelta, *, by: str | None = None
                    ) -> list[OutboxItem]:
        """Claim what is deliverable now: per incident its oldest waiting message and the ready ones right
        behind it (up to the first that is not ready), so the sender can send them in order in one round;
        messages without an incident on their own. Claimed rows are 'sending' until their lease ends."""
        await self.flush()
        postgres = self._session.bind.dialect.name == "postgresql"
        # The claim's three statements in one call into SQLAlchemy's synchronous core (one greenlet switch,
        # not one per statement): the outbox is claimed after every change.
        rows, reclaimed = await self._session.run_sync(
            lambda session: _claim_rows(session.connection(), now=now, limit=limit, lease=lease, postgres=postgres,
                                        by=by))
        return [self._item(row, reclaimed=row.id in reclaimed) for row in rows]

    async def find_sent(self, *, platform: str, platform_message_id: str) -> Outbound | None:
        """The message that was delivered as `platform_message_id` (to act on a later failure report)."""
        await self.flush()
        row = (await self._session.exec(select(OutboxRow).where(
            OutboxRow.platform == platform, OutboxRow.platform_message_id == platform_message_id,
            OutboxRow.status == "delivered").limit(1))).first()
        return self._item(row).outbound if row else None

    async def release_claims(self, now: datetime, *, by: str | None = None) -> int:
        """Make 'sending' rows claimable now: every one (`by` None: a process that knows no other sender is
        alive, SQLite's single scheduler at start-up), or those claimed by instance `by` (a replica restarting
        under the same instance id: what its previous incarnation claimed has no live sender)."""
        await self.flush()
        query = sa.update(OutboxRow).where(OutboxRow.status == "sending")
        if by is not None:
            query = query.where(OutboxRow.claimed_by == by)
        result = await self._session.exec(query.values(claimed_until=now - timedelta(seconds=1)))
        return result.rowcount

    @staticmethod
    def _item(row: Any, reclaimed: bool = False) -> OutboxItem:
        """An OutboxItem from an outbox row (ORM object or Core row: the same attribute names)."""
        room = Room(row.platform, row.room_channel, row.room_thread) if row.room_channel else None
        outbound = Outbound(platform=row.platform, operation=row.operation, message=message_from_json(row.message),  # type: ignore[arg-type]
                            dedupe_key=row.dedupe_key, incident_number=row.incident_number, room=room,
                            customer=row.customer, work=row.work, page=row.page)
        return OutboxItem(id=row.id, outbound=outbound, attempts=row.attempts, reclaimed=reclaimed)  # type: ignore[arg-type]

    async def delivered_many(self, sent: Sequence[tuple[int, str | None]], now: datetime) -> None:
        """Mark messages delivered: (outbox id, the platform's id for the message)."""
        if sent:
            await _run(self._session, _DELIVERED, [{"item_id": item_id, "at": now, "message_id": message_id}
                                                   for item_id, message_id in sent])

    async def release(self, ids: Sequence[int]) -> None:
        """Put claimed messages back unsent (not an attempt): an earlier message of their incident failed."""
        if ids:
            await _run(self._session, _RELEASE, {"ids": list(ids)})

    async def retry_later(self, item_id: int, at: datetime, error: str, *, count_attempt: bool = True) -> None:
        await self._session.exec(sa.update(OutboxRow).where(OutboxRow.id == item_id).execution_options(
            **_NO_SYNC).values(status="pending", next_attempt_at=at, last_error=error[:1000], claimed_until=None,
            attempts=OutboxRow.attempts + (1 if count_attempt else 0)))

    async def give_up(self, item_id: int, now: datetime, error: str) -> None:
        await self._session.exec(sa.update(OutboxRow).where(OutboxRow.id == item_id).execution_options(
            **_NO_SYNC).values(status="failed", last_error=error[:1000], claimed_until=None,
                               attempts=OutboxRow.attempts + 1))

    async def entries(self, statuses: tuple[str, ...]) -> list[OutboxEntry]:
        await self.flush()
        rows = (await self._session.exec(
            select(OutboxRow).where(OutboxRow.status.in_(statuses)).order_by(OutboxRow.id))).all()  # type: ignore[attr-defined]
        return [OutboxEntry(id=r.id, status=r.status, platform=r.platform, operation=r.operation,  # type: ignore[arg-type]
                            incident_number=r.incident_number, attempts=r.attempts,
                            next_attempt_at=r.next_attempt_at, last_error=r.last_error, created_at=r.created_at,
                            summary=(r.message.get("title") or r.message.get("text") or "")[:80])
                for r in rows]

    async def requeue_failed(self, now: datetime, ids: list[int] | None = None) -> int:
        await self.flush()
        query = sa.update(OutboxRow).where(OutboxRow.status == "failed")
        if ids:
            query = query.where(OutboxRow.id.in_(ids))  # type: ignore[union-attr]
        result = await self._session.exec(query.values(status="pending", attempts=0, next_attempt_at=now,
                                                       last_error=None))
        return result.rowcount

    async def counts(self) -> dict[str, int]:
        await self.flush()
        rows = (await self._session.exec(
            select(OutboxRow.status, sa.func.count()).group_by(OutboxRow.status))).all()
        return {status: count for status, count in rows}


class ContactExists(ValueError):
    pass


def _contact(row: ContactRow) -> Contact:
    return Contact(id=row.id, tenant=row.tenant, name=row.name, phone=row.phone,  # type: ignore[arg-type]
                   opted_out_at=row.opted_out_at, last_inbound_at=row.last_inbound_at,
                   window_closed_at=row.window_closed_at)


def _recipient(row: BriefRecipientRow) -> Recipient:
    return Recipient(id=row.id, brief_id=row.brief_id, contact_id=row.contact_id, tenant=row.tenant,  # type: ignore[arg-type]
                     name=row.name, phone=row.phone, status=row.status, message_id=row.message_id, via=row.via,
                     error=row.error)


class SqlCustomerRepository:
    """Contacts by tenant, briefs and their per-recipient delivery state."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_contact(self, *, tenant: str, name: str, phone: str, now: datetime) -> Contact:
        row = ContactRow(tenant=tenant, name=name, phone=phone, created_at=now)
        try:
            async with self._session.begin_nested():
                self._session.add(row)
                await self._session.flush()
        except IntegrityError:
            raise ContactExists(f"{phone} is already a contact of {tenant}") from None
        return _contact(row)

    async def remove_contact(self, *, phone: str, tenant: str | None, now: datetime) -> int:
        """Remove a number. One that already received briefs is kept, opted out, because the incident
        timeline and delivery records point at it."""
        query = select(ContactRow).where(ContactRow.phone == phone)
        if tenant:
            query = query.where(ContactRow.tenant == tenant)
        removed = 0
        for row in (await self._session.exec(query)).all():
            used = (await self._session.exec(select(BriefRecipientRow.id).where(
                BriefRecipientRow.contact_id == row.id).limit(1))).first()
            if used is None:
                await self._session.delete(row)
            else:
                row.opted_out_at = row.opted_out_at or now
                self._session.add(row)
            removed += 1
        await self._session.flush()
        return removed

    async def contacts(self, tenant: str | None = None) -> list[Contact]:
        query = select(ContactRow).order_by(ContactRow.tenant, ContactRow.name, ContactRow.id)  # type: ignore[arg-type]
        if tenant:
            query = query.where(ContactRow.tenant == tenant)
        return [_contact(r) for r in (await self._session.exec(query)).all()]

    async def tenants(self) -> list[str]:
        return list((await self._session.exec(select(ContactRow.tenant).distinct().order_by(ContactRow.tenant))).all())

    async def contacts_by_phone(self, phone: str) -> list[Contact]:
        rows = (await self._session.exec(select(ContactRow).where(ContactRow.phone == phone))).all()
        return [_contact(r) for r in rows]

    async def contact(self, contact_id: int) -> Contact | None:
        row = await self._session.get(ContactRow, contact_id)
        return _contact(row) if row else None

    async def mark_inbound(self, *, phone: str, at: datetime) -> int:
        result = await self._session.exec(sa.update(ContactRow).where(ContactRow.phone == phone)
                                          .values(last_inbound_at=at))
        return result.rowcount

    async def close_window(self, *, phone: str, at: datetime) -> int:
        """The platform refused free text to `phone` at `at`: templates only until the customer writes again."""
        result = await self._session.exec(sa.update(ContactRow).where(
            ContactRow.phone == phone,
            sa.or_(ContactRow.window_closed_at.is_(None), ContactRow.window_closed_at < at))  # type: ignore[union-attr,operator]
            .values(window_closed_at=at))
        return result.rowcount

    async def keep_early_status(self, event: CustomerMessageStatus, now: datetime) -> None:
        """A status for a message id no send has recorded yet: kept until one does."""
        self._session.add(EarlyStatusRow(message_id=event.message_id[:128], status=event.status[:16], at=event.at,
                                         phone=event.phone, error_code=event.error_code,
                                         error_title=(event.error_title or None) and event.error_title[:500],
                                         window_closed=event.window_closed, received_at=now))
        await self._session.flush()

    async def take_early_statuses(self, message_id: str | None = None) -> list[CustomerMessageStatus]:
        """Remove and return the kept statuses of `message_id`, or (None) of every message id a send has
        recorded by now (a brief's recipient or a delivered outbox row), oldest first."""
        query = select(EarlyStatusRow).order_by(EarlyStatusRow.id)  # type: ignore[arg-type]
        if message_id is not None:
            query = query.where(EarlyStatusRow.message_id == message_id)
        else:
            known = sa.or_(
                sa.exists().where(BriefRecipientRow.message_id == EarlyStatusRow.message_id),
                sa.exists().where(OutboxRow.platform_message_id == EarlyStatusRow.message_id,
                                  OutboxRow.status == "delivered"))
            query = query.where(known)
        if self._session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # replicas sweeping at once take disjoint rows
        rows = (await self._session.exec(query)).all()
        if not rows:
            return []
        await self._session.exec(sa.delete(EarlyStatusRow).where(
            EarlyStatusRow.id.in_([r.id for r in rows])))  # type: ignore[union-attr]
        return [CustomerMessageStatus(message_id=r.message_id, status=r.status, at=r.at, phone=r.phone,
                                      error_code=r.error_code, error_title=r.error_title,
                                      window_closed=r.window_closed) for r in rows]

    async def set_opt_out(self, *, phone: str, at: datetime | None) -> int:
        result = await self._session.exec(sa.update(ContactRow).where(ContactRow.phone == phone)
                                          .values(opted_out_at=at))
        return result.rowcount

    async def create_brief(self, *, incident_number: int, template: str, kind: str, parameters: dict[str, str],
                           text: str, target: str, eta_minutes: int | None, created_by: str, now: datetime,
                           contacts: list[Contact]) -> Brief:
        row = BriefRow(incident_number=incident_number, template=template, kind=kind, parameters=parameters,
                       text=text, target=target, eta_minutes=eta_minutes, created_by=created_by, created_at=now)
        self._session.add(row)
        await self._session.flush()
        for contact in contacts:
            self._session.add(BriefRecipientRow(brief_id=row.id, contact_id=contact.id, tenant=contact.tenant,  # type: ignore[arg-type]
                                                name=contact.name, phone=contact.phone,
                                                status="skipped" if contact.opted_out else "queued",
                                                error="opted out" if contact.opted_out else None, updated_at=now))
        await self._session.flush()
        return self._brief(row)

    @staticmethod
    def _brief(row: BriefRow) -> Brief:
        return Brief(id=row.id, incident_number=row.incident_number, template=row.template, kind=row.kind,  # type: ignore[arg-type]
                     parameters=row.parameters, text=row.text, target=row.target, eta_minutes=row.eta_minutes,
                     status=row.status, created_by=row.created_by)

    async def brief(self, brief_id: int) -> Brief | None:
        row = await self._session.get(BriefRow, brief_id)
        return self._brief(row) if row else None

    async def mark_brief_sent(self, brief_id: int, now: datetime) -> bool:
        """Preview → sent, once: a double-clicked Send button sends one brief."""
        result = await self._session.exec(sa.update(BriefRow).where(BriefRow.id == brief_id,
                                                                    BriefRow.status == "preview")
                                          .values(status="sent", sent_at=now))
        return result.rowcount == 1

    async def recipients(self, brief_id: int) -> list[Recipient]:
        rows = (await self._session.exec(select(BriefRecipientRow).where(BriefRecipientRow.brief_id == brief_id)
                                         .order_by(BriefRecipientRow.id))).all()  # type: ignore[arg-type]
        return [_recipient(r) for r in rows]

    async def brief_deliveries(self, incident_number: int) -> list[tuple[Brief, list[Recipient]]]:
        """The incident's sent briefs (previews left out), each with its recipients' delivery state."""
        briefs = (await self._session.exec(select(BriefRow).where(
            BriefRow.incident_number == incident_number, BriefRow.status == "sent").order_by(BriefRow.id))).all()  # type: ignore[arg-type]
        return [(self._brief(row), await self.recipients(row.id)) for row in briefs]  # type: ignore[arg-type]

    async def recipient(self, recipient_id: int) -> Recipient | None:
        row = await self._session.get(BriefRecipientRow, recipient_id)
        return _recipient(row) if row else None

    async def recipient_by_message(self, message_id: str) -> Recipient | None:
        row = (await self._session.exec(select(BriefRecipientRow).where(
            BriefRecipientRow.message_id == message_id))).first()
        return _recipient(row) if row else None

    async def update_recipient(self, recipient_id: int, *, now: datetime, status: str,
                               message_id: str | None = None, via: str | None = None,
                               error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "updated_at": now, "error": error}
        if message_id is not None:
            values["message_id"] = message_id
        if via is not None:
            values["via"] = via
        await self._session.exec(sa.update(BriefRecipientRow).where(BriefRecipientRow.id == recipient_id)
                                 .values(**values))

    async def latest_open_incident_for(self, tenants: list[str]) -> int | None:
        if not tenants:
            return None
        open_statuses = [s.value for s in Status if s.is_open]
        row = (await self._session.exec(
            select(IncidentRow.number).join(IncidentTenantRow, IncidentTenantRow.incident_number == IncidentRow.number)
            .where(IncidentTenantRow.tenant.in_(tenants), IncidentRow.status.in_(open_statuses))  # type: ignore[attr-defined]
            .order_by(IncidentRow.number.desc()).limit(1))).first()  # type: ignore[union-attr]
        return row


def _operator(row: OperatorRow) -> Operator:
    return Operator(phone=row.phone, name=row.name, current_incident=row.current_incident,
                    from_environment=row.source == "env")


class SqlOperatorRepository:
    """Operators (allow-listed WhatsApp numbers) and incident followers."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # Followers per incident as read in this transaction: every message queued asks, and a declare or a
        # reminder round queues several for the same incident.
        self._followers: dict[int, list[tuple[str, str]]] = {}

    async def add(self, *, phone: str, name: str, now: datetime, source: str = "cli") -> bool:
        row = await self._session.get(OperatorRow, phone)
        if row is not None:
            if source == "env" and row.source != "env":  # the list now vouches for it: it follows the list
                row.source = "env"
                self._session.add(row)
            return False
        self._session.add(OperatorRow(phone=phone, name=name, added_at=now, source=source))
        await self._session.flush()
        return True

    async def remove(self, phone: str) -> bool:
        """Withdraw a number: it stops following incidents and what is still queued for it is not sent."""
        result = await self._session.exec(sa.delete(OperatorRow).where(OperatorRow.phone == phone))
        if result.rowcount == 0:
            return False
        await self._session.exec(sa.delete(FollowerRow).where(FollowerRow.platform == "whatsapp",
                                                              FollowerRow.address == phone))
        await self._session.exec(
            sa.update(OutboxRow)
            .where(OutboxRow.platform == "whatsapp", OutboxRow.room_channel == phone,
                   OutboxRow.status.in_(("pending", "failed")))
            .values(status="cancelled", last_error="operator removed"))
        self._followers.clear()
        return True

    async def listed_elsewhere(self, listed: set[str]) -> list[str]:
        """Numbers that came from the environment's list but are no longer in it."""
        rows = await self._session.exec(select(OperatorRow.phone).where(OperatorRow.source == "env"))
        return [phone for phone in rows.all() if phone not in listed]

    async def get(self, phone: str) -> Operator | None:
        row = await self._session.get(OperatorRow, phone)
        return _operator(row) if row else None

    async def all(self) -> list[Operator]:
        rows = (await self._session.exec(select(OperatorRow).order_by(OperatorRow.name))).all()
        return [_operator(r) for r in rows]

    async def set_current(self, phone: str, number: int) -> None:
        await self._session.exec(sa.update(OperatorRow).where(OperatorRow.phone == phone)
                                 .values(current_incident=number))

    async def follow(self, *, number: int, platform: str, address: str, now: datetime) -> bool:
        self._followers.pop(number, None)
        key = (number, platform, address)
        if await self._session.get(FollowerRow, key) is not None:
            return False
        self._session.add(FollowerRow(incident_number=number, platform=platform, address=address, since=now))
        await self._session.flush()
        return True

    async def unfollow(self, *, number: int, platform: str, address: str) -> bool:
        self._followers.pop(number, None)
        result = await self._session.exec(sa.delete(FollowerRow).where(
            FollowerRow.incident_number == number, FollowerRow.platform == platform, FollowerRow.address == address))
        return result.rowcount > 0

    async def followers(self, number: int) -> list[tuple[str, str]]:
        if number not in self._followers:
            rows = await _run(self._session, _FOLLOWERS_OF, {"number": number}, fetch="all")
            self._followers[number] = [(platform, address) for platform, address in rows]
        return list(self._followers[number])


def _group(row: AlertGroupRow) -> AlertGroupRecord:
    return AlertGroupRecord(id=row.id, key=row.key, source=row.source, state=row.state, status=row.status,  # type: ignore[arg-type]
                            title=row.title, incident_number=row.incident_number, rule=row.rule,
                            severity=row.severity, auto_resolve=row.auto_resolve, labels=dict(row.labels or {}),
                            proposed_at=row.proposed_at, updated_at=row.updated_at)


class SqlAlertRepository:
    """Alert groups and their alerts. The unique group key and the compare-and-set on its incident make two
    concurrent deliveries of one alert declare once: the loser's transaction gets ConcurrentChange and retries."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def group(self, key: str) -> AlertGroupRecord | None:
        row = (await self._session.exec(select(AlertGroupRow).where(AlertGroupRow.key == key))).first()
        return _group(row) if row else None

    async def group_by_id(self, group_id: int) -> AlertGroupRecord | None:
        row = await self._session.get(AlertGroupRow, group_id)
        return _group(row) if row else None

    async def add_group(self, *, key: str, source: str, state: str, status: str, title: str,
                        incident_number: int | None, rule: str | None, severity: str | None, auto_resolve: bool,
                        labels: dict, now: datetime) -> AlertGroupRecord:
        row = AlertGroupRow(key=key, source=source, state=state, status=status, title=title,
                            incident_number=incident_number, rule=rule, severity=severity, auto_resolve=auto_resolve,
                            labels=labels, created_at=now, updated_at=now,
                            proposed_at=now if state == "proposed" else None)
        try:
            async with self._session.begin_nested():
                self._session.add(row)
                await self._session.flush()
        except IntegrityError:
            raise ConcurrentChange(f"alert group {key!r} was added by another request") from None
        return _group(row)

    async def update_group(self, group_id: int, *, expected_incident: int | None, now: datetime,
                           **values: object) -> None:
        incident_is = (AlertGroupRow.incident_number.is_(None) if expected_incident is None  # type: ignore[union-attr]
                       else AlertGroupRow.incident_number == expected_incident)
        result = await self._session.exec(sa.update(AlertGroupRow).where(AlertGroupRow.id == group_id, incident_is)
                                          .values(updated_at=now, **values))
        if result.rowcount != 1:
            raise ConcurrentChange(f"alert group {group_id} changed under this request")

    async def alerts(self, group_id: int) -> dict[str, AlertRecord]:
        rows = (await self._session.exec(select(AlertRow).where(AlertRow.group_id == group_id))).all()
        return {row.fingerprint: AlertRecord(fingerprint=row.fingerprint, status=row.status, title=row.title,
                                             first_seen_at=row.first_seen_at, last_seen_at=row.last_seen_at,
                                             notifications=row.notifications) for row in rows}

    async def record_alert(self, group_id: int, *, fingerprint: str, status: str, title: str, labels: dict,
                           now: datetime) -> None:
        row = (await self._session.exec(select(AlertRow).where(AlertRow.group_id == group_id,
                                                               AlertRow.fingerprint == fingerprint))).first()
        if row is None:
            row = AlertRow(group_id=group_id, fingerprint=fingerprint, status=status, title=title, labels=labels,
                           first_seen_at=now, last_seen_at=now, notifications=1)
        else:
            row.status, row.title, row.labels, row.last_seen_at = status, title, labels, now
            row.notifications += 1
        self._session.add(row)
        await self._session.flush()

    async def forget_alerts(self, group_id: int) -> None:
        await self._session.exec(sa.delete(AlertRow).where(AlertRow.group_id == group_id))


class SqlScheduleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def due_at(self, name: str) -> datetime | None:
        row = await self._session.get(ScheduleRow, name)
        return row.due_at if row else None

    async def create(self, name: str, *, due_at: datetime) -> bool:
        try:
            async with self._session.begin_nested():
                self._session.add(ScheduleRow(name=name, due_at=due_at))
                await self._session.flush()
        except IntegrityError:
            return False
        return True

    async def move(self, name: str, *, seen_due: datetime, next_due: datetime, ran_at: datetime | None) -> bool:
        values: dict[str, Any] = {"due_at": next_due}
        if ran_at is not None:
            values["last_run_at"] = ran_at
        # The conditional UPDATE is the claim: on PostgreSQL a second replica blocks on the row and then finds
        # due_at changed; on SQLite the write lock (BEGIN IMMEDIATE) serialises the two.
        result = await self._session.exec(sa.update(ScheduleRow).where(ScheduleRow.name == name,
                                                                       ScheduleRow.due_at == seen_due)
                                          .values(**values))
        return result.rowcount == 1


_OPEN = [s.value for s in Status if s.is_open]


class SqlReportRepository:
    def __init__(self, session: AsyncSession, incidents: SqlIncidentRepository) -> None:
        self._session = session
        self._incidents = incidents

    async def declared_since(self, since: datetime) -> list[Incident]:
        return await self._incidents.load_many(
            select(IncidentRow).where(IncidentRow.declared_at >= since).order_by(IncidentRow.number))

    async def severity_changes(self, numbers: Sequence[int]) -> dict[int, list[TimelineEvent]]:
        """The severity-change timeline events of these incidents, in time order."""
        found: dict[int, list[TimelineEvent]] = {number: [] for number in numbers}
        if not numbers:
            return found
        rows = await _run(self._session, sa.select(_TIMELINE).where(
            _TIMELINE.c.incident_number.in_(list(numbers)), _TIMELINE.c.kind == EventKind.SEVERITY_CHANGED.value)
            .order_by(_TIMELINE.c.occurred_at, _TIMELINE.c.id), fetch="all")
        for row in rows:
            found[row.incident_number].append(_to_event(row))
        return found

    async def for_digest(self, *, since: datetime, postmortem_severities: Sequence[str]) -> list[Incident]:
        dated_actions = sa.exists().where(ActionRow.incident_number == IncidentRow.number, ActionRow.done_at.is_(None),  # type: ignore[union-attr]
                                          ActionRow.due.is_not(None))  # type: ignore[union-attr]
        conditions = [
            IncidentRow.status.in_(_OPEN),  # type: ignore[attr-defined]
            IncidentRow.declared_at >= since,
            IncidentRow.resolved_at >= since,  # type: ignore[operator]
            dated_actions,
        ]
        if postmortem_severities:
            conditions.append(sa.and_(IncidentRow.resolved_at.is_not(None), IncidentRow.postmortem_at.is_(None),  # type: ignore[union-attr]
                                      IncidentRow.severity.in_(list(postmortem_severities))))  # type: ignore[attr-defined]
        return await self._incidents.load_many(select(IncidentRow).where(sa.or_(*conditions))
                                               .order_by(IncidentRow.number))

    async def frozen(self) -> list[FreezeEntry]:
        rows = (await self._session.exec(
            select(IncidentRow.number, IncidentRow.title, IncidentRow.severity, IncidentRow.frozen_at,
                   IncidentRow.declared_at)
            .where(IncidentRow.frozen == sa.true(), IncidentRow.status.in_(_OPEN))  # type: ignore[attr-defined]
            .order_by(IncidentRow.number))).all()
        return [FreezeEntry(incident_number=number, title=title, severity=severity, since=frozen_at or declared_at)
                for number, title, severity, frozen_at, declared_at in rows]

    async def metrics(self) -> MetricsSnapshot:
        async def grouped(column: Any, *where: Any) -> dict[str, int]:
            query = select(column, sa.func.count()).group_by(column)
            if where:
                query = query.where(*where)
            return {key: count for key, count in (await self._session.exec(query)).all()}

        async def count(query: Any) -> int:
            return int((await self._session.exec(query)).one())

        return MetricsSnapshot(
            open_by_severity=await grouped(IncidentRow.severity, IncidentRow.status.in_(_OPEN)),  # type: ignore[attr-defined]
            declared_total=await count(select(sa.func.count()).select_from(IncidentRow)),
            reminders_fired=await grouped(ReminderRow.kind, ReminderRow.status == "fired"),
            escalations_total=await count(select(sa.func.count()).select_from(TimelineRow)
                                          .where(TimelineRow.kind == EventKind.ESCALATION.value)),
            outbox=await grouped(OutboxRow.status, OutboxRow.status != "delivered"),
            frozen=await count(select(sa.func.count()).select_from(IncidentRow).where(
                IncidentRow.frozen == sa.true(), IncidentRow.status.in_(_OPEN))),  # type: ignore[attr-defined]
            alert_groups=await grouped(AlertGroupRow.state),
        )


class SqlWebRepository:
    """The web pages' storage: public updates, sign-in links and sessions (digests only), and extra reads."""

    def __init__(self, session: AsyncSession, customers: SqlCustomerRepository,
                 reminders: SqlReminderRepository) -> None:
        self._session = session
        self._customers = customers
        self._reminders = reminders

    async def publish(self, *, incident_number: int, state: str, text: str, areas: Sequence[str],
                      now: datetime) -> None:
        self._session.add(PublicUpdateRow(incident_number=incident_number, status=state, text=text,
                                          areas=list(areas), published_at=now))
        await self._session.flush()

    async def public_updates(self, *, since: datetime) -> list[PublicUpdate]:
        """Updates published since `since`, and every update of incidents whose latest one is not 'resolved'."""
        rows = (await self._session.exec(select(PublicUpdateRow).order_by(PublicUpdateRow.id))).all()  # type: ignore[arg-type]
        latest: dict[int, PublicUpdateRow] = {}
        for row in rows:
            latest[row.incident_number] = row
        keep = {n for n, row in latest.items() if row.status != "resolved" or row.published_at >= since}
        return [PublicUpdate(incident_number=r.incident_number, state=r.status, text=r.text, areas=tuple(r.areas),
                             published_at=r.published_at, id=r.id or 0) for r in rows if r.incident_number in keep]

    async def last_public_state(self, incident_number: int) -> str | None:
        row = (await self._session.exec(select(PublicUpdateRow.status).where(
            PublicUpdateRow.incident_number == incident_number).order_by(PublicUpdateRow.id.desc()).limit(1)  # type: ignore[union-attr]
        )).first()
        return row

    async def known_tenants(self) -> set[str]:
        linked = (await self._session.exec(select(IncidentTenantRow.tenant).distinct())).all()
        return set(linked) | set(await self._customers.tenants())

    async def incidents_of_tenant(self, tenant: str) -> set[int]:
        return set((await self._session.exec(select(IncidentTenantRow.incident_number).where(
            IncidentTenantRow.tenant == tenant))).all())

    async def add_token(self, *, digest: str, kind: str, name: str, csrf: str | None, now: datetime,
                        expires_at: datetime) -> None:
        self._session.add(WebTokenRow(digest=digest, kind=kind, name=name, csrf=csrf, created_at=now,
                                      expires_at=expires_at))
        await self._session.flush()

    async def link_state(self, digest: str, now: datetime) -> str:
        row = await self._session.get(WebTokenRow, digest)
        if row is None or row.kind != "link":
            return "unknown"
        if row.used_at is not None:
            return "used"
        return "expired" if row.expires_at <= now else "ok"

    async def use_link(self, digest: str, now: datetime) -> str | None:
        table = WebTokenRow.__table__
        return await _run(self._session, sa.update(table).where(
            table.c.digest == digest, table.c.kind == "link", table.c.used_at.is_(None),
            table.c.expires_at > now).values(used_at=now).returning(table.c.name), fetch="scalar")

    async def session(self, digest: str, now: datetime) -> tuple[str, str] | None:
        row = await self._session.get(WebTokenRow, digest)
        if row is None or row.kind != "session" or row.used_at is not None or row.expires_at <= now:
            return None
        return row.name, row.csrf or ""

    async def end_session(self, digest: str, now: datetime) -> None:
        table = WebTokenRow.__table__
        await _run(self._session, sa.update(table).where(table.c.digest == digest, table.c.kind == "session")
                   .values(used_at=now))
        # forget links and sessions that ended more than a day ago
        await _run(self._session, sa.delete(table).where(table.c.expires_at < now - timedelta(days=1)))

    async def timeline_after(self, after_id: int, numbers: Collection[int], limit: int
                             ) -> list[tuple[int, TimelineEvent]]:
        if not numbers:
            return []
        query = (sa.select(_TIMELINE).where(_TIMELINE.c.id > after_id, _TIMELINE.c.incident_number.in_(list(numbers)))
                 .order_by(_TIMELINE.c.id).limit(limit))
        rows = await _run(self._session, query, fetch="all")
        return [(row.incident_number, _to_event(row)) for row in rows]

    async def timeline_window(self, number: int, *, latest: int | None) -> tuple[list[TimelineEvent], int, int]:
        """The newest `latest` entries (all with None) in time order, plus pinned ones older than those; the
        number of entries in all, and the highest entry id (where a live page resumes)."""
        where = _TIMELINE.c.incident_number == number
        total, last = (await _run(self._session, sa.select(sa.func.count(), sa.func.max(_TIMELINE.c.id))
                                  .where(where), fetch="all"))[0]
        if latest is None or total <= latest:
            rows = await _run(self._session, _TIMELINE_OF, {"number": number}, fetch="all")
            return [_to_event(row) for row in rows], total, last or 0
        newest = await _run(self._session, sa.select(_TIMELINE).where(where).order_by(
            _TIMELINE.c.occurred_at.desc(), _TIMELINE.c.id.desc()).limit(latest), fetch="all")
        oldest_shown = (newest[-1].occurred_at, newest[-1].id)
        pinned = await _run(self._session, sa.select(_TIMELINE).where(where, _TIMELINE.c.pinned.is_(True)), fetch="all")
        shown = {row.id: row for row in newest}
        shown.update({row.id: row for row in pinned if (row.occurred_at, row.id) < oldest_shown})
        rows = sorted(shown.values(), key=lambda row: (row.occurred_at, row.id))
        return [_to_event(row) for row in rows], total, last or 0

    async def timeline_of_kinds(self, number: int, kinds: Collection[str]) -> list[TimelineEvent]:
        rows = await _run(self._session, sa.select(_TIMELINE).where(
            _TIMELINE.c.incident_number == number, _TIMELINE.c.kind.in_(list(kinds))).order_by(
            _TIMELINE.c.occurred_at, _TIMELINE.c.id), fetch="all")
        return [_to_event(row) for row in rows]

    async def last_timeline_id(self) -> int:
        return await _run(self._session, sa.select(sa.func.max(_TIMELINE.c.id)), fetch="scalar") or 0

    async def pending_reminders(self, incident_number: int) -> list[ReminderPlan]:
        return await self._reminders.pending(incident_number)

    async def briefs_of(self, incident_number: int) -> list[tuple[Brief, list[Recipient]]]:
        rows = (await self._session.exec(select(BriefRow).where(BriefRow.incident_number == incident_number)
                                         .order_by(BriefRow.id))).all()  # type: ignore[arg-type]
        return [(SqlCustomerRepository._brief(row), await self._customers.recipients(row.id))  # type: ignore[arg-type]
                for row in rows]


def _person(row: OnCallPersonRow) -> Person:
    return Person(name=row.name, slack=row.slack, discord=row.discord, whatsapp=row.whatsapp,
                  pagerduty=row.pagerduty)


def _rotation(row: OnCallRotationRow) -> Rotation:
    hours, minutes = row.handoff_time.split(":")
    return Rotation(role=row.role, people=tuple(row.people), weekday=row.weekday, at=time(int(hours), int(minutes)),
                    timezone=row.timezone, starts_at=row.starts_at)


def _override(row: OnCallOverrideRow) -> Override:
    return Override(role=row.role, person=row.person, starts_at=row.starts_at, ends_at=row.ends_at, id=row.id,
                    created_by=row.created_by)


class SqlOnCallRepository:
    """People, rotations and overrides of the on-call roster."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def save_person(self, person: Person, *, now: datetime, replace: bool) -> bool:
        row = await self._session.get(OnCallPersonRow, person.name)
        if row is not None and not replace:
            return False
        row = row or OnCallPersonRow(name=person.name, added_at=now)
        row.slack, row.discord, row.whatsapp, row.pagerduty = (person.slack, person.discord, person.whatsapp,
                                                               person.pagerduty)
        self._session.add(row)
        try:
            await self._session.flush()
        except IntegrityError:  # another process added the same name between our read and write
            raise ConcurrentChange(f"person {person.name} was added concurrently") from None
        return True

    async def person(self, name: str) -> Person | None:
        row = await self._session.get(OnCallPersonRow, name)
        return _person(row) if row else None

    async def person_by_address(self, address: str) -> Person | None:
        rows = await self._session.exec(select(OnCallPersonRow).where(sa.or_(
            OnCallPersonRow.slack == address, OnCallPersonRow.discord == address,
            OnCallPersonRow.whatsapp == address)).limit(1))
        row = rows.first()
        return _person(row) if row else None

    async def people(self) -> list[Person]:
        rows = await self._session.exec(select(OnCallPersonRow).order_by(OnCallPersonRow.name))
        return [_person(r) for r in rows.all()]

    async def remove_person(self, name: str) -> None:
        await self._session.exec(sa.delete(OnCallOverrideRow).where(OnCallOverrideRow.person == name))
        await self._session.exec(sa.delete(OnCallPersonRow).where(OnCallPersonRow.name == name))

    async def save_rotation(self, rotation: Rotation, *, now: datetime) -> None:
        row = await self._session.get(OnCallRotationRow, rotation.role) or OnCallRotationRow(role=rotation.role)
        row.people, row.weekday, row.handoff_time = list(rotation.people), rotation.weekday, f"{rotation.at:%H:%M}"
        row.timezone, row.starts_at, row.updated_at = rotation.timezone, rotation.starts_at, now
        self._session.add(row)
        await self._session.flush()

    async def rotation(self, role: str) -> Rotation | None:
        row = await self._session.get(OnCallRotationRow, role)
        return _rotation(row) if row else None

    async def rotations(self) -> list[Rotation]:
        rows = await self._session.exec(select(OnCallRotationRow).order_by(OnCallRotationRow.role))
        return [_rotation(r) for r in rows.all()]

    async def add_override(self, override: Override, *, now: datetime) -> int:
        row = OnCallOverrideRow(role=override.role, person=override.person, starts_at=override.starts_at,
                                ends_at=override.ends_at, created_by=override.created_by, created_at=now)
        self._session.add(row)
        await self._session.flush()
        assert row.id is not None
        return row.id

    async def overrides(self, *, ending_after: datetime, role: str | None = None) -> list[Override]:
        query = select(OnCallOverrideRow).where(OnCallOverrideRow.ends_at > ending_after)
        if role is not None:
            query = query.where(OnCallOverrideRow.role == role)
        rows = await self._session.exec(query.order_by(OnCallOverrideRow.starts_at))
        return [_override(r) for r in rows.all()]

    async def remove_override(self, override_id: int) -> bool:
        result = await self._session.exec(sa.delete(OnCallOverrideRow).where(OnCallOverrideRow.id == override_id))
        return result.rowcount > 0


def _escalation(row: EscalationRow) -> EscalationRecord:
    state = Escalation(severity=row.severity, level=row.level, attempt=row.attempt, level_since=row.level_since,
                       due_at=row.due_at, state=row.state, waiting_until=row.waiting_until)  # type: ignore[arg-type]
    return EscalationRecord(incident_number=row.incident_number, state=state, version=row.version,
                            paged=tuple(tuple(p) for p in row.paged or ()))  # type: ignore[misc]


class SqlEscalationRepository:
    """Escalation state per incident. Steps are saved with a compare-and-set on `version`: when two replicas
    take the same due step, one update matches and the other's matches nothing (on PostgreSQL it waits for the
    first to commit, then sees the new version)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def start(self, incident_number: int, state: Escalation, *, now: datetime) -> None:  # type: ignore[override]
        self._session.add(EscalationRow(incident_number=incident_number, severity=state.severity, level=state.level,
                                        attempt=state.attempt, level_since=state.level_since, due_at=state.due_at,
                                        state=state.state, waiting_until=state.waiting_until, paged=[], version=0,
                                        updated_at=now))
        await self._session.flush()

    async def get(self, incident_number: int) -> EscalationRecord | None:
        row = await self._session.get(EscalationRow, incident_number)
        return _escalation(row) if row else None

    async def due(self, now: datetime, limit: int) -> list[EscalationRecord]:
        query = select(EscalationRow).where(
            EscalationRow.state == "paging", EscalationRow.due_at <= now)  # type: ignore[operator]
        query = query.order_by(EscalationRow.due_at).limit(limit)  # type: ignore[arg-type]
        if self._session.bind.dialect.name == "postgresql":
            # replicas take disjoint due steps (and never wait on each other's row locks: no deadlock)
            query = query.with_for_update(skip_locked=True)
        rows = await self._session.exec(query)
        return [_escalation(r) for r in rows.all()]

    async def next_due(self) -> datetime | None:
        return (await self._session.exec(select(sa.func.min(EscalationRow.due_at)).where(
            EscalationRow.state == "paging"))).one()

    async def save(self, record: EscalationRecord, state: Escalation, *,  # type: ignore[override]
                   paged: Sequence[tuple[str, str, str]] = ()) -> bool:
        merged = list(record.paged) + [p for p in paged if p not in record.paged]
        table = EscalationRow.__table__
        result = await self._session.exec(
            sa.update(table).where(table.c.incident_number == record.incident_number,
                                   table.c.version == record.version)
            .values(severity=state.severity, level=state.level, attempt=state.attempt,
                    level_since=state.level_since, due_at=state.due_at, state=state.state,
                    waiting_until=state.waiting_until, paged=[list(p) for p in merged],
                    version=record.version + 1, updated_at=sa.func.now()))
        self._session.expire_all()  # the ORM's copy of the row is stale now
        return result.rowcount == 1

    async def cancel_pages(self, incident_number: int) -> int:
        result = await self._session.exec(
            sa.update(OutboxRow).where(OutboxRow.dedupe_key.like(f"page:{incident_number}:%"),  # type: ignore[attr-defined]
                                       OutboxRow.status.in_(("pending", "failed")))  # type: ignore[attr-defined]
            .values(status="cancelled", last_error="acknowledged"))
        return result.rowcount


class SqlUnitOfWork:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 outbox_listeners: Sequence[Callable[[], None]] = ()) -> None:
        self._sessions = sessions
        self._outbox_listeners = outbox_listeners

    async def __aenter__(self) -> SqlUnitOfWork:
        self.session = self._sessions()
        self.incidents = SqlIncidentRepository(self.session)
        self.reminders = SqlReminderRepository(self.session)
        self.deliveries = SqlDeliveryLog(self.session)
        self.outbox = SqlOutboxRepository(self.session)
        self.customers = SqlCustomerRepository(self.session)
        self.operators = SqlOperatorRepository(self.session)
        self.oncall = SqlOnCallRepository(self.session)
        self.escalations = SqlEscalationRepository(self.session)
        self.alerts = SqlAlertRepository(self.session)
        self.schedules = SqlScheduleRepository(self.session)
        self.reports = SqlReportRepository(self.session, self.incidents)
        self.web = SqlWebRepository(self.session, self.customers, self.reminders)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.rollback()
        await self.session.close()

    async def commit(self) -> None:
        wrote = await self.outbox.flush()
        await self.session.commit()
        if wrote:
            for listener in self._outbox_listeners:
                listener()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine, *, on_outbox_written: Callable[[], None] | None = None) -> None:
        """`on_outbox_written` is called after every commit that wrote outbox rows (the sender learns there is
        more)."""
        self.engine = engine
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._outbox_listeners: list[Callable[[], None]] = [on_outbox_written] if on_outbox_written else []

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, self._outbox_listeners)
