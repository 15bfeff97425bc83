"""A real warroom on Discord: the fake Discord REST API on 127.0.0.1, real discord.py logged in against it
(`start_discord(..., connect=False)`: no gateway), a SQLite file and a manual clock. Gateway events are fed as
raw payloads into discord.py's own parsers (`client._connection.parsers[...]`), so the real dispatch runs:
CommandTree → the `/incident` subcommand, the view store → the card button, the modal store → the update form.

Handlers run as tasks: tests wait for them deterministically (`DiscordInbound.wait_handled`, or a recorded
call with `fake.wait_for`), never on a sleep.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "fakes"))

from discord_api import FakeDiscord

from adapters.discord.bot import (
    DiscordInbound,
    DiscordRuntime,
    discord_chat_from_settings,
    start_discord,
)
from adapters.discord.chat import DiscordChat
from adapters.discord.settings import DiscordSettings
from bot.app.bootstrap import Warroom, build
from bot.app.settings import Settings
from bot.ports import ManualClock, Room

START = datetime(2026, 11, 24, 6, 50, tzinfo=UTC)
# How DiscordInbound logs a handler that failed (a listener raised, or the command tree refused an interaction).
_HANDLER_FAILED = ("discord %s (%s) failed", "/incident failed before reaching warroom: %s")


def handler_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every handler failure DiscordInbound logged in this test so far (setup, call and teardown)."""
    return [record.getMessage() for when in ("setup", "call", "teardown") for record in caplog.get_records(when)
            if record.name == "warroom.discord" and record.msg in _HANDLER_FAILED]
OPTION_TYPES = {str: 3, int: 4, bool: 5}
USER_OPTION = 6


@dataclass
class Person:
    user: dict[str, Any]
    member: dict[str, Any]  # with "user"

    @property
    def id(self) -> str:
        return self.user["id"]

    @property
    def name(self) -> str:
        return self.member.get("nick") or self.user.get("global_name") or self.user["username"]


@dataclass
class DiscordGuild:
    """One Discord server talking to warroom: helpers send what Discord's gateway would send."""

    fake: FakeDiscord
    app: Warroom
    chat: DiscordChat
    runtime: DiscordRuntime
    clock: ManualClock
    settings: Settings
    discord_settings: DiscordSettings
    alice: Person
    bob: Person
    errors_expected: bool = False
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def service(self):
        return self.app.service

    @property
    def client(self) -> discord.Client:
        return self.runtime.client

    @property
    def inbound(self) -> DiscordInbound:
        return self.runtime.inbound

    @property
    def incidents(self) -> dict[str, Any]:
        return self.fake.incidents_channel

    def feed(self, event: str, payload: dict[str, Any], client: discord.Client | None = None) -> None:
        (client or self.client)._connection.parsers[event](payload)

    # -- interactions ----------------------------------------------------------------------------------

    def _interaction(self, kind: int, data: dict[str, Any], *, user: Person, channel: dict[str, Any],
                     message: dict[str, Any] | None = None) -> dict[str, Any]:
        interaction_id = self.fake.next_id()
        payload = {"id": interaction_id, "application_id": self.fake.app_id, "type": kind,
                   "token": f"token-{interaction_id}", "version": 1, "guild_id": self.fake.guild_id,
                   "channel_id": channel["id"], "channel": channel, "member": user.member, "data": data,
                   "locale": "en-US", "guild_locale": "en-US", "app_permissions": "2251799813685247",
                   "entitlements": [], "authorizing_integration_owners": {"0": self.fake.guild_id}, "context": 0,
                   "attachment_size_limit": 8 * 1024 * 1024}
        if message is not None:
            payload["message"] = message
        return payload

    def command_payload(self, sub: str, *, by: Person | None = None, where: dict[str, Any] | None = None,
                        focused: str | None = None, **options: Any) -> dict[str, Any]:
        """INTERACTION_CREATE for `/incident <sub> option=value …` (autocomplete when `focused` names one)."""
        resolved: dict[str, dict[str, Any]] = {}
        opts = []
        for name, value in options.items():
            if value is None:
                continue
            if isinstance(value, Person):
                resolved.setdefault("users", {})[value.id] = value.user
                resolved.setdefault("members", {})[value.id] = {k: v for k, v in value.member.items() if k != "user"}
                opts.append({"name": name, "type": USER_OPTION, "value": value.id})
            else:
                option = {"name": name, "type": OPTION_TYPES[type(value)], "value": value}
                if name == focused:
                    option["focused"] = True
                opts.append(option)
        data = {"id": self.fake.commands[0]["id"] if self.fake.commands else self.fake.next_id(), "name": "incident",
                "type": 1, "guild_id": self.fake.guild_id, "options": [{"name": sub, "type": 1, "options": opts}]}
        if resolved:
            data["resolved"] = resolved
        return self._interaction(4 if focused else 2, data, user=by or self.alice, channel=where or self.incidents)

    async def command(self, sub: str, *, by: Person | None = None, where: dict[str, Any] | None = None,
                      **options: Any) -> list[dict[str, Any]]:
        """Run `/incident <sub>` (by a person, in a channel or thread) and wait for the handler; returns the
        bot's answers (the interaction callback, then the follow-ups)."""
        payload = self.command_payload(sub, by=by, where=where, **options)
        self.feed("INTERACTION_CREATE", payload)
        await self.inbound.wait_handled(payload["id"])
        return self.fake.answers(payload["token"])

    async def reply_text(self, sub: str, **kwargs: Any) -> str:
        """The text of the follow-up the person who ran `/incident <sub>` sees."""
        answers = await self.command(sub, **kwargs)
        return followup_text(answers)

    async def click(self, custom_id: str, *, message: dict[str, Any], user: Person | None = None,
                    client: discord.Client | None = None, inbound: DiscordInbound | None = None
                    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Press a button on a message the bot posted (the message as Discord has it, components included)."""
        channel = self.fake.channels[message["channel_id"]]
        payload = self._interaction(3, {"custom_id": custom_id, "component_type": 2}, user=user or self.alice,
                                    channel=channel, message=message)
        self.feed("INTERACTION_CREATE", payload, client)
        await (inbound or self.inbound).wait_handled(payload["id"])
        return payload, self.fake.answers(payload["token"])

    async def submit_modal(self, custom_id: str, values: dict[str, str], *, channel: dict[str, Any],
                           user: Person | None = None) -> list[dict[str, Any]]:
        components = [{"type": 18, "id": i + 1, "component": {"type": 4, "id": i + 10, "custom_id": key,
                                                               "value": value}}
                      for i, (key, value) in enumerate(values.items())]
        payload = self._interaction(5, {"custom_id": custom_id, "components": components}, user=user or self.alice,
                                    channel=channel)
        self.feed("INTERACTION_CREATE", payload)
        await self.inbound.wait_handled(payload["id"])
        return self.fake.answers(payload["token"])

    # -- incidents and thread traffic -------------------------------------------------------------------

    async def declare(self, title: str = "Payments down", severity: str | None = "P1", **options: Any
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Declare, announce the new thread to the client like the gateway does; returns (card, thread)."""
        before = set(self.fake.messages)
        answers = await self.command("declare", title=title, severity=severity, **options)
        assert answers and answers[0]["type"] == 5, answers
        card = next(m for mid, m in self.fake.messages.items()
                    if mid not in before and m["channel_id"] == self.incidents["id"] and m["embeds"])
        thread = self.fake.channels[card["id"]]
        self.feed("THREAD_CREATE", {**thread, "newly_created": True})
        await self.inbound.wait_handled(f"thread:{thread['id']}")
        return card, thread

    def message_payload(self, text: str, *, channel: dict[str, Any], user: Person | None = None,
                        bot: bool = False) -> dict[str, Any]:
        person = user or self.bob
        author = {**person.user, "bot": bot}
        # Like Discord's: the id is a snowflake of when it was written (the clock's now), the timeline's time.
        message_id = str(discord.utils.time_snowflake(self.clock.now()) + next(self._ids))
        return {"id": message_id, "channel_id": channel["id"], "guild_id": self.fake.guild_id,
                "author": author, "member": {k: v for k, v in person.member.items() if k != "user"},
                "content": text, "timestamp": self.clock.now().isoformat(), "edited_timestamp": None,
                "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [],
                "embeds": [], "pinned": False, "type": 0, "flags": 0, "components": []}

    async def say(self, text: str, *, thread: dict[str, Any], user: Person | None = None,
                  bot: bool = False) -> dict[str, Any]:
        payload = self.message_payload(text, channel=thread, user=user, bot=bot)
        self.feed("MESSAGE_CREATE", payload)
        await self.inbound.wait_handled(f"message:{payload['id']}")
        return payload

    async def edit(self, message: dict[str, Any], text: str) -> None:
        payload = {**message, "content": text, "edited_timestamp": datetime.now(UTC).isoformat()}
        self.feed("MESSAGE_UPDATE", payload)
        await self.inbound.wait_handled(f"edit:{message['id']}")

    async def delete(self, message: dict[str, Any]) -> None:
        self.feed("MESSAGE_DELETE", {"id": message["id"], "channel_id": message["channel_id"],
                                     "guild_id": self.fake.guild_id})
        await self.inbound.wait_handled(f"delete:{message['id']}")

    async def react(self, message: dict[str, Any], emoji: str, *, user: Person | None = None) -> None:
        person = user or self.alice
        self.feed("MESSAGE_REACTION_ADD", {"user_id": person.id, "channel_id": message["channel_id"],
                                           "message_id": message["id"], "guild_id": self.fake.guild_id,
                                           "emoji": {"id": None, "name": emoji}, "burst": False, "type": 0,
                                           "member": person.member, "message_author_id": message["author"]["id"]})
        await self.inbound.wait_handled(f"reaction:{message['id']}")

    async def timeline(self, number: int = 1) -> list:
        async with self.service._uow() as uow:  # reading state directly: what the core recorded
            return await uow.incidents.timeline(number)

    async def incident(self, number: int = 1):
        async with self.service._uow() as uow:
            return await uow.incidents.get(number)

    def thread_room(self, thread: dict[str, Any]) -> Room:
        return Room("discord", thread["parent_id"], thread=thread["id"])


def shown(text: str) -> str:
    """Markdown text as Discord displays it: backslash escapes gone."""
    return re.sub(r"\\(.)", r"\1", text)


def followup_text(answers: list[dict[str, Any]]) -> str:
    """Everything the person sees in the answers (as displayed): content, embed titles, descriptions, fields."""
    parts: list[str] = []
    for answer in answers:
        if answer.get("content"):
            parts.append(answer["content"])
        for embed in answer.get("embeds") or []:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
    return shown("\n".join(p for p in parts if p))


def message_text(message: dict[str, Any]) -> str:
    return followup_text([message])


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    original = discord.http.Route.BASE
    server = FakeDiscord()
    await server.start()
    yield server
    await server.close()
    discord.http.Route.BASE = original


def core_settings(tmp_path: Path, database_url: str | None = None) -> Settings:
    """A SQLite file per test by default; the root conftest's `database_url` fixture gives a PostgreSQL database
    instead when the suite runs with WARROOM_TEST_DATABASE=postgres."""
    return Settings(_env_file=None, database_url=database_url or f"sqlite:///{tmp_path}/w.db",  # type: ignore[call-arg]
                    ladder="P1-P3", postmortem_dir=tmp_path / "pm")


def discord_settings(fake: FakeDiscord) -> DiscordSettings:
    return DiscordSettings(_env_file=None, bot_token="test-token", guild_id=int(fake.guild_id),  # type: ignore[call-arg]
                           incidents_channel_id=int(fake.incidents_channel["id"]), api_url=fake.base_url)


async def start_guild(fake: FakeDiscord, tmp_path: Path, *, database_url: str | None = None,
                      clock: ManualClock | None = None, deliver_inline: bool = True) -> DiscordGuild:
    settings = core_settings(tmp_path, database_url)
    dsettings = discord_settings(fake)
    clock = clock or ManualClock(START)
    chat = discord_chat_from_settings(dsettings)
    app = await build(settings, chat={"discord": chat}, clock=clock, deliver_inline=deliver_inline)
    runtime = await start_discord(app.service, dsettings, chat=chat, connect=False)
    alice = Person(*_person(fake, "alice", "Alice Ng", "Alice (IC)"))
    bob = Person(*_person(fake, "bob", "Bob Builder", None))
    guild = DiscordGuild(fake=fake, app=app, chat=chat, runtime=runtime, clock=clock, settings=settings,
                         discord_settings=dsettings, alice=alice, bob=bob)
    guild.feed("GUILD_CREATE", fake.guild_create())
    return guild


def _person(fake: FakeDiscord, username: str, name: str, nick: str | None) -> tuple[dict, dict]:
    user = fake.user(username, name=name)
    return user, fake.member(user, nick=nick)


@pytest.fixture
async def guild(fake: FakeDiscord, tmp_path: Path, database_url: str,
                caplog: pytest.LogCaptureFixture) -> AsyncIterator[DiscordGuild]:
    world = await start_guild(fake, tmp_path, database_url=database_url)
    yield world
    await world.runtime.stop()
    await world.app.close()
    if not world.errors_expected:
        assert not (failures := handler_failures(caplog)), failures
