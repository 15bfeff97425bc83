"""`POST /pagerduty/webhook`: PagerDuty's v3 webhooks, signed. An `incident.acknowledged` event for an incident
warroom triggered (its `incident_key` is our dedup key, `INC-7`) acknowledges the warroom incident, which stops
every pending page on every channel.

The signature is checked on the raw body before anything is parsed: `X-PagerDuty-Signature` carries one or more
`v1=<hex HMAC-SHA256 of the body with the subscription's secret>` (several while a secret is rotated); none
matching → 401. Not JSON → 400. Otherwise 200, also for events we do not act on (PagerDuty would retry others).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("warroom.pagerduty")

WEBHOOK_PATH = "/pagerduty/webhook"
SIGNATURE_HEADER = "X-PagerDuty-Signature"


@dataclass(frozen=True)
class PagerAcknowledged:
    incident_key: str  # the dedup key warroom triggered with: INC-7
    by: str  # who acknowledged in PagerDuty (the agent's name)
    event_id: str  # PagerDuty's event id: a redelivery is ignored by it


def sign(body: bytes, secret: str) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    if not header:
        return False
    expected = sign(body, secret)
    return any(hmac.compare_digest(candidate.strip(), expected) for candidate in header.split(","))


def parse_acknowledgement(payload: object) -> PagerAcknowledged | None:
    """The acknowledgement in a v3 webhook payload, or None for any other event."""
    event = payload.get("event") if isinstance(payload, dict) else None
    if not isinstance(event, dict) or event.get("event_type") != "incident.acknowledged":
        return None
    data = found if isinstance(found := event.get("data"), dict) else {}
    key = data.get("incident_key") or ""
    agent = found if isinstance(found := event.get("agent"), dict) else {}
    if not isinstance(key, str) or not key:
        return None
    return PagerAcknowledged(incident_key=key, by=str(agent.get("summary") or "someone in PagerDuty"),
                             event_id=str(event.get("id") or ""))


def pagerduty_routes(*, secret: str, on_ack: Callable[[PagerAcknowledged], Awaitable[object]],
                     path: str = WEBHOOK_PATH) -> list[Route]:
    if not secret:
        raise ValueError("the PagerDuty webhook needs its signing secret (PAGERDUTY_WEBHOOK_SECRET)")

    async def webhook(request: Request) -> Response:
        body = await request.body()
        if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), secret):
            log.warning("pagerduty: webhook signature missing or wrong")
            return JSONResponse({"error": f"bad or missing {SIGNATURE_HEADER}"}, status_code=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        ack = parse_acknowledgement(payload)
        if ack is not None:
            await on_ack(ack)
        return JSONResponse({"ok": True})

    return [Route(path, webhook, methods=["POST"])]
