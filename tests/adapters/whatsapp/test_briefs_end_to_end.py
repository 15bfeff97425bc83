"""Briefs end to end: the real service and WhatsAppCloud (httpx) against the fake Graph API, and signed
webhooks from "Meta" into the real routes, all on a SQLite file."""

from __future__ import annotations

import json

import httpx
from starlette.applications import Starlette

from adapters.memory import MemoryChat
from adapters.whatsapp.routes import whatsapp_routes
from adapters.whatsapp.webhook import sign
from bot.app.bootstrap import build
from tests.support import Harness

SECRET, VERIFY = "app-secret", "verify-me"
JANE, JOHN = "+254700000001", "+254700000002"


async def _team(settings, clock, cloud):
    chat = MemoryChat("console")
    app = await build(settings, chat={"console": chat}, clock=clock, messenger=cloud)
    team = Harness(app=app, chat=chat, clock=clock, settings=settings)
    await app.service.briefs.add_contact(tenant="acme", name="Jane", phone=JANE)
    await app.service.briefs.add_contact(tenant="acme", name="John", phone=JOHN)
    return team


def _webhook(value: dict) -> bytes:
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "waba", "changes": [{"field": "messages", "value": {
                           "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"},
                           **value}}]}]}).encode()


async def test_brief_reaches_the_graph_api_and_webhooks_come_back_into_the_thread(settings, clock, fake, cloud):
    team = await _team(settings, clock, cloud)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=whatsapp_routes(
        verify_token=VERIFY, app_secret=SECRET, on_event=team.app.operators.customer_event))), base_url="http://wr")
    await team.ok('declare P1 "Payments down" tenant=acme')
    thread = await team.room(1)
    fake.fail_recipient(JOHN.lstrip("+"), code=131026)  # John's number is not on WhatsApp
    await team.ok("brief acme area=payments eta=30 --send", room=thread)

    [to_jane] = fake.sent_to(JANE.lstrip("+"))
    assert to_jane.json["type"] == "template"
    assert to_jane.json["template"]["name"] == "incident_investigating"
    assert [p["text"] for p in to_jane.json["template"]["components"][0]["parameters"]] == ["payments", "30"]
    assert any(t.startswith(f"Brief to John at acme ({JOHN}) failed: 131026") for t in team.chat.texts(thread))

    wamid = to_jane.response["messages"][0]["id"]
    now = str(int(clock.now().timestamp()))
    delivered = _webhook({"statuses": [{"id": wamid, "status": "delivered", "timestamp": now,
                                        "recipient_id": JANE.lstrip("+")}]})
    reply = _webhook({"contacts": [{"profile": {"name": "Jane"}, "wa_id": JANE.lstrip("+")}],
                      "messages": [{"from": JANE.lstrip("+"), "id": "wamid.in-1", "timestamp": now,
                                    "type": "text", "text": {"body": "thanks, bookings failing since 9"}}]})
    unsigned = await http.post("/whatsapp/webhook", content=reply, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    for body in (delivered, reply, reply):  # Meta retries: the reply is recorded once
        answer = await http.post("/whatsapp/webhook", content=body,
                                 headers={"content-type": "application/json",
                                          "X-Hub-Signature-256": sign(SECRET, body)})
        assert answer.status_code == 200
    replies = [t for t in team.chat.texts(thread) if t.startswith("💬 Customer Jane at acme")]
    assert replies == [f"💬 Customer Jane at acme ({JANE}) replied: thanks, bookings failing since 9"]
    async with team.service._uow() as uow:
        assert {r.phone: r.status for r in await uow.customers.recipients(1)} == {JANE: "delivered", JOHN: "failed"}

    # Jane wrote to us, so the next brief to her is free text inside the 24-hour window.
    await team.ok('status "callbacks replaying"', room=thread)
    await team.ok("brief acme --send", room=thread)
    assert fake.sent_to(JANE.lstrip("+"))[-1].json["type"] == "text"
    markdown = await team.service.export_postmortem(1)
    assert f"brief (investigating) sent to Jane at acme ({JANE}) via template" in markdown
    assert "thanks, bookings failing since 9" in markdown
    await http.aclose()
    await team.app.close()
