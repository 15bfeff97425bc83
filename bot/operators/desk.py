"""WhatsApp as an operator's room: allow-listed numbers run `/incident` commands from their phone.

An operator's message that starts with `/incident`, `incident` or `inc` is a command; anything else goes to
the timeline of the incident they are working on (the last one they touched; `inc use INC-9` switches).
Replies come back to the phone prefixed with the incident, through the outbox like every other message.
Messages from numbers that are not operators are customers' (see bot.briefs.service), never commands.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from bot.briefs.templates import normalize_phone
from bot.delivery.notifier import Notifier
from bot.incident import commands as cmd
from bot.incident.key import PATTERN, IncidentKey, key_of
from bot.incident.service import Context, IncidentService
from bot.operators.roster import Operator, command_text
from bot.ports import (
    Actor,
    Clock,
    CustomerMessageReceived,
    CustomerMessageStatus,
    Message,
    Reply,
    Room,
    UnitOfWorkFactory,
)

log = logging.getLogger("warroom.operators")
PLATFORM = "whatsapp"
_BUTTON = re.compile(rf"^warroom:(ack|update|resolve|snooze):({PATTERN})$", re.IGNORECASE)


class OperatorDesk:
    def __init__(self, *, service: IncidentService, notifier: Notifier, uow: UnitOfWorkFactory,
                 clock: Clock) -> None:
        self._service = service
        self._notifier = notifier
        self._uow = uow
        self._clock = clock

    async def operator(self, phone: str) -> Operator | None:
        async with self._uow() as uow:
            return await uow.operators.get(phone)

    async def add(self, *, phone: str, name: str | None = None) -> bool:
        phone = normalize_phone(phone)
        async with self._uow() as uow:
            added = await uow.operators.add(phone=phone, name=(name or phone).strip()[:200], now=self._clock.now())
            await uow.commit()
        return added

    async def remove(self, phone: str) -> bool:
        """Withdraw a number at once: no more commands from it, nothing more sent to it."""
        async with self._uow() as uow:
            removed = await uow.operators.remove(normalize_phone(phone))
            await uow.commit()
        return removed

    async def keep_listed(self, listed: list[tuple[str, str]]) -> None:
        """Make the roster follow WARROOM_WHATSAPP_OPERATORS: every listed number is an operator, and one the
        list used to name but no longer does is removed like `operators remove` would."""
        phones = {normalize_phone(phone) for _, phone in listed}
        async with self._uow() as uow:
            for name, phone in listed:
                await uow.operators.add(phone=normalize_phone(phone), name=(name or phone).strip()[:200],
                                        now=self._clock.now(), source="env")
            for phone in await uow.operators.listed_elsewhere(phones):
                await uow.operators.remove(phone)
            await uow.commit()

    async def all(self) -> list[Operator]:
        async with self._uow() as uow:
            return await uow.operators.all()

    async def customer_event(self, event: CustomerMessageReceived | CustomerMessageStatus) -> None:
        """WhatsApp's front door: an operator's phone is a chat room (commands, timeline messages, buttons);
        every other number is a customer's, and statuses are of briefs."""
        if isinstance(event, CustomerMessageReceived):
            operator = await self.operator(event.phone)
            if operator is not None:
                await self.handle(operator, event)
                return
        await self._service.customer_event(event)

    async def handle(self, operator: Operator, event: CustomerMessageReceived) -> None:
        """Run an operator's message: a button reply, a command, or a timeline message."""
        room = Room(PLATFORM, operator.phone)
        ctx = Context(actor=Actor(id=operator.phone, name=operator.name), room=room,
                      delivery_id=f"wa-op:{event.message_id}", default_incident=operator.current_incident)
        reply, number = await self._dispatch(ctx, event)
        if number is not None and number != operator.current_incident:
            async with self._uow() as uow:
                await uow.operators.set_current(operator.phone, number)
                await uow.commit()
        if reply is not None:
            key = key_of(number) if number is not None else None
            message = reply.message if reply.message.incident_key or key is None else _with_key(reply.message, key)
            await self._notifier.send_direct(room=room, message=message, dedupe_key=f"reply:{event.message_id}")

    async def _dispatch(self, ctx: Context, event: CustomerMessageReceived) -> tuple[Reply | None, int | None]:
        """The reply, and the incident the message was about (the operator's current one from then on)."""
        button = _BUTTON.match(event.button_payload or "")
        if button is not None:
            action, key = button.group(1).lower(), button.group(2).upper()
            if action == "update":
                return Reply(Message(text=f'Reply with: inc status "what changed" (goes to {key}).',
                                     incident_key=key, kind="reply")), None
            reply = await self._service.press_button(ctx, action=action, value=key)
            parsed = IncidentKey.parse(key, strict=True)
            assert parsed is not None  # _BUTTON only matches a well-formed key
            return reply, await self._service.concerned_incident(ctx, cmd.ShowIncident(incident=parsed.number))
        text = command_text(event.text)
        if text is None:
            return await self._service.operator_message(ctx, text=event.text, message_id=event.message_id,
                                                        at=event.at), ctx.default_incident
        command = self._service.parse(text)
        if isinstance(command, cmd.UsageError):
            return Reply(Message(text=str(command), kind="error"), ok=False), None
        reply = await self._service.execute(ctx, command)
        if isinstance(command, cmd.Declare):  # the new incident (none for a repeated delivery)
            return reply, reply.incident if reply is not None else None
        return reply, await self._service.concerned_incident(ctx, command)


def _with_key(message: Message, key: str) -> Message:
    return replace(message, incident_key=key)

