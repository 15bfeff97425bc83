"""Deliver the outbox: messages written in the same transaction as the change that caused them.

A crash after commit loses nothing (rows wait in the database); a delivery that succeeded is marked so it is
not repeated; 429s wait for `Retry-After`, other failures back off exponentially with jitter, and a message
that still cannot be delivered is kept as `failed` for `warroom outbox list|retry` — never dropped.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot.ports import (Attachment, Button, ChatAdapter, ChecklistLine, Clock, DeliveryError, Field, Message,
                       OutboxItem, Posted, Room, UnitOfWorkFactory)

if TYPE_CHECKING:
    from bot.domain import Incident

log = logging.getLogger("warroom.outbox")
ROOMS_KEPT = 10_000


# -- (de)serialisation of neutral messages ---------------------------------------------------------


def message_to_json(message: Message) -> dict[str, Any]:
    data = asdict(message)
    if message.attachment is not None:
        data["attachment"]["content"] = base64.b64encode(message.attachment.content).decode("ascii")
    return data


def message_from_json(data: dict[str, Any]) -> Message:
    attachment = data.get("attachment")
    return Message(
        text=data.get("text", ""),
        title=data.get("title"),
        fields=tuple(Field(**f) for f in data.get("fields", ())),
        checklist=tuple(ChecklistLine(**c) for c in data.get("checklist", ())),
        buttons=tuple(Button(**b) for b in data.get("buttons", ())),
        footer=data.get("footer"),
        incident_key=data.get("incident_key"),
        kind=data.get("kind", "info"),
        attachment=Attachment(**{**attachment, "content": base64.b64decode(attachment["content"])})
        if attachment else None,
    )


# -- delivery ------------------------------------------------------------------------------------------


class _RoomNotOpen(Exception):
    """The incident's room is not open yet (its open_room is still queued); try again shortly."""


@dataclass(frozen=True)
class _Where:
    """Where an incident lives in chat. Set once, when its room opens, and never changed after."""

    platform: str | None
    channel: str
    thread: str | None
    card_message: str | None


class CustomerDelivery(Protocol):
    """Sends `customer_message` rows (WhatsApp briefs) and records each recipient's outcome."""

    async def deliver(self, item: OutboxItem) -> str: ...
    async def give_up(self, item: OutboxItem, reason: str) -> None: ...


class OutboxSender:
    def __init__(self, *, uow: UnitOfWorkFactory, chat: Mapping[str, ChatAdapter], clock: Clock,
                 customers: CustomerDelivery | None = None,
                 max_attempts: int = 8, base_delay: float = 1.0, max_delay: float = 300.0, concurrency: int = 16,
                 batch: int = 200, lease: timedelta = timedelta(minutes=2),
                 jitter: Callable[[], float] = random.random) -> None:
        self._uow = uow
        self._chat = chat
        self._clock = clock
        self.customers = customers
        self.max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._limit = asyncio.Semaphore(concurrency)
        self._batch = batch
        self.lease = lease
        self._jitter = jitter
        self._background: asyncio.Task[int] | None = None
        self._again = False
        self._rooms: OrderedDict[int, _Where] = OrderedDict()  # incident number → its room, most recent last

    def note_room(self, incident: Incident) -> None:
        """Remember where an incident lives once its room is open, so sending to it needs no database read."""
        if incident.channel is None:
            return
        self._rooms[incident.number] = _Where(incident.platform, incident.channel, incident.thread,
                                              incident.card_message)
        self._rooms.move_to_end(incident.number)
        while len(self._rooms) > ROOMS_KEPT:
            self._rooms.popitem(last=False)

    async def drain(self) -> int:
        """Deliver everything deliverable now (in order per incident); returns how many were delivered."""
        delivered = 0
        while True:
            async with self._uow() as uow:
                items = await uow.outbox.claim(self._clock.now(), self._batch, self.lease)
                await uow.commit()
            if not items:
                return delivered
            results = await asyncio.gather(*(self._deliver_one(item) for item in items))
            delivered += sum(results)
            if not any(results):
                return delivered  # everything claimed was put back for later: stop instead of spinning

    async def release_claims(self) -> int:
        """Take over every message another sender was delivering (only safe when no other sender lives)."""
        async with self._uow() as uow:
            released = await uow.outbox.release_claims(self._clock.now())
            await uow.commit()
        if released:
            log.warning("taking over %d message(s) a previous process was sending; each is checked for an "
                        "earlier copy before it is sent again", released)
            self.kick()
        return released

    def kick(self) -> None:
        """Start a background drain (or ask the running one to go round again); never blocks the caller."""
        if self._background is not None and not self._background.done():
            self._again = True
            return
        self._background = asyncio.create_task(self._drain_until_quiet())

    async def _drain_until_quiet(self) -> int:
        total = 0
        while True:
            self._again = False
            try:
                total += await self.drain()
            except Exception:
                log.exception("outbox drain failed; the next tick retries")
            if not self._again:
                return total

    async def wait_idle(self) -> None:
        if self._background is not None:
            await asyncio.shield(self._background)

    async def _deliver_one(self, item: OutboxItem) -> bool:
        async with self._limit:
            out = item.outbound
            where = f"INC-{out.incident_number}" if out.incident_number else "no incident"
            try:
                posted = await self._send(item)
            except _RoomNotOpen:
                await self._mark(item, retry_in=self._base_delay, error="incident room not open yet", count=False)
                return False
            except DeliveryError as problem:
                log.warning("outbox %s (%s, %s): %s", item.id, where, out.operation, problem)
                if problem.permanent:
                    await self._mark(item, give_up=str(problem))
                else:
                    await self._mark(item, retry_in=problem.retry_after, error=str(problem))
                return False
            except Exception as problem:  # timeouts, connection errors, 5xx from SDKs that don't classify
                log.warning("outbox %s (%s, %s): %r", item.id, where, out.operation, problem)
                await self._mark(item, retry_in=None, error=repr(problem)[:500])
                return False
            async with self._uow() as uow:
                if out.operation == "open_room" and out.incident_number is not None and posted is not None:
                    incident = await uow.incidents.get(out.incident_number)
                    if incident is not None:
                        incident.attach_room(platform=posted.room.platform, channel=posted.room.channel,
                                             thread=posted.room.thread, card_message=posted.message_id)
                        await uow.incidents.save(incident)
                        self.note_room(incident)
                await uow.outbox.delivered(item.id, self._clock.now(), posted.message_id if posted else None)
                await uow.commit()
            return True

    async def _send(self, item: OutboxItem) -> Posted | None:
        out = item.outbound
        if out.operation == "customer_message":
            if self.customers is None:
                raise DeliveryError("customer messaging is not configured", permanent=True)
            message_id = await self.customers.deliver(item)
            return Posted(Room(out.platform, (out.customer or {}).get("phone", "")), message_id)
        chat = self._chat.get(out.platform)
        if chat is None:
            raise DeliveryError(f"no chat adapter for platform {out.platform!r} is configured", permanent=True)
        incident = None
        where = self._rooms.get(out.incident_number) if out.incident_number is not None else None
        # The incident is read only when its room is not known yet (or to open it): a room never moves.
        if out.incident_number is not None and (out.operation == "open_room" or (
                where is None and (out.room is None or out.operation == "update_card"))):
            async with self._uow() as uow:
                incident = await uow.incidents.get(out.incident_number)
            if incident is not None:
                self.note_room(incident)
                where = self._rooms.get(incident.number)
        if out.operation == "open_room":
            if incident is None or out.room is None:
                raise DeliveryError("open_room needs an incident and a channel", permanent=True)
            if incident.channel is not None:  # opened already (an earlier attempt succeeded before a crash)
                return Posted(Room(incident.platform or out.platform, incident.channel, incident.thread),
                              incident.card_message or "")
            return await chat.open_incident_room(channel=out.room.channel, incident_key=incident.key,
                                                 title=incident.title, card=out.message, delivery=item.delivery)
        room = out.room
        if room is None:
            if where is None:
                raise _RoomNotOpen()
            room = Room(where.platform or out.platform, where.channel, where.thread)
        if out.operation == "update_card":
            if where is None or where.card_message is None:
                raise _RoomNotOpen()
            if chat.capabilities.edits:
                card_room = Room(room.platform, room.channel)
                await chat.update(posted=Posted(card_room, where.card_message), message=out.message)
                return Posted(card_room, where.card_message)
        return await chat.post(room=room, message=out.message, delivery=item.delivery)

    async def _mark(self, item: OutboxItem, *, retry_in: float | None = None, error: str = "",
                    give_up: str | None = None, count: bool = True) -> None:
        now = self._clock.now()
        async with self._uow() as uow:
            attempts = item.attempts + (1 if count else 0)
            if give_up is not None or attempts >= self.max_attempts:
                reason = give_up or f"gave up after {attempts} attempts: {error}"
                log.error("outbox %s undeliverable (%s): %s", item.id,
                          f"INC-{item.outbound.incident_number}" if item.outbound.incident_number else "-", reason)
                await uow.outbox.give_up(item.id, now, reason)
                if item.outbound.operation == "customer_message" and self.customers is not None and give_up is None:
                    await uow.commit()
                    await self.customers.give_up(item, reason)
                    return
            else:
                if retry_in is None:
                    retry_in = min(self._max_delay, self._base_delay * 2 ** (attempts - 1))
                    retry_in *= 0.5 + self._jitter() / 2  # jitter: replicas don't retry in lockstep
                await uow.outbox.retry_later(item.id, now + timedelta(seconds=retry_in), error,
                                             count_attempt=count)
            await uow.commit()


__all__ = ["OutboxSender", "message_from_json", "message_to_json"]
