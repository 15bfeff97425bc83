"""What the repositories share: row conversions, statements built once, and the helpers that run them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.incident.domain import (
    ActionItem,
    ChecklistItem,
    EventKind,
    Incident,
    Role,
    Status,
    TimelineEvent,
)
from storage.tables import (
    ActionRow,
    CounterRow,
    FollowerRow,
    IncidentRow,
    IncidentTenantRow,
    PendingRevisionRow,
    ReminderRow,
    TimelineRow,
)

_INCIDENT_COUNTER = "incident"
_SCALARS = (
    "title", "severity", "impact", "reporter", "declared_at", "acknowledged_at", "acknowledged_by", "mitigated_at",
    "resolved_at", "closed_at", "summary", "frozen", "frozen_at", "suggested_playbook", "last_update_at",
    "last_nudge_at",
    "snoozed_until", "escalations_sent", "resolution_escalated", "postmortem_at", "postmortem_reminded_at",
    "customer_update_due_at", "platform", "channel", "thread", "card_message",
)


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a table model: SQLModel declares `__table__` only at runtime."""
    return cast(sa.Table, model.__table__)  # type: ignore[attr-defined]


def dialect_of(session: AsyncSession) -> str:
    """The name of the dialect the session is bound to ("sqlite", "postgresql")."""
    bind = session.bind
    assert bind is not None, "repository session without a bind"
    return bind.dialect.name


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
_INSERT_TIMELINE = sa.insert(table_of(TimelineRow))
_NUMBER_OF_THREAD = sa.select(sa.func.max(IncidentRow.number)).where(
    col(IncidentRow.platform) == sa.bindparam("platform"), col(IncidentRow.channel) == sa.bindparam("channel"),
    col(IncidentRow.thread) == sa.bindparam("thread"))
_NUMBER_OF_CHANNEL = sa.select(sa.func.max(IncidentRow.number)).where(
    col(IncidentRow.platform) == sa.bindparam("platform"), col(IncidentRow.channel) == sa.bindparam("channel"),
    col(IncidentRow.thread).is_(None))

_INCIDENT = table_of(IncidentRow)
_COUNTER = table_of(CounterRow)
_NEXT_NUMBER = (sa.update(_COUNTER).where(_COUNTER.c.name == _INCIDENT_COUNTER)
                .values(value=_COUNTER.c.value + 1).returning(_COUNTER.c.value))
_INSERT_INCIDENT = sa.insert(_INCIDENT)
# The SET clause comes from the parameters' keys (every scalar column), the row from `incident_key`.
_UPDATE_INCIDENT = sa.update(_INCIDENT).where(_INCIDENT.c.number == sa.bindparam("incident_key"))
_ATTACH_ROOM = (sa.update(_INCIDENT).where(_INCIDENT.c.number == sa.bindparam("incident_key"),
                                          _INCIDENT.c.channel.is_(None))
                .values(platform=sa.bindparam("to_platform"), channel=sa.bindparam("to_channel"),
                        thread=sa.bindparam("to_thread"), card_message=sa.bindparam("to_card")))
_ACTIONS_OF = select(ActionRow).where(col(ActionRow.incident_number) == sa.bindparam("number"))
_TENANTS_OF = select(IncidentTenantRow.tenant).where(col(IncidentTenantRow.incident_number) == sa.bindparam("number"))
_REMINDER = table_of(ReminderRow)
_PENDING_REMINDERS = sa.select(_REMINDER.c.id, _REMINDER.c.kind, _REMINDER.c.subject, _REMINDER.c.due_at).where(
    _REMINDER.c.incident_number == sa.bindparam("number"), _REMINDER.c.status == "pending")
_DELETE_REMINDERS = sa.delete(_REMINDER).where(_REMINDER.c.id.in_(sa.bindparam("ids", expanding=True)))
_INSERT_REMINDERS = sa.insert(_REMINDER)
_TIMELINE = table_of(TimelineRow)
_PENDING_REVISION = table_of(PendingRevisionRow)
_HELD_REVISIONS = (sa.select(_PENDING_REVISION)
                   .where(_PENDING_REVISION.c.incident_number.in_(sa.bindparam("numbers", expanding=True)),
                          _PENDING_REVISION.c.message_ref.in_(sa.bindparam("refs", expanding=True)))
                   .order_by(_PENDING_REVISION.c.id))
_DROP_HELD = sa.delete(_PENDING_REVISION).where(_PENDING_REVISION.c.id.in_(sa.bindparam("ids", expanding=True)))
_TIMELINE_OF = (sa.select(_TIMELINE).where(_TIMELINE.c.incident_number == sa.bindparam("number"))
                .order_by(_TIMELINE.c.occurred_at, _TIMELINE.c.id))
_NEXT_DUE = sa.select(sa.func.min(_REMINDER.c.due_at)).where(_REMINDER.c.status == "pending")
_FOLLOWERS_OF = (select(FollowerRow.platform, FollowerRow.address)
                 .where(col(FollowerRow.incident_number) == sa.bindparam("number")).order_by(col(FollowerRow.since)))

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
    dialect = dialect_of(session)
    statement = _NEW_ROWS.get((dialect, table.name, returning))
    if statement is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert
            statement = pg_insert(table).on_conflict_do_nothing(index_elements=[key])
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert
            statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
        if returning:
            statement = statement.returning(table.c[key])
        _NEW_ROWS[(dialect, table.name, returning)] = statement
    return statement
