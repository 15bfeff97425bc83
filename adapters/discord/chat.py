"""`DiscordChat`: the core's ChatAdapter port on Discord (discord.py).

Example::

    chat = DiscordChat(client=make_client(), guild_id=123)
    posted = await chat.post(room=Room("discord", "456", thread="789"), message=Message(text="hi"))

Outbound only; inbound events are translated in `adapters/discord/bot.py`. An incident's room is a public
thread opened from its card: `Room("discord", <incidents channel id>, thread=<thread id>)`; the card stays in
the channel and is edited there. discord.py waits out short 429s itself (when Discord sends the `Via` header);
longer ones raise `RateLimited`, which becomes `DeliveryError(retry_after=…)` so the core's outbox comes back
later, and Forbidden / NotFound / a bad request become `DeliveryError(permanent=True)`.

Exactly once when an answer is lost after the write (a 5xx, a dropped connection, a timeout): every send from
the outbox carries a nonce derived from its outbox key (`delivery_nonce`), and discord.py then sets
`enforce_nonce`, so within Discord's window (a few minutes) a repeated send returns the earlier message instead
of creating one. After that window a retry first looks for the earlier copy (`Delivery.maybe_sent`): a nonce
seen in our own send answers or gateway echoes, else the bot's identical message among the channel's latest
(Discord does not return nonces when reading history).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, TypeVar

import aiohttp
import discord

from adapters.discord.render import Rendered, clip, render
from bot.ports import (
    Attachment,
    Capabilities,
    Delivery,
    DeliveryError,
    Message,
    Posted,
    Room,
)

log = logging.getLogger("warroom.discord")

PLATFORM = "discord"
MAX_THREAD_NAME = 100
THREAD_ARCHIVE_MINUTES: Final = 10080  # a week without messages; posting in an archived thread reopens it
THREAD_ALREADY_CREATED = 160004  # Discord's error code: "a thread has already been created for this message"
MAX_NONCE = 25  # Discord: a nonce is at most 25 characters
RECENT_MESSAGES = 25  # how far back a retry after the nonce window looks for its earlier copy

T = TypeVar("T")

# The interaction being answered right now (set by the inbound side around a service call), so that
# `reply_privately` can answer ephemerally through it.
_pending_interaction: ContextVar[discord.Interaction | None] = ContextVar("warroom_discord_interaction",
                                                                          default=None)


@contextmanager
def answering(interaction: discord.Interaction) -> Iterator[None]:
    token = _pending_interaction.set(interaction)
    try:
        yield
    finally:
        _pending_interaction.reset(token)


def _retry_after_header(problem: discord.HTTPException) -> float | None:
    response = getattr(problem, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        value = headers.get("Retry-After")
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


async def delivering(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run a Discord call, turning its failures into the port's `DeliveryError`."""
    try:
        return await call()
    except discord.RateLimited as problem:
        raise DeliveryError(f"{what}: rate limited for {problem.retry_after:.1f}s",
                            retry_after=problem.retry_after) from problem
    except (discord.Forbidden, discord.NotFound) as problem:
        raise DeliveryError(f"{what}: {problem.status} {problem.text or problem}", permanent=True) from problem
    except discord.DiscordServerError as problem:
        raise DeliveryError(f"{what}: Discord answered {problem.status} after retries") from problem
    except discord.HTTPException as problem:
        if problem.status == 429:  # without Discord's `Via` header: a proxy or Cloudflare limit
            raise DeliveryError(f"{what}: 429 from a proxy", retry_after=_retry_after_header(problem)) from problem
        if problem.status in (400, 401, 413):  # our payload, our token or our file: retrying cannot help
            raise DeliveryError(f"{what}: {problem.status} {problem.text or problem}", permanent=True) from problem
        raise DeliveryError(f"{what}: {problem.status} {problem.text or problem}") from problem
    except (aiohttp.ClientError, TimeoutError) as problem:
        raise DeliveryError(f"{what}: {problem!r}") from problem


def delivery_nonce(key: str) -> str:
    """The outbox key as a Discord nonce: stable for a key, 25 characters (`w` + 24 hex digits).

    >>> len(delivery_nonce("INC-7:post:42"))
    25
    """
    return "w" + hashlib.blake2b(key.encode("utf-8"), digest_size=12).hexdigest()


def thread_name(incident_key: str, title: str) -> str:
    """`INC-7`, `Payments down` → `INC-7 Payments down` (Discord: 1–100 characters, one line)."""
    flat = re.sub(r"\s+", " ", f"{incident_key} {title}").strip()
    return clip(flat, MAX_THREAD_NAME) or incident_key


class DiscordChat:
    """The ChatAdapter port on Discord: cards as embeds with persistent buttons, a public thread per incident,
    edits in place, files, ephemeral answers through the pending interaction, display names (cached)."""

    platform = PLATFORM
    capabilities = Capabilities(threads=True, edits=True, buttons=True, files=True, ephemeral=True,
                                max_text=2000, max_buttons=5)

    def __init__(self, *, client: discord.Client, guild_id: int | None = None, name_ttl_seconds: float = 3600.0,
                 cache_size: int = 5000) -> None:
        self.client = client
        self.guild_id = guild_id
        self._name_ttl = name_ttl_seconds
        self._cache_size = cache_size
        self._names: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._parents: OrderedDict[int, int | None] = OrderedDict()  # channel id → parent id (None: not a thread)
        # Cards sent whose thread could not be opened yet: a retried open_room reuses the card, not a second one.
        self._cards: OrderedDict[str, discord.Message | discord.PartialMessage] = OrderedDict()
        # Nonces of messages we know landed (send answers, gateway echoes) → message id: a retry past Discord's
        # nonce window finds them without reading history.
        self._landed: OrderedDict[str, int] = OrderedDict()

    # -- the port ------------------------------------------------------------------------------------

    async def open_incident_room(self, *, channel: str, incident_key: str, title: str, card: Message,
                                 delivery: Delivery | None = None) -> Posted:
        # The card is sent once (see the module docstring: a nonce from the outbox key, a lookup after Discord's
        # window); a thread already opened on it is taken as it is (160004).
        channel_id = int(channel)
        sent = self._cards.get(incident_key)
        if sent is None:
            target = await self._messageable_channel(channel_id)
            sent_id = await self._send_once(target, render(card), delivery, what=f"{incident_key} card")
            sent = target.get_partial_message(sent_id)
            self._remember(self._cards, incident_key, sent)
        try:
            thread = await delivering(f"{incident_key} thread", lambda: sent.create_thread(
                name=thread_name(incident_key, title), auto_archive_duration=THREAD_ARCHIVE_MINUTES))
            thread_id = thread.id
        except DeliveryError as problem:
            cause = problem.__cause__
            if not (isinstance(cause, discord.HTTPException) and cause.code == THREAD_ALREADY_CREATED):
                raise
            thread_id = sent.id  # a thread started from a message has the message's id
        self._cards.pop(incident_key, None)
        self.remember_thread(thread_id=thread_id, parent_id=channel_id)
        return Posted(room=Room(PLATFORM, str(channel_id), thread=str(thread_id)), message_id=str(sent.id))

    async def post(self, *, room: Room, message: Message, delivery: Delivery | None = None) -> Posted:
        target = self._partial(int(room.thread or room.channel))
        rendered = await self._prepared(message)
        sent_id = await self._send_once(target, rendered, delivery, what=f"post to {target.id}")
        return Posted(room=room, message_id=str(sent_id))

    async def update(self, *, posted: Posted, message: Message) -> None:
        channel = self._partial(int(posted.room.thread or posted.room.channel))
        target = channel.get_partial_message(int(posted.message_id))
        rendered = render(message)
        await delivering(f"edit {posted.message_id}", lambda: target.edit(**rendered.edit_kwargs()))

    async def reply_privately(self, *, room: Room, user: str, message: Message) -> None:
        interaction = _pending_interaction.get()
        rendered = render(message)
        if interaction is not None and str(interaction.user.id) == user:
            await delivering("ephemeral reply", lambda: self.followup(interaction, rendered, ephemeral=True))
            return
        # No interaction to answer through: say it in the room, addressed to the person.
        target = self._partial(int(room.thread or room.channel))
        kwargs = rendered.send_kwargs()
        kwargs["content"] = f"<@{user}> " + (kwargs["content"] or "")
        kwargs["allowed_mentions"] = discord.AllowedMentions(everyone=False, roles=False,
                                                             users=[discord.Object(int(user))])
        await delivering(f"reply to {user}", lambda: target.send(**kwargs))

    async def display_name(self, *, user: str) -> str:
        cached = self._names.get(user)
        if cached is not None and time.monotonic() - cached[1] < self._name_ttl:
            return cached[0]
        try:
            name = await self._lookup_name(int(user))
        except (ValueError, discord.HTTPException) as problem:
            log.warning("display name of %s not found (%s); showing the id", user, problem)
            return cached[0] if cached else user
        self._remember(self._names, user, (name, time.monotonic()))
        return name

    # -- Discord-only helpers the inbound side uses ----------------------------------------------------

    async def followup(self, interaction: discord.Interaction, rendered: Rendered, *, ephemeral: bool) -> None:
        kwargs = rendered.send_kwargs()
        if kwargs.get("content") is None:
            kwargs.pop("content")
        await interaction.followup.send(ephemeral=ephemeral, **kwargs)

    def remember_name(self, *, user: str, name: str) -> None:
        self._remember(self._names, user, (name, time.monotonic()))

    def remember_landed(self, *, nonce: str | int | None, message_id: int) -> None:
        """A message of ours that landed, with its nonce (from a send answer or the gateway's echo)."""
        if isinstance(nonce, str) and len(nonce) == MAX_NONCE and nonce.startswith("w"):
            self._remember(self._landed, nonce, message_id)

    def remember_thread(self, *, thread_id: int, parent_id: int | None) -> None:
        self._remember(self._parents, thread_id, parent_id)

    async def room_of_channel(self, channel_id: int) -> Room:
        """The Room a channel or thread id stands for: a thread maps to (its parent channel, itself)."""
        parent = await self.parent_of(channel_id)
        if parent is None:
            return Room(PLATFORM, str(channel_id))
        return Room(PLATFORM, str(parent), thread=str(channel_id))

    async def parent_of(self, channel_id: int) -> int | None:
        """The parent channel of a thread (None for a channel), from the cache or GET /channels/{id}."""
        if channel_id in self._parents:
            return self._parents[channel_id]
        channel = self.client.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.client.fetch_channel(channel_id)
            except discord.HTTPException as problem:
                log.warning("channel %s could not be fetched (%s); treating it as a plain channel", channel_id,
                            problem)
                return None
        parent = channel.parent_id if isinstance(channel, discord.Thread) else None
        self.remember_thread(thread_id=channel_id, parent_id=parent)
        return parent

    # -- internals -----------------------------------------------------------------------------------

    async def _send_once(self, target: Any, rendered: Rendered, delivery: Delivery | None, *, what: str) -> int:
        """Send, or find the copy an earlier attempt of the same outbox message left; the message id."""
        if delivery is None:
            sent_id: int = (await delivering(what, lambda: target.send(**rendered.send_kwargs()))).id
            return sent_id
        nonce = delivery_nonce(delivery.key)
        if delivery.maybe_sent:
            earlier = await self._earlier_copy(target, nonce, rendered)
            if earlier is not None:
                log.info("%s: already delivered as message %s (outbox key %s); not sent again", what, earlier,
                         delivery.key)
                return earlier
        # discord.py sets enforce_nonce with our nonce: within Discord's window a repeat answers the earlier one.
        sent = await delivering(what, lambda: target.send(nonce=nonce, **rendered.send_kwargs()))
        sent_id = sent.id
        self.remember_landed(nonce=nonce, message_id=sent_id)
        return sent_id

    async def _earlier_copy(self, target: Any, nonce: str, rendered: Rendered) -> int | None:
        """The id of our message an earlier attempt left: a nonce we saw land, else the bot's own message with
        exactly this rendering among the channel's latest (Discord keeps no nonce to search history by)."""
        known = self._landed.get(nonce)
        if known is not None:
            return known
        me = self.client.user
        wanted = _fingerprint_of_rendered(rendered)
        try:
            async for earlier in target.history(limit=RECENT_MESSAGES):
                if me is not None and earlier.author.id == me.id and _fingerprint(earlier) == wanted:
                    earlier_id: int = earlier.id
                    return earlier_id
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as problem:
            log.warning("looking for an earlier copy in %s failed (%r); sending with the nonce", target.id, problem)
        return None

    def _partial(self, channel_id: int) -> discord.PartialMessageable:
        # Sending needs no cached channel: a partial messageable is just the id (works before the gateway is up).
        return self.client.get_partial_messageable(channel_id, guild_id=self.guild_id)

    async def _messageable_channel(self, channel_id: int) -> Any:
        """The real channel object (needed to open a thread from a message: it must know its guild)."""
        channel = self.client.get_channel(channel_id)
        if channel is None:
            channel = await delivering(f"channel {channel_id}", lambda: self.client.fetch_channel(channel_id))
        if not isinstance(channel, discord.abc.Messageable):
            raise DeliveryError(f"channel {channel_id} is not a text channel", permanent=True)
        return channel

    async def _prepared(self, message: Message) -> Rendered:
        rendered = render(message)
        attachment = message.attachment
        if attachment is not None and attachment.mime_type.startswith("text/"):
            rendered.attachment = await self._readable_attachment(attachment)
        return rendered

    async def _readable_attachment(self, attachment: Attachment) -> Attachment:
        """`<@123>` → `@alice` in documents people read outside Discord (the attached post-mortem)."""
        text = attachment.content.decode("utf-8", errors="replace")
        users = dict.fromkeys(re.findall(r"<@!?([0-9]{15,25})>", text))
        if not users:
            return attachment
        for user in users:
            users[user] = await self.display_name(user=user)
        text = re.sub(r"<@!?([0-9]{15,25})>", lambda m: f"@{users[m.group(1)]}", text)
        return Attachment(filename=attachment.filename, content=text.encode("utf-8"),
                          mime_type=attachment.mime_type, title=attachment.title)

    async def _lookup_name(self, user_id: int) -> str:
        guild = self.client.get_guild(self.guild_id) if self.guild_id else None
        if guild is not None:
            member = guild.get_member(user_id)
            if member is None:
                try:
                    member = await guild.fetch_member(user_id)
                except discord.NotFound:
                    member = None
            if member is not None:
                return member.display_name
        user = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
        return user.display_name

    def _remember(self, cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self._cache_size:
            cache.popitem(last=False)


def _fingerprint(message: discord.Message) -> tuple[Any, ...]:
    """What a message shows: its words, embeds, attachment names and buttons."""
    return (message.content or "", tuple((e.title, e.description) for e in message.embeds),
            tuple(a.filename for a in message.attachments),
            tuple(getattr(c, "custom_id", None) for row in message.components
                  for c in getattr(row, "children", ())))


def _fingerprint_of_rendered(rendered: Rendered) -> tuple[Any, ...]:
    view = rendered.view
    buttons = tuple(getattr(item, "custom_id", None) for item in view.children) if view is not None else ()
    return (rendered.content or "", tuple((e.title, e.description) for e in rendered.embeds),
            (rendered.attachment.filename,) if rendered.attachment is not None else (), buttons)


__all__ = ["PLATFORM", "DiscordChat", "answering", "delivering", "delivery_nonce", "thread_name"]
