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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot.incident.key import key_of
from bot.ports import (
    Attachment,
    Button,
    ChatAdapter,
    ChecklistLine,
    Clock,
    DeliveryError,
    Field,
    Message,
    OutboxItem,
    Pager,
    PageRequest,
    Posted,
    Room,
    UnitOfWork,
    UnitOfWorkFactory,
)

if TYPE_CHECKING:
    from bot.incident.domain import Incident

log = logging.getLogger("warroom.outbox")
ROOMS_KEPT = 10_000


# -- (de)serialisation of neutral messages ---------------------------------------------------------


def message_to_json(message: Message) -> dict[str, Any]:
    # Spelled out rather than dataclasses.asdict, whose generic deep copy was ≈5% of a declare's CPU.
    attachment = message.attachment
    return {
        "text": message.text, "title": message.title,
        "fields": [{"label": f.label, "value": f.value} for f in message.fields],
        "checklist": [{"number": c.number, "text": c.text, "done": c.done} for c in message.checklist],
        "buttons": [{"action": b.action, "label": b.label, "value": b.value, "style": b.style}
                    for b in message.buttons],
        "footer": message.footer, "incident_key": message.incident_key, "kind": message.kind,
        "mentions_from": message.mentions_from,
        "attachment": {"filename": attachment.filename, "mime_type": attachment.mime_type, "title": attachment.title,
                       "content": base64.b64encode(attachment.content).decode("ascii")} if attachment else None,
    }


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
        mentions_from=data.get("mentions_from"),
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


class CodeHostDelivery(Protocol):
    """Does `code_host` rows (post-mortem pull requests) and says in the incident's thread when one fails."""

    async def deliver(self, item: OutboxItem) -> str: ...
    async def give_up(self, item: OutboxItem, reason: str) -> None: ...


class OutboxHints:
    """What the side that queues messages tells the side that sends them, in memory, so that sending needs no
    database read: where an incident's room is, what opening a new room needs, and that new rows were committed.
    Shared by the Notifier (which writes) and the OutboxSender (which reads); after a restart the sender reads the
    database instead."""

    def __init__(self) -> None:
        self.rooms: OrderedDict[int, _Where] = OrderedDict()  # incident number → its room, most recent last
        self.openings: dict[str, tuple[str, str]] = {}  # open_room dedupe key → (incident key, title)
        self.written = 0  # commits that wrote outbox rows: a drain knows whether something new came in meanwhile
        self.told = False  # whether the unit of work reports commits; if not, a drain cannot trust `written`

    def outbox_written(self) -> None:
        """Messages were committed to the outbox in this process (a drain running now goes round again).
        Given to the unit of work by the composition root; without it every drain ends with an empty claim."""
        self.told = True
        self.written += 1

    def note_room(self, incident: Incident) -> None:
        """Remember where an incident lives once its room is open, so sending to it needs no database read."""
        if incident.channel is None:
            return
        self.rooms[incident.number] = _Where(incident.platform, incident.channel, incident.thread,
                                              incident.card_message)
        self.rooms.move_to_end(incident.number)
        while len(self.rooms) > ROOMS_KEPT:
            self.rooms.popitem(last=False)

    def note_opening(self, dedupe_key: str, incident: Incident) -> None:
        """Remember what opening a new incident's room needs (its key and title) under the open_room message's
        own key, so that sending the card needs no database read (a rolled-back declare's key never comes
        back). After a restart the sender reads the incident instead."""
        self.openings[dedupe_key] = (incident.key, incident.title)
        while len(self.openings) > ROOMS_KEPT:
            self.openings.pop(next(iter(self.openings)))



class OutboxSender:
    def __init__(self, *, uow: UnitOfWorkFactory, chat: Mapping[str, ChatAdapter], clock: Clock,
                 customers: CustomerDelivery | None = None, code_host: CodeHostDelivery | None = None,
                 hints: OutboxHints | None = None, pagers: Mapping[str, Pager] | None = None,
                 max_attempts: int = 8, base_delay: float = 1.0, max_delay: float = 300.0, concurrency: int = 16,
                 batch: int = 200, lease: timedelta = timedelta(minutes=2),
                 jitter: Callable[[], float] = random.random, instance: str | None = None,
                 round_wait: float | None = 1.0) -> None:
        self._uow = uow
        self._chat = chat
        self._clock = clock
        self.customers = customers
        self.code_host = code_host
        self._pagers = pagers or {}
        self.max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._limit = asyncio.Semaphore(concurrency)
        self._batch = batch
        self.lease = lease
        self._jitter = jitter
        self._background: asyncio.Task[int] | None = None
        self._again = False
        self._hints = hints or OutboxHints()
        self._rooms = self._hints.rooms
        self._openings = self._hints.openings
        # This process's name (WARROOM_INSTANCE_ID), stored with each claim: restarted under the same name, it
        # takes back at once what it had claimed when it died instead of waiting out the lease.
        self.instance = instance
        # How long a round waits for its slowest incident: after that, incidents still sending go on in the
        # background (recording their own outcome) and the next round starts, so one stalled incident never
        # holds up the others' messages.
        self.round_wait = round_wait
        self._detached: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, int | None] = {}  # outbox id → incident, of what detached chains are sending


    async def drain(self) -> int:
        """Deliver everything deliverable now (in order per incident); returns how many were delivered.

        One round: claim what is ready (per incident, the oldest waiting message and the ready ones right
        behind it), send each incident's messages in order while different incidents go in parallel, then
        record every outcome in one transaction. A declare's card and checklists are one claim and one
        record, not two transactions per message."""
        delivered = 0
        while True:
            seen = self._hints.written
            async with self._uow() as uow:
                items = await uow.outbox.claim(self._clock.now(), self._batch, self.lease, by=self.instance)
                if self._in_flight:
                    # A message this process is still sending (a detached, slow incident) whose lease ran out is
                    # never sent twice by its own sender: the claim just renewed its lease; what queued behind it
                    # in its incident goes back.
                    busy = {number for number in self._in_flight.values() if number is not None}
                    mine = [i for i in items if i.id in self._in_flight or i.outbound.incident_number in busy]
                    if mine:
                        await uow.outbox.release([i.id for i in mine if i.id not in self._in_flight])
                        items = [i for i in items if i not in mine]
                await uow.commit()
            if not items:
                return delivered
            chains = _chains(items)
            tasks = [asyncio.ensure_future(self._deliver_chain(chain)) for chain in chains]
            done, slow = await asyncio.wait(tasks, timeout=self.round_wait)  # None: wait for every incident
            if slow:  # stalled incidents: they record themselves when done (together); the others go on
                self._detach({task: chain for chain, task in zip(chains, tasks, strict=True) if task in slow})
            outcomes = [outcome for task in done for outcome in task.result()]
            await self._record(outcomes)
            sent = sum(1 for outcome in outcomes if outcome.delivered)
            delivered += sent
            if not sent:
                return delivered  # everything claimed was put back for later (or is still sending): stop
            if slow:
                continue  # what the stalled incidents held up is claimable by others now
            if self._hints.told and sent == len(outcomes) and len(items) < self._batch \
                    and self._hints.written == seen:
                # All of it went out and nothing was queued here meanwhile: another claim would come back
                # empty (what other replicas queue, or retries coming due, the next tick picks up).
                return delivered

    def _detach(self, slow: dict[asyncio.Future[list[_Outcome]], list[OutboxItem]]) -> None:
        for chain in slow.values():
            for item in chain:
                self._in_flight[item.id] = item.outbound.incident_number

        async def finish() -> None:
            pending = set(slow)
            while pending:  # whatever finished together is recorded in one transaction
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                try:
                    await self._record([outcome for task in done for outcome in task.result()])
                except Exception:
                    log.exception("outbox: recording a slow incident's deliveries failed; they are retried "
                                  "after their lease")
                finally:
                    for task in done:
                        for item in slow[task]:
                            self._in_flight.pop(item.id, None)
                self.kick()  # their next messages (and anything that waited) go now

        detached = asyncio.ensure_future(finish())
        self._detached.add(detached)
        detached.add_done_callback(self._detached.discard)

    async def release_claims(self, *, own: bool = False) -> int:
        """Take over every message another sender was delivering (only safe when no other sender lives), or
        (`own`) those this instance claimed in a previous life: a restarted replica resumes them at once."""
        if own and self.instance is None:
            return 0
        async with self._uow() as uow:
            released = await uow.outbox.release_claims(self._clock.now(), by=self.instance if own else None)
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
        while self._detached:
            await asyncio.gather(*self._detached, return_exceptions=True)
            if self._background is not None:
                await asyncio.shield(self._background)

    async def _deliver_chain(self, chain: list[OutboxItem]) -> list[_Outcome]:
        """One incident's claimed messages, in order; after a failure the rest wait (unsent) for the next round."""
        outcomes: list[_Outcome] = []
        for index, item in enumerate(chain):
            outcome = await self._attempt(item)
            outcomes.append(outcome)
            if not outcome.delivered:
                outcomes.extend(_Outcome(later, released=True) for later in chain[index + 1:])
                break
        return outcomes

    async def _attempt(self, item: OutboxItem) -> _Outcome:
        async with self._limit:
            out = item.outbound
            where = key_of(out.incident_number) if out.incident_number else "no incident"
            try:
                posted = await self._send(item)
            except _RoomNotOpen:
                return _Outcome(item, retry_in=self._base_delay, error="incident room not open yet", count=False)
            except DeliveryError as problem:
                log.warning("outbox %s (%s, %s): %s", item.id, where, out.operation, problem)
                if problem.permanent:
                    return _Outcome(item, give_up=str(problem))
                return _Outcome(item, retry_in=problem.retry_after, error=str(problem))
            except Exception as problem:  # timeouts, connection errors, 5xx from SDKs that don't classify
                log.warning("outbox %s (%s, %s): %r", item.id, where, out.operation, problem)
                return _Outcome(item, error=repr(problem)[:500])
            if out.operation == "open_room" and out.incident_number is not None and posted is not None:
                # The rest of this incident's chain goes into the room just opened (recorded in _record).
                self._rooms[out.incident_number] = _Where(posted.room.platform, posted.room.channel,
                                                          posted.room.thread, posted.message_id)
            return _Outcome(item, delivered=True, posted=posted)

    async def _record(self, outcomes: list[_Outcome]) -> None:
        """Every outcome of a round in one transaction: delivered, retry later, given up, or put back."""
        now = self._clock.now()
        customers_failed: list[tuple[OutboxItem, str]] = []
        async with self._uow() as uow:
            delivered: list[tuple[int, str | None]] = []
            released: list[int] = []
            for outcome in outcomes:
                item, out = outcome.item, outcome.item.outbound
                if outcome.delivered:
                    posted = outcome.posted
                    if out.operation == "open_room" and out.incident_number is not None and posted is not None:
                        await uow.incidents.attach_room(out.incident_number, platform=posted.room.platform,
                                                        channel=posted.room.channel, thread=posted.room.thread,
                                                        card_message=posted.message_id)
                    delivered.append((item.id, posted.message_id if posted else None))
                elif outcome.released:
                    released.append(item.id)
                else:
                    failed = await self._mark(uow, outcome, now)
                    if failed is not None:
                        customers_failed.append((item, failed))
            await uow.outbox.delivered_many(delivered, now)
            await uow.outbox.release(released)
            await uow.commit()
        for item, reason in customers_failed:
            try:
                if item.outbound.operation == "code_host" and self.code_host is not None:
                    await self.code_host.give_up(item, reason)
                elif item.outbound.operation == "customer_message" and self.customers is not None:
                    await self.customers.give_up(item, reason)
            except Exception:  # telling about a failure must not lose the other outcomes' bookkeeping
                log.exception("outbox %s: could not report that it was given up", item.id)

    async def _send(self, item: OutboxItem) -> Posted | None:
        out = item.outbound
        if out.operation == "code_host":
            if self.code_host is None:
                raise DeliveryError("no code host (GitHub) is configured", permanent=True)
            reference = await self.code_host.deliver(item)
            return Posted(Room(out.platform, ""), reference)
        if out.operation == "customer_message":
            if self.customers is None:
                raise DeliveryError("customer messaging is not configured", permanent=True)
            message_id = await self.customers.deliver(item)
            return Posted(Room(out.platform, (out.customer or {}).get("phone", "")), message_id)
        if out.operation == "page":
            pager = self._pagers.get(out.platform)
            if pager is None or out.page is None:
                raise DeliveryError(f"no pager {out.platform!r} is configured", permanent=True)
            request = PageRequest(**{k: out.page[k] for k in ("action", "incident_key", "address", "summary",
                                                               "severity", "person") if k in out.page})
            # a pager's dedup key (the incident key) makes a retry after a lost answer harmless
            return Posted(Room(out.platform, request.person), await pager.page(request=request))
        chat = self._chat.get(out.platform)
        if chat is None:
            raise DeliveryError(f"no chat adapter for platform {out.platform!r} is configured", permanent=True)
        incident = None
        where = self._rooms.get(out.incident_number) if out.incident_number is not None else None
        opening = self._openings.pop(out.dedupe_key, None) if out.operation == "open_room" else None
        if opening is not None and out.room is not None and not item.delivery.maybe_sent:
            # Declared by this process and never tried: nothing to check in the database first.
            return await chat.open_incident_room(channel=out.room.channel, incident_key=opening[0],
                                                 title=opening[1], card=out.message, delivery=item.delivery)
        # The incident is read only when its room is not known yet (or to open it): a room never moves.
        if out.incident_number is not None and (out.operation == "open_room" or (
                where is None and (out.room is None or out.operation == "update_card"))):
            async with self._uow() as uow:
                incident = await uow.incidents.get(out.incident_number)
            if incident is not None:
                self._hints.note_room(incident)
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

    async def _mark(self, uow: UnitOfWork, outcome: _Outcome, now: datetime) -> str | None:
        """Retry later, or give up; returns the reason when a customer message was given up on after retries
        (its recipient's status is updated once this transaction has committed) or a code host job was given
        up on (said in the incident's thread)."""
        item = outcome.item
        attempts = item.attempts + (1 if outcome.count else 0)
        if outcome.give_up is not None or attempts >= self.max_attempts:
            reason = outcome.give_up or f"gave up after {attempts} attempts: {outcome.error}"
            log.error("outbox %s undeliverable (%s): %s", item.id,
                      key_of(item.outbound.incident_number) if item.outbound.incident_number else "-", reason)
            await uow.outbox.give_up(item.id, now, reason)
            if item.outbound.operation == "customer_message" and outcome.give_up is None:
                return reason
            if item.outbound.operation == "code_host":  # said in the incident's thread, permanent or not
                return reason
            return None
        retry_in = outcome.retry_in
        if retry_in is None:
            retry_in = min(self._max_delay, self._base_delay * 2 ** (attempts - 1))
            retry_in *= 0.5 + self._jitter() / 2  # jitter: replicas don't retry in lockstep
        await uow.outbox.retry_later(item.id, now + timedelta(seconds=retry_in), outcome.error,
                                     count_attempt=outcome.count)
        return None


@dataclass
class _Outcome:
    """What happened to one claimed message in a round."""

    item: OutboxItem
    delivered: bool = False
    posted: Posted | None = None
    released: bool = False  # not attempted: an earlier message of its incident failed
    retry_in: float | None = None
    error: str = ""
    give_up: str | None = None  # permanent failure
    count: bool = True  # counts as an attempt


def _chains(items: list[OutboxItem]) -> list[list[OutboxItem]]:
    """Claimed messages grouped per incident, oldest first; messages without an incident each on their own."""
    chains: dict[object, list[OutboxItem]] = {}
    for item in sorted(items, key=lambda i: i.id):
        number = item.outbound.incident_number
        chains.setdefault(number if number is not None else ("alone", item.id), []).append(item)
    return list(chains.values())


__all__ = ["OutboxSender", "message_from_json", "message_to_json"]
