"""Paging through the real service, outbox and storage with an injected clock: pages on declare per the policy,
repeats and level timeouts as due rows, a person no pager reaches is reported and the next one paged, an
acknowledgement stops every pending page and acknowledges the pager, resolve resolves it, a page due while the
bot was down goes out once, and two processes ticking together page each person once per attempt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.memory import MemoryChat
from bot.app.bootstrap import Warroom, build
from bot.app.settings import Settings
from bot.incident.service import Context
from bot.ports import Actor, DeliveryError, ManualClock, PagerCapabilities, PageRequest, Room

CHANNEL = Room("console", "#incidents")

PLAN = """\
name: team
description: test plan
ladder: P1-P3
roles: [{name: platform}, {name: coordinator}]
policies:
  - severity: P1
    levels:
      - {roles: [platform], repeat: 5m, timeout: 15m}
      - {roles: [coordinator], repeat: 10m}
  - severity: P2
    levels:
      - roles: [platform]
        repeat: 1h
        business_hours: {timezone: Africa/Nairobi, days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
"""


class RecordingPager:
    """A pager that records what it was asked to send; `refuse` makes pages to an address fail permanently."""

    channel = "pagerduty"
    capabilities = PagerCapabilities(acknowledge=True, inbound_acks=True)

    def __init__(self) -> None:
        self.sent: list[PageRequest] = []
        self.refuse: set[str] = set()

    async def page(self, *, request: PageRequest) -> str:
        await asyncio.sleep(0)
        if request.address in self.refuse:
            raise DeliveryError("Invalid routing key", permanent=True, code=400)
        self.sent.append(request)
        return request.incident_key

    def triggers(self) -> list[str]:
        return [r.person for r in self.sent if r.action == "trigger"]

    def actions(self, action: str) -> list[str]:
        return sorted(r.person for r in self.sent if r.action == action)


@pytest.fixture
def oncall_settings(settings: Settings, tmp_path: Path) -> Settings:
    folder = tmp_path / "playbooks" / "oncall"
    folder.mkdir(parents=True)
    (folder / "team.yaml").write_text(PLAN)
    return settings.model_copy(update={"playbooks": tmp_path / "playbooks", "oncall": "team"})


@pytest.fixture
async def pager() -> RecordingPager:
    return RecordingPager()


@pytest.fixture
async def app(oncall_settings: Settings, clock: ManualClock, pager: RecordingPager) -> AsyncIterator[Warroom]:
    warroom = await build(oncall_settings, chat={"console": MemoryChat("console")}, clock=clock,
                          pagers={"pagerduty": pager})
    roster = warroom.oncall
    await roster.add_person(name="alice", pagerduty="KEY-A")
    await roster.add_person(name="bob", slack="U0BOB")  # no pager reaches bob
    await roster.add_person(name="dave", pagerduty="KEY-D", whatsapp="+254700000014")
    await roster.set_rotation(role="platform", weekday="mon", at="09:00", timezone="Africa/Nairobi",
                              people=["bob", "alice"])
    await roster.set_rotation(role="coordinator", weekday="mon", at="09:00", timezone="Africa/Nairobi",
                              people=["dave"])
    try:
        yield warroom
    finally:
        await warroom.close()


async def run(app: Warroom, text: str, *, user: str = "carol", room: Room = CHANNEL):
    return await app.service.run_command(Context(actor=Actor(id=user, name=user), room=room), f"/incident {text}")


def thread(app: Warroom) -> list[str]:
    chat: MemoryChat = app.service._chat["console"]  # type: ignore[assignment]
    return [s.current.text for s in chat.of_kind("escalation")] + [s.current.text for s in chat.of_kind("update")]


async def test_declare_pages_the_level_repeats_then_climbs_and_an_ack_stops_everything(
        app: Warroom, clock: ManualClock, pager: RecordingPager) -> None:
    await run(app, 'declare P1 "Payments down"')
    await app.tick()
    assert pager.triggers() == ["alice"]
    said = "\n".join(thread(app))
    assert "bob (platform) has no working contact point (has: slack; pagers here: pagerduty)" in said
    assert "Paged alice (platform) via pagerduty — level 1, attempt 1." in said
    clock.advance(minutes=5)
    await app.tick()
    clock.advance(minutes=5)
    await app.tick()
    assert pager.triggers() == ["alice", "alice", "alice"]
    clock.advance(minutes=5)
    await app.tick()
    assert pager.triggers()[-1] == "dave"
    assert all(r.incident_key == "INC-1" and r.summary == "INC-1 [P1] Payments down" for r in pager.sent)
    await run(app, "INC-1 ack", user="dave")
    assert pager.actions("acknowledge") == ["alice", "dave"]
    assert any("Paging stopped: dave answered for INC-1" in line for line in thread(app))
    before = len(pager.sent)
    clock.advance(hours=2)
    await app.tick()
    assert len(pager.sent) == before
    await run(app, "INC-1 resolve", user="dave")
    assert pager.actions("resolve") == ["alice", "dave"]


async def test_a_page_due_while_the_bot_was_down_goes_out_once(app: Warroom, clock: ManualClock,
                                                              pager: RecordingPager) -> None:
    await run(app, 'declare P1 "Payments down"')
    await app.tick()
    clock.advance(minutes=13)  # two repeats fell due while nobody ticked
    await app.tick()
    await app.tick()
    assert pager.triggers() == ["alice", "alice"]


async def test_escalate_pages_the_next_level_now_and_page_by_hand_pages_one_person(
        app: Warroom, clock: ManualClock, pager: RecordingPager) -> None:
    await run(app, 'declare P1 "Payments down"')
    await app.tick()
    reply = await run(app, 'INC-1 escalate "alice is on a plane"')
    assert reply.ok and "escalated INC-1: alice is on a plane" in reply.message.text
    assert pager.triggers() == ["alice", "dave"]
    reply = await run(app, 'INC-1 page @alice "need the payments expert"')
    assert reply.ok and "paged alice via pagerduty: need the payments expert" in reply.message.text
    assert pager.triggers() == ["alice", "dave", "alice"]
    bad = await run(app, 'INC-1 page dbas "x"')
    assert not bad.ok and "unknown role or person 'dbas'; roles: platform, coordinator; people: alice, bob, dave" \
        in bad.message.text


async def test_a_failing_pager_address_does_not_block_the_thread_or_other_pages(
        app: Warroom, clock: ManualClock, pager: RecordingPager) -> None:
    pager.refuse.add("KEY-A")
    await run(app, 'declare P1 "Payments down"')
    await app.tick()
    clock.advance(minutes=15)
    await app.tick()
    clock.advance(minutes=10)
    await app.tick()
    assert pager.triggers() == ["dave", "dave"]
    assert any("level 2, attempt 2" in line for line in thread(app))
    async with app.service._uow() as uow:
        failed = [e for e in await uow.outbox.entries(("failed",))]
    # alice's page is kept as failed (warroom outbox list shows it), on its own: the thread went on
    assert [(e.platform, e.operation, e.incident_number) for e in failed] == [("pagerduty", "page", None)]


async def test_business_hours_level_waits_and_the_thread_says_when(app: Warroom, clock: ManualClock,
                                                                   pager: RecordingPager) -> None:
    clock.current = clock.current.replace(day=28, hour=18)  # Sat 28 Nov 21:00 in Nairobi
    await run(app, 'declare P2 "Slow dashboard"')
    await app.tick()
    await app.tick()
    assert pager.triggers() == []
    waits = [line for line in thread(app) if "business hours only" in line]
    assert waits == ["Level 1 of the P2 policy pages in business hours only: the page goes out "
                     "Mon 2026-11-30 09:00 EAT."]
    clock.current = clock.current.replace(day=30, hour=6)
    await app.tick()
    assert pager.triggers() == ["alice"]


async def test_two_processes_ticking_together_page_each_person_once_per_attempt(
        app: Warroom, oncall_settings: Settings, clock: ManualClock, pager: RecordingPager) -> None:
    other = await build(oncall_settings, chat={"console": MemoryChat("console")}, clock=clock,
                        pagers={"pagerduty": pager})
    try:
        for n in range(20):
            await run(app, f'declare P1 "Outage {n}"')
        for _ in range(5):
            await asyncio.gather(app.tick(), other.tick())
            clock.advance(minutes=5)
        await asyncio.gather(app.outbox.drain(), other.outbox.drain())
    finally:
        await other.close()
    seen = [(r.incident_key, r.person) for r in pager.sent if r.action == "trigger"]
    # per incident: alice at 0, 5 and 10 min, dave at 15 (his repeat, 10 min, is not due by 20) — each once
    assert len(seen) == 20 * 4
    for n in range(1, 21):
        assert [person for key, person in seen if key == f"INC-{n}"] == ["alice"] * 3 + ["dave"]


async def test_a_process_that_read_a_step_before_another_took_it_pages_nobody(
        app: Warroom, clock: ManualClock, pager: RecordingPager, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage.repositories.oncall import SqlEscalationRepository

    await run(app, 'declare P1 "Payments down"')
    async with app.service._uow() as uow:
        stale = await uow.escalations.get(1)  # what a replica read just before this process took the step
    await app.tick()
    assert pager.triggers() == ["alice"]

    async def still_due(self: SqlEscalationRepository, now: object, limit: int) -> list:
        return [stale]

    monkeypatch.setattr(SqlEscalationRepository, "due", still_due)
    assert await app.service.paging.fire_due() == 0  # its compare-and-set loses: no step, no page
    await app.outbox.drain()
    assert pager.triggers() == ["alice"]
