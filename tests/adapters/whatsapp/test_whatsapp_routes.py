"""`GET|POST /whatsapp/webhook` on the real Starlette app (`build_http_app`), driven over `httpx.ASGITransport`:
the subscription handshake, and signed deliveries reaching `on_event` (unsigned or bad ones never do)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adapters.http import build_http_app
from adapters.whatsapp.routes import whatsapp_routes
from adapters.whatsapp.webhook import parse_webhook
from bot.ports import CustomerMessageReceived, CustomerMessageStatus

APP_SECRET = "c0ffee-app-secret-51d2"
VERIFY_TOKEN = "warroom-verify-8e1b"
PAYLOAD = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
    "field": "messages",
    "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Wanjiru"}, "wa_id": "254700000001"}],
        "messages": [{"from": "254700000001", "id": "wamid.IN1", "timestamp": "1764000000", "type": "text",
                      "text": {"body": "Still broken on my side"}}],
        "statuses": [{"id": "wamid.OUT1", "status": "delivered", "timestamp": "1764000001",
                      "recipient_id": "254700000002"}],
    }}]}]}


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


Recorder = tuple[list[Any], Callable[[Any], Awaitable[None]]]


@pytest.fixture
async def http(recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    _, on_event = recorder
    app = build_http_app(whatsapp_routes(verify_token=SecretStr(VERIFY_TOKEN), app_secret=SecretStr(APP_SECRET),
                                         on_event=on_event))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warroom.test") as client:
        yield client


# -- GET handshake ----------------------------------------------------------------------------------------------


async def test_the_handshake_answers_the_challenge(http: httpx.AsyncClient) -> None:
    response = await http.get("/whatsapp/webhook", params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                                           "hub.challenge": "1158201444"})

    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
    {"hub.mode": "subscribe", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
    {},
])
async def test_the_handshake_with_a_wrong_token_or_mode_is_forbidden(http: httpx.AsyncClient,
                                                                      params: dict[str, str]) -> None:
    response = await http.get("/whatsapp/webhook", params=params)

    assert response.status_code == 403
    assert "1" not in response.text


# -- POST deliveries --------------------------------------------------------------------------------------------


async def test_a_signed_delivery_reaches_on_event(http: httpx.AsyncClient, recorder: Recorder) -> None:
    events, _ = recorder
    body = json.dumps(PAYLOAD).encode()

    response = await http.post("/whatsapp/webhook", content=body, headers=signed(body))

    assert response.status_code == 200
    assert events == parse_webhook(PAYLOAD)
    message, delivered = events
    assert isinstance(message, CustomerMessageReceived) and message.text == "Still broken on my side"
    assert message.phone == "+254700000001" and message.profile_name == "Wanjiru"
    assert isinstance(delivered, CustomerMessageStatus) and delivered.status == "delivered"


async def test_the_exact_bytes_are_verified_whatever_their_formatting(http: httpx.AsyncClient,
                                                                      recorder: Recorder) -> None:
    events, _ = recorder
    body = json.dumps(PAYLOAD, indent=2, ensure_ascii=False).encode("utf-8")  # as Meta may send it

    response = await http.post("/whatsapp/webhook", content=body, headers=signed(body))

    assert response.status_code == 200
    assert len(events) == 2


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json"},                                   # unsigned
    {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + "ab" * 32},  # bad
    signed(json.dumps(PAYLOAD).encode(), secret="another-app-secret"),       # wrong secret
    signed(json.dumps({**PAYLOAD, "tampered": True}).encode()),              # signed for another body
])
async def test_an_unsigned_or_badly_signed_delivery_is_refused_and_not_passed_on(
        http: httpx.AsyncClient, recorder: Recorder, headers: dict[str, str]) -> None:
    events, _ = recorder

    response = await http.post("/whatsapp/webhook", content=json.dumps(PAYLOAD).encode(), headers=headers)

    assert response.status_code == 401
    assert events == []


async def test_bad_json_is_a_bad_request(http: httpx.AsyncClient, recorder: Recorder) -> None:
    events, _ = recorder
    for body in (b"{not json", b"\xff\xfe", json.dumps({"object": "page", "entry": []}).encode()):
        response = await http.post("/whatsapp/webhook", content=body, headers=signed(body))
        assert response.status_code == 400, body
    assert events == []


async def test_a_failing_handler_answers_500_so_meta_redelivers(recorder: Recorder,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Any] = []

    async def on_event(event: Any) -> None:
        seen.append(event)
        if isinstance(event, CustomerMessageReceived):
            raise RuntimeError("database is locked")

    app = build_http_app(whatsapp_routes(verify_token=VERIFY_TOKEN, app_secret=APP_SECRET, on_event=on_event))
    body = json.dumps(PAYLOAD).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warroom.test") as client:
        response = await client.post("/whatsapp/webhook", content=body, headers=signed(body))

    assert response.status_code == 500
    assert len(seen) == 2  # the status after the failing message was still handled
    assert "handling CustomerMessageReceived wamid.IN1 failed" in caplog.text


async def test_the_routes_sit_beside_health_on_the_shared_app(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}
    assert (await http.put("/whatsapp/webhook")).status_code == 405


def test_the_routes_need_both_secrets(recorder: Recorder) -> None:
    _, on_event = recorder
    with pytest.raises(ValueError, match="WHATSAPP_APP_SECRET"):
        whatsapp_routes(verify_token=VERIFY_TOKEN, app_secret="", on_event=on_event)
    with pytest.raises(ValueError, match="WHATSAPP_VERIFY_TOKEN"):
        whatsapp_routes(verify_token=SecretStr(" "), app_secret=APP_SECRET, on_event=on_event)
