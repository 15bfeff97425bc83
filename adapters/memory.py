"""An in-memory chat platform: the test double, and the base of the console adapter.

It behaves like a small real platform (channels, threads made from a message, edits, ephemeral replies),
so tests exercise the same port calls a real adapter receives.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.ports import Capabilities, Delivery, Message, Posted, Room


@dataclass
class Sent:
    room: Room
    message: Message
    message_id: str
    private_to: str | None = None
    edits: list[Message] = field(default_factory=list)

    @property
    def current(self) -> Message:
        return self.edits[-1] if self.edits else self.message


class MemoryChat:
    def __init__(self, platform: str = "console", *, capabilities: Capabilities | None = None) -> None:
        self.platform = platform
        self.capabilities = capabilities or Capabilities(threads=True, edits=True, buttons=True, files=True,
                                                         ephemeral=True)
        self.sent: list[Sent] = []
        self._ids = itertools.count(1)
        self.names: dict[str, str] = {}
        self.failures: list[Exception] = []  # raised, in order, by the next sends (a platform having a bad day)
        self._by_key: dict[str, Posted] = {}

    def fail_next(self, *errors: Exception) -> None:
        self.failures.extend(errors)

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def _next_id(self) -> str:
        return f"m{next(self._ids)}"

    async def open_incident_room(self, *, channel: str, incident_key: str, title: str, card: Message,
                                 delivery: Delivery | None = None) -> Posted:
        posted = await self.post(room=Room(self.platform, channel), message=card, delivery=delivery)
        # Like Slack, the thread is named by the message it hangs off.
        return Posted(room=Room(self.platform, channel, thread=posted.message_id), message_id=posted.message_id)

    async def post(self, *, room: Room, message: Message, delivery: Delivery | None = None) -> Posted:
        if delivery is not None and delivery.maybe_sent and delivery.key in self._by_key:
            return self._by_key[delivery.key]  # it did arrive before the sender lost track: not again
        self._maybe_fail()
        sent = Sent(room=room, message=message, message_id=self._next_id())
        self.sent.append(sent)
        self.on_sent(sent)
        posted = Posted(room=room, message_id=sent.message_id)
        if delivery is not None:
            self._by_key[delivery.key] = posted
        return posted

    async def update(self, *, posted: Posted, message: Message) -> None:
        self._maybe_fail()
        for sent in self.sent:
            if sent.message_id == posted.message_id:
                sent.edits.append(message)
                self.on_edited(sent)
                return
        raise KeyError(f"no message {posted.message_id} to update")

    async def reply_privately(self, *, room: Room, user: str, message: Message) -> None:
        sent = Sent(room=room, message=message, message_id=self._next_id(), private_to=user)
        self.sent.append(sent)
        self.on_sent(sent)

    async def display_name(self, *, user: str) -> str:
        return self.names.get(user, user)

    # Hooks for subclasses that show traffic (the console); the memory double keeps it silent.
    def on_sent(self, sent: Sent) -> None:
        pass

    def on_edited(self, sent: Sent) -> None:
        pass

    # -- test conveniences ---------------------------------------------------------------------------

    def in_room(self, room: Room) -> list[Message]:
        return [s.current for s in self.sent if s.room == room and s.private_to is None]

    def texts(self, room: Room | None = None) -> list[str]:
        return [s.current.text or s.current.title or "" for s in self.sent
                if s.private_to is None and (room is None or s.room == room)]

    def of_kind(self, kind: str) -> list[Sent]:
        return [s for s in self.sent if s.current.kind == kind]


class MemoryWhatsApp:
    """A CustomerMessenger that records what it would have sent; `fail(phone, error)` makes a number fail."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._failures: dict[str, list[Exception]] = {}
        self._ids = itertools.count(1)

    def fail(self, phone: str, *errors: Exception) -> None:
        self._failures.setdefault(phone, []).extend(errors)

    def _maybe_fail(self, phone: str) -> None:
        if self._failures.get(phone):
            raise self._failures[phone].pop(0)

    async def send_template(self, *, to: str, template: str, language: str, parameters: Sequence[str]) -> str:
        self._maybe_fail(to)
        message_id = f"wamid.{next(self._ids)}"
        self.sent.append({"to": to, "type": "template", "template": template, "language": language,
                          "parameters": list(parameters), "id": message_id})
        return message_id

    async def send_text(self, *, to: str, text: str) -> str:
        self._maybe_fail(to)
        message_id = f"wamid.{next(self._ids)}"
        self.sent.append({"to": to, "type": "text", "text": text, "id": message_id})
        return message_id
