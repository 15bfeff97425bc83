"""WhatsApp operators and incident followers."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.operators.roster import Operator
from storage.repositories._shared import (
    _FOLLOWERS_OF,
    _run,
)
from storage.tables import (
    FollowerRow,
    OperatorRow,
    OutboxRow,
)


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
        result = await self._session.exec(sa.delete(OperatorRow).where(col(OperatorRow.phone) == phone))
        if result.rowcount == 0:
            return False
        await self._session.exec(sa.delete(FollowerRow).where(col(FollowerRow.platform) == "whatsapp",
                                                              col(FollowerRow.address) == phone))
        await self._session.exec(
            sa.update(OutboxRow)
            .where(col(OutboxRow.platform) == "whatsapp", col(OutboxRow.room_channel) == phone,
                   col(OutboxRow.status).in_(("pending", "failed")))
            .values(status="cancelled", last_error="operator removed"))
        self._followers.clear()
        return True

    async def listed_elsewhere(self, listed: set[str]) -> list[str]:
        """Numbers that came from the environment's list but are no longer in it."""
        rows = await self._session.exec(select(OperatorRow.phone).where(col(OperatorRow.source) == "env"))
        return [phone for phone in rows.all() if phone not in listed]

    async def get(self, phone: str) -> Operator | None:
        row = await self._session.get(OperatorRow, phone)
        return _operator(row) if row else None

    async def all(self) -> list[Operator]:
        rows = (await self._session.exec(select(OperatorRow).order_by(col(OperatorRow.name)))).all()
        return [_operator(r) for r in rows]

    async def set_current(self, phone: str, number: int) -> None:
        await self._session.exec(sa.update(OperatorRow).where(col(OperatorRow.phone) == phone)
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
            col(FollowerRow.incident_number) == number, col(FollowerRow.platform) == platform,
            col(FollowerRow.address) == address))
        return result.rowcount > 0

    async def followers(self, number: int) -> list[tuple[str, str]]:
        if number not in self._followers:
            rows = await _run(self._session, _FOLLOWERS_OF, {"number": number}, fetch="all")
            self._followers[number] = [(platform, address) for platform, address in rows]
        return list(self._followers[number])
