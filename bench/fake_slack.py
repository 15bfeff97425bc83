"""A lean fake of Slack's Web API for benchmarks, run as its own process:
`python -m bench.fake_slack PORT [--lose FRACTION] [--users-429]`.

`--lose 0.1`: one `chat.postMessage` in ten is stored but its answer is lost (a 500, or the connection dropped,
alternately); the messages keep their metadata, and conversations.replies / conversations.history return them, so
a sender that looks up before re-sending finds the earlier copy. `--users-429`: users.info and users.list always
answer 429 (Retry-After: 1). `GET /bench/counts` then also reports `duplicates` (outbox keys posted more than once)
and `lost_answers`.

It answers what warroom (and the bare Bolt app) call, and records each `chat.postMessage` as
(monotonic time, wall time, channel, thread_ts, text) so the driver can time deliveries. It records less than
tests/fakes/slack_api.py (no params or blocks kept) so that it stays cheap at hundreds of posts a second.

Control endpoints for the driver (not Slack's):
    GET  /bench/posts?since=N            posts from index N on, and the next index
    GET  /bench/counts                   calls per method
    GET  /bench/wait_posts?count=N&timeout=S        until N posts were received in all
    GET  /bench/wait_declare?title=T&replies=R&timeout=S
                                         until the card whose text contains T and R replies in its thread arrived;
                                         answers their monotonic receive times
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections import Counter, defaultdict
from typing import Any

from aiohttp import web

BOT_USER = "UBOT"
BOT_ID = "BBOT"


class FakeSlack:
    def __init__(self, *, lose: float = 0.0, users_429: bool = False, seed: int = 13) -> None:
        import random

        self.lose = lose
        self.users_429 = users_429
        self._random = random.Random(seed)
        self.lost_answers = 0
        self.keys: Counter[str] = Counter()  # outbox key (message metadata) → times posted
        self.stored: dict[tuple[str, str], list[dict]] = defaultdict(list)  # (channel, thread or "") → messages
        self.posts: list[tuple[float, float, str, str | None, str, str]] = []
        self.counts: Counter[str] = Counter()
        self.cards: dict[str, str] = {}  # card ts → fallback text (the title)
        self.replies: dict[str, list[float]] = defaultdict(list)  # thread ts → receive times
        self.card_times: dict[str, float] = {}
        self.uploads: set[str] = set()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self.port = 0

    def next_ts(self) -> str:
        n = next(self._ts)
        return f"{1710000000 + n // 1000000}.{n % 1000000:06d}"

    # -- plumbing -------------------------------------------------------------------------------------

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.counts[method] += 1
        if self.users_429 and method in ("users.info", "users.list"):
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        body = handler(params) if handler else {"ok": False, "error": "unknown_method"}
        if method == "chat.postMessage" and body.get("ok"):
            async with self._changed:
                self._changed.notify_all()
            if self.lose and self._random.random() < self.lose:  # stored, but the answer is lost
                self.lost_answers += 1
                if self.lost_answers % 2:
                    return web.json_response({"ok": False, "error": "internal_error"}, status=500)
                assert request.transport is not None
                request.transport.close()
                raise asyncio.CancelledError
        return web.json_response(body)

    async def upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        self.uploads.add(request.match_info["file_id"])
        self.counts["upload"] += 1
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # -- Web API methods ------------------------------------------------------------------------------

    def _auth_test(self, params: dict) -> dict:
        return {"ok": True, "url": "https://bench.slack.com/", "team": "bench", "user": "warroom",
                "team_id": "T0WARROOM", "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _users_info(self, params: dict) -> dict:
        user = params.get("user", "")
        name = f"user-{user[-4:].lower()}"
        return {"ok": True, "user": {"id": user, "name": name, "real_name": name,
                                     "profile": {"display_name": name, "real_name": name}}}

    def _chat_postMessage(self, params: dict) -> dict:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        ts, thread = self.next_ts(), params.get("thread_ts") or None
        text = str(params.get("text") or "")
        now = time.monotonic()
        self.posts.append((now, time.time(), channel, thread, text[:200], ts))
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        if isinstance(metadata, dict):
            key = str((metadata.get("event_payload") or {}).get("key"))
            self.keys[key] += 1
            self.stored[(channel, thread or "")].append({"type": "message", "ts": ts, "bot_id": BOT_ID,
                                                         "thread_ts": thread, "metadata": metadata})
        if thread is None:
            self.cards[ts] = text[:200]
            self.card_times[ts] = now
        else:
            self.replies[thread].append(now)
        return {"ok": True, "channel": channel, "ts": ts,
                "message": {"type": "message", "ts": ts, "user": BOT_USER, "bot_id": BOT_ID, "text": text[:200]}}

    def _chat_update(self, params: dict) -> dict:
        return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}

    def _chat_postEphemeral(self, params: dict) -> dict:
        return {"ok": True, "message_ts": self.next_ts()}

    def _conversations_replies(self, params: dict) -> dict:
        messages = self.stored.get((params.get("channel", ""), params.get("ts", "")), [])
        return {"ok": True, "messages": messages[-1000:], "has_more": False,
                "response_metadata": {"next_cursor": ""}}

    def _conversations_history(self, params: dict) -> dict:
        messages = self.stored.get((params.get("channel", ""), ""), [])
        limit = int(params.get("limit") or 100)
        return {"ok": True, "messages": list(reversed(messages[-limit:])), "has_more": False,
                "response_metadata": {"next_cursor": ""}}

    def _conversations_create(self, params: dict) -> dict:
        return {"ok": True, "channel": {"id": f"C{next(self._ids):08d}", "name": params.get("name", "")}}

    def _conversations_invite(self, params: dict) -> dict:
        return {"ok": True, "channel": {"id": params.get("channel")}}

    def _views_open(self, params: dict) -> dict:
        return {"ok": True, "view": {"id": f"V{next(self._ids)}"}}

    def _files_getUploadURLExternal(self, params: dict) -> dict:
        file_id = f"F{next(self._ids):08d}"
        return {"ok": True, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}", "file_id": file_id}

    def _files_completeUploadExternal(self, params: dict) -> dict:
        files = params.get("files") or []
        if isinstance(files, str):
            files = json.loads(files)
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    # -- control --------------------------------------------------------------------------------------

    async def c_posts(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", 0))
        return web.json_response({"posts": self.posts[since:], "next": len(self.posts)})

    async def c_counts(self, request: web.Request) -> web.Response:
        return web.json_response({"counts": dict(self.counts), "posts": len(self.posts),
                                  "duplicates": sum(n - 1 for n in self.keys.values() if n > 1),
                                  "lost_answers": self.lost_answers})

    async def _wait(self, check, timeout: float) -> Any:
        result: list[Any] = []

        def found() -> bool:
            value = check()
            if value is not None:
                result.append(value)
                return True
            return False

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(found), timeout)
            except TimeoutError:
                return None
        return result[-1]

    async def c_wait_posts(self, request: web.Request) -> web.Response:
        count, timeout = int(request.query["count"]), float(request.query.get("timeout", 30))
        value = await self._wait(lambda: len(self.posts) if len(self.posts) >= count else None, timeout)
        return web.json_response({"ok": value is not None, "posts": len(self.posts)})

    async def c_wait_declare(self, request: web.Request) -> web.Response:
        title, replies = request.query["title"], int(request.query.get("replies", 2))
        timeout = float(request.query.get("timeout", 10))

        def check() -> list[float] | None:
            for ts in reversed(list(self.cards)[-50:]):
                if title in self.cards[ts]:
                    times = self.replies.get(ts, [])
                    if len(times) >= replies:
                        return [self.card_times[ts], *times[:replies]]
                    return None
            return None

        value = await self._wait(check, timeout)
        return web.json_response({"ok": value is not None, "times": value or []})


async def serve(port: int, *, lose: float = 0.0, users_429: bool = False) -> None:
    fake = FakeSlack(lose=lose, users_429=users_429)
    fake.port = port
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/api/{method}", fake.api)
    app.router.add_post("/upload/{file_id}", fake.upload)
    app.router.add_get("/bench/posts", fake.c_posts)
    app.router.add_get("/bench/counts", fake.c_counts)
    app.router.add_get("/bench/wait_posts", fake.c_wait_posts)
    app.router.add_get("/bench/wait_declare", fake.c_wait_declare)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    print(f"fake slack on {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        args = sys.argv[1:]
        lose = float(args[args.index("--lose") + 1]) if "--lose" in args else 0.0
        asyncio.run(serve(int(args[0]), lose=lose, users_429="--users-429" in args))
    except KeyboardInterrupt:
        pass
