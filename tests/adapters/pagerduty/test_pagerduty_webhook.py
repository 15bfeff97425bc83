"""Signed PagerDuty v3 webhooks through the real HTTP app and httpx: an acknowledgement in PagerDuty acknowledges
the warroom incident and stops its pages; a bad signature changes nothing; a redelivery is ignored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.http import build_http_app
from adapters.memory import MemoryChat
from adapters.pagerduty.events import PagerDutyEvents
from adapters.pagerduty.webhook import pagerduty_routes, sign
from bot.app.bootstrap import Warroom, build
from bot.app.settings import Settings
from bot.incident.service import Context
from bot.ports import Actor, ManualClock, Room
from tests.fakes.pagerduty_api import FakePagerDuty

SECRET = "whsec-test"
KEY = "R0UTINGKEY0000000000000000000001"
PLAN = """\
name: team
description: test plan
ladder: P1-P3
roles: [{name: platform}]
policies:
  - severity: P1
    levels: [{roles: [platform], repeat: 5m}]
"""


def acknowledged(incident_key: str, *, event_id: str = "01DEN0ATSWJY8XSZXA3ZBXJ5KD") -> bytes:
    return json.dumps({"event": {
        "id": event_id, "event_type": "incident.acknowledged", "resource_type": "incident",
        "occurred_at": "2026-11-24T06:03:00.000Z", "agent": {"summary": "Alice Example", "type": "user_reference"},
        "data": {"id": "Q0RIJJZL24RC6W", "type": "incident", "number": 42, "status": "acknowledged",
                 "title": "INC-1 [P1] Payments down", "incident_key": incident_key}}}).encode()


@pytest.fixture
async def world(settings: Settings, clock: ManualClock,
                tmp_path) -> AsyncIterator[tuple[Warroom, FakePagerDuty, httpx.AsyncClient]]:
    (tmp_path / "playbooks" / "oncall").mkdir(parents=True)
    (tmp_path / "playbooks" / "oncall" / "team.yaml").write_text(PLAN)
    settings = settings.model_copy(update={"playbooks": tmp_path / "playbooks", "oncall": "team"})
    fake = await FakePagerDuty().start()
    pager = PagerDutyEvents(url=fake.url)
    app = await build(settings, chat={"console": MemoryChat("console")}, clock=clock, pagers={"pagerduty": pager})

    async def on_ack(ack):
        await app.service.pager_acknowledged(incident_key=ack.incident_key, by=ack.by, delivery_id=ack.event_id)

    http = build_http_app(pagerduty_routes(secret=SECRET, on_ack=on_ack))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=http), base_url="http://warroom.test")
    try:
        await app.oncall.add_person(name="alice", pagerduty=KEY)
        await app.oncall.set_rotation(role="platform", weekday="mon", at="09:00", timezone="UTC", people=["alice"])
        ctx = Context(actor=Actor(id="carol", name="carol"), room=Room("console", "#incidents"))
        await app.service.run_command(ctx, '/incident declare P1 "Payments down"')
        await app.tick()
        yield app, fake, client
    finally:
        await client.aclose()
        await app.close()
        await pager.aclose()
        await fake.close()


async def post(client: httpx.AsyncClient, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"} | ({"X-PagerDuty-Signature": signature} if signature else {})
    return await client.post("/pagerduty/webhook", content=body, headers=headers)


async def test_an_acknowledgement_in_pagerduty_acknowledges_the_incident_and_stops_paging(
        world: tuple[Warroom, FakePagerDuty, httpx.AsyncClient], clock: ManualClock) -> None:
    app, fake, client = world
    body = acknowledged("INC-1")
    response = await post(client, body, f"v1=0000,{sign(body, SECRET)}")  # any of several signatures may match
    assert response.status_code == 200
    [incident] = await app.service.incidents(open_only=True)
    assert incident.acknowledged_by == "Alice Example"
    chat: MemoryChat = app.service._chat["console"]  # type: ignore[assignment]
    assert any("Paging stopped: Alice Example answered for INC-1" in s.current.text for s in chat.of_kind("update"))
    clock.advance(minutes=30)
    await app.tick()
    assert [e["event_action"] for e in fake.events] == ["trigger", "acknowledge"]
    assert (await post(client, body, sign(body, SECRET))).status_code == 200  # redelivered: nothing new
    assert [e["event_action"] for e in fake.events] == ["trigger", "acknowledge"]


@pytest.mark.parametrize("signature", [None, "v1=deadbeef", "sha256=whatever"])
async def test_a_webhook_without_a_good_signature_is_401_and_changes_nothing(
        world: tuple[Warroom, FakePagerDuty, httpx.AsyncClient], signature: str | None) -> None:
    app, _, client = world
    response = await post(client, acknowledged("INC-1"), signature)
    assert response.status_code == 401
    [incident] = await app.service.incidents(open_only=True)
    assert incident.acknowledged_by is None


async def test_other_events_and_foreign_incidents_are_accepted_and_ignored(
        world: tuple[Warroom, FakePagerDuty, httpx.AsyncClient]) -> None:
    app, _, client = world
    other = json.dumps({"event": {"id": "x", "event_type": "incident.triggered",
                                  "data": {"incident_key": "INC-1"}}}).encode()
    assert (await post(client, other, sign(other, SECRET))).status_code == 200
    foreign = acknowledged("srv-7f3a")
    assert (await post(client, foreign, sign(foreign, SECRET))).status_code == 200
    assert (await post(client, b"{not json", sign(b"{not json", SECRET))).status_code == 400
    [incident] = await app.service.incidents(open_only=True)
    assert incident.acknowledged_by is None
