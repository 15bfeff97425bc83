"""The floor warroom stands on: a bare slack-bolt AsyncApp that acks `/incident` and posts one message, and
acks message events, served the way `warroom serve` serves Bolt (Starlette + uvicorn, POST /slack/events).

    SLACK_BOT_TOKEN=… SLACK_SIGNING_SECRET=… SLACK_API_URL=… python -m bench.bare_bolt PORT
"""

from __future__ import annotations

import logging
import os
import sys

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def build() -> Starlette:
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    app = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"],
                   logger=logging.getLogger("bare.bolt"), name="bare")

    @app.command("/incident")
    async def incident(ack, command, client):
        await ack(response_type="ephemeral", text="Declared.")
        await client.chat_postMessage(channel=command["channel_id"], text=f"Incident: {command.get('text', '')}")

    @app.event("message")
    async def message(event):
        return None

    handler = AsyncSlackRequestHandler(app)

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/health", health, methods=["GET"]),
                             Route("/slack/events", slack_events, methods=["POST"])])


if __name__ == "__main__":
    port = int(sys.argv[1])
    uvicorn.run(build(), host="127.0.0.1", port=port, log_level=os.environ.get("WARROOM_LOG_LEVEL", "info").lower(),
                lifespan="off")
