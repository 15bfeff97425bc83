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
from bot.operators.roster import Operator, command_text
from bot.ports import Actor, Clock, CustomerMessageReceived, Message, Reply, Room, UnitOfWorkFactory
from bot.incident.service import Context, IncidentService, _originator, concerned_incident

log = logging.getLogger("warroom.operators")
PLATFORM = "whatsapp"
_BUTTON = re.compile(r"^warroom:(ack|update|resolve|snooze):(INC-[0-9]{1,9})$", re.IGNORECASE)


class OperatorDesk:
    def __init__(self, *, service: IncidentService, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._service = service
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
        async with self._uow() as uow:
            removed = await uow.operators.remove(normalize_phone(phone))
            await uow.commit()
        return removed

    async def all(self) -> list[Operator]:
        async with self._uow() as uow:
            return await uow.operators.all()

    async def handle(self, operator: Operator, event: CustomerMessageReceived) -> None:
        """Run an operator's message: a button reply, a command, or a timeline message."""
        room = Room(PLATFORM, operator.phone)
        ctx = Context(actor=Actor(id=operator.phone, name=operator.name), room=room,
                      delivery_id=f"wa-op:{event.message_id}", default_incident=operator.current_incident)
        originator = _originator.set((PLATFORM, operator.phone))
        concerned = concerned_incident.set(None)
        try:
            reply = await self._dispatch(ctx, event)
            number = concerned_incident.get()
        finally:
            _originator.reset(originator)
            concerned_incident.reset(concerned)
        if number is not None and number != operator.current_incident:
            async with self._uow() as uow:
                await uow.operators.set_current(operator.phone, number)
                await uow.commit()
        if reply is not None:
            key = f"INC-{number}" if number is not None else None
            message = reply.message if reply.message.incident_key or key is None else _with_key(reply.message, key)
            await self._service.send_direct(room=room, message=message, dedupe_key=f"reply:{event.message_id}")

    async def _dispatch(self, ctx: Context, event: CustomerMessageReceived) -> Reply | None:
        button = _BUTTON.match(event.button_payload or "")
        if button is not None:
            action, key = button.group(1).lower(), button.group(2).upper()
            if action == "update":
                return Reply(Message(text=f'Reply with: inc status "what changed" (goes to {key}).',
                                     incident_key=key, kind="reply"))
            return await self._service.press_button(ctx, action=action, value=key)
        text = command_text(event.text)
        if text is None:
            return await self._service.operator_message(ctx, text=event.text, message_id=event.message_id,
                                                        at=event.at)
        return await self._service.run_command(ctx, text)


def _with_key(message: Message, key: str) -> Message:
    return replace(message, incident_key=key)

