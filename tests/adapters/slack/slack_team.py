"""`SlackTeam`: one Slack workspace talking to a real warroom — helpers that send what Slack sends, signed."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from adapters.slack.app import SlackInbound
from adapters.slack.chat import SlackChat
from bot.app.bootstrap import Warroom
from bot.app.settings import Settings
from bot.ports import ManualClock
from tests.fakes.slack_api import BOT_USER, TEAM, Call, FakeSlackApi

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
INCIDENTS = "C0INCIDENTS"
START = datetime(2026, 11, 24, 6, 50, tzinfo=UTC)
USERS = {"U0ALICE01": "alice", "U0BOB0002": "bob", "U0CAROL03": "carol"}
ALICE, BOB, CAROL = USERS


@dataclass
class SlackTeam:
    """One Slack workspace talking to warroom: helpers send what Slack would send, signed."""

    fake: FakeSlackApi
    app: Warroom
    chat: SlackChat
    inbound: SlackInbound
    http: httpx.AsyncClient
    clock: ManualClock
    settings: Settings
    errors_expected: bool = False
    last_trigger: str = ""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def service(self):
        return self.app.service

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    # -- signed HTTP -----------------------------------------------------------------------------------

    async def send(self, body: str, *, content_type: str, timestamp: int | None = None, secret: str = SECRET,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
        return await self.http.post("/slack/events", content=body.encode("utf-8"), headers={
            "Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature,
            **(headers or {})})

    async def command(self, text: str, *, user: str = ALICE, channel: str = INCIDENTS, wait: bool = True,
                      name: str = "/incident") -> httpx.Response:
        trigger = self.last_trigger = self.next_id("trig-")
        form = {"token": "legacy", "team_id": TEAM, "team_domain": "warroom-test", "channel_id": channel,
                "channel_name": "incidents", "user_id": user, "user_name": USERS.get(user, user),
                "command": name, "text": text, "api_app_id": "A0WARROOM", "is_enterprise_install": "false",
                "response_url": self.fake.response_url(), "trigger_id": trigger}
        response = await self.send(urlencode(form), content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200, response.text
        if wait:
            await self.inbound.wait_handled(trigger)
        return response

    async def event(self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None,
                    wait: bool = True, times: int = 1) -> str:
        event_id = event_id or self.next_id("Ev")
        body = json.dumps({"token": "legacy", "team_id": TEAM, "api_app_id": "A0WARROOM", "event": event,
                           "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
                           "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}]})
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else {}
        response = await self.send(body, content_type="application/json", headers=headers)
        assert response.status_code == 200, response.text
        if wait:
            await self.inbound.wait_handled(event_id, times=times)
        return event_id

    async def send_event_without_waiting(self, event: dict[str, Any], *, event_id: str | None = None,
                                         **headers: str) -> httpx.Response:
        """An event no listener will see (dropped by Bolt, or refused): nothing to wait for."""
        body = json.dumps({"team_id": TEAM, "api_app_id": "A0WARROOM", "event": event, "type": "event_callback",
                           "event_id": event_id or self.next_id("Ev"), "event_time": int(time.time())})
        return await self.send(body, content_type="application/json", **headers)  # type: ignore[arg-type]

    async def interact(self, payload: dict[str, Any], *, wait: bool = True) -> httpx.Response:
        trigger = payload.setdefault("trigger_id", self.next_id("trig-"))
        payload.setdefault("team", {"id": TEAM, "domain": "warroom-test"})
        payload.setdefault("api_app_id", "A0WARROOM")
        payload.setdefault("token", "legacy")
        response = await self.send(urlencode({"payload": json.dumps(payload)}),
                                   content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200, response.text
        if wait:
            await self.inbound.wait_handled(trigger)
        return response

    # -- what people do --------------------------------------------------------------------------------

    async def declare(self, text: str = 'declare P1 "Payments callbacks not arriving"', *, user: str = ALICE,
                      channel: str = INCIDENTS) -> Call:
        """Declare with /incident and return the card's chat.postMessage call (its ts is the thread)."""
        await self.command(text, user=user, channel=channel)
        [card] = await self.fake.wait_calls("chat.postMessage", where=lambda c: c.params.get("thread_ts") is None
                                            and "header" in json.dumps(c.params.get("blocks")))
        return card

    async def mention(self, text: str, *, channel: str = INCIDENTS, thread: str | None, user: str = ALICE) -> str:
        """`@warroom <text>` in a thread: Slack sends app_mention and message (same ts, different event ids)."""
        raw = f"<@{BOT_USER}> {text}"
        ts = self.fake.add_message(channel, text=raw, user=user, thread_ts=thread)
        event = {"type": "app_mention", "user": user, "text": raw, "ts": ts, "channel": channel,
                 "event_ts": ts, **({"thread_ts": thread} if thread else {})}
        await self.event(event)
        await self.event({**event, "type": "message", "channel_type": "channel"})
        return ts

    async def say(self, text: str, *, channel: str = INCIDENTS, thread: str | None, user: str = BOB,
                  **extra: Any) -> str:
        ts = self.fake.add_message(channel, text=text, user=user, thread_ts=thread)
        await self.event({"type": "message", "user": user, "text": text, "ts": ts, "channel": channel,
                          "event_ts": ts, "channel_type": "channel", **({"thread_ts": thread} if thread else {}),
                          **extra})
        return ts

    def button_payload(self, action: str, value: str, *, message_ts: str, channel: str = INCIDENTS,
                       thread_ts: str | None = None, user: str = BOB) -> dict[str, Any]:
        message = {"type": "message", "ts": message_ts, "user": BOT_USER, "bot_id": "BBOT", "text": "card"}
        if thread_ts:
            message["thread_ts"] = thread_ts
        return {"type": "block_actions", "user": {"id": user, "username": USERS.get(user, user), "team_id": TEAM},
                "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                              "is_ephemeral": False},
                "channel": {"id": channel, "name": "incidents"}, "message": message,
                "response_url": self.fake.response_url(),
                "actions": [{"action_id": f"warroom_{action}", "block_id": "warroom_buttons", "value": value,
                             "type": "button", "action_ts": str(time.time())}]}

    def view_payload(self, view: dict[str, Any], values: dict[str, dict[str, Any]], *,
                     user: str = BOB) -> dict[str, Any]:
        return {"type": "view_submission", "user": {"id": user, "username": USERS.get(user, user), "team_id": TEAM},
                "view": {**view, "id": self.next_id("V"), "state": {"values": values}}}

    def edit_event(self, ts: str, *, old: str, new: str, thread: str | None, user: str = BOB,
                   channel: str = INCIDENTS) -> dict[str, Any]:
        now = self.fake.next_ts()
        threaded = {"thread_ts": thread} if thread else {}
        return {"type": "message", "subtype": "message_changed", "hidden": True, "channel": channel, "ts": now,
                "event_ts": now, "channel_type": "channel",
                "message": {"type": "message", "user": user, "text": new, "ts": ts, **threaded,
                            "edited": {"user": user, "ts": now}},
                "previous_message": {"type": "message", "user": user, "text": old, "ts": ts, **threaded}}

    def delete_event(self, ts: str, *, text: str, thread: str | None, user: str = BOB,
                     channel: str = INCIDENTS) -> dict[str, Any]:
        now = self.fake.next_ts()
        threaded = {"thread_ts": thread} if thread else {}
        return {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": channel, "ts": now,
                "event_ts": now, "deleted_ts": ts, "channel_type": "channel",
                "previous_message": {"type": "message", "user": user, "text": text, "ts": ts, **threaded}}

    def reaction_event(self, ts: str, *, reaction: str = "pushpin", user: str = ALICE,
                       channel: str = INCIDENTS) -> dict[str, Any]:
        return {"type": "reaction_added", "user": user, "reaction": reaction, "item_user": BOB,
                "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": self.fake.next_ts()}

    async def postmortem_upload(self) -> str:
        [upload] = await self.fake.wait_calls("upload")
        return self.fake.uploads[upload.params["file_id"]].decode("utf-8")


