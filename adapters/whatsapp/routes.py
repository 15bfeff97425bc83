"""`GET|POST /whatsapp/webhook` as Starlette routes, for `adapters.http.build_http_app`.

    app = build_http_app([*slack_routes(...), *whatsapp_routes(verify_token=..., app_secret=...,
                                                                 on_event=briefs.on_whatsapp_event)])

GET is Meta's subscription handshake: `hub.mode=subscribe` and the right `hub.verify_token` → 200 with
`hub.challenge` as text/plain, anything else → 403.

POST is checked against `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app secret) before anything
else: bad or missing → 401 and nothing is parsed or passed on. A body that is not JSON, or not a WhatsApp Business
Account payload → 400. Otherwise `on_event` is awaited for every parsed event, in order, and the answer is 200.

`on_event` should be quick (record, enqueue) and idempotent by message id: if it raises for any event the
answer is 500, and Meta redelivers the whole payload later (the events that did succeed come again). The other
events of the payload are still passed on after one fails.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adapters.whatsapp.webhook import (
    SIGNATURE_HEADER,
    WebhookEvent,
    parse_webhook,
    verify_signature,
)

log = logging.getLogger("warroom.whatsapp")

WEBHOOK_PATH = "/whatsapp/webhook"
MAX_BODY_BYTES = 1024 * 1024  # Meta's payloads are a few KB; refuse anything absurd before hashing it

OnEvent = Callable[[WebhookEvent], Awaitable[None]]


def whatsapp_routes(*, verify_token: str | SecretStr, app_secret: str | SecretStr, on_event: OnEvent,
                    path: str = WEBHOOK_PATH) -> list[Route]:
    """The webhook's GET (handshake) and POST (signed events) routes. Both secrets must be non-empty."""
    token = _secret(verify_token)
    secret = _secret(app_secret)
    if not token:
        raise ValueError("a verify token is required for the WhatsApp webhook (WHATSAPP_VERIFY_TOKEN)")
    if not secret:
        raise ValueError("the app secret is required to check WhatsApp webhook signatures (WHATSAPP_APP_SECRET)")

    async def handshake(request: Request) -> Response:
        params = request.query_params
        given = params.get("hub.verify_token", "")
        if params.get("hub.mode") != "subscribe" or not hmac.compare_digest(given.encode(), token.encode()):
            log.warning("whatsapp: webhook verification refused (mode=%r, token %s)", params.get("hub.mode"),
                        "given" if given else "missing")
            problem = ("hub.mode must be 'subscribe'" if params.get("hub.mode") != "subscribe"
                       else "hub.verify_token is missing" if not given else "hub.verify_token does not match")
            return PlainTextResponse(f"forbidden: {problem}", status_code=403)
        return PlainTextResponse(params.get("hub.challenge", ""))

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return PlainTextResponse(f"payload too large (limit {MAX_BODY_BYTES} bytes)", status_code=413)
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return PlainTextResponse(f"payload too large (limit {MAX_BODY_BYTES} bytes)", status_code=413)
        # Nothing of the body is parsed before its signature is checked on the raw bytes.
        if not verify_signature(secret, raw, request.headers.get(SIGNATURE_HEADER)):
            given = request.headers.get(SIGNATURE_HEADER)
            log.warning("whatsapp: webhook refused, %s signature (%d bytes)", "bad" if given else "missing", len(raw))
            problem = (f"{SIGNATURE_HEADER} header is missing" if not given else
                       f"{SIGNATURE_HEADER} does not match the body (sha256= HMAC-SHA256 with the app secret)")
            return PlainTextResponse(f"invalid signature: {problem}", status_code=401)
        try:
            events = parse_webhook(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as error:  # json.JSONDecodeError is a ValueError
            detail = str(error).splitlines()[0][:200]
            log.warning("whatsapp: webhook payload refused: %s", detail)
            return PlainTextResponse(f"bad payload: {detail}", status_code=400)
        except RecursionError:  # a signed body nested thousands of levels deep: refuse it, do not 500
            log.warning("whatsapp: webhook payload refused: JSON nested too deeply (%d bytes)", len(raw))
            return PlainTextResponse("bad payload: JSON nested too deeply", status_code=400)
        failed = 0
        for event in events:
            try:
                await on_event(event)
            except Exception:
                failed += 1
                log.exception("whatsapp: handling %s %s failed", type(event).__name__, event.message_id)
        if failed:
            return PlainTextResponse(f"{failed} of {len(events)} events failed", status_code=500)
        return PlainTextResponse("ok")

    return [Route(path, handshake, methods=["GET"], name="whatsapp_handshake"),
            Route(path, receive, methods=["POST"], name="whatsapp_webhook")]


def _secret(value: str | SecretStr | None) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return (value or "").strip()
