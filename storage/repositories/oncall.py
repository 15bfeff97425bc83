"""On call: people, rotations, overrides, and escalation state per incident."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.oncall.escalation import Escalation
from bot.oncall.roster import Person
from bot.oncall.rotation import Override, Rotation
from bot.ports import (
    ConcurrentChange,
    EscalationRecord,
)
from storage.repositories._shared import dialect_of, table_of
from storage.tables import (
    EscalationRow,
    OnCallOverrideRow,
    OnCallPersonRow,
    OnCallRotationRow,
    OutboxRow,
)


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
            col(OnCallPersonRow.slack) == address, col(OnCallPersonRow.discord) == address,
            col(OnCallPersonRow.whatsapp) == address)).limit(1))
        row = rows.first()
        return _person(row) if row else None

    async def people(self) -> list[Person]:
        rows = await self._session.exec(select(OnCallPersonRow).order_by(col(OnCallPersonRow.name)))
        return [_person(r) for r in rows.all()]

    async def remove_person(self, name: str) -> None:
        await self._session.exec(sa.delete(OnCallOverrideRow).where(col(OnCallOverrideRow.person) == name))
        await self._session.exec(sa.delete(OnCallPersonRow).where(col(OnCallPersonRow.name) == name))

    async def save_rotation(self, rotation: Rotation, *, now: datetime) -> None:
        people, handoff_time = list(rotation.people), f"{rotation.at:%H:%M}"
        row = await self._session.get(OnCallRotationRow, rotation.role)
        if row is None:
            row = OnCallRotationRow(role=rotation.role, people=people, weekday=rotation.weekday,
                                    handoff_time=handoff_time, timezone=rotation.timezone,
                                    starts_at=rotation.starts_at, updated_at=now)
        else:
            row.people, row.weekday, row.handoff_time = people, rotation.weekday, handoff_time
            row.timezone, row.starts_at, row.updated_at = rotation.timezone, rotation.starts_at, now
        self._session.add(row)
        await self._session.flush()

    async def rotation(self, role: str) -> Rotation | None:
        row = await self._session.get(OnCallRotationRow, role)
        return _rotation(row) if row else None

    async def rotations(self) -> list[Rotation]:
        rows = await self._session.exec(select(OnCallRotationRow).order_by(col(OnCallRotationRow.role)))
        return [_rotation(r) for r in rows.all()]

    async def add_override(self, override: Override, *, now: datetime) -> int:
        row = OnCallOverrideRow(role=override.role, person=override.person, starts_at=override.starts_at,
                                ends_at=override.ends_at, created_by=override.created_by, created_at=now)
        self._session.add(row)
        await self._session.flush()
        assert row.id is not None
        return row.id

    async def overrides(self, *, ending_after: datetime, role: str | None = None) -> list[Override]:
        query = select(OnCallOverrideRow).where(col(OnCallOverrideRow.ends_at) > ending_after)
        if role is not None:
            query = query.where(col(OnCallOverrideRow.role) == role)
        rows = await self._session.exec(query.order_by(col(OnCallOverrideRow.starts_at)))
        return [_override(r) for r in rows.all()]

    async def remove_override(self, override_id: int) -> bool:
        result = await self._session.exec(sa.delete(OnCallOverrideRow).where(col(OnCallOverrideRow.id) == override_id))
        return result.rowcount > 0


def _escalation(row: EscalationRow) -> EscalationRecord:
    state = Escalation(severity=row.severity, level=row.level, attempt=row.attempt, level_since=row.level_since,
                       due_at=row.due_at, state=row.state, waiting_until=row.waiting_until)  # type: ignore[arg-type]
    return EscalationRecord(incident_number=row.incident_number, state=state, version=row.version,
                            paged=tuple(tuple(p) for p in row.paged or ()))


class SqlEscalationRepository:
    """Escalation state per incident. Steps are saved with a compare-and-set on `version`: when two replicas
    take the same due step, one update matches and the other's matches nothing (on PostgreSQL it waits for the
    first to commit, then sees the new version)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def start(self, incident_number: int, state: Escalation, *, now: datetime) -> None:
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
            col(EscalationRow.state) == "paging", col(EscalationRow.due_at) <= now)
        query = query.order_by(col(EscalationRow.due_at)).limit(limit)
        if dialect_of(self._session) == "postgresql":
            # replicas take disjoint due steps (and never wait on each other's row locks: no deadlock)
            query = query.with_for_update(skip_locked=True)
        rows = await self._session.exec(query)
        return [_escalation(r) for r in rows.all()]

    async def next_due(self) -> datetime | None:
        return (await self._session.exec(select(sa.func.min(EscalationRow.due_at)).where(
            col(EscalationRow.state) == "paging"))).one()

    async def save(self, record: EscalationRecord, state: Escalation, *,
                   paged: Sequence[tuple[str, str, str]] = ()) -> bool:
        merged = list(record.paged) + [p for p in paged if p not in record.paged]
        table = table_of(EscalationRow)
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
            sa.update(OutboxRow).where(col(OutboxRow.dedupe_key).like(f"page:{incident_number}:%"),
                                       col(OutboxRow.status).in_(("pending", "failed")))
            .values(status="cancelled", last_error="acknowledged"))
        return result.rowcount
