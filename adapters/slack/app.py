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
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.blocks import (ACTION_PREFIX, DECLARE_VIEW, UPDATE_VIEW, declare_modal, escape, from_slack,
                                   leading_mention, render, update_modal)
from adapters.slack.chat import PLATFORM, SlackChat
from bot.incident import commands as cmd
from bot.ports import Actor, Message, Reply, Room
from bot.incident.service import Context, IncidentService

log = logging.getLogger("warroom.slack")

_CAPTURED_SUBTYPES = (None, "thread_broadcast", "file_share", "me_message")
_INCIDENT_KEY = re.compile(r"^INC-(\d{1,9})$", re.IGNORECASE)
PIN_REACTION = "pushpin"
HANDLED_KEPT = 1000


def _delivery(body: dict) -> str | None:
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
        self._in_flight: set[asyncio.Task] = set()
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
                    redeliver: bool = False) -> AsyncIterator[None]:
        """Bookkeeping around one listener. A failed event (`redeliver`) propagates: Bolt answers 500 and
        Slack delivers it again (its event id makes that safe if part of it did commit). A failed command or
        button cannot come back, so its user is told instead."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            yield
        except Exception:
            if redeliver:
                raise  # logged by _on_error
            log.exception("slack %s (%s) failed", what, key)
            if room is not None and user is not None:
                try:
                    await self.chat.reply_privately(room=room, user=user, message=Message(
                        text="Sorry, that failed inside warroom; it is logged. Try again, or use /incident show.",
                        kind="error"))
                except Exception:
                    log.warning("could not tell %s that %s failed", user, what)
        finally:
            if task is not None:
                self._in_flight.discard(task)
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

    async def _actor(self, user: str) -> Actor:
        return Actor(id=user, name=await self.chat.display_name(user=user))

    def _parse(self, text: str) -> cmd.ParseResult:
        return cmd.parse(text, severities=self.service.ladder.level_names)

    async def _execute(self, ctx: Context, command: cmd.Command) -> Reply | None:
        if isinstance(command, cmd.Declare):  # channel mode invites the reporter into the new channel
            self.chat.expect_declare(channel=ctx.room.channel, title=command.title, user=ctx.actor.id)
        return await self.service.execute(ctx, command)

    def _message_room(self, body: dict) -> Room:
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message = body.get("message") or {}
        # A button on the card (the thread's parent) or on a reply in the thread: either way, that thread.
        return self.room(channel, message.get("thread_ts") or message.get("ts"))

    # -- slash command ---------------------------------------------------------------------------------

    async def _on_command(self, ack: Any, command: dict) -> None:
        text = command.get("text") or ""
        user, channel, trigger = command["user_id"], command["channel_id"], command.get("trigger_id", "")
        room = Room(PLATFORM, channel)
        async with self._work(trigger, "/incident", room=room, user=user):
            if not text.strip():
                # The trigger_id dies 3 s after the keystroke: open the form before anything touches the database.
                await ack()
                levels = [(level.name, level.label) for level in self.service.ladder.levels]
                await self.chat.client.views_open(trigger_id=trigger, view=declare_modal(
                    levels=levels, default=self.service.ladder.default, channel=channel))
                return
            parsed = self._parse(from_slack(text))
            if isinstance(parsed, cmd.UsageError):
                await ack(response_type="ephemeral", text=escape(str(parsed)))
                return
            # The answer to the request is the outcome itself: the command is committed before Slack hears back.
            reply = await self._execute(Context(actor=await self._actor(user), room=room), parsed)
            if reply is None:
                await ack()
                return
            text, blocks = render(reply.message)
            await ack(response_type="ephemeral", text=text, blocks=blocks)

    # -- events ----------------------------------------------------------------------------------------

    async def _on_mention(self, event: dict, body: dict, context: Any) -> None:
        user = event.get("user")
        room = self.room(event["channel"], event.get("thread_ts"))
        key = body.get("event_id") or event.get("ts", "")
        async with self._work(key, "app_mention", room=room, user=user, redeliver=bool(body.get("event_id"))):
            text = leading_mention(event.get("text") or "", context.bot_user_id)
            if text is None or not user:
                return  # a mention mid-sentence is conversation: the message event puts it in the timeline
            parsed = self._parse(from_slack(text))
            if isinstance(parsed, cmd.UsageError):
                await self.chat.reply_privately(room=room, user=user, message=Message(text=str(parsed), kind="error"))
                return
            ctx = Context(actor=await self._actor(user), room=room, delivery_id=_delivery(body))
            reply = await self._execute(ctx, parsed)
            if reply is not None:
                await self.chat.reply_privately(room=room, user=user, message=reply.message)

    async def _on_message(self, event: dict, body: dict, context: Any) -> None:
        subtype = event.get("subtype")
        key = body.get("event_id") or event.get("ts", "")
        async with self._work(key, f"message {subtype or ''}".strip(), redeliver=bool(body.get("event_id"))):
            if subtype == "message_changed":
                await self._edited(event, body)
            elif subtype == "message_deleted":
                await self._deleted(event, body)
            elif subtype in _CAPTURED_SUBTYPES:
                await self._posted(event, body, context)

    async def _posted(self, event: dict, body: dict, context: Any) -> None:
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
                                           actor=await self._actor(user), text=text, message_id=ts,
                                           delivery_id=_delivery(body), at=_slack_time(ts))

    async def _edited(self, event: dict, body: dict) -> None:
        message, previous = event.get("message") or {}, event.get("previous_message") or {}
        if message.get("bot_id") or message.get("subtype") == "bot_message" or not message.get("ts"):
            return
        room = self.room(event["channel"], message.get("thread_ts"))
        if message.get("subtype") == "tombstone":  # a thread's parent deleted while it has replies
            await self.service.revise_message(room=room, message_id=message["ts"], deleted=True,
                                              delivery_id=_delivery(body))
            return
        if message.get("text") == previous.get("text"):
            return  # link unfurls and reply counts change the message, not its words
        await self.service.revise_message(room=room, message_id=message["ts"], text=from_slack(message.get("text", "")),
                                          delivery_id=_delivery(body))

    async def _deleted(self, event: dict, body: dict) -> None:
        previous = event.get("previous_message") or {}
        if previous.get("bot_id"):
            return
        channel, ts = event["channel"], event.get("deleted_ts") or previous.get("ts")
        if not ts:
            return
        thread = previous.get("thread_ts") or self.chat.known_thread(channel=channel, ts=ts)
        await self.service.revise_message(room=self.room(channel, thread), message_id=ts, deleted=True,
                                          delivery_id=_delivery(body))

    async def _on_reaction(self, event: dict, body: dict) -> None:
        item = event.get("item") or {}
        async with self._work(body.get("event_id") or event.get("event_ts", ""), "reaction_added",
                              redeliver=bool(body.get("event_id"))):
            if event.get("reaction") != PIN_REACTION or item.get("type") != "message":
                return
            channel, ts = item["channel"], item["ts"]
            in_thread = self.chat.incident_mode == "thread"
            thread = await self.chat.thread_of(channel=channel, ts=ts) if in_thread else None
            await self.service.revise_message(room=self.room(channel, thread), message_id=ts, pinned=True,
                                              delivery_id=_delivery(body))

    # -- buttons and forms -----------------------------------------------------------------------------

    async def _on_button(self, ack: Any, body: dict, action: dict) -> None:
        await ack()
        user, room = body["user"]["id"], self._message_room(body)
        async with self._work(body.get("trigger_id", ""), "button", room=room, user=user):
            ctx = Context(actor=await self._actor(user), room=room)
            reply = await self.service.press_button(ctx, action=action["action_id"].removeprefix(ACTION_PREFIX),
                                                    value=action.get("value", ""))
            if reply is not None:
                await self.chat.reply_privately(room=room, user=user, message=reply.message)

    async def _on_update_button(self, ack: Any, body: dict, action: dict) -> None:
        await ack()
        user, room = body["user"]["id"], self._message_room(body)
        trigger = body.get("trigger_id", "")
        async with self._work(trigger, "update form", room=room, user=user):
            await self.chat.client.views_open(trigger_id=trigger, view=update_modal(
                incident_key=action.get("value", ""), channel=room.channel, thread=room.thread))

    async def _on_declare_submitted(self, ack: Any, body: dict, view: dict) -> None:
        values = view["state"]["values"]
        user = body["user"]["id"]
        room = Room(PLATFORM, json.loads(view.get("private_metadata") or "{}").get("channel", ""))
        async with self._work(body.get("trigger_id") or view.get("id", ""), "declare form", room=room, user=user):
            title = cmd.clean_text(values["title"]["title"].get("value") or "").strip()
            if not title:
                await ack(response_action="errors", errors={"title": "Say what is broken, e.g. Payments down."})
                return
            await ack()
            severity = (values["severity"]["severity"].get("selected_option") or {}).get("value") or None
            impact = cmd.clean_text(values.get("impact", {}).get("impact", {}).get("value") or "").strip() or None
            ctx = Context(actor=await self._actor(user), room=room)
            reply = await self._execute(ctx, cmd.Declare(title=title, severity=severity, impact=impact))
            if reply is not None:
                await self.chat.reply_privately(room=room, user=user, message=reply.message)

    async def _on_update_submitted(self, ack: Any, body: dict, view: dict) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        user = body["user"]["id"]
        room = Room(PLATFORM, meta.get("channel", ""), meta.get("thread"))
        async with self._work(body.get("trigger_id") or view.get("id", ""), "update form", room=room, user=user):
            text = cmd.clean_text(view["state"]["values"]["status"]["text"].get("value") or "").strip()
            if not text:
                await ack(response_action="errors", errors={"status": "Say what changed."})
                return
            await ack()
            match = _INCIDENT_KEY.match(meta.get("incident", ""))
            if match is None:
                raise ValueError(f"update form without an incident key: {meta!r}")
            ctx = Context(actor=await self._actor(user), room=room)
            reply = await self.service.execute(ctx, cmd.PostStatus(incident=int(match.group(1)), text=text))
            if reply is not None:
                await self.chat.reply_privately(room=room, user=user, message=reply.message)

    async def _on_error(self, error: Exception, body: dict) -> None:
        log.error("slack listener error for %s: %r", body.get("type") or body.get("command"), error,
                  exc_info=error)


def build_slack_inbound(*, service: IncidentService, chat: SlackChat, signing_secret: str | None) -> SlackInbound:
    return SlackInbound(service=service, chat=chat, signing_secret=signing_secret)


def _slack_time(ts: str) -> datetime | None:
    """A message's `ts` ("1732431000.000200", Unix seconds) as the time it was written."""
    try:
        return datetime.fromtimestamp(float(ts), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None
