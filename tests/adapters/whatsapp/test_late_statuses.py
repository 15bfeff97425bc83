"""WhatsApp statuses as Meta really sends them: a 131047 `failed` minutes after the free text was accepted, out of
order, replayed, and even before the send's answer came back. The real service and WhatsAppCloud against the fake
Graph API, whose status webhooks come back signed through the real routes (issue 13, must-hold 4)."""

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


async def _team(settings, clock, cloud, fake):
    chat = MemoryChat("console")
    app = await build(settings, chat={"console": chat}, clock=clock, messenger=cloud)
    team = Harness(app=app, chat=chat, clock=clock, settings=settings)
    await app.service.briefs.add_contact(tenant="acme", name="Jane", phone=JANE)
    await app.service.briefs.add_contact(tenant="acme", name="John", phone=JOHN)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=whatsapp_routes(
        verify_token=VERIFY, app_secret=SECRET, on_event=app.operators.customer_event))), base_url="http://wr")
    fake.webhook_to(http, app_secret=SECRET)
    fake.now = lambda: clock.now().timestamp()
    return team, http


async def _customer_writes(http, clock, phone: str, message_id: str) -> None:
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"},
                                       "contacts": [{"profile": {"name": "Jane"}, "wa_id": phone.lstrip("+")}],
                                       "messages": [{"from": phone.lstrip("+"), "id": message_id,
                                                     "timestamp": str(int(clock.now().timestamp())),
                                                     "type": "text", "text": {"body": "any news?"}}]}}]}]}).encode()
    answer = await http.post("/whatsapp/webhook", content=body, headers={
        "content-type": "application/json", "X-Hub-Signature-256": sign(SECRET, body)})
    assert answer.status_code == 200


def _types(fake, phone: str) -> list[str]:
    return [r.json["type"] for r in fake.sent_to(phone.lstrip("+"))]


async def test_a_late_131047_resends_that_one_recipient_as_the_template_once_and_closes_their_window(
        settings, clock, fake, cloud):
    team, http = await _team(settings, clock, cloud, fake)
    await _customer_writes(http, clock, JANE, "wamid.in-1")  # Jane is inside the 24-hour window: free text
    await team.ok('declare P1 "Payments down" tenant=acme')
    thread = await team.room(1)
    fake.fail_late(JANE, code=131047)  # Meta accepts the free text, then reports it failed
    await team.ok("brief acme area=payments --send", room=thread)
    assert _types(fake, JANE) == ["text"] and _types(fake, JOHN) == ["template"]
    [text_to_jane] = fake.sent_to(JANE.lstrip("+"))
    fake.report(text_to_jane.response["messages"][0]["id"], "sent")  # its 'sent' comes after the 'failed'

    clock.advance(minutes=3)
    answers = await fake.post_statuses(repeat=3)  # late, out of order, and Meta redelivers each
    assert set(answers) == {200}
    await team.service.tick()

    # Jane alone gets the approved template, once; John (already briefed) is not messaged again.
    assert _types(fake, JANE) == ["text", "template"]
    assert _types(fake, JOHN) == ["template"]
    template = fake.sent_to(JANE.lstrip("+"))[-1].json["template"]
    assert template["name"] == "incident_investigating"
    async with team.service._uow() as uow:
        jane = {r.phone: r for r in await uow.customers.recipients(1)}[JANE]
        assert (jane.status, jane.via) == ("sent", "template")
        [contact] = await uow.customers.contacts_by_phone(JANE)
    assert not contact.in_free_text_window(clock.now())
    texts = team.chat.texts(thread)
    assert any("re-sent to them alone as the approved template" in t for t in texts)
    assert not any("/incident brief" in t for t in texts), texts  # no hint that would brief the whole tenant

    # The window is recorded as closed: the next brief to Jane goes straight to the template …
    await team.ok('status "callbacks replaying"', room=thread)
    await team.ok("brief acme --send", room=thread)
    assert _types(fake, JANE) == ["text", "template", "template"]
    # … until she writes again, which reopens it.
    clock.advance(minutes=1)
    await _customer_writes(http, clock, JANE, "wamid.in-2")
    await team.ok("brief acme --send", room=thread)
    assert _types(fake, JANE)[-1] == "text"
    await http.aclose()
    await team.app.close()


async def test_a_failed_status_that_overtakes_the_sends_answer_is_applied_when_the_send_is_recorded(
        settings, clock, fake, cloud):
    team, http = await _team(settings, clock, cloud, fake)
    await _customer_writes(http, clock, JANE, "wamid.in-1")
    await team.ok('declare P1 "Payments down" tenant=acme')
    thread = await team.room(1)
    fake.fail_late(JANE, code=131047, before_answer=True)  # the webhook reaches us before the wamid does
    await team.ok("brief acme area=payments --send", room=thread)
    await team.service.tick()
    assert fake.posted_statuses and fake.posted_statuses[0]["status"] == "failed"
    assert _types(fake, JANE) == ["text", "template"]
    # Meta redelivers the failure later: nothing more is sent.
    fake.queued_statuses.append(fake.posted_statuses[0])
    assert await fake.post_statuses(repeat=2) == [200, 200]
    await team.service.tick()
    assert _types(fake, JANE) == ["text", "template"]
    async with team.service._uow() as uow:
        jane = {r.phone: r for r in await uow.customers.recipients(1)}[JANE]
        assert (jane.status, jane.via) == ("sent", "template")
        assert await uow.customers.take_early_statuses() == []  # nothing left waiting
    await http.aclose()
    await team.app.close()
