"""WhatsApp as an operators' room: the real service, WhatsAppChat and WhatsAppCloud (httpx) against the fake
Graph API, with signed webhooks from "Meta" into the real routes."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette

from adapters.memory import MemoryChat
from adapters.whatsapp.chat import WhatsAppChat
from adapters.whatsapp.routes import whatsapp_routes
from adapters.whatsapp.webhook import sign
from bot.app.bootstrap import build
from bot.incident.service import Context
from bot.ports import Actor, Room
from tests.support import make_settings

SECRET = "app-secret"
ALICE, BOB, CUSTOMER = "+254700000011", "+254700000012", "+254700000099"


class Phones:
    """Operators' phones talking to warroom through signed webhooks; what they get is in the fake Graph API."""

    def __init__(self, app, http: httpx.AsyncClient, fake, clock) -> None:
        self.app, self.http, self.fake, self.clock = app, http, fake, clock
        self._ids = 0

    async def send(self, phone: str, text: str = "", *, button: str | None = None) -> None:
        self._ids += 1
        message: dict = {"from": phone.lstrip("+"), "id": f"wamid.in{self._ids}",
                         "timestamp": str(int(self.clock.now().timestamp()))}
        if button:
            message |= {"type": "interactive", "interactive": {"type": "button_reply",
                                                                "button_reply": {"id": button, "title": "x"}}}
        else:
            message |= {"type": "text", "text": {"body": text}}
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [
            {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"},
                                            "contacts": [{"profile": {"name": "x"}, "wa_id": phone.lstrip("+")}],
                                            "messages": [message]}}]}]}).encode()
        response = await self.http.post("/whatsapp/webhook", content=body, headers={
            "content-type": "application/json", "X-Hub-Signature-256": sign(SECRET, body)})
        assert response.status_code == 200

    def received(self, phone: str) -> list[dict]:
        return [r.json for r in self.fake.sent_to(phone.lstrip("+"))]

    def texts(self, phone: str) -> list[str]:
        out = []
        for body in self.received(phone):
            if body["type"] == "text":
                out.append(body["text"]["body"])
            elif body["type"] == "interactive":
                out.append(body["interactive"]["body"]["text"])
            elif body["type"] == "template":
                out.append(" | ".join(p["text"] for p in body["template"]["components"][0]["parameters"]))
        return out


@pytest.fixture
async def phones(tmp_path, clock, fake, cloud, database_url):
    slack = MemoryChat("slack")
    settings = make_settings(tmp_path, database_url=database_url, whatsapp_operators=f"alice={ALICE},bob={BOB}")
    whatsapp = WhatsAppChat(cloud, fallback_template="warroom_operator_update")
    app = await build(settings, chat={"whatsapp": whatsapp, "slack": slack}, clock=clock, messenger=cloud)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=whatsapp_routes(
        verify_token="v", app_secret=SECRET, on_event=app.operators.customer_event))), base_url="http://wr")
    team = Phones(app, http, fake, clock)
    team.slack = slack
    yield team
    await http.aclose()
    await app.close()


async def _timeline(app, number=1):
    async with app.service._uow() as uow:
        return await uow.incidents.timeline(number)


async def test_an_operator_declares_from_the_phone_and_gets_the_card_and_checklists(phones):
    await phones.send(ALICE, 'inc declare P1 "Payments callbacks not arriving"')
    [incident] = await phones.app.service.incidents(open_only=True)
    assert incident.key == "INC-1" and incident.reporter == "alice" and incident.platform == "whatsapp"
    received = phones.received(ALICE)
    card = received[0]
    assert card["type"] == "interactive"
    assert card["interactive"]["body"]["text"].startswith("[INC-1] *INC-1 · P1 · Payments callbacks not arriving*")
    assert [b["reply"]["id"] for b in card["interactive"]["action"]["buttons"]] == [
        "warroom:ack:INC-1", "warroom:update:INC-1", "warroom:resolve:INC-1"]
    checklist = phones.texts(ALICE)[1]
    assert checklist.startswith("[INC-1] *First minutes checklist*\n1. ")
    assert "|" not in checklist  # no tables on a phone


async def test_plain_messages_go_to_the_current_incident_and_a_button_acknowledges(phones):
    await phones.send(ALICE, 'incident declare P1 "DB down"')
    await phones.send(ALICE, "primary is refusing connections")
    assert ("alice", "primary is refusing connections") in [(e.author, e.text) for e in await _timeline(phones.app)]
    await phones.send(ALICE, button="warroom:ack:INC-1")
    [incident] = await phones.app.service.incidents(open_only=True)
    assert incident.acknowledged_by == "alice"
    assert any(t.startswith("[INC-1] alice acknowledged INC-1 after") for t in phones.texts(ALICE))


async def test_replies_say_which_incident_and_use_switches_it(phones):
    await phones.send(ALICE, 'inc declare P2 "first"')
    await phones.send(ALICE, 'inc declare P2 "second"')
    await phones.send(ALICE, "note for the second")
    await phones.send(ALICE, "inc use INC-1")
    assert phones.texts(ALICE)[-1].startswith("[INC-1] *INC-1 · P2 · first*")
    await phones.send(ALICE, "note for the first")
    assert "note for the first" in [e.text for e in await _timeline(phones.app, 1)]
    assert "note for the second" in [e.text for e in await _timeline(phones.app, 2)]


async def test_a_customer_cannot_run_commands(phones):
    await phones.send(CUSTOMER, '/incident declare P1 "fake outage"')
    assert await phones.app.service.incidents(open_only=False) == []
    assert phones.received(CUSTOMER) == []


async def test_a_nudge_outside_the_24_hour_window_goes_as_the_template(phones):
    await phones.send(ALICE, 'inc declare P1 "x"')
    await phones.send(ALICE, "inc ack")
    phones.fake.fail_recipient(ALICE.lstrip("+"), code=131047, times=1)  # the window has closed for free text
    phones.clock.advance(minutes=15)
    await phones.app.service.fire_due_reminders()
    template = phones.received(ALICE)[-1]
    assert template["type"] == "template" and template["template"]["name"] == "warroom_operator_update"
    parameters = [p["text"] for p in template["template"]["components"][0]["parameters"]]
    assert parameters[0] == "INC-1" and parameters[1].startswith("INC-1 (P1): no status update for 15 min.")


async def test_the_postmortem_arrives_as_a_document(phones):
    await phones.send(ALICE, 'inc declare P2 "x"')
    await phones.send(ALICE, 'inc resolve "fixed"')
    await phones.send(ALICE, "inc postmortem")
    [upload] = phones.fake.of("media")
    assert upload.files["file"][0].endswith("-inc-1-x.md")
    document = [b for b in phones.received(ALICE) if b["type"] == "document"]
    assert len(document) == 1 and document[0]["document"]["filename"].endswith(".md")


async def test_two_operators_following_one_incident_both_get_updates(phones):
    await phones.send(ALICE, 'inc declare P1 "Checkout down"')
    await phones.send(BOB, "inc follow INC-1")
    assert phones.texts(BOB)[-1].startswith("[INC-1] *INC-1 · P1 · Checkout down*")
    await phones.send(BOB, 'inc status "rolled back the release"')
    assert any("Status update from bob: rolled back the release." in t for t in phones.texts(ALICE))
    assert not any(t.startswith("[INC-1] Status update from bob") for t in phones.texts(BOB))  # no echo copy
    await phones.send(ALICE, "cache warming now")
    assert "[INC-1] 💬 alice (WhatsApp): cache warming now" in phones.texts(BOB)


async def test_a_slack_incident_followed_from_whatsapp_mirrors_updates_both_ways(phones):
    thread_ctx = Context(actor=Actor("U1", "carol"), room=Room("slack", "C0INCIDENTS"))
    await phones.app.service.run_command(thread_ctx, '/incident declare P1 "API 500s"')
    thread = await phones.app.service.room_of(1)
    await phones.send(ALICE, "inc follow INC-1")
    await phones.app.service.run_command(Context(actor=Actor("U1", "carol"), room=thread),
                                         '/incident status "rolling back"')
    assert "[INC-1] Status update from carol: rolling back." in " ".join(phones.texts(ALICE))
    await phones.send(ALICE, 'inc status "rollback done on my side"')
    slack_texts = phones.slack.texts(thread)
    assert any(t.startswith("Status update from alice: rollback done on my side.") for t in slack_texts)
    await phones.send(ALICE, "watching the error rate")
    assert "💬 alice (WhatsApp): watching the error rate" in slack_texts + phones.slack.texts(thread)


async def test_a_late_131047_failure_resends_the_operator_message_as_the_template(phones):
    await phones.send(ALICE, 'inc declare P2 "x"')
    [card] = [b for b in phones.fake.sent_to(ALICE.lstrip("+")) if b.json["type"] == "interactive"][:1]
    wamid = card.response["messages"][0]["id"]
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"},
                                        "statuses": [{
                                            "id": wamid, "status": "failed", "recipient_id": ALICE.lstrip("+"),
                                            "timestamp": str(int(phones.clock.now().timestamp())),
                                            "errors": [{"code": 131047, "title": "Re-engagement message"}],
                                        }]}}]}]}).encode()
    for _ in range(2):  # Meta retries the webhook; one template goes out
        response = await phones.http.post("/whatsapp/webhook", content=body, headers={
            "content-type": "application/json", "X-Hub-Signature-256": sign(SECRET, body)})
        assert response.status_code == 200
    templates = [b for b in phones.received(ALICE) if b["type"] == "template"]
    assert len(templates) == 1 and templates[0]["template"]["name"] == "warroom_operator_update"
    assert templates[0]["template"]["components"][0]["parameters"][0]["text"] == "INC-1"


async def test_a_removed_operator_gets_nothing_more_and_stays_removed(phones, tmp_path, clock, cloud, database_url):
    """A lost phone: once removed it runs no command and receives no update of incidents it followed, also after
    a restart (only numbers listed in WARROOM_WHATSAPP_OPERATORS come back with it)."""
    from bot.app.bootstrap import build as rebuild

    extra = "+254700000013"
    assert await phones.app.operators.add(phone=extra, name="carol")
    await phones.send(ALICE, 'inc declare P1 "Payments down"')
    await phones.send(extra, "inc follow INC-1")
    before = len(phones.received(extra))
    assert await phones.app.operators.remove(extra)
    await phones.send(ALICE, 'inc status "still down"')
    await phones.send(extra, 'inc status "from the lost phone"')
    assert len(phones.received(extra)) == before  # no update, and no reply to its command
    assert "from the lost phone" not in [e.text for e in await _timeline(phones.app)]
    settings = make_settings(tmp_path, database_url=database_url, whatsapp_operators=f"alice={ALICE}")
    restarted = await rebuild(settings, chat={}, clock=clock, messenger=cloud)
    try:
        roster = {o.phone: o for o in await restarted.operators.all()}
        assert extra not in roster  # the CLI's removal lasts
        assert BOB not in roster  # taken out of the list: removed at the next start
        assert roster[ALICE].from_environment
    finally:
        await restarted.close()
