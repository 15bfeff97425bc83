"""Reminders: the pending plan per incident and the due ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.ports import (
    DueReminder,
    ReminderPlan,
)
from storage.repositories._shared import (
    _DELETE_REMINDERS,
    _INSERT_REMINDERS,
    _NEXT_DUE,
    _PENDING_REMINDERS,
    _run,
    dialect_of,
)
from storage.tables import (
    ReminderRow,
)


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
            .where(col(ReminderRow.status) == "pending", col(ReminderRow.due_at) <= now)
            .order_by(col(ReminderRow.due_at), col(ReminderRow.id))
            .limit(limit)
        )
        if dialect_of(self._session) == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = list((await self._session.exec(candidates)).all())
        if not ids:
            return []
        result = await self._session.exec(
            sa.update(ReminderRow)
            .where(col(ReminderRow.id).in_(ids), col(ReminderRow.status) == "pending")
            .values(status="fired", fired_at=now)
            .returning(col(ReminderRow.id), col(ReminderRow.incident_number), col(ReminderRow.kind),
                       col(ReminderRow.due_at), col(ReminderRow.subject))
        )
        claimed = [DueReminder(id=r[0], incident_number=r[1], kind=r[2], due_at=r[3], subject=r[4]) for r in result]
        return sorted(claimed, key=lambda r: (r.due_at, r.id))

    async def next_due(self) -> datetime | None:
        """When the earliest pending reminder is due (None when none is pending)."""
        due: datetime | None = await _run(self._session, _NEXT_DUE, fetch="scalar")
        return due

    async def pending(self, incident_number: int | None = None) -> list[ReminderPlan]:
        query = select(ReminderRow).where(col(ReminderRow.status) == "pending")
        if incident_number is not None:
            query = query.where(col(ReminderRow.incident_number) == incident_number)
        rows = (await self._session.exec(query.order_by(col(ReminderRow.due_at)))).all()
        return [ReminderPlan(kind=row.kind, due_at=row.due_at, subject=row.subject) for row in rows]  # type: ignore[arg-type]
