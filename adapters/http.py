"""One ASGI app for every webhook warroom serves: `GET /health`, and each platform's routes mounted on it.

    app = build_http_app([*slack_routes(inbound.app), *whatsapp_routes(...)])

Platform SDKs are imported inside their `*_routes()` function, so serving /health alone loads none of them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

log = logging.getLogger("warroom.http")

SLACK_EVENTS_PATH = "/slack/events"
SLACK_MAX_AGE_SECONDS = 300  # Slack's own rule: a request older than five minutes may be a replay
# Slack's largest payloads (a modal submission with many blocks) stay well under this; WhatsApp webhooks too.
MAX_BODY_BYTES = 1_000_000


class BodySizeLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 before any handler reads it, whether the
    client declared its length or streams it chunked."""

    def __init__(self, app: Any, *, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and not declared.strip().isdigit():
            await _send_json(send, 400, b'{"error": "Content-Length is not a number of bytes"}')
            return
        if declared is not None and (len(declared.strip()) > 18 or int(declared) > self.limit):  # 5,000 digits
            await self._too_large(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        from starlette.requests import ClientDisconnect

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._too_large(send)
        except ClientDisconnect:
            # The client went away before its body was complete: nothing to answer and nothing to log loudly
            # (an ERROR traceback per such request would let anyone flood the log).
            log.debug("http: %s %s: client disconnected before sending the whole body", scope.get("method"),
                      scope.get("path"))
            if not started:  # the server drops it; an in-process client (tests) still gets an answer
                await _send_json(send, 400, b'{"error": "client disconnected before sending the whole body"}')

    async def _too_large(self, send: Any) -> None:
        await _send_json(send, 413, b'{"error": "request body too large (limit %d bytes)"}' % self.limit)


async def _send_json(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


# A query parameter whose (decoded) name contains one of these carries a secret: Meta's hub.verify_token,
# access_token, api_key, client_secret, signature, an OAuth code…
_SECRET_PARAM = re.compile(r"token|secret|passw|pwd|key|sig|auth|credential|code|session", re.IGNORECASE)
REDACTED = "[redacted]"


def redact_query_secrets(target: str) -> str:
    """'/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=s3cret&hub.challenge=1'
    → '/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=[redacted]&hub.challenge=1'."""
    from urllib.parse import unquote_plus

    path, mark, query = target.partition("?")
    if not mark:
        return target
    parts = []
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        if equals and value and _SECRET_PARAM.search(unquote_plus(name)):
            value = REDACTED
        parts.append(f"{name}{equals}{value}")
    return f"{path}?{'&'.join(parts)}"


class RedactQuerySecrets(logging.Filter):
    """A logging filter for uvicorn's access log: the request target (its 3rd argument, and any other string
    argument holding a query) loses the values of token-like query parameters before it is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact_query_secrets(a) if isinstance(a, str) and "?" in a else a
                                for a in record.args)
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = redact_query_secrets(record.msg)
        return True


ACCESS_LOGGERS = ("uvicorn.access",)


def redact_access_log(loggers: Sequence[str] = ACCESS_LOGGERS) -> None:
    """Install `RedactQuerySecrets` on uvicorn's access logger (idempotent). Call it once uvicorn's logging is
    configured, i.e. after `uvicorn.Config(...)`: logger filters survive uvicorn's dictConfig anyway."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuerySecrets) for f in logger.filters):
            logger.addFilter(RedactQuerySecrets())


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
        except RecursionError:
            return "JSON body is nested too deeply"
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
        except RecursionError:
            return "payload field is nested too deeply"
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


def slack_signature_problem(signing_secret: str, body: bytes, timestamp: str | None, signature: str | None,
                            *, now: float | None = None) -> str | None:
    """What is wrong with a request's Slack signature, or None when it is Slack's: `X-Slack-Signature` must be
    'v0=' + HMAC-SHA256 of 'v0:{timestamp}:{raw body}' with the signing secret, and the timestamp within five
    minutes. Only the raw bytes are used, so nothing of an unauthenticated body is parsed; a timestamp that is
    not a plain number of seconds (letters, 5,000 digits) is a refusal, never an exception."""
    if not timestamp:
        return "X-Slack-Request-Timestamp header is missing"
    if not signature:
        return "X-Slack-Signature header is missing"
    stamp = timestamp.strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return "X-Slack-Request-Timestamp is not a Unix time in seconds"
    if abs((time.time() if now is None else now) - int(stamp)) > SLACK_MAX_AGE_SECONDS:
        return "X-Slack-Request-Timestamp is more than 5 minutes away from now (replayed or clock skew)"
    expected = "v0=" + hmac.new(signing_secret.encode("utf-8"), b"v0:" + stamp.encode("ascii") + b":" + body,
                                hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8")):
        return "X-Slack-Signature does not match the body (HMAC-SHA256 with the signing secret)"
    return None


def slack_routes(bolt_app: AsyncApp, *, path: str = SLACK_EVENTS_PATH,
                 signing_secret: str | None = None) -> list[BaseRoute]:
    """`POST /slack/events`: slash commands, Events API and interactivity all go to one Bolt app. The signature
    is checked here on the raw bytes (401 saying what was wrong) before the body is parsed or shape-checked,
    and Bolt checks it again before any listener runs. `signing_secret` defaults to the Bolt app's."""
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler

    secret = signing_secret if signing_secret is not None else getattr(bolt_app, "_signing_secret", None)
    if not secret:
        raise ValueError("a signing secret is required to serve Slack over HTTP (SLACK_SIGNING_SECRET)")
    handler = AsyncSlackRequestHandler(bolt_app)

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        refused = slack_signature_problem(secret, body, request.headers.get("x-slack-request-timestamp"),
                                          request.headers.get("x-slack-signature"))
        if refused is not None:
            return JSONResponse({"error": f"Slack request refused: {refused}"}, status_code=401)
        problem = _malformed_slack_body(body, request.headers.get("content-type", ""))
        if problem is not None:
            return JSONResponse({"error": f"malformed Slack request: {problem}"}, status_code=400)
        return await handler.handle(request)

    return [Route(path, slack_events, methods=["POST"])]
