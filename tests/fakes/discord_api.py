"""A local fake of Discord's REST API (aiohttp, 127.0.0.1, a random port) for running real discord.py code.

Point discord.py at it with `discord.http.Route.BASE = fake.base_url` (or `DISCORD_API_URL`). It records every
request (`fake.calls`: method, path, JSON body, multipart files) and answers the calls the warroom adapter
makes, with payloads shaped like Discord's:

    GET  /users/@me, /oauth2/applications/@me, /users/{id}, /guilds/{g}/members/{u}, /channels/{id}
    POST /channels/{id}/messages (JSON or multipart with files)      PATCH/DELETE /channels/{id}/messages/{m}
    GET  /channels/{id}/messages (history, newest first)
    POST /channels/{id}/messages/{m}/threads (a public thread; its id is the message's, like Discord's)
    POST /interactions/{id}/{token}/callback                          PUT /applications/{app}[/guilds/{g}]/commands
    POST /webhooks/{app}/{token} (follow-ups)      GET/PATCH/DELETE /webhooks/{app}/{token}/messages/{m}

`fake.fail_next(n, status=429, retry_after=…)` makes the next n matching calls fail: 429 carries the `Via`
header discord.py needs before it waits and retries (`via=False` imitates a Cloudflare limit), 5xx and 4xx
carry Discord's JSON error body. `fake.lose_answer_next(n, how="drop" | "500")` does the call (the message is
stored) and then loses the answer: the connection is dropped, or a 500 comes back.

Like Discord, a create with `enforce_nonce` and a nonce the bot used within `nonce_window` seconds (by the
injectable `clock`) returns the earlier message instead of a new one; the nonce is in the create answer but
not in what `GET /channels/{id}/messages` returns (Discord does not store it). The fake also builds gateway
payloads (users, members, GUILD_CREATE) for tests to feed into `client._connection.parsers[...]`.

Content-Type is exactly `application/json`: with `; charset=utf-8` discord.py reads the body as text.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

API_PREFIX = "/api/v10"
FIRST_ID = 1_310_000_000_000_000_000  # snowflakes of late 2024: 19 digits, like real ones


@dataclass
class Call:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any = None
    files: list[tuple[str, bytes]] = field(default_factory=list)
    status: int = 200

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} → {self.status}>"


@dataclass
class Fault:
    remaining: int
    status: int
    retry_after: float
    via: bool
    code: int
    method: str | None
    path: re.Pattern[str] | None
    lose_answer: str | None = None  # "drop" | "500": the call is done, then its answer is lost

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or bool(self.path.search(path)))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode("utf-8"),
                        headers={"Content-Type": "application/json", **(headers or {})})


class FakeDiscord:
    """One bot in one guild with one #incidents channel (more channels with `add_channel`)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, nonce_window: float = 300.0) -> None:
        self.clock = clock
        self.nonce_window = nonce_window
        self._nonces: dict[tuple[str, str], tuple[str, float]] = {}  # (author, nonce) → (message id, when)
        self._ids = itertools.count(FIRST_ID)
        self.app_id = self.next_id()
        self.bot_id = self.app_id  # Discord: a bot user's id is its application's id
        self.guild_id = self.next_id()
        self.owner = self.user("owner", name="Olive Owner")
        self.bot_user = {"id": self.bot_id, "username": "warroom", "discriminator": "0", "global_name": None,
                         "avatar": None, "bot": True, "flags": 0, "public_flags": 0, "verified": True,
                         "mfa_enabled": False}
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {self.bot_id: self.bot_user, self.owner["id"]: self.owner}
        self.members: dict[str, dict[str, Any]] = {}
        self.commands: list[dict[str, Any]] = []
        self._token_channels: dict[str, str] = {}
        self.calls: list[Call] = []
        self.incidents_channel = self.add_channel("incidents")
        self._faults: list[Fault] = []
        self._query: dict[str, str] = {}
        self.deduplicated = 0  # creates answered with the earlier message (same nonce within the window)
        # The gateway: HELLO, then READY after IDENTIFY, or a close with `gateway_close` (4004, 4014, …).
        self.gateway_url = ""
        self.gateway_close: int | None = None
        self.identified: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}{API_PREFIX}"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- test controls -------------------------------------------------------------------------------

    def next_id(self) -> str:
        return str(next(self._ids))

    def fail_next(self, times: int = 1, *, status: int = 429, retry_after: float = 0.05, via: bool = True,
                  code: int = 0, method: str | None = None, path: str | None = None) -> None:
        """The next `times` calls matching `method` / the `path` regex answer `status` instead."""
        self._faults.append(Fault(times, status, retry_after, via, code, method,
                                  re.compile(path) if path else None))

    def lose_answer_next(self, times: int = 1, *, how: str = "drop", method: str | None = None,
                         path: str | None = None) -> None:
        """The next `times` matching calls take effect (a message is stored), then the answer is lost: the
        connection dropped (`how="drop"`) or a 500 instead of the result (`how="500"`)."""
        assert how in ("drop", "500"), how
        self._faults.append(Fault(times, 500, 0.0, False, 0, method, re.compile(path) if path else None,
                                  lose_answer=how))

    def requests(self, method: str | None = None, path: str | None = None) -> list[Call]:
        """Recorded calls, filtered by method and a regex on the path (successful and failed ones)."""
        pattern = re.compile(path) if path else None
        return [c for c in self.calls if (method is None or c.method == method)
                and (pattern is None or pattern.search(c.path))]

    async def wait_for(self, predicate: Callable[[Call], bool], *, timeout: float = 5.0) -> Call:
        """The first recorded call satisfying `predicate`, waiting for it if need be."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: any(predicate(c) for c in self.calls)), timeout)
        return next(c for c in self.calls if predicate(c))

    def sent_to(self, channel_id: str) -> list[dict[str, Any]]:
        """Messages the bot created in a channel or thread, oldest first (current state, edits applied)."""
        return [m for m in self.messages.values() if m["channel_id"] == channel_id and m["author"]["id"] == self.bot_id]

    # -- Discord-shaped objects (also for gateway payloads) -------------------------------------------

    def user(self, username: str, *, name: str | None = None, bot: bool = False) -> dict[str, Any]:
        user = {"id": self.next_id(), "username": username, "discriminator": "0", "global_name": name,
                "avatar": None, "bot": bot, "public_flags": 0}
        return user

    def member(self, user: dict[str, Any], *, nick: str | None = None, with_user: bool = True) -> dict[str, Any]:
        self.users[user["id"]] = user
        member = {"nick": nick, "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False,
                  "mute": False, "flags": 0, "pending": False, "avatar": None, "premium_since": None,
                  "communication_disabled_until": None, "permissions": "2251799813685247"}
        stored = {**member, "user": user}
        self.members[user["id"]] = stored
        return stored if with_user else member

    def add_channel(self, name: str) -> dict[str, Any]:
        channel = {"id": self.next_id(), "type": 0, "guild_id": self.guild_id, "name": name, "position": len(
            self.channels), "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None,
            "last_message_id": None, "rate_limit_per_user": 0, "flags": 0}
        self.channels[channel["id"]] = channel
        return channel

    def guild_create(self) -> dict[str, Any]:
        """GUILD_CREATE for the guild: its text channels and active threads."""
        everyone = {"id": self.guild_id, "name": "@everyone", "permissions": "2251799813685247", "position": 0,
                    "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}
        channels = [c for c in self.channels.values() if c["type"] != 11]
        threads = [c for c in self.channels.values() if c["type"] == 11]
        return {"id": self.guild_id, "name": "Acme", "icon": None, "owner_id": self.owner["id"], "unavailable": False,
                "member_count": 3, "large": False, "joined_at": "2024-01-01T00:00:00+00:00", "features": [],
                "roles": [everyone], "emojis": [], "stickers": [], "channels": channels, "threads": threads,
                "members": [], "voice_states": [], "presences": [], "stage_instances": [],
                "guild_scheduled_events": [], "soundboard_sounds": [], "verification_level": 0,
                "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0,
                "premium_tier": 0, "preferred_locale": "en-US", "nsfw_level": 0, "system_channel_flags": 0,
                "afk_timeout": 300, "application_id": None, "premium_progress_bar_enabled": False}

    def _application(self) -> dict[str, Any]:
        return {"id": self.app_id, "name": "warroom", "icon": None, "description": "incident bot",
                "rpc_origins": [], "bot_public": False, "bot_require_code_grant": False, "bot": self.bot_user,
                "owner": self.owner, "summary": "", "verify_key": "00" * 32, "team": None, "flags": 1 << 19,
                "interactions_endpoint_url": None, "tags": [], "guild_id": None}

    def _new_message(self, channel_id: str, body: dict[str, Any], files: list[tuple[str, bytes]]) -> dict[str, Any]:
        message_id = self.next_id()
        channel = self.channels.get(channel_id, {})
        attachments = [{"id": self.next_id(), "filename": name, "size": len(content),
                        "url": f"https://cdn.example/{message_id}/{name}",
                        "proxy_url": f"https://media.example/{message_id}/{name}", "content_type": "text/markdown"}
                       for name, content in files]
        message = {"id": message_id, "channel_id": channel_id, "type": 0, "content": body.get("content") or "",
                   "author": self.bot_user, "embeds": body.get("embeds") or [],
                   "components": body.get("components") or [], "attachments": attachments, "timestamp": _now(),
                   "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
                   "mention_roles": [], "pinned": False, "flags": body.get("flags") or 0,
                   "allowed_mentions": body.get("allowed_mentions")}
        if channel.get("guild_id"):
            message["guild_id"] = channel["guild_id"]
        self.messages[message_id] = message
        return message

    # -- the gateway (WebSocket) ----------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        """Enough of Discord's gateway for a client to connect: HELLO, IDENTIFY → READY (or a fatal close),
        heartbeats acknowledged. Frames are text JSON (discord.py decompresses only binary ones)."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 45000}, "s": None, "t": None}))
        async for frame in ws:
            data = json.loads(frame.data)
            if data.get("op") == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif data.get("op") == 2:
                self.identified.append(data["d"])
                if self.gateway_close is not None:
                    await ws.close(code=self.gateway_close, message=b"closed by the fake")
                    break
                ready = {"v": 10, "user": self.bot_user, "guilds": [], "session_id": "fake-session",
                         "resume_gateway_url": self.gateway_url, "shard": [0, 1],
                         "application": {"id": self.app_id, "flags": 0}}
                await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": 1, "d": ready}))
        return ws

    # -- the HTTP side -------------------------------------------------------------------------------

    async def _read(self, request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
        if not request.body_exists:
            return None, []
        if request.content_type.startswith("multipart/"):
            body: Any = None
            files: list[tuple[str, bytes]] = []
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()  # type: ignore[union-attr]
                if part.name == "payload_json":  # type: ignore[union-attr]
                    body = json.loads(data)
                else:
                    files.append((part.filename or part.name or "file", bytes(data)))  # type: ignore[union-attr]
            return body, files
        raw = await request.read()
        return (json.loads(raw) if raw else None), []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix(API_PREFIX)
        body, files = await self._read(request)
        self._query = dict(request.query)  # for the route handler below (no await in between)
        call = Call(request.method, path, dict(request.query), body, files)
        try:
            fault = next((f for f in self._faults if f.remaining > 0 and f.matches(request.method, path)), None)
            if fault is not None and fault.lose_answer is not None:
                fault.remaining -= 1
                self._route(request.method, path, body or {}, files)  # done, and then the answer is lost
                call.status = 500
                if fault.lose_answer == "drop":
                    assert request.transport is not None
                    request.transport.close()
                return _json({"message": "Internal Server Error", "code": 0}, 500)
            if fault is not None:
                fault.remaining -= 1
                response = self._fault(fault)
            else:
                response = self._route(request.method, path, body or {}, files)
            call.status = response.status
            return response
        finally:
            async with self._changed:
                self.calls.append(call)
                self._changed.notify_all()

    def _fault(self, fault: Fault) -> web.Response:
        if fault.status == 429:
            headers = {"Retry-After": str(max(1, round(fault.retry_after))), "X-RateLimit-Scope": "user"}
            if fault.via:
                headers["Via"] = "1.1 google"
            return _json({"message": "You are being rate limited.", "retry_after": fault.retry_after,
                          "global": False}, 429, headers)
        messages = {403: "Missing Permissions", 404: "Unknown Channel", 400: "Invalid Form Body"}
        return _json({"message": messages.get(fault.status, "Internal Server Error"), "code": fault.code},
                     fault.status)

    def _route(self, method: str, path: str, body: dict[str, Any], files: list[tuple[str, bytes]]) -> web.Response:
        for route_method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match and method == route_method:
                return handler(body, files, *match.groups())
        return _json({"message": "404: Not Found", "code": 0}, 404)

    def _routes(self) -> list[tuple[str, str, Callable[..., web.Response]]]:
        return [
            ("GET", r"/users/@me", lambda b, f: _json(self.bot_user)),
            ("GET", r"/oauth2/applications/@me", lambda b, f: _json(self._application())),
            ("GET", r"/users/(\d+)", self._get_user),
            ("GET", r"/guilds/(\d+)/members/(\d+)", self._get_member),
            ("GET", r"/channels/(\d+)", self._get_channel),
            ("POST", r"/channels/(\d+)/messages", self._create_message),
            ("GET", r"/channels/(\d+)/messages", self._history),
            ("PATCH", r"/channels/(\d+)/messages/(\d+)", self._edit_message),
            ("DELETE", r"/channels/(\d+)/messages/(\d+)", self._delete_message),
            ("POST", r"/channels/(\d+)/messages/(\d+)/threads", self._start_thread),
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._interaction_callback),
            ("POST", r"/webhooks/(\d+)/([^/]+)", self._followup),
            ("GET", r"/webhooks/(\d+)/([^/]+)/messages/([^/]+)", self._get_followup),
            ("PATCH", r"/webhooks/(\d+)/([^/]+)/messages/([^/]+)", self._edit_followup),
            ("DELETE", r"/webhooks/(\d+)/([^/]+)/messages/([^/]+)", lambda b, f, *_: web.Response(status=204)),
            ("PUT", r"/applications/(\d+)/guilds/(\d+)/commands", self._sync_commands),
            ("PUT", r"/applications/(\d+)/commands", self._sync_commands),
        ]

    def _get_user(self, body: Any, files: Any, user_id: str) -> web.Response:
        user = self.users.get(user_id)
        return _json(user) if user else _json({"message": "Unknown User", "code": 10013}, 404)

    def _get_member(self, body: Any, files: Any, guild_id: str, user_id: str) -> web.Response:
        member = self.members.get(user_id)
        return _json(member) if member else _json({"message": "Unknown Member", "code": 10007}, 404)

    def _get_channel(self, body: Any, files: Any, channel_id: str) -> web.Response:
        channel = self.channels.get(channel_id)
        return _json(channel) if channel else _json({"message": "Unknown Channel", "code": 10003}, 404)

    def _create_message(self, body: dict[str, Any], files: list[tuple[str, bytes]], channel_id: str) -> web.Response:
        if channel_id not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            seen = self._nonces.get((self.bot_id, str(nonce)))
            if seen is not None and self.clock() - seen[1] < self.nonce_window and seen[0] in self.messages:
                self.deduplicated += 1
                return _json({**self.messages[seen[0]], "nonce": nonce})  # Discord: the earlier message
        message = self._new_message(channel_id, body, files)
        if nonce is not None:
            self._nonces[(self.bot_id, str(nonce))] = (message["id"], self.clock())
        return _json({**message, "nonce": nonce})

    def _history(self, body: Any, files: Any, channel_id: str) -> web.Response:
        """GET /channels/{id}/messages?limit=&before=&after=: newest first, without nonces (not stored)."""
        if channel_id not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        query = self._query
        found = sorted((m for m in self.messages.values() if m["channel_id"] == channel_id),
                       key=lambda m: int(m["id"]), reverse=True)
        if query.get("before"):
            found = [m for m in found if int(m["id"]) < int(query["before"])]
        if query.get("after"):
            found = [m for m in found if int(m["id"]) > int(query["after"])]
        return _json(found[:int(query.get("limit") or 50)])

    def _edit_message(self, body: dict[str, Any], files: Any, channel_id: str, message_id: str) -> web.Response:
        message = self.messages.get(message_id)
        if message is None or message["channel_id"] != channel_id:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        message["edited_timestamp"] = _now()
        return _json(message)

    def _delete_message(self, body: Any, files: Any, channel_id: str, message_id: str) -> web.Response:
        self.messages.pop(message_id, None)
        return web.Response(status=204)

    def _start_thread(self, body: dict[str, Any], files: Any, channel_id: str, message_id: str) -> web.Response:
        if message_id not in self.messages:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        if message_id in self.channels:
            return _json({"message": "A thread has already been created for this message", "code": 160004}, 400)
        thread = {"id": message_id, "guild_id": self.guild_id, "parent_id": channel_id, "type": 11,
                  "name": body.get("name", ""), "owner_id": self.bot_id, "last_message_id": None,
                  "rate_limit_per_user": body.get("rate_limit_per_user") or 0, "message_count": 0,
                  "member_count": 1, "total_message_sent": 0, "flags": 0,
                  "thread_metadata": {"archived": False, "locked": False, "archive_timestamp": _now(),
                                      "auto_archive_duration": body.get("auto_archive_duration", 1440)}}
        self.channels[message_id] = thread
        return _json(thread, 201)

    def _interaction_callback(self, body: dict[str, Any], files: Any, interaction_id: str,
                              token: str) -> web.Response:
        kind = body.get("type")
        flags = (body.get("data") or {}).get("flags") or 0
        return _json({"interaction": {"id": interaction_id, "type": 2, "response_message_id": None,
                                      "response_message_loading": kind == 5,
                                      "response_message_ephemeral": bool(flags & 64)},
                      "resource": {"type": kind}})

    def _followup(self, body: dict[str, Any], files: list[tuple[str, bytes]], app_id: str, token: str) -> web.Response:
        message = self._new_message(self._token_channel(token), body, files)
        message["webhook_id"] = app_id
        return _json(message)

    def _token_channel(self, token: str) -> str:
        """Follow-ups live with the interaction; the fake files them under a pseudo channel per token."""
        return self._token_channels.setdefault(token, self.next_id())

    def _get_followup(self, body: Any, files: Any, app_id: str, token: str, message_id: str) -> web.Response:
        message = self.messages.get(message_id) or self._new_message(self._token_channel(token), {}, [])
        return _json(message)

    def _edit_followup(self, body: dict[str, Any], files: Any, app_id: str, token: str,
                       message_id: str) -> web.Response:
        message = self.messages.get(message_id) or self._new_message(self._token_channel(token), {}, [])
        message.update({k: v for k, v in body.items() if k in ("content", "embeds", "components")})
        return _json(message)

    def _sync_commands(self, body: list[dict[str, Any]], files: Any, app_id: str, *guild: str) -> web.Response:
        self.commands = [{**command, "id": self.next_id(), "application_id": app_id, "version": self.next_id(),
                          "default_member_permissions": command.get("default_member_permissions"),
                          **({"guild_id": guild[0]} if guild else {})} for command in body or []]
        return _json(self.commands)

    # -- what the bot answered to an interaction ---------------------------------------------------------

    def answers(self, token: str) -> list[dict[str, Any]]:
        """Bodies of the callback and follow-ups sent for the interaction with this token, in order."""
        out = []
        for call in self.calls:
            if call.status >= 300:
                continue
            if re.fullmatch(rf"/interactions/\d+/{re.escape(token)}/callback", call.path) or \
                    re.fullmatch(rf"/webhooks/\d+/{re.escape(token)}(/messages/[^/]+)?", call.path):
                out.append({"path": call.path, "method": call.method, **(call.json or {})})
        return out
