"""Slack → core: a slack-bolt AsyncApp whose listeners translate Slack payloads into IncidentService calls.

No incident rules live here. Bolt runs with process_before_response=True: Slack's HTTP request is answered
only after the listener has finished, so a 200 means the command or message is committed to the database
(a process killed mid-request loses nothing Slack believes was delivered; Slack retries events it got no
answer for, and the delivery ids make those retries no-ops). That fits Slack's 3-second window because the
service only commits and writes the outbox; chat messages go out afterwards from the outbox. Each listener
resolves who and where (`Actor` with the display name, `Room` from channel + thread) and calls the service:

    /incident <text>           → service.execute(parsed command)      answer: the HTTP response (ephemeral)
    /incident (no text)        → views.open(declare form)             submission → Declare
    app_mention "@warroom …"   → service.run_command (room = the thread it was said in)
    message / edit / delete    → capture_message / revise_message(text= | deleted=True)
    reaction_added :pushpin:   → revise_message(pinned=True)
    buttons ack/resolve/snooze → service.press_button;  "Post update" → views.open(update form) → PostStatus

Events carry Slack's `event_id` as the delivery id, so a retried delivery is processed once (the service
records delivery ids in the database).

Nothing a listener does before Slack gets its answer waits on the Web API: names come from the adapter's cache
(an unseen user is `<@U…>` — Slack shows it as their name — and is looked up after the answer), and ephemeral
replies, forms and name look-ups run as after-work once the listener returned. A payload without what it needs
(no channel, no user, no form state) is answered 200 and ignored (or the user is told), never a 500 that Slack
would retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.blocks import (
    ACTION_PREFIX,
    DECLARE_VIEW,
    UPDATE_VIEW,
    declare_modal,
    escape,
    from_slack,
    leading_mention,
    render,
    update_modal,
)
from adapters.slack.chat import PLATFORM, SlackChat
from bot.incident import commands as cmd
from bot.incident.service import Context, IncidentService
from bot.ports import Actor, Message, Reply, Room

log = logging.getLogger("warroom.slack")

_CAPTURED_SUBTYPES = (None, "thread_broadcast", "file_share", "me_message")
_INCIDENT_KEY = re.compile(r"^INC-(\d{1,9})$", re.IGNORECASE)
PIN_REACTION = "pushpin"
HANDLED_KEPT = 1000


class _Later:
    """Web API calls a listener wants made after Slack has its answer (see SlackInbound._work)."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], Awaitable[Any]]] = []

    def __call__(self, call: Callable[[], Awaitable[Any]]) -> None:
        self.calls.append(call)


def _id_of(value: Any) -> str | None:
    """`{"id": "U1"}` → "U1"; anything else (missing, mistyped) → None."""
    found = value.get("id") if isinstance(value, dict) else None
    return found if isinstance(found, str) and found else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _delivery(body: dict[str, Any]) -> str | None:
    event_id = body.get("event_id")
    return f"slack:{event_id}" if event_id else None


class SlackInbound:
    """Owns the Bolt app and its listeners. `app` goes to the HTTP handler or the Socket Mode handler."""

    def __init__(self, *, service: IncidentService, chat: SlackChat, signing_secret: str | None) -> None:
        self.service = service
        self.chat = chat
        # A name, or Bolt takes one from inspect.stack(), which reads the source of every frame (~0.1 s at start).
        self.app = AsyncApp(client=chat.client, signing_secret=signing_secret or "", process_before_response=True,
                            logger=logging.getLogger("warroom.slack.bolt"), name="warroom")
        self._socket_mode: Any = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._handled: OrderedDict[str, int] = OrderedDict()  # recent keys only: a server runs for months
        self._changed = asyncio.Condition()
        app = self.app
        # Any slash command of this app: a workspace where /incident is taken renames it in the manifest.
        app.command(re.compile(r"^/"))(self._on_command)
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.event("reaction_added")(self._on_reaction)
        app.action(re.compile(rf"^{ACTION_PREFIX}(ack|resolve|snooze|declare|brief_send)$"))(self._on_button)
        app.action(f"{ACTION_PREFIX}update")(self._on_update_button)
        app.view(DECLARE_VIEW)(self._on_declare_submitted)
        app.view(UPDATE_VIEW)(self._on_update_submitted)
        app.error(self._on_error)

    # -- bookkeeping: in-flight work (graceful shutdown) and what finished (tests wait on it) -------------

    @asynccontextmanager
    async def _work(self, key: str, what: str, *, room: Room | None = None, user: str | None = None,
                    redeliver: bool = False) -> AsyncIterator[_Later]:
        """Bookkeeping around one listener. A failed event (`redeliver`) propagates: Bolt answers 500 and
        Slack delivers it again (its event id makes that safe if part of it did commit). A failed command or
        button cannot come back, so its user is told instead.

        Yields `later`: calls given to it run after the listener returned (Bolt answers Slack then), in a task
        that `drain()` waits for; `wait_handled(key)` counts the work as finished when they are done too."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        later = _Later()
        try:
            yield later
        except Exception:
            if redeliver:
                raise  # logged by _on_error
            log.exception("slack %s (%s) failed", what, key)
            if room is not None and user is not None:
                later(lambda: self.chat.reply_privately(room=room, user=user, message=Message(
                    text="Sorry, that failed inside warroom; it is logged. Try again, or use /incident show.",
                    kind="error")))
        finally:
            if task is not None:
                self._in_flight.discard(task)
            if later.calls:
                after = asyncio.get_running_loop().create_task(self._after(key, what, later.calls))
                self._in_flight.add(after)
                after.add_done_callback(self._in_flight.discard)
            else:
                await self._finished(key)

    async def _after(self, key: str, what: str, calls: list[Callable[[], Awaitable[Any]]]) -> None:
        await asyncio.sleep(0)  # let Bolt send the answer first
        try:
            for call in calls:
                try:
                    await call()
                except Exception as problem:
                    log.warning("slack %s (%s): a call after the answer failed: %r", what, key, problem)
        finally:
            await self._finished(key)

    async def _finished(self, key: str) -> None:
        self._handled[key] = self._handled.pop(key, 0) + 1
        while len(self._handled) > HANDLED_KEPT:
            self._handled.popitem(last=False)
        async with self._changed:
            self._changed.notify_all()

    async def wait_handled(self, key: str, *, times: int = 1, timeout: float = 5.0) -> None:
        """Wait until the work for `key` (an event_id, or a trigger_id for commands and interactions) has
        finished `times` times."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self._handled.get(key, 0) >= times), timeout)

    async def drain(self, timeout: float = 10.0) -> None:
        """Let listeners that already acknowledged Slack finish (call before closing the database)."""
        pending = [task for task in self._in_flight if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def connect_socket_mode(self, app_token: str) -> None:
        """Receive Slack's payloads over a Socket Mode WebSocket (`xapp-…` token) instead of HTTP."""
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self._socket_mode = AsyncSocketModeHandler(self.app, app_token)
        await self._socket_mode.connect_async()

    async def close(self) -> None:
        if self._socket_mode is not None:
            await self._socket_mode.close_async()
            self._socket_mode = None
        await self.drain()

    # -- helpers -------------------------------------------------------------------------------------

    def room(self, channel: str, thread: str | None) -> Room:
        """Where something was said. In channel mode an incident owns its whole channel, threads included."""
        return Room(PLATFORM, channel, thread if self.chat.incident_mode == "thread" else None)

    def _actor(self, user: str, later: _Later) -> Actor:
        """Who did it, without a Web API call: the cached name, or `<@U…>` (Slack renders it as their name;
        SlackChat shows it as `@name` where it must not notify) with the name looked up after the answer, so
        the user's next action carries it."""
        name = self.chat.known_name(user)
        if name is None:
            later(lambda: self.chat.resolve(user))
        return Actor(id=user, name=name or f"<@{user}>")

    def _parse(self, text: str) -> cmd.ParseResult:
        return cmd.parse(text, severities=self.service.ladder.level_names)

    async def _execute(self, ctx: Context, command: cmd.Command) -> Reply | None:
        if isinstance(command, cmd.Declare):  # channel mode invites the reporter into the new channel
            self.chat.expect_declare(channel=ctx.room.channel, title=command.title, user=ctx.actor.id)
        return await self.service.execute(ctx, command)

    def _message_room(self, body: dict[str, Any]) -> Room | None:
        container = found if isinstance(found := body.get("container"), dict) else {}
        channel = _id_of(body.get("channel")) or _str(container.get("channel_id"))
        if channel is None:
            return None
        message = found if isinstance(found := body.get("message"), dict) else {}
        # A button on the card (the thread's parent) or on a reply in the thread: either way, that thread.
        return self.room(channel, _str(message.get("thread_ts")) or _str(message.get("ts")))

    # -- slash command ---------------------------------------------------------------------------------

    async def _on_command(self, ack: Any, command: dict[str, Any]) -> None:
        text = _str(command.get("text")) or ""
        user, channel = _str(command.get("user_id")), _str(command.get("channel_id"))
        trigger = _str(command.get("trigger_id")) or ""
        if user is None or channel is None:
            log.warning("slack command without user_id or channel_id (trigger %r): ignored", trigger)
            await ack(response_type="ephemeral", text="Slack did not say who ran this or where; nothing was done.")
            return
        room = Room(PLATFORM, channel)
        async with self._work(trigger, "/incident", room=room, user=user) as later:
            if not text.strip():
                # The trigger_id dies 3 s after the keystroke: open the form before anything touches the database.
                await ack()
                levels = [(level.name, level.label) for level in self.service.ladder.levels]
                later(lambda: self.chat.client.views_open(trigger_id=trigger, view=declare_modal(
                    levels=levels, default=self.service.ladder.default, channel=channel)))
                return
            parsed = self._parse(from_slack(text))
            if isinstance(parsed, cmd.UsageError):
                await ack(response_type="ephemeral", text=escape(str(parsed)))
                return
            # The answer to the request is the outcome itself: the command is committed before Slack hears back.
            reply = await self._execute(Context(actor=self._actor(user, later), room=room), parsed)
            if reply is None:
                await ack()
                return
            text, blocks = render(reply.message, names=self.chat.known_names(reply.message))
            await ack(response_type="ephemeral", text=text, blocks=blocks)

    # -- events ----------------------------------------------------------------------------------------

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        user, channel = _str(event.get("user")), _str(event.get("channel"))
        key = _str(body.get("event_id")) or _str(event.get("ts")) or ""
        if channel is None:
            log.warning("slack app_mention %s without a channel: ignored", key)
            await self._finished(key)
            return
        room = self.room(channel, _str(event.get("thread_ts")))
        async with self._work(key, "app_mention", room=room, user=user,
                              redeliver=bool(body.get("event_id"))) as later:
            text = leading_mention(_str(event.get("text")) or "", context.bot_user_id)
            if text is None or not user:
                return  # a mention mid-sentence is conversation: the message event puts it in the timeline
            parsed = self._parse(from_slack(text))
            if isinstance(parsed, cmd.UsageError):
                later(lambda: self.chat.reply_privately(room=room, user=user,
                                                        message=Message(text=str(parsed), kind="error")))
                return
            ctx = Context(actor=self._actor(user, later), room=room, delivery_id=_delivery(body))
            reply = await self._execute(ctx, parsed)
            if reply is not None:
                later(lambda: self.chat.reply_privately(room=room, user=user, message=reply.message))

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any], context: Any) -> None:
        subtype = event.get("subtype")
        key = body.get("event_id") or event.get("ts", "")
        async with self._work(key, f"message {subtype or ''}".strip(),
                              redeliver=bool(body.get("event_id"))) as later:
            if not _str(event.get("channel")):
                log.warning("slack message event %s without a channel: ignored", key)
            elif subtype == "message_changed":
                await self._edited(event, body)
            elif subtype == "message_deleted":
                await self._deleted(event, body)
            elif subtype in _CAPTURED_SUBTYPES:
                await self._posted(event, body, context, later)

    async def _posted(self, event: dict[str, Any], body: dict[str, Any], context: Any, later: _Later) -> None:
        user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
        if event.get("bot_id") or not user or not channel or not ts:
            return  # bots (ours included) are recorded by what they do, not by what they post
        text = event.get("text") or ""
        if leading_mention(text, context.bot_user_id) is not None:
            return  # the same words arrive as an app_mention, which runs them as a command
        self.chat.remember_thread(channel=channel, ts=ts, thread=event.get("thread_ts"))
        files = [f"📎 {f.get('name') or f.get('title') or 'file'}" for f in event.get("files") or []]
        text = " ".join(part for part in (from_slack(text).strip(), *files) if part)
        if not text:
            return
        await self.service.capture_message(room=self.room(channel, event.get("thread_ts")),
                                           actor=self._actor(user, later), text=text, message_id=ts,
                                           delivery_id=_delivery(body), at=_slack_time(ts))

    async def _edited(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        message, previous = event.get("message"), event.get("previous_message")
        message = message if isinstance(message, dict) else {}
        previous = previous if isinstance(previous, dict) else {}
        if message.get("bot_id") or message.get("subtype") == "bot_message" or not _str(message.get("ts")):
            return
        room = self.room(event["channel"], message.get("thread_ts"))
        if message.get("subtype") == "tombstone":  # a thread's parent deleted while it has replies
            await self.service.revise_message(room=room, message_id=message["ts"], deleted=True,
                                              delivery_id=_delivery(body))
            return
        if message.get("text") == previous.get("text"):
            return  # link unfurls and reply counts change the message, not its words
        await self.service.revise_message(room=room, message_id=message["ts"],
                                          text=from_slack(_str(message.get("text")) or ""),
                                          delivery_id=_delivery(body))

    async def _deleted(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        previous = event.get("previous_message")
        previous = previous if isinstance(previous, dict) else {}
        if previous.get("bot_id"):
            return
        channel, ts = event["channel"], _str(event.get("deleted_ts")) or _str(previous.get("ts"))
        if not ts:
            return
        thread = previous.get("thread_ts") or self.chat.known_thread(channel=channel, ts=ts)
        await self.service.revise_message(room=self.room(channel, thread), message_id=ts, deleted=True,
                                          delivery_id=_delivery(body))

    async def _on_reaction(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        item = found if isinstance(found := event.get("item"), dict) else {}
        async with self._work(body.get("event_id") or event.get("event_ts", ""), "reaction_added",
                              redeliver=bool(body.get("event_id"))):
            if event.get("reaction") != PIN_REACTION or item.get("type") != "message":
                return
            channel, ts = _str(item.get("channel")), _str(item.get("ts"))
            if channel is None or ts is None:
                return
            in_thread = self.chat.incident_mode == "thread"
            thread = await self.chat.thread_of(channel=channel, ts=ts) if in_thread else None
            await self.service.revise_message(room=self.room(channel, thread), message_id=ts, pinned=True,
                                              delivery_id=_delivery(body))

    # -- buttons and forms -----------------------------------------------------------------------------

    async def _on_button(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user, room, trigger = _id_of(body.get("user")), self._message_room(body), _str(body.get("trigger_id")) or ""
        if user is None or room is None:
            log.warning("slack button %s without a user or a channel: ignored", trigger)
            await self._finished(trigger)
            return
        async with self._work(trigger, "button", room=room, user=user) as later:
            ctx = Context(actor=self._actor(user, later), room=room)
            reply = await self.service.press_button(ctx, action=action["action_id"].removeprefix(ACTION_PREFIX),
                                                    value=_str(action.get("value")) or "")
            if reply is not None:
                later(lambda: self.chat.reply_privately(room=room, user=user, message=reply.message))

    async def _on_update_button(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user, room, trigger = _id_of(body.get("user")), self._message_room(body), _str(body.get("trigger_id")) or ""
        if user is None or room is None:
            log.warning("slack button %s without a user or a channel: ignored", trigger)
            await self._finished(trigger)
            return
        async with self._work(trigger, "update form", room=room, user=user) as later:
            later(lambda: self.chat.client.views_open(trigger_id=trigger, view=update_modal(
                incident_key=_str(action.get("value")) or "", channel=room.channel, thread=room.thread)))

    @staticmethod
    def _form_value(view: dict[str, Any], block: str, action: str, key: str = "value") -> Any:
        """One input's value from a submitted view, None when Slack left any part of the path out."""
        node: Any = view.get("state")
        for step in ("values", block, action, key):
            node = node.get(step) if isinstance(node, dict) else None
        return node

    async def _on_declare_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, meta = _id_of(body.get("user")), _json_object(view.get("private_metadata"))
        key = _str(body.get("trigger_id")) or _str(view.get("id")) or ""
        channel = _str(meta.get("channel"))
        title = self._form_value(view, "title", "title")
        if user is None or channel is None or not isinstance(view.get("state"), dict):
            log.warning("slack declare form %s without a user, a channel or its state: ignored", key)
            await ack(response_action="errors", errors={"title": "Slack sent this form incomplete; try again."})
            await self._finished(key)
            return
        room = Room(PLATFORM, channel)
        async with self._work(key, "declare form", room=room, user=user) as later:
            title = cmd.clean_text(_str(title) or "").strip()
            if not title:
                await ack(response_action="errors", errors={"title": "Say what is broken, e.g. Payments down."})
                return
            await ack()
            option = self._form_value(view, "severity", "severity", "selected_option")
            severity = _str(option.get("value")) if isinstance(option, dict) else None
            impact = cmd.clean_text(_str(self._form_value(view, "impact", "impact")) or "").strip() or None
            ctx = Context(actor=self._actor(user, later), room=room)
            reply = await self._execute(ctx, cmd.Declare(title=title, severity=severity, impact=impact))
            if reply is not None:
                later(lambda: self.chat.reply_privately(room=room, user=user, message=reply.message))

    async def _on_update_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user, meta = _id_of(body.get("user")), _json_object(view.get("private_metadata"))
        key = _str(body.get("trigger_id")) or _str(view.get("id")) or ""
        channel, match = _str(meta.get("channel")), _INCIDENT_KEY.match(_str(meta.get("incident")) or "")
        if user is None or channel is None or match is None or not isinstance(view.get("state"), dict):
            log.warning("slack update form %s without a user, an incident or its state: ignored", key)
            await ack(response_action="errors", errors={"status": "Slack sent this form incomplete; try again."})
            await self._finished(key)
            return
        room = Room(PLATFORM, channel, _str(meta.get("thread")))
        async with self._work(key, "update form", room=room, user=user) as later:
            text = cmd.clean_text(_str(self._form_value(view, "status", "text")) or "").strip()
            if not text:
                await ack(response_action="errors", errors={"status": "Say what changed."})
                return
            await ack()
            ctx = Context(actor=self._actor(user, later), room=room)
            reply = await self.service.execute(ctx, cmd.PostStatus(incident=int(match.group(1)), text=text))
            if reply is not None:
                later(lambda: self.chat.reply_privately(room=room, user=user, message=reply.message))

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("slack listener error for %s: %r", body.get("type") or body.get("command"), error,
                  exc_info=error)


def build_slack_inbound(*, service: IncidentService, chat: SlackChat, signing_secret: str | None) -> SlackInbound:
    return SlackInbound(service=service, chat=chat, signing_secret=signing_secret)


def _slack_time(ts: str) -> datetime | None:
    """A message's `ts` ("1732431000.000200", Unix seconds) as the time it was written."""
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None
