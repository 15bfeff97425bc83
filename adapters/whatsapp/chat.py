"""WhatsApp as a chat platform (issue: operators run incidents from their phone), on the core's ChatAdapter port.

WhatsApp has no threads and no edits, so the adapter says so in its capabilities and the core posts fresh
messages; every message carries its incident as an `[INC-7]` prefix. Cards and checklists are rendered for a
phone: short lines, a numbered checklist, no tables; card buttons become up to three reply buttons. Free text
only reaches a phone inside WhatsApp's 24-hour window: on 131047 the message goes out as the approved
operator template instead.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from adapters.whatsapp.client import WhatsAppCloud
from bot.ports import Capabilities, Delivery, DeliveryError, Message, Posted, Room

log = logging.getLogger("warroom.whatsapp")
PLATFORM = "whatsapp"
MAX_BUTTONS = 3
MAX_BODY = 1024  # interactive message body limit
MAX_TEXT = 4096
BUTTON_TITLES = {"ack": "Acknowledge", "update": "Post update", "resolve": "Resolve", "snooze": "Snooze 30m",
                 "brief_send": "Send brief"}


def phone_text(message: Message) -> str:
    """A neutral message as phone-sized text: `[INC-7]` first, short labelled lines, a numbered checklist."""
    lines: list[str] = []
    if message.title:
        lines.append(f"*{message.title}*")
    lines += [f"{field.label}: {field.value}" for field in message.fields]
    if message.text:
        lines += message.text.splitlines()
    lines += [f"{item.number}. {'✅ ' if item.done else ''}{item.text}" for item in message.checklist]
    if message.footer:
        lines.append(f"_{message.footer}_")
    body = "\n".join(line.rstrip() for line in lines if line.strip())
    prefix = f"[{message.incident_key}] " if message.incident_key else ""
    return (prefix + body)[:MAX_TEXT]


class WhatsAppChat:
    platform = PLATFORM
    capabilities = Capabilities(threads=False, edits=False, buttons=True, files=True, ephemeral=False,
                                max_text=MAX_TEXT, max_buttons=MAX_BUTTONS)

    def __init__(self, cloud: WhatsAppCloud, *, fallback_template: str, fallback_language: str = "en",
                 names: dict[str, str] | None = None) -> None:
        self._cloud = cloud
        self._template = fallback_template
        self._language = fallback_language
        self._names = names or {}

    async def open_incident_room(self, *, channel: str, incident_key: str, title: str, card: Message,
                                 delivery: Delivery | None = None) -> Posted:
        """An incident declared from a phone lives in that phone's chat; the key tells its messages apart."""
        posted = await self.post(room=Room(PLATFORM, channel), message=card, delivery=delivery)
        return Posted(room=Room(PLATFORM, channel, thread=incident_key), message_id=posted.message_id)

    async def post(self, *, room: Room, message: Message, delivery: Delivery | None = None) -> Posted:
        # `delivery` is accepted for the port; the Cloud API cannot look our messages up by key, so a send cut
        # off by a crash may repeat once.
        to = room.channel
        if message.incident_key is None and room.thread:  # an incident's own chat: its key is the "thread"
            message = replace(message, incident_key=room.thread)
        text = phone_text(message)
        if message.attachment is not None:
            attachment = message.attachment
            message_id = await self._cloud.send_document(to=to, filename=attachment.filename,
                                                         content=attachment.content,
                                                         caption=(attachment.title or text)[:1000])
            await self._text_or_template(to, text, message.incident_key)
            return Posted(room=room, message_id=message_id)
        buttons = [(f"warroom:{b.action}:{b.value}", BUTTON_TITLES.get(b.action, b.label)[:20])
                   for b in message.buttons if b.action in ("ack", "update", "resolve", "snooze")][:MAX_BUTTONS]
        if buttons:
            try:
                if len(text) > MAX_BODY:
                    await self._cloud.send_text(to=to, text=text)
                    text = f"[{message.incident_key}] Actions:" if message.incident_key else "Actions:"
                message_id = await self._cloud.send_buttons(to=to, text=text, buttons=buttons)
            except DeliveryError as problem:
                if not problem.window_closed:
                    raise
                message_id = await self._template_send(to, text, message.incident_key)
            return Posted(room=room, message_id=message_id)
        return Posted(room=room, message_id=await self._text_or_template(to, text, message.incident_key))

    async def _text_or_template(self, to: str, text: str, key: str | None) -> str:
        try:
            return await self._cloud.send_text(to=to, text=text)
        except DeliveryError as problem:
            if not problem.window_closed:
                raise
            return await self._template_send(to, text, key)

    async def _template_send(self, to: str, text: str, key: str | None) -> str:
        """Outside the 24-hour window only an approved template gets through."""
        body = " ".join(text.split())
        if key and body.startswith(f"[{key}] "):
            body = body[len(key) + 3:]
        return await self._cloud.send_template(to=to, template=self._template, language=self._language,
                                               parameters=(key or "warroom", body[:900]))

    async def update(self, *, posted: Posted, message: Message) -> None:
        raise DeliveryError("WhatsApp messages cannot be edited", permanent=True)  # capabilities say no edits

    async def reply_privately(self, *, room: Room, user: str, message: Message) -> None:
        await self.post(room=Room(PLATFORM, user), message=message)

    async def display_name(self, *, user: str) -> str:
        return self._names.get(user, user)
