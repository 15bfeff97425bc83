"""One ASGI app for every webhook warroom serves: `GET /health`, and each platform's routes mounted on it.

    app = build_http_app([*slack_routes(inbound.app), *whatsapp_routes(...)])

Platform SDKs are imported inside their `*_routes()` function, so serving /health alone loads none of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

SLACK_EVENTS_PATH = "/slack/events"
# Slack's largest payloads (a modal submission with many blocks) stay well under this; WhatsApp webhooks too.
MAX_BODY_BYTES = 1_000_000


class BodySizeLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 before any handler reads it, whether the
    client declared its length or streams it chunked."""

    def __init__(self, app: Any, *, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._too_large(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._too_large(send)

    async def _too_large(self, send: Any) -> None:
        body = b'{"error": "request body too large (limit %d bytes)"}' % self.limit
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def checked_health(checks: Mapping[str, Callable[[], str | None]]) -> Callable[[Request], Awaitable[Response]]:
    """/health that answers 503 with each failing check's reason (a check returns None when all is well)."""
    async def health_with_checks(request: Request) -> Response:
        problems = {name: problem for name, check in checks.items() if (problem := check()) is not None}
        if problems:
            return JSONResponse({"status": "unhealthy", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ok"})

    return health_with_checks


def build_http_app(routes: Sequence[BaseRoute] = (), *, max_body_bytes: int = MAX_BODY_BYTES,
                   health_checks: Mapping[str, Callable[[], str | None]] | None = None,
                   **starlette_options: Any) -> Starlette:
    """The server's app: /health plus the given routes (Slack, WhatsApp, alert intake…), with a body size
    limit in front of all of them. `health_checks`: name → check (None, or why it is unhealthy: a 503)."""
    from starlette.middleware import Middleware

    middleware = [Middleware(BodySizeLimit, limit=max_body_bytes), *starlette_options.pop("middleware", [])]
    endpoint = checked_health(health_checks) if health_checks else health
    return Starlette(routes=[Route("/health", endpoint, methods=["GET"]), *routes], middleware=middleware,
                     **starlette_options)


def _malformed_slack_body(body: bytes, content_type: str) -> str | None:
    """What is wrong with a body Slack would never send (Bolt assumes well-formed ones), or None.
    Slack sends JSON objects (Events API) or form-encoded fields, `payload` holding a JSON object."""
    import json
    from urllib.parse import parse_qs

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if content_type.split(";")[0].strip().lower() == "application/json" or text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return "body is not valid JSON"
        return _slack_shape_problem(parsed)
    try:
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        return "body is neither JSON nor form-encoded"
    if "payload" in fields:
        try:
            payload = json.loads(fields["payload"][0])
        except ValueError:
            return "payload field is not valid JSON"
        return _slack_shape_problem(payload)
    return None


_SLACK_STRING_FIELDS = ("type", "event_id", "team_id", "api_app_id", "token", "trigger_id", "response_url")
_EVENT_STRING_FIELDS = ("type", "subtype", "channel", "user", "text", "ts", "thread_ts", "event_ts", "bot_id",
                        "reaction", "channel_type")
_OBJECT_FIELDS = ("event", "user", "team", "channel", "container", "message", "view", "item")


def _slack_shape_problem(parsed: object) -> str | None:
    """Slack's payloads have string ids and object containers; anything else is not from Slack."""
    if not isinstance(parsed, dict):
        return "JSON body is not an object"
    for name in _SLACK_STRING_FIELDS:
        if name in parsed and not isinstance(parsed[name], str):
            return f"field '{name}' is not a string"
    for name in _OBJECT_FIELDS:
        if name in parsed and name not in ("user", "channel") and not isinstance(parsed[name], dict):
            return f"field '{name}' is not an object"
        if name in ("user", "channel") and name in parsed and not isinstance(parsed[name], (dict, str)):
            return f"field '{name}' is neither an object nor an id"
    event = parsed.get("event")
    if isinstance(event, dict):
        for name in _EVENT_STRING_FIELDS:
            if name in event and not isinstance(event[name], str):
                return f"field 'event.{name}' is not a string"
        for name in ("message", "previous_message", "item"):
            if name in event and not isinstance(event[name], dict):
                return f"field 'event.{name}' is not an object"
    if "actions" in parsed and not (isinstance(parsed["actions"], list)
                                    and all(isinstance(a, dict) for a in parsed["actions"])):
        return "field 'actions' is not a list of objects"
    return None


def slack_routes(bolt_app: "AsyncApp", *, path: str = SLACK_EVENTS_PATH) -> list[BaseRoute]:
    """`POST /slack/events`: slash commands, Events API and interactivity all go to one Bolt app, which
    verifies the signature (401 on a bad or stale one) before any listener runs."""
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler

    handler = AsyncSlackRequestHandler(bolt_app)

    async def slack_events(request: Request) -> Response:
        problem = _malformed_slack_body(await request.body(), request.headers.get("content-type", ""))
        if problem is not None:
            return JSONResponse({"error": f"malformed Slack request: {problem}"}, status_code=400)
        return await handler.handle(request)

    return [Route(path, slack_events, methods=["POST"])]
