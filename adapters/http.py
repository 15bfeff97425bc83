"""One ASGI app for every webhook warroom serves: `GET /health`, and each platform's routes mounted on it.

    app = build_http_app([*slack_routes(inbound.app), *whatsapp_routes(...)])

Platform SDKs are imported inside their `*_routes()` function, so serving /health alone loads none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

SLACK_EVENTS_PATH = "/slack/events"


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def build_http_app(routes: Sequence[BaseRoute] = (), **starlette_options: Any) -> Starlette:
    """The server's app: /health plus the given routes (Slack, WhatsApp, alert intake…)."""
    return Starlette(routes=[Route("/health", health, methods=["GET"]), *routes], **starlette_options)


def slack_routes(bolt_app: "AsyncApp", *, path: str = SLACK_EVENTS_PATH) -> list[BaseRoute]:
    """`POST /slack/events`: slash commands, Events API and interactivity all go to one Bolt app, which
    verifies the signature (401 on a bad or stale one) before any listener runs."""
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler

    handler = AsyncSlackRequestHandler(bolt_app)

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    return [Route(path, slack_events, methods=["POST"])]
