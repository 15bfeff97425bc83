"""Issue 13, seeded chaos with WhatsApp briefs: a burst of declares, thread messages, status updates, edits, deletes
and customer briefs while the fake Graph API flips (by a seeded `random.Random`) between healthy, slow (requests held
until released), 130429 rate limits with Retry-After, 131000 server errors, and free text accepted then reported
`failed` 131047 by a late, replayed, out-of-order status webhook. Afterwards, with the clock advanced instead of
sleeping: every customer got each brief exactly once (the 131047 ones as the template), every chat message is in the
room once, every edit and delete is in the timeline and the post-mortem, and nothing is left in the outbox."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette

from adapters.memory import MemoryChat
from adapters.whatsapp.routes import whatsapp_routes
from adapters.whatsapp.webhook import sign
from bot.app.bootstrap import build
from bot.ports import Actor, Room
from tests.support import Harness

SECRET, VERIFY = "app-secret", "verify-me"
PHONES = {"Jane": "+254700000001", "John": "+254700000002", "Mary": "+254700000003"}
SEEDS = [7, 1311, 90210]
STEPS = 20


@dataclass
class Said:
    incident: int
    room: Room
    message_id: str
    text: str
    deleted: bool = False


@dataclass
class Script:
    rng: random.Random
    incidents: int = 0
    briefs: int = 0
    statuses: list[tuple[Room, str]] = field(default_factory=list)
    said: list[Said] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    ids: itertools.count = field(default_factory=itertools.count)


async def _customer_writes(http: httpx.AsyncClient, clock, phone: str, message_id: str) -> None:
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"},
                                       "contacts": [{"profile": {"name": "x"}, "wa_id": phone.lstrip("+")}],
                                       "messages": [{"from": phone.lstrip("+"), "id": message_id,
                                                     "timestamp": str(int(clock.now().timestamp())),
                                                     "type": "text", "text": {"body": "any news?"}}]}}]}]}).encode()
    answer = await http.post("/whatsapp/webhook", content=body, headers={
        "content-type": "application/json", "X-Hub-Signature-256": sign(SECRET, body)})
    assert answer.status_code == 200


def _chaos(fake, script: Script) -> str:
    rng = script.rng
    mode = rng.choice(["healthy", "healthy", "slow", "429", "5xx", "late"])
    if mode == "slow":
        fake.hold()
    elif mode == "429":
        fake.fail_next(code=rng.choice((130429, 131056)), times=rng.randint(1, 2), retry_after=rng.choice((1, 30)))
    elif mode == "5xx":
        fake.fail_next(code=131000, times=rng.randint(1, 2))
    elif mode == "late":  # free text to this customer is accepted, then reported failed (131047)
        fake.fail_late(rng.choice(list(PHONES.values())), code=131047,
                       before_answer=rng.random() < 0.3)
    script.modes.append(mode)
    return mode


async def _run(fake, mode: str, action) -> None:
    if mode != "slow":
        await action()
        return
    task = asyncio.ensure_future(action())
    for _ in range(2000):  # until a request is held (or the action needed none): no timing sleep
        if task.done() or any(r.status == 0 for r in fake.requests):
            break
        await asyncio.sleep(0)
    fake.release()
    await task


async def _step(team: Harness, fake, http, script: Script, index: int) -> None:
    rng = script.rng
    rooms = {i.number: await team.room(i.number) for i in await team.service.incidents(open_only=True)}
    live = [s for s in script.said if not s.deleted]
    choices = ["declare"] * (3 if script.incidents < 2 else 1 if script.incidents < 4 else 0)
    if rooms:
        choices += ["say", "say", "status", "brief", "brief", "customer"]
    if live:
        choices += ["edit", "delete"]
    what = rng.choice(choices)
    mode = _chaos(fake, script)
    user = rng.choice(("alice", "bob"))
    if what == "declare":
        script.incidents += 1
        await _run(fake, mode, lambda: team.ok(f'declare P{rng.randint(1, 3)} "chaos {index}" tenant=acme',
                                               user=user))
    elif what == "status":
        number, room = rng.choice(sorted(rooms.items()))
        token = f"status-{index}-{rng.randrange(10**6)}"
        script.statuses.append((room, token))
        await _run(fake, mode, lambda: team.ok(f'status "{token}"', room=room, user=user))
    elif what == "brief":
        number, room = rng.choice(sorted(rooms.items()))
        await team.ok(f'status "brief-{index}"', room=room)  # something new to tell the customers

        async def brief() -> None:
            await team.ok("brief acme --send", room=room, user=user)
            script.briefs += 1

        await _run(fake, mode, brief)
    elif what == "customer":  # a customer writes: their 24-hour window opens (free text is tried first)
        await _run(fake, mode, lambda: _customer_writes(http, team.clock, rng.choice(list(PHONES.values())),
                                                        f"wamid.in-{index}"))
    elif what == "say":
        number, room = rng.choice(sorted(rooms.items()))
        said = Said(number, room, f"msg-{next(script.ids)}", f"said-{index}-{rng.randrange(10**6)}")
        await team.service.capture_message(room=room, actor=Actor(id=user, name=user), text=said.text,
                                           message_id=said.message_id)
        script.said.append(said)
    elif what == "edit":
        said = rng.choice(live)
        said.text = f"{said.text.split(' ')[0]} edited-{index}"
        await team.service.revise_message(room=said.room, message_id=said.message_id, text=said.text)
    else:
        said = rng.choice(live)
        said.deleted = True
        await team.service.revise_message(room=said.room, message_id=said.message_id, deleted=True)
    fake.release()
    if rng.random() < 0.5:  # Meta's statuses come late, out of order, some twice
        await fake.post_statuses(reverse=rng.random() < 0.5, repeat=rng.randint(1, 2))
    team.clock.advance(seconds=rng.randint(0, 90))
    await team.service.tick()
    script.modes[-1] += f" → {what}"


async def _outbox(team: Harness) -> dict[str, int]:
    async with team.service._uow() as uow:
        return await uow.outbox.counts()


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_seeded_burst_of_briefs_under_a_flaky_graph_api_reaches_each_customer_once(
        settings, clock, fake, cloud, seed):
    chat = MemoryChat("console")
    app = await build(settings, chat={"console": chat}, clock=clock, messenger=cloud)
    team = Harness(app=app, chat=chat, clock=clock, settings=settings)
    for name, phone in PHONES.items():
        await app.service.briefs.add_contact(tenant="acme", name=name, phone=phone)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=whatsapp_routes(
        verify_token=VERIFY, app_secret=SECRET, on_event=app.operators.customer_event))), base_url="http://wr")
    fake.webhook_to(http, app_secret=SECRET)
    fake.now = lambda: clock.now().timestamp()
    script = Script(random.Random(seed))
    try:
        for index in range(STEPS):
            await _step(team, fake, http, script, index)
        fake.release()
        fake._next.clear()
        counts: dict[str, int] = {}
        for _ in range(12):  # drain until quiet: statuses posted, retries come due on the moved clock
            await fake.post_statuses()
            clock.advance(minutes=10)
            await team.service.tick()
            await app.outbox.drain()
            counts = await _outbox(team)
            if not fake.queued_statuses and not any(counts.get(s) for s in ("pending", "sending", "failed")):
                break
        trail = f"seed {seed}: " + "; ".join(script.modes)

        assert not any(counts.get(s) for s in ("pending", "sending", "failed")), (counts, trail)

        # Each brief reached each customer once: Meta accepted it and did not report it failed.
        failed = {s["id"] for s in fake.posted_statuses if s["status"] == "failed"}
        kept = Counter(r.to for r in fake.of("messages") if r.response["messages"][0]["id"] not in failed)
        briefed: Counter[str] = Counter()
        async with team.service._uow() as uow:
            for number in range(1, script.incidents + 1):
                for _, recipients in await uow.customers.brief_deliveries(number):
                    for recipient in recipients:
                        assert recipient.status in ("sent", "delivered", "read"), (recipient, trail)
                        briefed[recipient.phone.lstrip("+")] += 1
        assert script.briefs and sum(briefed.values()) == script.briefs * len(PHONES), (briefed, trail)
        assert kept == briefed, (kept, briefed, trail)

        for room, token in script.statuses:
            assert sum(token in text for text in chat.texts(room)) == 1, (token, trail)
        for number in range(1, script.incidents + 1):
            document = await team.service.export_postmortem(number)
            async with team.service._uow() as uow:
                timeline = json.dumps([str(entry) for entry in await uow.incidents.timeline(number)])
            for said in (s for s in script.said if s.incident == number):
                token = said.text.split(" ")[0]
                if said.deleted:
                    assert token not in document and token not in timeline, (said.text, trail)
                else:
                    assert said.text in document and document.count(token) == 1, (said.text, trail)
    finally:
        fake.release()
        await http.aclose()
        await app.close()
