"""A local fake of PagerDuty's Events API v2: an aiohttp server on 127.0.0.1 (random port) that the real httpx
client posts to. It keeps alerts by (routing key, dedup key) the way PagerDuty does: a `trigger` for an open
alert is deduplicated (no new alert, `notifications` counts it), `acknowledge` and `resolve` move it.

    POST /v2/enqueue  → 202 {"status": "success", "message": "Event processed", "dedup_key": …}
                      → 400 {"status": "invalid event", "message": "Event object is invalid", "errors": [...]}

Programmable failures:

    fake.fail_next(status=429, times=1, retry_after=2)   # rate limited (nothing recorded)
    fake.lose_next_answer()                               # the event is processed, then the connection drops
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.recording import Recording

SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class Alert:
    routing_key: str
    dedup_key: str
    summary: str
    status: str = "triggered"
    notifications: int = 1
    history: list[str] = field(default_factory=lambda: ["trigger"])


class FakePagerDuty(Recording):
    name = "fake PagerDuty Events API"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []  # every request body, answered or not
        self.alerts: dict[tuple[str, str], Alert] = {}
        self._fail: list[tuple[int, float | None]] = []
        self._lose = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> FakePagerDuty:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        self._changed = asyncio.Condition()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/enqueue"

    def fail_next(self, *, status: int, times: int = 1, retry_after: float | None = None) -> None:
        self._fail += [(status, retry_after)] * times

    def lose_next_answer(self, times: int = 1) -> None:
        self._lose += times

    def _recorded(self) -> str:
        return "\n".join(str(e) for e in self.events)

    async def _enqueue(self, http: web.Request) -> web.StreamResponse:
        try:
            body = await http.json()
        except ValueError:
            body = None
        self.events.append(body if isinstance(body, dict) else {"unparsable": True})
        async with self._changed:  # type: ignore[union-attr]
            self._changed.notify_all()
        if self._fail:
            status, retry_after = self._fail.pop(0)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return web.json_response({"status": "throttle event", "message": "Requests for this service are "
                                      "arriving too quickly. Please retry later."} if status == 429 else
                                     {"status": "error", "message": "internal"}, status=status, headers=headers)
        errors = _problems(body)
        if errors:
            return web.json_response({"status": "invalid event", "message": "Event object is invalid",
                                      "errors": errors}, status=400)
        assert isinstance(body, dict)
        self._apply(body)
        if self._lose:
            self._lose -= 1
            assert http.transport is not None
            http.transport.close()  # processed, but the client never hears so
            return web.Response(status=202)
        return web.json_response({"status": "success", "message": "Event processed",
                                  "dedup_key": body["dedup_key"]}, status=202)

    def _apply(self, body: dict[str, Any]) -> None:
        key = (body["routing_key"], body["dedup_key"])
        alert = self.alerts.get(key)
        action = body["event_action"]
        if action == "trigger":
            if alert is None or alert.status == "resolved":
                self.alerts[key] = Alert(body["routing_key"], body["dedup_key"], body["payload"]["summary"])
            else:
                alert.notifications += 1  # deduplicated: the open alert absorbs it
                alert.history.append("trigger")
        elif alert is not None and alert.status != "resolved":
            alert.status = "acknowledged" if action == "acknowledge" else "resolved"
            alert.history.append(action)

    def alert(self, routing_key: str, dedup_key: str) -> Alert | None:
        return self.alerts.get((routing_key, dedup_key))


def _problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["Event object is not JSON"]
    errors = []
    if not isinstance(body.get("routing_key"), str) or not body.get("routing_key"):
        errors.append("'routing_key' is missing or blank")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' must be one of trigger, acknowledge, resolve")
    if action in ("acknowledge", "resolve") and not body.get("dedup_key"):
        errors.append("'dedup_key' is required for acknowledge and resolve")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing")
        else:
            if not payload.get("summary") or len(payload["summary"]) > 1024:
                errors.append("'payload.summary' is missing or longer than 1024 characters")
            if not payload.get("source"):
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' must be one of critical, error, warning, info")
    return errors
