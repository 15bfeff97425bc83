"""Operations: alert groups, schedules and reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.incident.domain import (
    EventKind,
    Incident,
    Status,
    TimelineEvent,
)
from bot.ports import (
    AlertGroupRecord,
    AlertRecord,
    ConcurrentChange,
    FreezeEntry,
    MetricsSnapshot,
)
from storage.repositories._shared import (
    _TIMELINE,
    _run,
    _to_event,
)
from storage.repositories.incidents import SqlIncidentRepository
from storage.tables import (
    ActionRow,
    AlertGroupRow,
    AlertRow,
    IncidentRow,
    OutboxRow,
    ReminderRow,
    ScheduleRow,
    TimelineRow,
)


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
        row = (await self._session.exec(select(AlertGroupRow).where(col(AlertGroupRow.key) == key))).first()
        return _group(row) if row else None

    async def group_by_id(self, group_id: int) -> AlertGroupRecord | None:
        row = await self._session.get(AlertGroupRow, group_id)
        return _group(row) if row else None

    async def add_group(self, *, key: str, source: str, state: str, status: str, title: str,
                        incident_number: int | None, rule: str | None, severity: str | None, auto_resolve: bool,
                        labels: dict[str, str], now: datetime) -> AlertGroupRecord:
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
        incident_is = (col(AlertGroupRow.incident_number).is_(None) if expected_incident is None
                       else col(AlertGroupRow.incident_number) == expected_incident)
        result = await self._session.exec(sa.update(AlertGroupRow).where(col(AlertGroupRow.id) == group_id, incident_is)
                                          .values(updated_at=now, **values))
        if result.rowcount != 1:
            raise ConcurrentChange(f"alert group {group_id} changed under this request")

    async def alerts(self, group_id: int) -> dict[str, AlertRecord]:
        rows = (await self._session.exec(select(AlertRow).where(col(AlertRow.group_id) == group_id))).all()
        return {row.fingerprint: AlertRecord(fingerprint=row.fingerprint, status=row.status, title=row.title,
                                             first_seen_at=row.first_seen_at, last_seen_at=row.last_seen_at,
                                             notifications=row.notifications) for row in rows}

    async def record_alert(self, group_id: int, *, fingerprint: str, status: str, title: str, labels: dict[str, str],
                           now: datetime) -> None:
        row = (await self._session.exec(select(AlertRow).where(col(AlertRow.group_id) == group_id,
                                                               col(AlertRow.fingerprint) == fingerprint))).first()
        if row is None:
            row = AlertRow(group_id=group_id, fingerprint=fingerprint, status=status, title=title, labels=labels,
                           first_seen_at=now, last_seen_at=now, notifications=1)
        else:
            row.status, row.title, row.labels, row.last_seen_at = status, title, labels, now
            row.notifications += 1
        self._session.add(row)
        await self._session.flush()

    async def forget_alerts(self, group_id: int) -> None:
        await self._session.exec(sa.delete(AlertRow).where(col(AlertRow.group_id) == group_id))


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
        result = await self._session.exec(sa.update(ScheduleRow).where(col(ScheduleRow.name) == name,
                                                                       col(ScheduleRow.due_at) == seen_due)
                                          .values(**values))
        return result.rowcount == 1


_OPEN = [s.value for s in Status if s.is_open]


class SqlReportRepository:
    def __init__(self, session: AsyncSession, incidents: SqlIncidentRepository) -> None:
        self._session = session
        self._incidents = incidents

    async def declared_since(self, since: datetime) -> list[Incident]:
        return await self._incidents.load_many(
            select(IncidentRow).where(col(IncidentRow.declared_at) >= since).order_by(col(IncidentRow.number)))

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
        dated_actions = sa.exists().where(col(ActionRow.incident_number) == IncidentRow.number,
                                          col(ActionRow.done_at).is_(None), col(ActionRow.due).is_not(None))
        conditions = [
            col(IncidentRow.status).in_(_OPEN),
            col(IncidentRow.declared_at) >= since,
            col(IncidentRow.resolved_at) >= since,
            dated_actions,
        ]
        if postmortem_severities:
            conditions.append(sa.and_(col(IncidentRow.resolved_at).is_not(None),
                                      col(IncidentRow.postmortem_at).is_(None),
                                      col(IncidentRow.severity).in_(list(postmortem_severities))))
        return await self._incidents.load_many(select(IncidentRow).where(sa.or_(*conditions))
                                               .order_by(col(IncidentRow.number)))

    async def frozen(self) -> list[FreezeEntry]:
        # Five columns: more than sqlmodel's `select` overloads type, so SQLAlchemy's select (the same rows).
        query: Any = (
            sa.select(col(IncidentRow.number), col(IncidentRow.title), col(IncidentRow.severity),
                      col(IncidentRow.frozen_at), col(IncidentRow.declared_at))
            .where(col(IncidentRow.frozen) == sa.true(), col(IncidentRow.status).in_(_OPEN))
            .order_by(col(IncidentRow.number)))
        rows = (await self._session.exec(query)).all()
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
            open_by_severity=await grouped(IncidentRow.severity, col(IncidentRow.status).in_(_OPEN)),
            declared_total=await count(select(sa.func.count()).select_from(IncidentRow)),
            reminders_fired=await grouped(ReminderRow.kind, col(ReminderRow.status) == "fired"),
            escalations_total=await count(select(sa.func.count()).select_from(TimelineRow)
                                          .where(col(TimelineRow.kind) == EventKind.ESCALATION.value)),
            outbox=await grouped(OutboxRow.status, col(OutboxRow.status) != "delivered"),
            frozen=await count(select(sa.func.count()).select_from(IncidentRow).where(
                col(IncidentRow.frozen) == sa.true(), col(IncidentRow.status).in_(_OPEN))),
            alert_groups=await grouped(AlertGroupRow.state),
        )
