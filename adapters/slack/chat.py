"""`SlackChat`: the core's ChatAdapter port on Slack's Web API (slack-sdk's AsyncWebClient).

Example::

    client = make_web_client(token="xoxb-…", base_url="https://slack.com/api/")
    chat = SlackChat(client=client, incident_mode="thread")
    posted = await chat.post(room=Room("slack", "C0INCIDENTS"), message=Message(text="hi"))

Outbound only: inbound payloads are translated in `adapters/slack/app.py`. Every call goes through one client
whose retry handlers honour `Retry-After` on 429 (nothing was written), and back off on 5xx and dropped
connections only for calls that are safe to repeat (reads, `chat.update`). A write whose answer was lost (a 5xx,
a dropped connection or a timeout after Slack stored it) is never re-sent blindly: it fails to the outbox, whose
next attempt is marked `maybe_sent`, and the adapter first looks for the earlier copy — a message by the outbox
key in its metadata, a file by its title, name and size in the thread, a channel by its name and creator.
A call that still fails raises the port's DeliveryError (with `retry_after`, or `permanent` for errors retrying
cannot fix), and the core's outbox keeps the message and logs it with the incident id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import (
    BackoffRetryIntervalCalculator,
)
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import as_mrkdwn, escape, mentions_live, render
from adapters.slack.settings import SlackSettings
from bot.ports import Attachment, Capabilities, Clock, Delivery, DeliveryError, Message, Posted, Room, SystemClock

DELIVERY_EVENT = "warroom_delivery"  # message metadata event type carrying the outbox key
log = logging.getLogger("warroom.slack")

PLATFORM = "slack"
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
MAX_CHANNEL_NAME = 80
NAME_ATTEMPTS = 20

PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "channel_is_archived", "invalid_auth", "not_authed",
    "account_inactive", "token_revoked", "token_expired", "missing_scope", "no_permission", "restricted_action",
    "msg_too_long", "no_text", "invalid_blocks", "invalid_blocks_format", "invalid_arguments", "user_not_in_channel",
    "message_not_found", "cant_update_message", "edit_window_closed", "team_access_not_granted", "ekm_access_denied",
    "invalid_name_specials", "invalid_name_punctuation", "invalid_name_required", "invalid_name_maxlength",
})


def delivery_error(problem: SlackApiError) -> DeliveryError:
    """A Web API failure (after the client's own retries) as the core's DeliveryError: the outbox waits for
    `retry_after` on a 429, gives up on errors that retrying cannot fix, and backs off on the rest."""
    response = problem.response
    error = str(response.get("error") or f"http_{response.status_code}")
    retry_after = None
    if response.status_code == 429 or error == "ratelimited":
        header = next((v for k, v in (response.headers or {}).items() if k.lower() == "retry-after"), None)
        try:
            retry_after = float(header[0] if isinstance(header, list) else header) if header is not None else 1.0
        except ValueError:
            retry_after = 1.0
    method = str(getattr(response, "api_url", "")).rsplit("/", 1)[-1] or "Web API"
    return DeliveryError(f"Slack {method}: {error}", retry_after=retry_after, permanent=error in PERMANENT_ERRORS)


@contextmanager
def _delivering() -> Iterator[None]:
    try:
        yield
    except SlackApiError as problem:
        raise delivery_error(problem) from problem


# -- the Web API client -------------------------------------------------------------------------------


class _ScaledJitter(Jitter):
    def __init__(self, most: float) -> None:
        self._most = most

    def recalculate(self, duration: float) -> float:
        return duration + random.random() * self._most


class _RetryAfter(AsyncRateLimitErrorRetryHandler):
    """429: wait what `Retry-After` says (plus a little jitter so replicas do not retry in step), then retry.

    slack-sdk's handler adds up to a whole second of jitter; this one makes it configurable."""

    def __init__(self, max_retry_count: int, *, jitter: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._jitter = jitter

    async def prepare_for_next_attempt_async(self, *, state: RetryState, request: HttpRequest,
                                             response: HttpResponse | None = None,
                                             error: Exception | None = None) -> None:
        if response is None:
            assert error is not None  # slack_sdk passes the error whenever there is no response
            raise error
        state.next_attempt_requested = True
        header = next((values for name, values in response.headers.items() if name.lower() == "retry-after"), None)
        value = header[0] if isinstance(header, list) else header
        try:
            wait = max(0.0, float(value)) if value is not None else 1.0
        except ValueError:
            wait = 1.0
        await asyncio.sleep(wait + random.random() * self._jitter)
        state.increment_current_attempt()


# Methods whose repetition changes nothing Slack shows: reads, an edit to the same content, an invitation
# (already_in_channel), an upload URL nobody sees. Everything else (chat.postMessage, chat.postEphemeral,
# files.completeUploadExternal, conversations.create, views.open, …) may have been done when its answer is lost.
SAFE_TO_REPEAT = frozenset({
    "auth.test", "users.info", "conversations.replies", "conversations.history", "conversations.list",
    "conversations.info", "files.list", "files.info", "chat.update", "conversations.invite",
    "files.getUploadURLExternal",
})


def _method_of(request: HttpRequest) -> str:
    return str(getattr(request, "url", "")).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


class _ServerErrorRetry(AsyncServerErrorRetryHandler):
    """5xx (slack-sdk knows 500 and 503; gateways also answer 502 and 504) — only for calls safe to repeat:
    a 5xx on a write can come after Slack stored it."""

    async def _can_retry_async(self, *, state: RetryState, request: HttpRequest,
                               response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        return (response is not None and response.status_code in (500, 502, 503, 504)
                and _method_of(request) in SAFE_TO_REPEAT)


class _ConnectionErrorRetry(AsyncConnectionErrorRetryHandler):
    """A dropped connection or a timeout — only for calls safe to repeat (slack-sdk's default handler re-sends
    any call, writes included, which posted the same card three times when an answer was lost)."""

    async def _can_retry_async(self, *, state: RetryState, request: HttpRequest,
                               response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        return (_method_of(request) in SAFE_TO_REPEAT
                and await super()._can_retry_async(state=state, request=request, response=response, error=error))


def make_web_client(*, token: str, base_url: str = "https://slack.com/api/", rate_limit_retries: int = 3,
                    server_error_retries: int = 2, connection_retries: int = 2, backoff: float = 0.5,
                    jitter: float = 1.0, timeout: int = 30, shared_session: bool = False) -> AsyncWebClient:
    """One AsyncWebClient for everything (Bolt's listeners included): 429 retried after `Retry-After` for every
    method; 5xx and connection errors retried only for methods in SAFE_TO_REPEAT. `base_url` points it at a proxy or
    a test fake. `shared_session` (call it inside the
    running event loop) keeps one aiohttp session with its connection pool for every call; without it
    slack-sdk opens and closes a session per call, which costs twice the CPU of the call itself."""
    calculator = BackoffRetryIntervalCalculator(backoff_factor=backoff, jitter=_ScaledJitter(jitter))
    session = None
    if shared_session:
        import aiohttp

        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
    return AsyncWebClient(
        token=token,
        session=session,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=timeout,
        retry_handlers=[
            _RetryAfter(rate_limit_retries, jitter=jitter),
            _ServerErrorRetry(max_retry_count=server_error_retries, interval_calculator=calculator),
            _ConnectionErrorRetry(max_retry_count=connection_retries, interval_calculator=calculator),
        ],
    )


def _one_attempt_client(client: AsyncWebClient) -> AsyncWebClient:
    """The same Web API, one attempt per call: name look-ups must fail fast (a 429 is retried on a later event
    or send, never slept on)."""
    return AsyncWebClient(token=client.token, base_url=client.base_url, timeout=client.timeout,
                          session=client.session, retry_handlers=[])


def slack_chat_from_settings(settings: SlackSettings, *, incident_mode: Literal["thread", "channel"],
                             clock: Clock | None = None) -> SlackChat:
    """The adapter as `warroom serve` runs it: bot token, API base URL, incident mode, announce channel."""
    if settings.bot_token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    client = make_web_client(token=settings.bot_token.get_secret_value(), base_url=settings.api_url,
                             shared_session=True)
    return SlackChat(client=client, incident_mode=incident_mode,
                     announce_channel=settings.incidents_channel, clock=clock)


# -- channel names ------------------------------------------------------------------------------------


def channel_name(incident_key: str, title: str) -> str:
    """`INC-7`, `Payments DOWN (EU)!` → `inc-7-payments-down-eu`: Slack's rules are lowercase letters, digits,
    `-` and `_`, at most 80 characters."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9_-]+", "-", f"{incident_key}-{ascii_title}".lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-_")
    return slug[:MAX_CHANNEL_NAME].rstrip("-_") or incident_key.lower()


def _with_suffix(name: str, attempt: int) -> str:
    suffix = f"-{attempt + 1}"
    return name[: MAX_CHANNEL_NAME - len(suffix)].rstrip("-_") + suffix


def _severity_of(card: Message) -> str:
    """The severity name from the neutral card ("P1 — Critical: …" field, or the "INC-7 · P1 · title" title)."""
    for field in card.fields:
        if field.label == "Severity":
            return field.value.split(" — ", 1)[0].strip()
    parts = (card.title or "").split(" · ")
    return parts[1] if len(parts) >= 3 else "?"


def _texts_of(message: Message) -> str:
    return " ".join([message.text, message.title or "", message.footer or "",
                     *(f"{f.label} {f.value}" for f in message.fields), *(c.text for c in message.checklist)])


def _name_of(user: dict[str, Any]) -> str | None:
    """What people call a Slack user: display name, else real name, else the handle."""
    profile = found if isinstance(found := user.get("profile"), dict) else {}
    return next((value.strip() for value in (profile.get("display_name"), profile.get("real_name"),
                                             user.get("real_name"), user.get("name"))
                 if isinstance(value, str) and value.strip()), None)


# -- the adapter ---------------------------------------------------------------------------------------


class SlackChat:
    """The ChatAdapter port on Slack: cards as Block Kit, threads by `thread_ts`, ephemeral replies, file
    uploads, display names from `users.info` (cached)."""

    platform = PLATFORM
    capabilities = Capabilities(threads=True, edits=True, buttons=True, files=True, ephemeral=True,
                                max_text=3000, max_buttons=5)

    def __init__(self, *, client: AsyncWebClient, incident_mode: Literal["thread", "channel"] = "thread",
                 announce_channel: str | None = None, clock: Clock | None = None,
                 name_ttl_seconds: float = 3600.0, cache_size: int = 5000) -> None:
        self.client = client
        self._lookup_client = _one_attempt_client(client)
        self.incident_mode = incident_mode
        self._announce_channel = announce_channel or None
        self._clock = clock or SystemClock()
        self._name_ttl = name_ttl_seconds
        self._cache_size = cache_size
        self._names: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._threads: OrderedDict[tuple[str, str], str | None] = OrderedDict()
        self._reporters: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._opened: OrderedDict[str, str] = OrderedDict()  # incident key → channel created for it
        self._resolving: dict[str, asyncio.Task[str | None]] = {}  # user → its users.info in flight
        self._not_before: dict[str, datetime] = {}  # user → when to ask users.info again (after a 429)
        self._warming: asyncio.Task[int] | None = None
        self._bot_user: str | None = None

    # -- the port ------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop name look-ups and close the Web API client's shared HTTP session, if it has one."""
        for task in [self._warming, *self._resolving.values()]:
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        session = getattr(self.client, "session", None)
        if session is not None and not session.closed:
            await session.close()

    async def open_incident_room(self, *, channel: str, incident_key: str, title: str, card: Message,
                                 delivery: Delivery | None = None) -> Posted:
        with _delivering():
            if self.incident_mode == "channel":
                return await self._open_incident_channel(channel=channel, incident_key=incident_key, title=title,
                                                         card=card, delivery=delivery)
            card_channel, ts = await self._post(channel=channel, thread=None, message=card, delivery=delivery)
            return Posted(room=Room(PLATFORM, card_channel, thread=ts), message_id=ts)

    async def post(self, *, room: Room, message: Message, delivery: Delivery | None = None) -> Posted:
        with _delivering():
            if message.attachment is not None:
                # One upload whose comment is the message: a retry after a failure cannot leave the text
                # posted twice or the file missing from it.
                file_id = await self._upload(channel=room.channel, thread=room.thread, message=message,
                                             attachment=message.attachment, delivery=delivery)
                return Posted(room=room, message_id=file_id)
            _, ts = await self._post(channel=room.channel, thread=room.thread, message=message, delivery=delivery)
        return Posted(room=room, message_id=ts)

    async def update(self, *, posted: Posted, message: Message) -> None:
        # chat.update sets the same content again when repeated: a lost answer is safe to retry as it is.
        text, blocks = render(message, now=self._clock.now(), names=await self._names_in(message))
        with _delivering():
            await self.client.chat_update(channel=posted.room.channel, ts=posted.message_id, text=text,
                                          blocks=blocks)

    async def reply_privately(self, *, room: Room, user: str, message: Message) -> None:
        text, blocks = render(message, now=self._clock.now(), names=await self._names_in(message))
        with _delivering():
            await self.client.chat_postEphemeral(channel=room.channel, user=user, text=text, blocks=blocks,
                                                 thread_ts=room.thread)

    async def display_name(self, *, user: str) -> str:
        """The user's name: from the cache, else one users.info attempt (never a Retry-After sleep); the user id
        when Slack cannot say now (not remembered: the next call asks again)."""
        return self.known_name(user) or await self.resolve(user) or user

    def known_name(self, user: str) -> str | None:
        """The cached name (a stale one too: a renamed user is better shown by the old name than by an id).
        Never calls Slack: the first call starts filling the cache from users.list in the background."""
        if self._warming is None:
            self._warming = asyncio.get_running_loop().create_task(self.warm_names())
        cached = self._names.get(user)
        if cached is not None and time.monotonic() - cached[1] >= self._name_ttl:
            self.resolve_later(user)  # refresh in the background
        return cached[0] if cached else None

    async def warm_names(self, *, page_size: int = 200, pages: int = 50) -> int:
        """Fill the name cache from users.list (one attempt per page, so a 429 just stops it): after a restart
        people are known by name before they first speak. Returns how many names it learnt."""
        if self._warming is None:
            self._warming = asyncio.current_task()
        learnt, cursor = 0, None
        for _ in range(pages):
            try:
                response = await self._lookup_client.users_list(limit=page_size, cursor=cursor)
            except Exception as problem:
                log.info("users.list failed (%r); names are looked up one by one", problem)
                return learnt
            for found in response.get("members") or []:
                name = _name_of(found) if isinstance(found, dict) and not found.get("deleted") else None
                if name and isinstance(found.get("id"), str):
                    self._remember(self._names, found["id"], (name, time.monotonic()))
                    learnt += 1
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return learnt

    def resolve_later(self, user: str) -> asyncio.Task[str | None] | None:
        """Look the name up in the background (one users.info in flight per user; after a 429, not before its
        Retry-After). Inbound handlers call this after acknowledging Slack, never before."""
        running = self._resolving.get(user)
        if running is not None:
            return running
        not_before = self._not_before.get(user)
        if not_before is not None and self._clock.now() < not_before:
            return None
        task = asyncio.get_running_loop().create_task(self._resolve(user))
        self._resolving[user] = task
        task.add_done_callback(lambda _: self._resolving.pop(user, None))
        return task

    async def resolve(self, user: str) -> str | None:
        """The name after one users.info attempt (sharing one that is in flight), None when it failed."""
        task = self.resolve_later(user)
        if task is None:
            return None
        return await asyncio.shield(task)

    async def _resolve(self, user: str) -> str | None:
        try:
            response = await self._lookup_client.users_info(user=user)
        except SlackApiError as problem:
            wait = delivery_error(problem).retry_after
            if wait:
                self._not_before[user] = self._clock.now() + timedelta(seconds=wait)
            log.info("users.info %s failed (%s); the name is looked up again later", user,
                     problem.response.get("error"))
            return None
        except Exception as problem:
            log.info("users.info %s failed (%r); the name is looked up again later", user, problem)
            return None
        self._not_before.pop(user, None)
        found = response.get("user")
        name = _name_of(found) if isinstance(found, dict) else None
        if name is None:
            return None
        self._remember(self._names, user, (name, time.monotonic()))
        return name

    def known_names(self, message: Message) -> dict[str, str]:
        """`_names_in` from the cache only, for answers that cannot wait (a slash command's acknowledgement)."""
        if mentions_live(message):
            return {}
        return {user: name for user in _USER_MENTION.findall(_texts_of(message))
                if (name := self.known_name(user)) is not None}

    async def _names_in(self, message: Message, *, most: int = 10) -> dict[str, str]:
        """Names for the `<@U…>` references a message shows as text rather than as mentions (see blocks.escape):
        from the cache, else looked up now — this runs when the message is sent, after any acknowledgement."""
        if mentions_live(message):
            return {}
        users = list(dict.fromkeys(_USER_MENTION.findall(_texts_of(message))))[:most]
        names: dict[str, str] = {}
        for user in users:
            name = self.known_name(user) or await self.resolve(user)
            if name:
                names[user] = name
        return names

    # -- Slack-only helpers the inbound side uses ------------------------------------------------------

    def expect_declare(self, *, channel: str, title: str, user: str) -> None:
        """Say who is declaring `title` in `channel`: channel mode invites them into the incident's channel.
        (The port's open_incident_room does not carry the reporter, and the outbox may deliver it from
        another task, so the inbound side leaves the Slack user id here.)"""
        self._remember(self._reporters, (channel, title), user)

    def remember_thread(self, *, channel: str, ts: str, thread: str | None) -> None:
        """Note which thread a message is in (message_deleted and reaction_added do not always say)."""
        self._remember(self._threads, (channel, ts), thread)

    def known_thread(self, *, channel: str, ts: str) -> str | None:
        return self._threads.get((channel, ts))

    async def thread_of(self, *, channel: str, ts: str) -> str | None:
        """The thread a message belongs to (None: not in a thread), from the cache or conversations.replies."""
        if (channel, ts) in self._threads:
            return self._threads[(channel, ts)]
        try:
            response = await self.client.conversations_replies(channel=channel, ts=ts, limit=1)
        except SlackApiError as problem:
            log.warning("conversations.replies %s/%s failed: %s", channel, ts, problem.response.get("error"))
            return None
        messages = response.get("messages") or []
        thread = messages[0].get("thread_ts") if messages else None
        self.remember_thread(channel=channel, ts=ts, thread=thread)
        return thread

    # -- internals -----------------------------------------------------------------------------------

    async def _post(self, *, channel: str, thread: str | None, message: Message,
                    delivery: Delivery | None = None) -> tuple[str, str]:
        if delivery is not None and delivery.maybe_sent:
            earlier = await self._find_delivered(channel=channel, thread=thread, key=delivery.key)
            if earlier is not None:
                return channel, earlier  # the crashed attempt did post it: exactly once, not twice
        text, blocks = render(message, now=self._clock.now(), names=await self._names_in(message))
        # The outbox key rides along as message metadata, so a retry after an uncertain send can find it.
        metadata = ({"event_type": DELIVERY_EVENT, "event_payload": {"key": delivery.key}}
                    if delivery is not None else None)
        response = await self.client.chat_postMessage(channel=channel, thread_ts=thread, text=text, blocks=blocks,
                                                      unfurl_links=False, unfurl_media=False, metadata=metadata)
        return str(response.get("channel") or channel), str(response["ts"])

    async def _find_delivered(self, *, channel: str, thread: str | None, key: str) -> str | None:
        """The ts of our message carrying outbox `key`: searched in the thread, or the channel's latest page."""
        cursor: str | None = None
        while True:
            if thread is not None:
                response = await self.client.conversations_replies(channel=channel, ts=thread, limit=200,
                                                                   cursor=cursor, include_all_metadata=True)
            else:
                response = await self.client.conversations_history(channel=channel, limit=100,
                                                                   include_all_metadata=True)
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                if (metadata.get("event_type") == DELIVERY_EVENT
                        and (metadata.get("event_payload") or {}).get("key") == key):
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if thread is None or not cursor:
                return None

    async def _upload(self, *, channel: str, thread: str | None, message: Message, attachment: Attachment,
                      delivery: Delivery | None = None) -> str:
        content = attachment.content
        if attachment.mime_type.startswith("text/"):
            content = (await self._names_for_mentions(content.decode("utf-8"))).encode("utf-8")
        title = attachment.title or attachment.filename
        if delivery is not None and delivery.maybe_sent:
            # Files carry no metadata: the same title, name and size shared in the same thread is the earlier copy.
            earlier = await self._find_upload(channel=channel, thread=thread, title=title,
                                              filename=attachment.filename, size=len(content))
            if earlier is not None:
                return earlier
        response = await self.client.files_upload_v2(
            channel=channel, thread_ts=thread, content=content, filename=attachment.filename,
            title=title, initial_comment=as_mrkdwn(message, names=await self._names_in(message)),
            request_file_info=False)
        return str((response.get("file") or {}).get("id") or "")

    async def _find_upload(self, *, channel: str, thread: str | None, title: str, filename: str,
                           size: int) -> str | None:
        response = await self.client.files_list(channel=channel, count=100)
        for found in response.get("files") or []:
            if (found.get("title"), found.get("name"), found.get("size")) != (title, filename, size):
                continue
            shares = [share for kind in ("public", "private") for share in
                      ((found.get("shares") or {}).get(kind) or {}).get(channel) or []]
            if thread is None or any(share.get("thread_ts") == thread for share in shares):
                return str(found["id"])
        return None

    async def _names_for_mentions(self, text: str) -> str:
        """`<@U123>` → `@alice` in documents people read outside Slack's renderer (the uploaded post-mortem)."""
        users = dict.fromkeys(re.findall(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>", text))
        for user in users:
            users[user] = await self.display_name(user=user)
        return re.sub(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>", lambda m: f"@{users[m.group(1)]}", text)

    async def _open_incident_channel(self, *, channel: str, incident_key: str, title: str, card: Message,
                                     delivery: Delivery | None = None) -> Posted:
        maybe_sent = delivery is not None and delivery.maybe_sent
        channel_id = self._opened.get(incident_key)
        if channel_id is None:  # a retry after a later step failed reuses the channel created the first time
            channel_id = await self._create_channel(channel_name(incident_key, title), maybe_ours=maybe_sent)
            self._remember(self._opened, incident_key, channel_id)
            reporter = self._reporters.pop((channel, title), None)
            if reporter:
                try:
                    await self.client.conversations_invite(channel=channel_id, users=reporter)
                except SlackApiError as problem:  # already in it, or a guest: the channel still works
                    log.warning("%s: could not invite %s to %s: %s", incident_key, reporter, channel_id,
                                problem.response.get("error"))
        _, ts = await self._post(channel=channel_id, thread=None, message=card, delivery=delivery)
        announce = self._announce_channel or channel
        severity = _severity_of(card)
        text = f"[INCIDENT] {escape(severity)} - {escape(title)}"
        key = f"{delivery.key}:announce" if delivery is not None else None
        try:
            if key is None or not maybe_sent or await self._find_delivered(channel=announce, thread=None,
                                                                           key=key) is None:
                await self.client.chat_postMessage(
                    channel=announce, text=f"{text} · <#{channel_id}>", unfurl_links=False, unfurl_media=False,
                    blocks=[{"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                                         "text": f":rotating_light: *{text}*\n"
                                                                 f"Work it in <#{channel_id}>"}}],
                    metadata={"event_type": DELIVERY_EVENT, "event_payload": {"key": key}} if key else None)
        except SlackApiError:
            log.exception("%s: could not announce the incident channel in %s", incident_key, announce)
        return Posted(room=Room(PLATFORM, channel_id, thread=None), message_id=ts)

    async def _create_channel(self, name: str, *, maybe_ours: bool = False) -> str:
        """Create the incident's channel. `maybe_ours`: an earlier attempt may have created it (its answer was
        lost), so a taken name is first checked: a channel of that name our bot created is that channel."""
        for attempt in range(NAME_ATTEMPTS):
            candidate = name if attempt == 0 else _with_suffix(name, attempt)
            try:
                response = await self.client.conversations_create(name=candidate, is_private=False)
            except SlackApiError as problem:
                if problem.response.get("error") == "name_taken":
                    earlier = await self._own_channel(candidate) if maybe_ours else None
                    if earlier is not None:
                        return earlier
                    continue
                raise
            return str(response["channel"]["id"])
        raise RuntimeError(f"no free channel name for {name!r} after {NAME_ATTEMPTS} attempts")

    async def _own_channel(self, name: str) -> str | None:
        """The id of the public channel called `name` if our bot created it (conversations.list, paged)."""
        if self._bot_user is None:
            self._bot_user = str((await self.client.auth_test()).get("user_id") or "")
        cursor: str | None = None
        while True:
            response = await self.client.conversations_list(types="public_channel", exclude_archived=True,
                                                            limit=1000, cursor=cursor)
            for found in response.get("channels") or []:
                if found.get("name") == name:
                    return str(found["id"]) if found.get("creator") == self._bot_user else None
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None

    def _remember(self, cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self._cache_size:
            cache.popitem(last=False)
