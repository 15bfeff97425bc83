"""The outbox under a slow or stalled chat API (issue 13, must-hold 5): a tick never waits for a drain (so
APScheduler never skips one), one stalled incident never holds up the others, and a restarted instance takes back
exactly what it had claimed. Deadlines here only bound a wait that must not hang; nothing is timed by sleeping."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from adapters.memory import MemoryChat
from bot.app.bootstrap import build
from bot.ports import Message, Outbound, Room
from tests.support import Harness


class GatedChat(MemoryChat):
    """Posts whose text contains a held word wait until the test lets them through."""

    def __init__(self) -> None:
        super().__init__("console")
        self.held: dict[str, asyncio.Event] = {}

    def hold(self, word: str) -> asyncio.Event:
        self.held[word] = asyncio.Event()
        return self.held[word]

    async def post(self, *, room, message, delivery=None):
        for word, gate in self.held.items():
            if word in (message.text or "") or word in (room.thread or ""):
                await gate.wait()
        return await super().post(room=room, message=message, delivery=delivery)


async def _served(settings, clock) -> Harness:
    """As `warroom serve` runs it: commands are acknowledged at once and the outbox delivers behind them."""
    chat = GatedChat()
    app = await build(settings, chat={"console": chat}, clock=clock, deliver_inline=False)
    return Harness(app=app, chat=chat, clock=clock, settings=settings)


async def _until(condition, what: str, deadline: float = 10.0) -> None:
    async def poll() -> None:
        # Not an Event: `condition` is any predicate over the harness's state, and nothing signals when it holds.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), deadline)
    except TimeoutError:
        raise AssertionError(f"not within {deadline:g} s: {what}") from None


async def test_a_tick_only_wakes_the_drain_and_never_waits_for_a_slow_chat_api(settings, clock):
    team = await _served(settings, clock)
    await team.ok('declare P1 "Payments down"')
    await team.app.outbox.wait_idle()
    gate = team.chat.hold("no status update")  # the chat API hangs on the nudge
    clock.advance(hours=3)
    # On the old code the tick drained the outbox itself and hung here until the chat API answered: with
    # APScheduler's max_instances=1 every later tick was skipped meanwhile.
    fired = await asyncio.wait_for(team.app.tick(), 10)
    assert fired >= 1
    assert not any("no status update" in t for t in team.chat.texts())
    await asyncio.wait_for(team.app.tick(), 10)  # and the next tick runs too, the nudge still hanging
    assert not any("no status update" in t for t in team.chat.texts())
    gate.set()
    await _until(lambda: any("no status update" in t for t in team.chat.texts()), "the nudge is delivered")
    await team.app.outbox.wait_idle()
    await team.app.close()


async def test_one_stalled_incident_never_holds_up_the_messages_of_the_others(settings, clock):
    team = await _served(settings, clock)
    team.app.outbox.round_wait = 0.05  # how long a round waits for its slowest incident
    await team.ok('declare P1 "Payments down"')
    await team.ok('declare P2 "Search slow"')
    await team.app.outbox.wait_idle()
    first, second = await team.room(1), await team.room(2)
    gate = team.chat.hold("stuck")
    await team.ok('status "stuck in INC-1"', room=first)
    await _until(lambda: team.app.outbox._background is not None, "a drain started")
    await team.ok('status "INC-2 goes on"', room=second)
    await team.ok('status "and on"', room=second)
    await _until(lambda: sum("and on" in t for t in team.chat.texts(second)) == 1,
                 "INC-2's updates are delivered while INC-1 is stalled")
    assert not any("stuck in INC-1" in t for t in team.chat.texts(first))
    await team.ok('status "after the stall"', room=first)  # waits behind INC-1's stalled message, in order
    gate.set()
    await _until(lambda: any("after the stall" in t for t in team.chat.texts(first)), "INC-1 resumes")
    await team.app.outbox.wait_idle()
    texts = [t for t in team.chat.texts(first) if "stuck in INC-1" in t or "after the stall" in t]
    assert len(texts) == 2 and "stuck in INC-1" in texts[0]  # once each, in order
    assert sum("INC-2 goes on" in t for t in team.chat.texts(second)) == 1
    await team.app.close()


async def test_an_instance_takes_back_only_what_it_claimed_itself(settings, clock):
    team = await _served(settings, clock)
    async with team.app.service._uow() as uow:
        for n in range(4):
            await uow.outbox.enqueue(Outbound(platform="console", operation="post", message=Message(text=f"m{n}"),
                                              dedupe_key=f"k{n}", room=Room("console", "#elsewhere")), clock.now())
        await uow.commit()
    lease = timedelta(minutes=2)
    async with team.app.service._uow() as uow:
        mine = await uow.outbox.claim(clock.now(), 2, lease, by="replica-a")
        theirs = await uow.outbox.claim(clock.now(), 2, lease, by="replica-b")
        await uow.commit()
    assert len(mine) == len(theirs) == 2
    # replica-a crashed and restarts under the same name: its two come back now, replica-b's keep their lease.
    async with team.app.service._uow() as uow:
        assert await uow.outbox.release_claims(clock.now(), by="replica-a") == 2
        await uow.commit()
    async with team.app.service._uow() as uow:
        again = await uow.outbox.claim(clock.now(), 10, lease, by="replica-a")
        await uow.commit()
    assert sorted(i.id for i in again) == sorted(i.id for i in mine)
    assert all(i.delivery.maybe_sent for i in again)  # each is checked for an earlier copy before it is re-sent
    await team.app.close()
