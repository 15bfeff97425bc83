"""The console chat: warroom in a terminal, with no tokens and no network — the embedded default.

You are an operator in #incidents. Lines starting with /incident are commands; any other line is a chat
message in the room you are in (captured into the timeline inside an incident's thread). Console
directives let one person play a whole team:

    /enter INC-1   go into an incident's thread        /leave        back to the channel
    /as bob        speak as bob from now on            /as bob TEXT  say one line as bob
    /wait 20m      let time pass (reminders fire)      /where        where am I, who am I
    /quit          leave the console                   /help         this help
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime, timedelta
from typing import TextIO

from adapters.memory import MemoryChat, Sent
from adapters.text import to_text
from bot.incident.service import Context, IncidentService
from bot.ports import Actor, Delivery, Message, Posted, Room

PLATFORM = "console"
_WAIT = re.compile(r"^(\d{1,4})\s*(s|m|min|h|d)$", re.IGNORECASE)
_UNIT = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days"}
CONSOLE_HELP = __doc__.split("\n\n", 2)[2].rstrip()


class ConsoleChat(MemoryChat):
    """MemoryChat that prints every message, labelled with the room it went to."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(PLATFORM)
        self._out = out
        self.thread_keys: dict[str, str] = {}  # thread id → INC-n, to label rooms for humans

    async def open_incident_room(self, *, channel: str, incident_key: str, title: str, card: Message,
                                 delivery: Delivery | None = None) -> Posted:
        posted = await super().open_incident_room(channel=channel, incident_key=incident_key, title=title, card=card,
                                                  delivery=delivery)
        self.thread_keys[posted.room.thread or ""] = incident_key
        return posted

    def label(self, room: Room) -> str:
        if room.thread is None:
            return room.channel
        return f"{self.thread_keys.get(room.thread, room.thread)} thread"

    def on_sent(self, sent: Sent) -> None:
        where = f"only you, {self.label(sent.room)}" if sent.private_to else self.label(sent.room)
        self._print(f"[{where}] warroom:", to_text(sent.message))

    def on_edited(self, sent: Sent) -> None:
        self._print(f"[{self.label(sent.room)}] warroom (card updated):", to_text(sent.current))

    def _print(self, header: str, body: str) -> None:
        indented = "\n".join("  " + line for line in body.splitlines())
        self._out.write(f"{header}\n{indented}\n")
        self._out.flush()


class ConsoleSession:
    """One operator at a terminal (or a script): tracks the room and the speaker, routes each line."""

    def __init__(self, *, service: IncidentService, chat: ConsoleChat, out: TextIO, user: str = "operator",
                 channel: str = "#incidents", advance: Callable[[timedelta], datetime] | None = None) -> None:
        self._service = service
        self._chat = chat
        self._out = out
        self.user = user
        self.channel = Room(PLATFORM, channel)
        self.room = self.channel
        self._advance = advance
        self._lines = 0
        self.finished = False

    @property
    def prompt(self) -> str:
        return f"{self._chat.label(self.room)} {self.user}> "

    def say(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    async def handle(self, line: str) -> None:
        line = line.strip()
        if not line or line.startswith("#!") or line.startswith("# "):
            return
        self._lines += 1
        if line.startswith("/") and not line.lower().startswith("/incident"):
            await self._directive(line)
            return
        await self._speak(self.user, line)

    async def _speak(self, user: str, line: str) -> None:
        actor = Actor(id=user, name=user)
        if re.match(r"^/?incident\b", line, re.IGNORECASE) and line.startswith("/"):
            before = {s.message_id for s in self._chat.sent}
            reply = await self._service.run_command(Context(actor=actor, room=self.room), line)
            if reply is not None:
                await self._chat.reply_privately(room=self.room, user=user, message=reply.message)
            await self._follow_new_thread(before)
            return
        kept = await self._service.capture_message(room=self.room, actor=actor, text=line,
                                                   message_id=f"c{self._lines}-{len(self._chat.sent)}")
        if not kept and self.room == self.channel:
            self.say("  (said in #incidents; declare with /incident declare … to open an incident thread)")

    async def _follow_new_thread(self, before: set[str]) -> None:
        """After a declare from the channel, step into the new incident's thread, as a person would."""
        if self.room != self.channel:
            return
        for sent in self._chat.sent:
            if sent.message_id not in before and sent.message.kind == "card" and sent.room == self.channel:
                self.room = Room(PLATFORM, self.channel.channel, thread=sent.message_id)
                self.say(f"  (you are now in the {self._chat.label(self.room)})")
                return

    async def _directive(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        word, rest = word.lower(), rest.strip()
        if word in ("/quit", "/exit"):
            self.finished = True
        elif word == "/help":
            self.say(CONSOLE_HELP)
        elif word == "/where":
            self.say(f"  you are {self.user} in {self._chat.label(self.room)}")
        elif word == "/leave":
            self.room = self.channel
            self.say(f"  (back in {self.channel.channel})")
        elif word in ("/enter", "/thread"):
            await self._enter(rest)
        elif word == "/as":
            name, _, text = rest.partition(" ")
            if not name:
                self.say("  usage: /as NAME  (switch speaker)   or   /as NAME TEXT  (one line as NAME)")
            elif text.strip():
                await self._speak(name.lstrip("@"), text.strip())
            else:
                self.user = name.lstrip("@")
                self.say(f"  (you are now {self.user})")
        elif word == "/wait":
            await self._wait(rest)
        else:
            self.say(f"  unknown console command {word!r}; lines starting with /incident are bot commands.\n"
                     + CONSOLE_HELP)

    async def _enter(self, ref: str) -> None:
        match = re.match(r"^(?:INC-)?(\d+)$", ref.strip(), re.IGNORECASE)
        room = await self._service.room_of(int(match.group(1))) if match else None
        if room is None:
            self.say(f"  no incident thread {ref!r}; /incident list shows open incidents")
            return
        self.room = room
        key = f"INC-{match.group(1)}"  # type: ignore[union-attr]
        self._chat.thread_keys.setdefault(room.thread or "", key)
        self.say(f"  (you are now in the {self._chat.label(room)})")

    async def _wait(self, value: str) -> None:
        """Let time pass, stopping at each reminder due on the way: every nudge and escalation fires at its own
        due time (and is re-planned from there), as the running bot's ticker would, not all at the end."""
        match = _WAIT.match(value.replace(" ", ""))
        if not match or self._advance is None:
            self.say("  usage: /wait <n>s|m|h|d, e.g. /wait 20m")
            return
        self.say(f"  ({value} pass)")
        await self._service.fire_due_reminders()  # also refreshes the service's next_reminder_due
        now = self._advance(timedelta())  # advance returns the clock's time
        end = now + timedelta(**{_UNIT[match.group(2).lower()]: int(match.group(1))})
        while (due := self._service.next_reminder_due) is not None and now < due <= end:
            now = self._advance(due - now)
            await self._service.fire_due_reminders()
        if end > now:
            self._advance(end - now)
        await self._service.fire_due_reminders()


async def stdin_lines() -> AsyncIterator[str]:
    """Lines from stdin without blocking the event loop (works for terminals and pipes)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        yield line.decode("utf-8", errors="replace")


async def play(session: ConsoleSession, lines: Iterable[str], *, echo: bool = True) -> None:
    """Play a script: each line exactly as a user would type it, echoed after the prompt."""
    for line in lines:
        if session.finished:
            break
        stripped = line.rstrip("\n")
        if echo and stripped.strip() and not stripped.lstrip().startswith("#"):
            session.say(session.prompt + stripped)
        await session.handle(stripped)
