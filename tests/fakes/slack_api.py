"""A local fake of Slack's Web API: an aiohttp server on 127.0.0.1 (random port) that the real AsyncWebClient
talks to through `base_url`. It answers what warroom calls, records every call (failed attempts included),
and fails the way Slack does:

- `fail(method, status=429|500|200+error, times=N)`: the next N calls of any method (users.info included)
  answer 429 with Retry-After, a 5xx, or `{"ok": false}`, and store nothing;
- `lose_answer(method, how="500"|"drop"|"timeout", times=N)`: the next N calls are carried out (the message is
  stored, the channel created, the file shared) but the answer is lost: a 500, the connection dropped, or no
  answer at all until the client gives up;
- `posted(channel)` / `files` / `channels_created`: what Slack holds, to count duplicates.

    fake = FakeSlackApi(users={"U1": "alice"})
    await fake.start()
    client = AsyncWebClient(token="xoxb-test", base_url=fake.url)
    ...
    [card] = await fake.wait_calls("chat.postMessage", where=lambda c: c.params.get("thread_ts") is None)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.recording import Recording

BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM = "T0WARROOM"
_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200
    at: float = field(default_factory=time.monotonic)
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok", True))

    def text(self) -> str:
        """Everything a person would read in this call (fallback text and every text in the blocks)."""
        return json.dumps({k: self.params.get(k) for k in ("text", "blocks", "view")}, ensure_ascii=False)


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    error: str
    where: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class _LostAnswer:
    how: str  # "500", "drop", "timeout"
    where: Callable[[dict[str, Any]], bool] | None = None


class FakeSlackApi(Recording):
    name = "fake Slack"

    def __init__(self, *, users: dict[str, str] | None = None, page_size: int = 100) -> None:
        self.users = dict(users or {})
        self.page_size = page_size
        self.calls: list[Call] = []
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)  # channel → messages
        self.uploads: dict[str, bytes] = {}
        self.taken_names: set[str] = set()
        self.channel_ids: dict[str, str] = {}  # name → id, for channels addressed by "#name"
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._lost: dict[str, deque[_LostAnswer]] = defaultdict(deque)
        self.files: dict[str, dict[str, Any]] = {}  # file id → the file as files.list shows it, once shared
        self._pending_files: dict[str, dict[str, Any]] = {}
        self.creators: dict[str, str] = {}  # channel id → who created it (conversations.list's `creator`)
        self._hung: asyncio.Event | None = None
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._changed: asyncio.Condition | None = None
        self.sockets: list[web.WebSocketResponse] = []  # Socket Mode connections
        self.port = 0
        self._holds: list[tuple[str, Callable[[dict[str, Any]], bool], asyncio.Event]] = []
        self.waiting = 0  # calls being held right now

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> FakeSlackApi:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{token}", self._respond)
        app.router.add_get("/socket", self._socket)
        self._changed = asyncio.Condition()
        self._hung = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._hung is not None:
            self._hung.set()  # answers held back by lose_answer(how="timeout") finish now
        for ws in list(self.sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The Web API base URL for AsyncWebClient(base_url=...)."""
        return f"{self.root}/api/"

    def response_url(self) -> str:
        return f"{self.root}/respond/{next(self._ids)}"

    # -- test controls -------------------------------------------------------------------------------

    def fail(self, method: str, *, status: int = 429, times: int = 1, retry_after: int | None = 1,
             error: str | None = None, where: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """The next `times` calls of `method` (whose params match `where`) answer `status` (429 with
        `Retry-After: retry_after`), or, with `error`, HTTP 200 and `{"ok": false, "error": error}` as Slack
        does for API-level errors."""
        default = {429: "ratelimited", 200: "unknown_error"}.get(status, "internal_error")
        for _ in range(times):
            self._failures[method].append(_Failure(status, retry_after if status == 429 else None,
                                                   error or default, where))

    def lose_answer(self, method: str, *, how: str = "500", times: int = 1,
                    where: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """The next `times` calls of `method` (matching `where`) do what they ask — the message is stored —
        but the caller never gets the answer: `how="500"` answers 500, `"drop"` closes the connection without
        an answer, `"timeout"` holds the answer until the client's own timeout has passed (until close())."""
        assert how in ("500", "drop", "timeout"), how
        for _ in range(times):
            self._lost[method].append(_LostAnswer(how, where))

    def posted(self, channel: str, *, where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict]:
        """The messages our bot has in `channel` (matching `where`): a duplicate shows up here twice."""
        return [m for m in self.messages.get(self._channel(channel), [])
                if m.get("bot_id") == BOT_ID and (where is None or where(m))]
    def hold(self, method: str, where: Callable[[dict[str, Any]], bool] = lambda params: True) -> None:
        """Calls of `method` matching `where` wait (unanswered, not yet applied) until `release()`: a Slack
        that hangs, or — when the caller dies meanwhile — a write whose answer is lost."""
        self._holds.append((method, where, asyncio.Event()))

    def release(self) -> None:
        for _, _, gate in self._holds:
            gate.set()
        self._holds.clear()

    def add_message(self, channel: str, *, text: str, user: str, ts: str | None = None,
                    thread_ts: str | None = None) -> str:
        """A human message that exists in Slack (so conversations.replies/history can return it)."""
        ts = ts or self.next_ts()
        message = {"type": "message", "ts": ts, "user": user, "text": text}
        if thread_ts:
            message["thread_ts"] = thread_ts
        self.messages[channel].append(message)
        return ts

    def next_ts(self) -> str:
        n = next(self._ts)
        return f"{1700000000 + n}.{n:06d}"

    def of(self, method: str, *, ok_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (c.ok or not ok_only)]

    def _recorded(self) -> str:
        return "\n".join(f"  {c.status} {c.method} {json.dumps(c.params, default=str)[:300]}" for c in self.calls)

    async def wait_calls(self, method: str, *, count: int = 1, where: Callable[[Call], bool] | None = None,
                         timeout: float = 5.0) -> list[Call]:
        """Wait for at least `count` successful calls of `method` (matching `where`); returns them all."""
        def found(fake: FakeSlackApi) -> list[Call] | None:
            calls = [c for c in fake.of(method) if where is None or where(c)]
            return calls if len(calls) >= count else None

        return await self.wait_for(found, timeout=timeout)

    # -- plumbing ------------------------------------------------------------------------------------

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        for name in _JSON_FIELDS:
            value = params.get(name)
            if isinstance(value, str) and value[:1] in "[{":
                params[name] = json.loads(value)
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        for held_method, where, gate in list(self._holds):
            if held_method == method and where(params):
                self.waiting += 1
                await gate.wait()
                self.waiting -= 1
        failures = self._failures.get(method) or deque()
        failure = next((f for f in failures if f.where is None or f.where(params)), None)
        if failure is not None:
            failures.remove(failure)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            body = {"ok": False, "error": failure.error}
            await self._record(Call(method, params, status=failure.status, response=body))
            return web.json_response(body, status=failure.status, headers=headers)
        if not request.headers.get("Authorization", "").startswith("Bearer x"):
            body = {"ok": False, "error": "not_authed"}
        else:
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            body = handler(params) if handler else {"ok": False, "error": "unknown_method"}
        lost_answers = self._lost.get(method) or deque()
        lost = next((f for f in lost_answers if f.where is None or f.where(params)), None)
        if lost is not None:
            lost_answers.remove(lost)
            # Done on Slack's side; the caller learns nothing (recorded with the status it saw, 0 for none).
            await self._record(Call(method, params, status=500 if lost.how == "500" else 0, response=body))
            if lost.how == "500":
                return web.json_response({"ok": False, "error": "internal_error"}, status=500)
            if lost.how == "drop":
                assert request.transport is not None
                request.transport.close()
                raise asyncio.CancelledError  # nothing more is written on this connection
            assert self._hung is not None
            await self._hung.wait()
            return web.json_response(body)
        await self._record(Call(method, params, response=body))
        return web.json_response(body)

    async def _upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        file_id = request.match_info["file_id"]
        self.uploads[file_id] = data
        if file_id in self._pending_files:
            self._pending_files[file_id]["size"] = len(data)
        await self._record(Call("upload", {"file_id": file_id, "bytes": len(data)}))
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def _respond(self, request: web.Request) -> web.Response:
        payload = await request.json()
        await self._record(Call("response_url", payload))
        return web.Response(text="ok", content_type="text/plain")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: Slack says hello, sends envelopes; the app answers each with {"envelope_id", "payload"}."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        await self._record(Call("socket_connect", {}))
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0WARROOM"}})
        try:
            async for frame in ws:
                if frame.type == web.WSMsgType.TEXT:
                    await self._record(Call("socket_ack", json.loads(frame.data)))
        finally:
            self.sockets.remove(ws)
        return ws

    async def socket_send(self, envelope: dict[str, Any]) -> None:
        """Deliver a Socket Mode envelope (events_api, slash_commands, interactive) to the connected app."""
        assert self.sockets, "no Socket Mode connection"
        await self.sockets[-1].send_json(envelope)

    def _channel(self, value: str) -> str:
        if value.startswith("#"):
            return self.channel_ids.setdefault(value[1:], f"C{value[1:].upper().replace('-', '')}")
        return value

    # -- Web API methods -----------------------------------------------------------------------------

    def _auth_test(self, params: dict) -> dict:
        return {"ok": True, "url": "https://warroom-test.slack.com/", "team": "warroom test", "user": "warroom",
                "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _apps_connections_open(self, params: dict) -> dict:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    def _chat_postMessage(self, params: dict) -> dict:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("text") and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        channel, ts = self._channel(params["channel"]), self.next_ts()
        message = {"type": "message", "ts": ts, "user": BOT_USER, "bot_id": BOT_ID, "text": params.get("text", "")}
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        if params.get("metadata"):
            message["metadata"] = params["metadata"]
        self.messages[channel].append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, params: dict) -> dict:
        channel = self._channel(params.get("channel", ""))
        for message in self.messages.get(channel, []):
            if message["ts"] == params.get("ts"):
                message["text"] = params.get("text", "")
                message["edits"] = message.get("edits", 0) + 1
        return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts"), "text": params.get("text")}

    def _chat_postEphemeral(self, params: dict) -> dict:
        if not params.get("user") or not params.get("channel"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self.next_ts()}

    def _conversations_create(self, params: dict) -> dict:
        name = params.get("name", "")
        if not _CHANNEL_NAME.match(name):
            return {"ok": False, "error": "invalid_name_specials"}
        if name in self.taken_names:
            return {"ok": False, "error": "name_taken"}
        self.taken_names.add(name)
        channel_id = f"C{next(self._ids):08d}"
        self.channel_ids[name] = channel_id
        self.creators[channel_id] = BOT_USER
        return {"ok": True, "channel": {"id": channel_id, "name": name, "is_channel": True, "is_private": False,
                                        "creator": BOT_USER}}

    @property
    def channels_created(self) -> dict[str, str]:
        """name → id of the channels our bot created."""
        return {name: cid for name, cid in self.channel_ids.items() if self.creators.get(cid) == BOT_USER}

    def _conversations_list(self, params: dict) -> dict:
        channels = [{"id": cid, "name": name, "is_channel": True, "creator": self.creators.get(cid, "U0SOMEONE")}
                    for name, cid in self.channel_ids.items()]
        start = int(params.get("cursor") or 0)
        size = min(int(params.get("limit") or 100), self.page_size)
        more = start + size < len(channels)
        return {"ok": True, "channels": channels[start:start + size],
                "response_metadata": {"next_cursor": str(start + size) if more else ""}}

    def _files_list(self, params: dict) -> dict:
        channel = params.get("channel")
        files = [f for f in self.files.values() if channel is None or channel in f["channels"]]
        return {"ok": True, "files": sorted(files, key=lambda f: -f["created"])}

    def _conversations_invite(self, params: dict) -> dict:
        return {"ok": True, "channel": {"id": params.get("channel")}}

    def _thread(self, channel: str, ts: str) -> list[dict]:
        messages = self.messages.get(channel, [])
        target = next((m for m in messages if m["ts"] == ts), None)
        if target is None:
            return []
        root = target.get("thread_ts") or target["ts"]
        thread = [m for m in messages if m["ts"] == root or m.get("thread_ts") == root]
        if len(thread) > 1:  # a parent with replies carries thread_ts, as in Slack
            thread = [dict(m, thread_ts=root) for m in thread]
        return sorted(thread, key=lambda m: float(m["ts"]))

    def _page(self, items: list[dict], params: dict) -> dict:
        start = int(params.get("cursor") or 0)
        size = min(int(params.get("limit") or 1000), self.page_size)
        page = items[start:start + size]
        more = start + size < len(items)
        return {"ok": True, "messages": page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + size) if more else ""}}

    def _conversations_replies(self, params: dict) -> dict:
        thread = self._thread(params.get("channel", ""), params.get("ts", ""))
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(thread, params)

    def _conversations_history(self, params: dict) -> dict:
        top = [m for m in self.messages.get(params.get("channel", ""), [])
               if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
        return self._page(sorted(top, key=lambda m: -float(m["ts"])), params)

    def _views_open(self, params: dict) -> dict:
        if not params.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return {"ok": True, "view": {"id": f"V{next(self._ids)}", **(params.get("view") or {})}}

    def _users_info(self, params: dict) -> dict:
        user = params.get("user", "")
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        name = self.users[user]
        return {"ok": True, "user": {"id": user, "name": name.lower().replace(" ", "."), "real_name": name.title(),
                                     "profile": {"display_name": name, "real_name": name.title()}}}

    def _users_list(self, params: dict) -> dict:
        members = [self._users_info({"user": user})["user"] for user in self.users]
        start = int(params.get("cursor") or 0)
        size = min(int(params.get("limit") or 100), self.page_size)
        more = start + size < len(members)
        return {"ok": True, "members": members[start:start + size],
                "response_metadata": {"next_cursor": str(start + size) if more else ""}}

    def _files_getUploadURLExternal(self, params: dict) -> dict:
        if not params.get("filename") or not params.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        self._pending_files[file_id] = {"id": file_id, "name": params["filename"], "size": 0}
        return {"ok": True, "upload_url": f"{self.root}/upload/{file_id}", "file_id": file_id}

    def _files_completeUploadExternal(self, params: dict) -> dict:
        files = params.get("files") or []
        missing = [f["id"] for f in files if f["id"] not in self.uploads]
        if not files or missing:
            return {"ok": False, "error": "file_not_found"}
        channel = params.get("channel_id")
        for f in files:
            shared = dict(self._pending_files.get(f["id"], {"id": f["id"]}), title=f.get("title"),
                          created=int(time.time()), channels=[channel] if channel else [], shares={})
            shared["size"] = len(self.uploads[f["id"]])
            if channel:
                shared["shares"] = {"public": {channel: [{"ts": self.next_ts(), **(
                    {"thread_ts": params["thread_ts"]} if params.get("thread_ts") else {})}]}}
            self.files[f["id"]] = shared
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
