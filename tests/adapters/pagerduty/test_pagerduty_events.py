"""The PagerDuty pager with the real httpx client against a local fake of the Events API v2: the event shape,
a bad payload is permanent, a 429 says when to come back, a lost answer is retried without a second alert — and
the whole path from declare through the outbox to an acknowledged and a resolved PagerDuty alert."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.memory import MemoryChat
from adapters.pagerduty.events import PagerDutyEvents
from bot.app.bootstrap import build
from bot.app.settings import Settings
from bot.incident.service import Context
from bot.ports import Actor, DeliveryError, ManualClock, PageRequest, Room
from tests.fakes.pagerduty_api import FakePagerDuty

KEY = "R0UTINGKEY0000000000000000000001"


@pytest.fixture
async def fake() -> AsyncIterator[FakePagerDuty]:
    server = await FakePagerDuty().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def pager(fake: FakePagerDuty) -> AsyncIterator[PagerDutyEvents]:
    client = PagerDutyEvents(url=fake.url, timeout=5)
    try:
        yield client
    finally:
        await client.aclose()


def trigger(**change: str) -> PageRequest:
    values = dict(action="trigger", incident_key="INC-7", address=KEY, summary="INC-7 [P1] Payments down",
                  severity="critical", person="alice") | change
    return PageRequest(**values)  # type: ignore[arg-type]


async def test_trigger_sends_the_incident_key_as_dedup_key(fake: FakePagerDuty, pager: PagerDutyEvents) -> None:
    assert await pager.page(request=trigger()) == "INC-7"
    [event] = fake.events
    assert event == {"routing_key": KEY, "event_action": "trigger", "dedup_key": "INC-7",
                     "payload": {"summary": "INC-7 [P1] Payments down", "source": "warroom", "severity": "critical"}}
    assert await pager.page(request=trigger(action="acknowledge")) == "INC-7"
    assert "payload" not in fake.events[-1]
    assert fake.alert(KEY, "INC-7").status == "acknowledged"


async def test_a_bad_payload_is_a_permanent_failure_with_pagerdutys_reason(fake: FakePagerDuty,
                                                                            pager: PagerDutyEvents) -> None:
    with pytest.raises(DeliveryError) as raised:
        await pager.page(request=trigger(address=""))
    assert raised.value.permanent and raised.value.code == 400
    assert "'routing_key' is missing or blank" in str(raised.value)


async def test_a_rate_limit_says_when_to_come_back(fake: FakePagerDuty, pager: PagerDutyEvents) -> None:
    fake.fail_next(status=429, retry_after=2)
    with pytest.raises(DeliveryError) as raised:
        await pager.page(request=trigger())
    assert not raised.value.permanent and raised.value.retry_after == 2.0
    fake.fail_next(status=503)
    with pytest.raises(DeliveryError) as raised:
        await pager.page(request=trigger())
    assert not raised.value.permanent and raised.value.code == 503
    assert fake.alerts == {}


async def test_an_answer_lost_after_the_write_is_retried_into_the_same_alert(fake: FakePagerDuty,
                                                                             pager: PagerDutyEvents) -> None:
    fake.lose_next_answer()
    with pytest.raises(DeliveryError) as raised:
        await pager.page(request=trigger())
    assert not raised.value.permanent
    await pager.page(request=trigger())
    assert len(fake.alerts) == 1 and fake.alert(KEY, "INC-7").status == "triggered"


PLAN = """\
name: team
description: test plan
ladder: P1-P3
roles: [{name: platform}]
policies:
  - severity: P1
    levels: [{roles: [platform], repeat: 5m}]
"""


async def test_declare_pages_pagerduty_through_the_outbox_and_ack_and_resolve_follow(
        settings: Settings, clock: ManualClock, fake: FakePagerDuty, pager: PagerDutyEvents, tmp_path) -> None:
    (tmp_path / "playbooks" / "oncall").mkdir(parents=True)
    (tmp_path / "playbooks" / "oncall" / "team.yaml").write_text(PLAN)
    settings = settings.model_copy(update={"playbooks": tmp_path / "playbooks", "oncall": "team"})
    app = await build(settings, chat={"console": MemoryChat("console")}, clock=clock, pagers={"pagerduty": pager})
    try:
        await app.oncall.add_person(name="alice", pagerduty=KEY)
        await app.oncall.set_rotation(role="platform", weekday="mon", at="09:00", timezone="UTC",
                                      people=["alice"])
        ctx = Context(actor=Actor(id="carol", name="carol"), room=Room("console", "#incidents"))
        await app.service.run_command(ctx, '/incident declare P1 "Payments down"')
        fake.lose_next_answer()  # PagerDuty takes the first page; warroom never hears so
        await app.tick()
        clock.advance(seconds=30)
        await app.tick()  # the outbox retries it
        assert [e["event_action"] for e in fake.events] == ["trigger", "trigger"]
        assert fake.alert(KEY, "INC-1").notifications == 2 and len(fake.alerts) == 1
        await app.service.run_command(ctx, "/incident INC-1 ack")
        assert fake.alert(KEY, "INC-1").status == "acknowledged"
        clock.advance(minutes=30)
        await app.tick()
        assert [e["event_action"] for e in fake.events] == ["trigger", "trigger", "acknowledge"]
        await app.service.run_command(ctx, "/incident INC-1 resolve")
        assert fake.alert(KEY, "INC-1").status == "resolved"
    finally:
        await app.close()
