"""The outbox (claims, leases, ordering per incident) and the delivery log."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery.outbox import message_from_json, message_to_json
from bot.ports import (
    Outbound,
    OutboxItem,
    Room,
)
from storage.repositories._shared import (
    _insert_new,
    _insert_quietly,
    _run,
    dialect_of,
    table_of,
)
from storage.tables import (
    DeliveryRow,
    OutboxRow,
)


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
        inserted = await _run(self._session, _insert_new(self._session, table_of(DeliveryRow), "delivery_id"),
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
    sa.and_(col(OutboxRow.status) == "pending", col(OutboxRow.next_attempt_at) <= sa.bindparam("now")),
    # A sender that crashed mid-delivery leaves 'sending' rows; once their lease ends they are retried.
    sa.and_(col(OutboxRow.status) == "sending", col(OutboxRow.claimed_until) < sa.bindparam("now")),
)
_EARLIER = aliased(OutboxRow)
# Per incident only the oldest waiting message is deliverable, so a thread reads in the order things
# happened (and posts wait for the room they go into).
_BLOCKED = sa.exists().where(col(_EARLIER.incident_number) == col(OutboxRow.incident_number),
                             col(_EARLIER.id) < col(OutboxRow.id), col(_EARLIER.status).in_(("pending", "sending")))
_CLAIMABLE = (
    select(col(OutboxRow.id), col(OutboxRow.status), col(OutboxRow.incident_number))
    .where(_READY, sa.or_(col(OutboxRow.incident_number).is_(None), ~_BLOCKED))
    .order_by(col(OutboxRow.id)).limit(sa.bindparam("limit"))
)
_CLAIMABLE_LOCKED = _CLAIMABLE.with_for_update(skip_locked=True, of=OutboxRow)  # replicas claim disjoint rows
_OUTBOX = table_of(OutboxRow)
_CLAIM = (
    sa.update(_OUTBOX).where(_OUTBOX.c.id.in_(sa.bindparam("ids", expanding=True)), _READY)
    .values(status="sending", claimed_until=sa.bindparam("until"), claimed_by=sa.bindparam("by"))
    .returning(*_OUTBOX.columns)
)
# The waiting messages of the incidents whose oldest one was claimed: the ready ones right behind it go with it.
_WAITING_BEHIND = (
    sa.select(col(OutboxRow.id), col(OutboxRow.incident_number), col(OutboxRow.status),
              col(OutboxRow.next_attempt_at), col(OutboxRow.claimed_until))
    .where(col(OutboxRow.incident_number).in_(sa.bindparam("numbers", expanding=True)),
           col(OutboxRow.status).in_(("pending", "sending")))
    .order_by(col(OutboxRow.incident_number), col(OutboxRow.id))
)
_WAITING_BEHIND_LOCKED = _WAITING_BEHIND.with_for_update(of=OutboxRow)
_CHAIN_LIMIT = 50
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
        await _run(self._session, _insert_quietly(self._session, _OUTBOX, "dedupe_key"), queued)
        return len(queued)

    async def claim(self, now: datetime, limit: int, lease: timedelta, *, by: str | None = None
                    ) -> list[OutboxItem]:
        """Claim what is deliverable now: per incident its oldest waiting message and the ready ones right
        behind it (up to the first that is not ready), so the sender can send them in order in one round;
        messages without an incident on their own. Claimed rows are 'sending' until their lease ends."""
        await self.flush()
        postgres = dialect_of(self._session) == "postgresql"
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
            col(OutboxRow.platform) == platform, col(OutboxRow.platform_message_id) == platform_message_id,
            col(OutboxRow.status) == "delivered").limit(1))).first()
        return self._item(row).outbound if row else None

    async def release_claims(self, now: datetime, *, by: str | None = None) -> int:
        """Make 'sending' rows claimable now: every one (`by` None: a process that knows no other sender is
        alive, SQLite's single scheduler at start-up), or those claimed by instance `by` (a replica restarting
        under the same instance id: what its previous incarnation claimed has no live sender)."""
        await self.flush()
        query = sa.update(OutboxRow).where(col(OutboxRow.status) == "sending")
        if by is not None:
            query = query.where(col(OutboxRow.claimed_by) == by)
        result = await self._session.exec(query.values(claimed_until=now - timedelta(seconds=1)))
        return result.rowcount

    @staticmethod
    def _item(row: Any, reclaimed: bool = False) -> OutboxItem:
        """An OutboxItem from an outbox row (ORM object or Core row: the same attribute names)."""
        room = Room(row.platform, row.room_channel, row.room_thread) if row.room_channel else None
        outbound = Outbound(platform=row.platform, operation=row.operation, message=message_from_json(row.message),
                            dedupe_key=row.dedupe_key, incident_number=row.incident_number, room=room,
                            customer=row.customer, work=row.work, page=row.page)
        return OutboxItem(id=row.id, outbound=outbound, attempts=row.attempts, reclaimed=reclaimed)

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
        await self._session.exec(sa.update(OutboxRow).where(col(OutboxRow.id) == item_id).execution_options(
            **_NO_SYNC).values(status="pending", next_attempt_at=at, last_error=error[:1000], claimed_until=None,
            attempts=OutboxRow.attempts + (1 if count_attempt else 0)))

    async def give_up(self, item_id: int, now: datetime, error: str) -> None:
        await self._session.exec(sa.update(OutboxRow).where(col(OutboxRow.id) == item_id).execution_options(
            **_NO_SYNC).values(status="failed", last_error=error[:1000], claimed_until=None,
                               attempts=OutboxRow.attempts + 1))

    async def entries(self, statuses: tuple[str, ...]) -> list[OutboxEntry]:
        await self.flush()
        rows = (await self._session.exec(
            select(OutboxRow).where(col(OutboxRow.status).in_(statuses)).order_by(col(OutboxRow.id)))).all()
        return [OutboxEntry(id=r.id, status=r.status, platform=r.platform, operation=r.operation,  # type: ignore[arg-type]
                            incident_number=r.incident_number, attempts=r.attempts,
                            next_attempt_at=r.next_attempt_at, last_error=r.last_error, created_at=r.created_at,
                            summary=(r.message.get("title") or r.message.get("text") or "")[:80])
                for r in rows]

    async def requeue_failed(self, now: datetime, ids: list[int] | None = None) -> int:
        await self.flush()
        query = sa.update(OutboxRow).where(col(OutboxRow.status) == "failed")
        if ids:
            query = query.where(col(OutboxRow.id).in_(ids))
        result = await self._session.exec(query.values(status="pending", attempts=0, next_attempt_at=now,
                                                       last_error=None))
        return result.rowcount

    async def counts(self) -> dict[str, int]:
        await self.flush()
        rows = (await self._session.exec(
            select(OutboxRow.status, sa.func.count()).group_by(OutboxRow.status))).all()
        return {status: count for status, count in rows}
