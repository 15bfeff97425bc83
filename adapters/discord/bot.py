"""Discord → core: the discord.py client, the `/incident` command group, buttons, the update form, events.

No incident rules live here: every handler works out who (`Actor` with the member's display name) and where
(`Room`: a thread maps to its parent channel + itself), builds `/incident …` text for the core's parser, and
calls the service:

    /incident <sub> …           → defer (ephemeral, within Discord's 3 s) → service.run_command → follow-up
    Acknowledge / Resolve        → defer → service.press_button → follow-up
    Post update                  → modal → on submit: service.run_command("status INC-n …")
    message in an incident thread→ service.capture_message          (bots, ourselves included, skipped)
    edit / delete of one         → service.revise_message(text=… | deleted=True)
    📌 reaction on one           → service.revise_message(pinned=True)

Platform ids are the delivery ids (`discord:<interaction id>`, `discord:message:<id>` …), so an event seen
twice is handled once. `start_discord()` logs in, registers the persistent buttons, syncs the command tree to
the guild and connects to the gateway in a task; `DiscordRuntime.stop()` undoes it.

The connection tells the truth: "connected" is said on READY (not after the REST login), and a gateway closed
for good (4004 bad token, 4014 MESSAGE CONTENT intent not enabled, …) is logged with its fix and reported by
`DiscordRuntime.health_problem()`, which `/health` turns into a 503.
"""

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.app_commands import Choice

from adapters.discord.chat import PLATFORM, DiscordChat, answering
from adapters.discord.render import SAFE_MENTIONS, CardButton, clip, render
from adapters.discord.settings import DiscordSettings
from bot.incident import commands as cmd
from bot.incident.service import Context, IncidentService
from bot.ports import Actor, Message, Reply, Room

log = logging.getLogger("warroom.discord")

PIN_EMOJI = "📌"
MAX_CHOICES = 25
HANDLED_KEYS = 10_000
_INCIDENT_REF = re.compile(r"^\s*(?:INC-?)?#?([0-9]{1,9})\s*$", re.IGNORECASE)
_QUOTE_PAIRS = (('"', '"'), ("“", "”"), ("«", "»"), ("'", "'"), ("‘", "’"))
_CAPTURED_TYPES = (discord.MessageType.default, discord.MessageType.reply)
_SORRY = "Sorry, that failed inside warroom; it is logged. Try again, or use /incident show."


# What the bot does in the incidents channel and its threads, and nothing more (no Mention Everyone, no
# Manage Threads): see, read back, post, embed, attach, open public threads from its cards, post in them.
REQUIRED_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True,
                                           create_public_threads=True, embed_links=True, attach_files=True,
                                           read_message_history=True)
INVITE_SCOPES = ("bot", "applications.commands")


def invite_url(application_id: int | str) -> str:
    """The URL that adds the bot to a server with the `bot applications.commands` scopes and its permissions."""
    return discord.utils.oauth_url(application_id, permissions=REQUIRED_PERMISSIONS, scopes=INVITE_SCOPES)


def build_intents() -> discord.Intents:
    """Guilds, guild messages and reactions, and the privileged message_content intent (enable it in the
    Developer Portal: without it thread messages arrive with empty text). No members/presences intents."""
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = False
    intents.presences = False
    return intents


class WarroomClient(discord.Client):
    """A discord.Client with the `/incident` command tree; gateway events go to `self.warroom`."""

    def __init__(self, *, max_ratelimit_timeout: float | None = 30.0, **options: Any) -> None:
        super().__init__(intents=build_intents(), allowed_mentions=SAFE_MENTIONS,
                         max_ratelimit_timeout=max_ratelimit_timeout, **options)
        self.tree = app_commands.CommandTree(self)
        self.warroom: DiscordInbound | None = None
        self.gateway_state = GatewayState()

    async def on_ready(self) -> None:
        self.gateway_state.became_ready(str(self.user))

    async def on_message(self, message: discord.Message) -> None:
        if self.warroom is not None:
            await self.warroom.on_message(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        if self.warroom is not None:
            await self.warroom.on_message_edit(payload)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if self.warroom is not None:
            await self.warroom.on_message_delete(payload)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if self.warroom is not None:
            await self.warroom.on_reaction(payload)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        if self.warroom is not None:
            await self.warroom.on_thread_create(thread)


def make_client(**options: Any) -> WarroomClient:
    return WarroomClient(**options)


def discord_chat_from_settings(settings: DiscordSettings, *, client: WarroomClient | None = None) -> DiscordChat:
    """The adapter to hand to `bot.app.bootstrap.build(chat={"discord": …})`; `start_discord` then brings it up.
    DISCORD_PROXY carries REST and the gateway through an HTTP proxy (discord.py's `Client(proxy=…)`)."""
    return DiscordChat(client=client or make_client(proxy=settings.proxy), guild_id=settings.guild_id)


# Gateway close codes Discord says not to reconnect after, with what the operator must do.
FATAL_CLOSES = {
    4004: "Discord refused the bot token (gateway close 4004, authentication failed). Set DISCORD_BOT_TOKEN to the "
          "current token: Developer Portal → your application → Bot → Reset Token.",
    4010: "Discord refused the shard (gateway close 4010, invalid shard).",
    4011: "Discord requires sharding for this bot (gateway close 4011).",
    4012: "Discord refused the gateway version (gateway close 4012): upgrade discord.py.",
    4013: "Discord refused the intents (gateway close 4013, invalid intents).",
    4014: "Discord refused the message_content intent (gateway close 4014, disallowed intents). Enable it in the "
          "Developer Portal: your application → Bot → Privileged Gateway Intents → MESSAGE CONTENT INTENT, then "
          "restart warroom.",
}


class GatewayState:
    """What is true about the gateway connection: READY seen, or the reason it ended for good.

    `announce` (e.g. `print`) is told "Discord connected." on the first READY and the reason on a fatal end."""

    def __init__(self, announce: Callable[[str], None] | None = None) -> None:
        self.announce = announce
        self.ready = asyncio.Event()
        self.problem: str | None = None
        self.stopping = False  # an end we cause (DiscordRuntime.stop) is no problem

    def became_ready(self, user: str) -> None:
        first = not self.ready.is_set()
        self.ready.set()
        if first:
            log.info("discord: gateway READY as %s", user)
            if self.announce is not None:
                self.announce("Discord connected.")

    def ended(self, problem: str) -> None:
        self.problem = problem
        self.ready.clear()
        log.error("discord: %s", problem)
        if self.announce is not None:
            self.announce(f"Discord is NOT connected: {problem}")


# -- text for the core's parser ---------------------------------------------------------------------


class BadOption(Exception):
    """An option value the command cannot use (said to the user, nothing is run)."""


def quote(text: str) -> str:
    """Free text as one token for the core's parser, whatever quotes it contains."""
    for opening, closing in _QUOTE_PAIRS:
        if closing not in text:
            return f"{opening}{text}{closing}"
    return '"' + text.replace('"', "”") + '"'


def incident_ref(value: str | None) -> str:
    """`INC-7`, `7`, `#7` → `INC-7 ` (with the separating space); empty → `` (the thread decides)."""
    if value is None or not value.strip():
        return ""
    match = _INCIDENT_REF.match(value)
    if match is None:
        raise BadOption(f"'{value[:40]}' is not an incident id; pick one from the list, e.g. INC-7.")
    return f"INC-{int(match.group(1))} "


def command_text(word: str, *parts: str | None, incident: str | None = None) -> str:
    """`status`, `"db back"`, incident=`7` → `/incident status INC-7 "db back"`."""
    words = [p for p in parts if p]
    return f"/incident {word} {incident_ref(incident)}{' '.join(words)}".rstrip()


def mention(member: discord.abc.User | None) -> str | None:
    return f"<@{member.id}>" if member is not None else None


# -- the inbound side -------------------------------------------------------------------------------


class UpdateModal(discord.ui.Modal):
    """The "Post update" form; its submit becomes `/incident status INC-n "<text>"`."""

    def __init__(self, inbound: "DiscordInbound", *, key: str, opened_by: int) -> None:
        # A custom_id per opening: two people writing an update at once each get their own form.
        super().__init__(title=clip(f"Status update · {key}", 45), timeout=900,
                         custom_id=f"warroom:update-form:{key}:{opened_by}")
        self.inbound = inbound
        self.key = key
        self.text: discord.ui.TextInput[UpdateModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, custom_id="status", max_length=3900,
            placeholder="What we know, what we are doing, when the next update is")
        self.add_item(discord.ui.Label(text="Status update", component=self.text))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.inbound.on_update_submitted(interaction, key=self.key, text=self.text.value or "")

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        log.error("update form for %s failed", self.key, exc_info=error)


class DiscordInbound:
    """Owns the `/incident` group and turns Discord interactions and gateway events into service calls."""

    def __init__(self, *, service: IncidentService, chat: DiscordChat, guild_id: int | None = None,
                 incidents_channel_id: int | None = None) -> None:
        client = chat.client
        if not isinstance(client, WarroomClient):
            raise TypeError("DiscordInbound needs the DiscordChat's client to be a WarroomClient (make_client())")
        self.service = service
        self.chat = chat
        self.client: WarroomClient = client
        self.guild_id = guild_id
        self.incidents_channel_id = incidents_channel_id
        self._handled: OrderedDict[str, int] = OrderedDict()  # bounded: a long-running bot sees many events
        self._changed = asyncio.Condition()
        self._in_flight: set[asyncio.Task[Any]] = set()
        client.warroom = self
        self.group = incident_group(self, level_names=tuple(service.ladder.level_names))
        self._guild = discord.Object(guild_id) if guild_id else None
        client.tree.add_command(self.group, guild=self._guild, override=True)
        client.tree.error(self._on_tree_error)
        # Card buttons carry action + incident in their custom_id: registering the class makes every card,
        # including those posted before a restart, clickable (discord.py's persistent dynamic items).
        client.add_dynamic_items(CardButton)

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        """Publish `/incident` to the guild (instant) or globally (no DISCORD_GUILD_ID)."""
        return await self.client.tree.sync(guild=self._guild)

    # -- bookkeeping: in-flight work (graceful shutdown) and what finished (tests wait on it) -------------

    @asynccontextmanager
    async def _work(self, key: str, what: str, interaction: discord.Interaction | None = None) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            yield
        except Exception:
            log.exception("discord %s (%s) failed", what, key)
            if interaction is not None:
                await self._say_sorry(interaction)
        finally:
            if task is not None:
                self._in_flight.discard(task)
            await self._done(key)

    async def _done(self, key: str) -> None:
        self._handled[key] = self._handled.get(key, 0) + 1
        self._handled.move_to_end(key)
        while len(self._handled) > HANDLED_KEYS:
            self._handled.popitem(last=False)
        async with self._changed:
            self._changed.notify_all()

    async def wait_handled(self, key: str, *, times: int = 1, timeout: float = 5.0) -> None:
        """Wait until the work for `key` (an interaction id; `message:<id>`, `edit:<id>`, `delete:<id>`,
        `reaction:<message id>` for gateway events) has finished `times` times."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self._handled.get(key, 0) >= times), timeout)

    async def drain(self, timeout: float = 10.0) -> None:
        """Let handlers that already answered Discord finish (call before closing the database)."""
        pending = [task for task in self._in_flight if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _say_sorry(self, interaction: discord.Interaction) -> None:
        try:
            if interaction.response.is_done():
                await interaction.followup.send(_SORRY, ephemeral=True)
            else:
                await interaction.response.send_message(_SORRY, ephemeral=True)
        except Exception:
            log.warning("could not tell %s that their interaction failed", interaction.user)

    async def _on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        log.error("/incident failed before reaching warroom: %s", error, exc_info=error)
        await self._say_sorry(interaction)
        await self._done(str(interaction.id))

    # -- who and where --------------------------------------------------------------------------------

    def actor(self, user: discord.abc.User) -> Actor:
        name = user.display_name
        self.chat.remember_name(user=str(user.id), name=name)
        return Actor(id=str(user.id), name=name)

    async def room_of(self, interaction: discord.Interaction) -> Room:
        channel = interaction.channel
        channel_id = interaction.channel_id or 0
        if isinstance(channel, discord.Thread):
            self.chat.remember_thread(thread_id=channel.id, parent_id=channel.parent_id)
            return Room(PLATFORM, str(channel.parent_id), thread=str(channel.id))
        if channel is not None and not isinstance(channel, discord.PartialMessageable):
            return Room(PLATFORM, str(channel_id))
        return await self.chat.room_of_channel(channel_id)

    async def declare_room(self, interaction: discord.Interaction) -> Room:
        """Cards go to the incidents channel (DISCORD_INCIDENTS_CHANNEL_ID), else to where declare was run."""
        if self.incidents_channel_id:
            return Room(PLATFORM, str(self.incidents_channel_id))
        room = await self.room_of(interaction)
        return Room(PLATFORM, room.channel)

    # -- commands, buttons, the update form -------------------------------------------------------------

    async def run(self, interaction: discord.Interaction, build_text: Any, *, declare: bool = False) -> None:
        """Defer at once (Discord's 3-second rule), run the command, answer with the core's reply."""
        async with self._work(str(interaction.id), "command", interaction):
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                text = build_text() if callable(build_text) else build_text
            except BadOption as bad:
                await self.answer(interaction, Reply(Message(text=str(bad), kind="error"), ok=False))
                return
            room = await (self.declare_room(interaction) if declare else self.room_of(interaction))
            ctx = Context(actor=self.actor(interaction.user), room=room, delivery_id=f"discord:{interaction.id}")
            with answering(interaction):
                reply = await self.service.run_command(ctx, text)
            await self.answer(interaction, reply)

    async def answer(self, interaction: discord.Interaction, reply: Reply | None) -> None:
        if reply is None:  # done, and already said in the incident's thread (or a repeated delivery)
            reply = Reply(Message(text="Done.", kind="reply"))
        await self.chat.followup(interaction, render(reply.message), ephemeral=reply.private)

    async def on_card_button(self, interaction: discord.Interaction, *, action: str, key: str) -> None:
        async with self._work(str(interaction.id), f"button {action}", interaction):
            if action == "update":
                await interaction.response.send_modal(UpdateModal(self, key=key, opened_by=interaction.id))
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            ctx = Context(actor=self.actor(interaction.user), room=await self.room_of(interaction),
                          delivery_id=f"discord:{interaction.id}")
            with answering(interaction):
                reply = await self.service.press_button(ctx, action=action, value=key)
            await self.answer(interaction, reply)

    async def on_update_submitted(self, interaction: discord.Interaction, *, key: str, text: str) -> None:
        await self.run(interaction, command_text("status", quote(text), incident=key))

    async def incident_choices(self, current: str, *, open_only: bool) -> list[Choice[str]]:
        incidents = await self.service.incidents(open_only=open_only)
        if not open_only:  # open ones first, then the most recent
            incidents = sorted(incidents, key=lambda i: (not i.status.is_open, -i.number))
        else:
            incidents = sorted(incidents, key=lambda i: -i.number)
        needle = current.strip().lower()
        choices = []
        for incident in incidents:
            label = f"{incident.key} · {incident.severity} · {incident.status.value} · {incident.title}"
            if needle and needle not in label.lower():
                continue
            choices.append(Choice(name=clip(label, 100), value=incident.key))
            if len(choices) == MAX_CHOICES:
                break
        return choices

    # -- gateway events ---------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        async with self._work(f"message:{message.id}", "message"):
            me = self.client.user
            if me is not None and message.author.id == me.id:  # our own, echoed with its nonce: it landed
                self.chat.remember_landed(nonce=message.nonce, message_id=message.id)
            if message.author.bot or message.webhook_id is not None or message.type not in _CAPTURED_TYPES:
                return
            room = await self._thread_room(message.channel)
            if room is None:
                return
            text = message.clean_content.strip()
            files = " ".join(f"{a.filename} <{a.url}>" for a in message.attachments)
            text = f"{text} (attached: {files})".strip() if files else text
            if not text:
                return
            # The snowflake's time, not arrival: messages replayed after a RESUME keep their place.
            await self.service.capture_message(room=room, actor=self.actor(message.author), text=text,
                                               message_id=str(message.id), delivery_id=f"discord:message:{message.id}",
                                               at=message.created_at)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        async with self._work(f"thread:{thread.id}", "thread"):
            self.chat.remember_thread(thread_id=thread.id, parent_id=thread.parent_id)

    async def on_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        async with self._work(f"edit:{payload.message_id}", "edit"):
            data = payload.data
            author = data.get("author") or {}
            if author.get("bot") or "content" not in data or not data.get("edited_timestamp"):
                return  # a bot's message, or Discord adding a link preview (no edit by a person)
            room = await self._thread_room_id(payload.channel_id)
            if room is None:
                return
            text = payload.message.clean_content.strip() if payload.message else str(data["content"])
            await self.service.revise_message(
                room=room, message_id=str(payload.message_id), text=text,
                delivery_id=f"discord:edit:{payload.message_id}:{data['edited_timestamp']}")

    async def on_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        async with self._work(f"delete:{payload.message_id}", "delete"):
            room = await self._thread_room_id(payload.channel_id)
            if room is None:
                return
            await self.service.revise_message(room=room, message_id=str(payload.message_id), deleted=True,
                                              delivery_id=f"discord:delete:{payload.message_id}")

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        async with self._work(f"reaction:{payload.message_id}", "reaction"):
            me = self.client.user
            if str(payload.emoji) != PIN_EMOJI or (me is not None and payload.user_id == me.id):
                return
            room = await self._thread_room_id(payload.channel_id)
            if room is None:
                return
            await self.service.revise_message(room=room, message_id=str(payload.message_id), pinned=True,
                                              delivery_id=f"discord:pin:{payload.message_id}")

    async def _thread_room(self, channel: Any) -> Room | None:
        if isinstance(channel, discord.Thread):
            self.chat.remember_thread(thread_id=channel.id, parent_id=channel.parent_id)
            return Room(PLATFORM, str(channel.parent_id), thread=str(channel.id))
        if isinstance(channel, discord.PartialMessageable):  # a thread not in the cache
            return await self._thread_room_id(channel.id)
        return None

    async def _thread_room_id(self, channel_id: int) -> Room | None:
        room = await self.chat.room_of_channel(channel_id)
        return room if room.thread is not None else None


# -- the /incident group ----------------------------------------------------------------------------


INCIDENT_HELP = "INC-n; leave empty inside an incident's thread"
ROLE_CHOICES = [Choice(name="incident commander", value="ic"), Choice(name="ops lead", value="ops"),
                Choice(name="comms lead", value="comms"), Choice(name="scribe", value="scribe")]
TAG_CHOICES = [Choice(name=tag, value=tag) for tag in cmd.NOTE_TAGS]
ON_OFF = [Choice(name="on", value="on"), Choice(name="off", value="off")]
FORMATS = [Choice(name="Markdown", value="md"), Choice(name="JSON", value="json")]


def incident_group(inbound: DiscordInbound, *, level_names: tuple[str, ...]) -> app_commands.Group:
    """`/incident <subcommand>`, one per core command. Severity choices come from the configured ladder."""
    group = app_commands.Group(name="incident", description="Run an incident: declare, update, resolve",
                               guild_only=True)
    severities = [Choice(name=name, value=name) for name in level_names[:MAX_CHOICES]]
    topics = [Choice(name=name, value=name) for name in cmd.SUBCOMMANDS[:MAX_CHOICES]]
    summary = cmd.HELP_SUMMARY

    async def open_incidents(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return await inbound.incident_choices(current, open_only=True)

    async def any_incidents(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return await inbound.incident_choices(current, open_only=False)

    def describe(text: str) -> str:
        return clip(text, 100)

    @group.command(name="declare", description=describe(summary["declare"]))
    @app_commands.describe(title="what is broken", severity="how bad (the workspace's ladder)",
                           impact="who or what is affected")
    @app_commands.choices(severity=severities)
    async def declare(interaction: discord.Interaction, title: app_commands.Range[str, 1, 200],
                      severity: str | None = None, impact: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text(
            "declare", f"sev={quote(severity)}" if severity else None, quote(title),
            f"impact={quote(impact)}" if impact else None), declare=True)

    @group.command(name="status", description=describe(summary["status"]))
    @app_commands.describe(text="what we know, what we are doing, next update", incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=open_incidents)
    async def status(interaction: discord.Interaction, text: str, incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("status", quote(text), incident=incident))

    @group.command(name="sev", description=describe(summary["sev"]))
    @app_commands.describe(level="the new severity", incident=INCIDENT_HELP)
    @app_commands.choices(level=severities)
    @app_commands.autocomplete(incident=open_incidents)
    async def sev(interaction: discord.Interaction, level: str, incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("sev", quote(level), incident=incident))

    @group.command(name="role", description=describe(summary["role"]))
    @app_commands.describe(role="which role", user="who takes it", incident=INCIDENT_HELP)
    @app_commands.choices(role=ROLE_CHOICES)
    @app_commands.autocomplete(incident=open_incidents)
    async def role(interaction: discord.Interaction, role: str, user: discord.Member,
                   incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("role", quote(role), mention(user), incident=incident))

    @group.command(name="ack", description=describe(summary["ack"]))
    @app_commands.describe(incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=open_incidents)
    async def ack(interaction: discord.Interaction, incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("ack", incident=incident))

    @group.command(name="note", description=describe(summary["note"]))
    @app_commands.describe(text="the note", tag="files it under a post-mortem section",
                           at="when it happened, HH:MM today (default: now)", incident=INCIDENT_HELP)
    @app_commands.choices(tag=TAG_CHOICES)
    @app_commands.autocomplete(incident=open_incidents)
    async def note(interaction: discord.Interaction, text: str, tag: str | None = None,
                   at: str | None = None, incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text(
            "note", tag, f"--at {quote(at)}" if at else None, quote(text), incident=incident))

    @group.command(name="check", description=describe(summary["check"]))
    @app_commands.describe(item="the checklist item's number", incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=open_incidents)
    async def check(interaction: discord.Interaction, item: app_commands.Range[int, 1, 999],
                    incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("check", str(item), incident=incident))

    @group.command(name="snooze", description=describe(summary["snooze"]))
    @app_commands.describe(duration="e.g. 30m or 1h (5m–4h)", incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=open_incidents)
    async def snooze(interaction: discord.Interaction, duration: str, incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("snooze", quote(duration), incident=incident))

    @group.command(name="playbook", description=describe(summary["playbook"]))
    @app_commands.describe(name="the playbook (empty: list them)", incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=open_incidents)
    async def playbook(interaction: discord.Interaction, name: str | None = None,
                       incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("playbook", quote(name) if name else None,
                                                            incident=incident))

    @group.command(name="action", description=describe(summary["action"]))
    @app_commands.describe(text="the follow-up to do", owner="who owns it", due="YYYY-MM-DD",
                           done="mark this action item number done instead", incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=open_incidents)
    async def action(interaction: discord.Interaction, text: str | None = None,
                     owner: discord.Member | None = None, due: str | None = None,
                     done: app_commands.Range[int, 1, 999] | None = None, incident: str | None = None) -> None:
        if done is not None:
            await inbound.run(interaction, lambda: command_text("action", "done", str(done), incident=incident))
            return
        await inbound.run(interaction, lambda: command_text(
            "action", quote(text) if text else None, f"owner={mention(owner)}" if owner else None,
            f"due={quote(due)}" if due else None, incident=incident))

    @group.command(name="freeze", description=describe(summary["freeze"]))
    @app_commands.describe(state="on or off", incident=INCIDENT_HELP)
    @app_commands.choices(state=ON_OFF)
    @app_commands.autocomplete(incident=open_incidents)
    async def freeze(interaction: discord.Interaction, state: str, incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("freeze", quote(state), incident=incident))

    @group.command(name="mitigate", description=describe(summary["mitigate"]))
    @app_commands.describe(incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=open_incidents)
    async def mitigate(interaction: discord.Interaction, incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("mitigate", incident=incident))

    @group.command(name="resolve", description=describe(summary["resolve"]))
    @app_commands.describe(summary="what fixed it", incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=open_incidents)
    async def resolve(interaction: discord.Interaction, summary: str | None = None,
                      incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("resolve", quote(summary) if summary else None,
                                                            incident=incident))

    @group.command(name="close", description=describe(summary["close"]))
    @app_commands.describe(incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=any_incidents)
    async def close(interaction: discord.Interaction, incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("close", incident=incident))

    @group.command(name="reopen", description=describe(summary["reopen"]))
    @app_commands.describe(incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=any_incidents)
    async def reopen(interaction: discord.Interaction, incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("reopen", incident=incident))

    @group.command(name="postmortem", description=describe(summary["postmortem"]))
    @app_commands.describe(format="Markdown (default) or JSON", incident=INCIDENT_HELP)
    @app_commands.choices(format=FORMATS)
    @app_commands.autocomplete(incident=any_incidents)
    async def postmortem(interaction: discord.Interaction, format: str | None = None,
                         incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("postmortem", format, incident=incident))

    @group.command(name="list", description=describe(summary["list"]))
    async def list_(interaction: discord.Interaction) -> None:
        await inbound.run(interaction, "/incident list")

    @group.command(name="show", description=describe(summary["show"]))
    @app_commands.describe(incident=INCIDENT_HELP)
    @app_commands.autocomplete(incident=any_incidents)
    async def show(interaction: discord.Interaction, incident: str | None = None) -> None:
        await inbound.run(interaction, lambda: command_text("show", incident=incident))

    @group.command(name="help", description=describe(summary["help"]))
    @app_commands.describe(command="one command's usage")
    @app_commands.choices(command=topics)
    async def help_(interaction: discord.Interaction, command: str | None = None) -> None:
        await inbound.run(interaction, command_text("help", command))

    return group


# -- running it ---------------------------------------------------------------------------------------


@dataclass
class DiscordRuntime:
    """A started Discord adapter: `await runtime.stop()` drains handlers, closes the client and the gateway."""

    client: WarroomClient
    chat: DiscordChat
    inbound: DiscordInbound
    synced: list[app_commands.AppCommand] = field(default_factory=list)
    gateway: asyncio.Task[Any] | None = None

    @property
    def state(self) -> GatewayState:
        return self.client.gateway_state

    def health_problem(self) -> str | None:
        """None while the gateway is up or still connecting; else why it ended (with the fix), for /health."""
        return self.state.problem

    async def wait_ready(self, timeout: float) -> bool:
        """True once the gateway said READY; False after `timeout` seconds or when it ended for good."""
        ended = asyncio.ensure_future(self.gateway) if self.gateway is not None else None
        ready = asyncio.ensure_future(self.state.ready.wait())
        try:
            await asyncio.wait([f for f in (ready, ended) if f is not None], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        return self.state.ready.is_set()

    async def stop(self) -> None:
        self.state.stopping = True
        await self.inbound.drain()
        await self.client.close()
        if self.gateway is not None:
            self.gateway.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self.gateway


async def _gateway(client: WarroomClient) -> None:
    """Run the gateway (discord.py reconnects and RESUMEs by itself); record why it ended for good."""
    state = client.gateway_state
    try:
        await client.connect(reconnect=True)
    except asyncio.CancelledError:
        raise
    except Exception as problem:
        if state.stopping:
            return
        if isinstance(problem, discord.PrivilegedIntentsRequired):
            state.ended(FATAL_CLOSES[4014])
        elif isinstance(problem, discord.LoginFailure):
            state.ended(FATAL_CLOSES[4004])
        elif isinstance(problem, discord.ConnectionClosed):
            state.ended(FATAL_CLOSES.get(problem.code, f"the gateway closed with {problem.code} "
                                         f"({problem.reason or 'no reason'}) and Discord says not to reconnect"))
        else:
            log.exception("discord: the gateway connection ended")
            state.ended(f"the gateway connection ended: {problem!r}")
    else:
        if not state.stopping:
            state.ended("the gateway connection ended")


async def start_discord(service: IncidentService, settings: DiscordSettings, *, chat: DiscordChat | None = None,
                        connect: bool = True, announce: Callable[[str], None] | None = None) -> DiscordRuntime:
    """Log in, register the persistent card buttons, sync `/incident` to the guild, connect to the gateway.

    `chat` is the DiscordChat given to `bot.app.bootstrap.build(chat={"discord": chat})` (outbound messages go
    through it); without one, a new one is made (only useful when the service posts nothing to Discord).
    `connect=False` stops before the gateway (tests feed gateway events themselves). `announce(text)` hears
    "Discord connected." on READY and the reason (with its fix) if the gateway ends for good; the runtime's
    `health_problem()` is the same for `/health`."""
    if not settings.configured or settings.bot_token is None:
        raise ValueError("DISCORD_BOT_TOKEN is not set")
    discord.http.Route.BASE = settings.route_base
    # discord.py reads the gateway URL from this class attribute (not from the REST base).
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)
    chat = chat or discord_chat_from_settings(settings)
    inbound = DiscordInbound(service=service, chat=chat, guild_id=settings.guild_id,
                             incidents_channel_id=settings.incidents_channel_id)
    client = inbound.client
    client.gateway_state.announce = announce
    await client.login(settings.bot_token.get_secret_value())
    try:
        synced = await inbound.sync_commands()
    except discord.HTTPException:
        await client.close()
        raise
    log.info("discord: logged in (REST) as %s, /incident synced to %s; invite: %s; connecting to the gateway",
             client.user,
             f"guild {settings.guild_id}" if settings.guild_id else "all guilds (global)",
             invite_url(client.application_id or 0))
    gateway = asyncio.create_task(_gateway(client), name="warroom-discord-gateway") if connect else None
    return DiscordRuntime(client=client, chat=chat, inbound=inbound, synced=synced, gateway=gateway)


__all__ = ["FATAL_CLOSES", "REQUIRED_PERMISSIONS", "DiscordInbound", "DiscordRuntime", "GatewayState",
           "WarroomClient", "build_intents",
           "command_text", "discord_chat_from_settings", "incident_group", "invite_url", "make_client", "quote",
           "start_discord"]
