"""The outbound work every use case shares: queue a message (and its followers' copies) in the caller's unit of
work, queue the card, re-plan reminders, check a delivery id is new — and, after the commit, deliver.

    await notifier.queue(uow, incident, Message(text="…"), originator=ctx.origin)
    await uow.commit()
    await notifier.deliver()

One collaborator, injected into every service (incidents, briefs, alerts, operators, the digest), so no service
reaches into another for it.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import tzinfo

from bot.delivery.outbox import OutboxHints, OutboxSender
from bot.incident import render
from bot.incident.domain import Incident
from bot.incident.reminders import plan
from bot.ports import Clock, Message, Outbound, OutboundOperation, Room, UnitOfWork, UnitOfWorkFactory
from playbooks.schema import Ladder

Address = tuple[str, str]  # (platform, address): where a person reads, e.g. ("whatsapp", "+254700000011")


class OutboxWriter:
    """The queueing half: rows in the outbox, written in the caller's transaction. Needs nothing that sends,
    so the senders' own collaborators (customer delivery) can queue too."""

    def __init__(self, *, clock: Clock, ladder: Ladder, tz: tzinfo, hints: OutboxHints) -> None:
        self._clock = clock
        self._ladder = ladder
        self._tz = tz
        self._hints = hints

    async def queue(self, uow: UnitOfWork, incident: Incident, message: Message, *,
                    operation: OutboundOperation = "post", room: Room | None = None, platform: str | None = None,
                    dedupe_key: str | None = None, to_room: bool = True, originator: Address | None = None) -> None:
        """A message for the incident's room (unless `to_room` is False) and a copy for each follower but the
        one who caused it (`originator`: they already have the reply); sent after the commit."""
        self._hints.note_room(incident)
        key = dedupe_key or uuid.uuid4().hex
        if operation == "open_room":
            self._hints.note_opening(key, incident)
        now = self._clock.now()
        if to_room:
            await uow.outbox.enqueue(Outbound(platform=platform or incident.platform or "", operation=operation,
                                              message=message, dedupe_key=key, incident_number=incident.number,
                                              room=room), now)
        if operation == "update_card":
            return  # followers get the news itself, not a fresh card on every change
        own = (incident.platform, incident.channel)
        for follower_platform, address in await uow.operators.followers(incident.number):
            if (follower_platform, address) in (own, originator):
                continue
            await uow.outbox.enqueue(Outbound(
                platform=follower_platform, operation="post",
                message=message if message.incident_key else replace(message, incident_key=incident.key),
                dedupe_key=f"{key}>{follower_platform}:{address}", room=Room(follower_platform, address)), now)

    async def queue_card(self, uow: UnitOfWork, incident: Incident) -> None:
        """The incident's card, redrawn where it was posted."""
        level = self._ladder.level(incident.severity)
        if level is not None:
            await self.queue(uow, incident, render.incident_card(incident, level, self._tz), operation="update_card")

    async def replan(self, uow: UnitOfWork, incident: Incident) -> None:
        """The incident's pending reminders, planned again from its current severity and state."""
        level = self._ladder.level(incident.severity)
        plans = plan(incident, level, self._ladder, self._tz) if level else []
        await uow.reminders.replace_pending(incident.number, plans, self._clock.now())

    async def first_delivery(self, uow: UnitOfWork, delivery_id: str | None) -> bool:
        """False for a platform's retry of something already handled (same delivery id)."""
        return delivery_id is None or await uow.deliveries.first_time(delivery_id, self._clock.now())


class Notifier(OutboxWriter):
    """The writer plus delivery: what the use cases are given."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, ladder: Ladder, tz: tzinfo, hints: OutboxHints,
                 sender: OutboxSender, deliver_inline: bool) -> None:
        super().__init__(clock=clock, ladder=ladder, tz=tz, hints=hints)
        self._uow = uow
        self.sender = sender
        # Inline: a command returns after its messages went out (console, tests). Background: the HTTP server
        # acks at once and the outbox delivers behind it, so a slow chat API never delays an ack.
        self._deliver_inline = deliver_inline

    async def deliver(self) -> None:
        """After a commit: send what was queued (now, or by waking the background sender)."""
        if self._deliver_inline:
            await self.sender.drain()
        else:
            self.sender.kick()

    async def send_direct(self, *, room: Room, message: Message, dedupe_key: str | None = None) -> None:
        """A message to one person's chat (a reply to a phone, which has no other way to answer)."""
        async with self._uow() as uow:
            await uow.outbox.enqueue(Outbound(platform=room.platform, operation="post", message=message,
                                              dedupe_key=dedupe_key or uuid.uuid4().hex, room=room),
                                     self._clock.now())
            await uow.commit()
        await self.deliver()
