"""The outbox: nothing lost, nothing doubled when the chat platform fails, and failures stay visible."""

from __future__ import annotations

from bot.ports import DeliveryError
from tests.support import start_harness


async def _entries(team, *statuses):
    async with team.service._uow() as uow:
        return await uow.outbox.entries(statuses or ("pending", "sending", "delivered", "failed"))


async def test_a_rate_limited_send_waits_for_retry_after_and_is_delivered_once(team):
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    team.chat.fail_next(DeliveryError("ratelimited", retry_after=30))
    await team.ok('status "first"', room=thread)  # the state change is committed whatever chat does
    assert [e.text for e in await _timeline(team)][-1] == "first"
    assert not any("first" in t for t in team.chat.texts(thread))
    team.clock.advance(seconds=29)
    await team.app.outbox.drain()
    assert not any("first" in t for t in team.chat.texts(thread))
    team.clock.advance(seconds=1)
    await team.app.outbox.drain()
    assert sum("first" in t for t in team.chat.texts(thread)) == 1
    await team.app.outbox.drain()
    assert sum("first" in t for t in team.chat.texts(thread)) == 1


async def test_transient_failures_back_off_then_give_up_visibly_and_retry_on_request(team):
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    team.chat.fail_next(*[ConnectionError("chat API unreachable")] * 20)
    await team.ok('status "during the outage"', room=thread)
    for _ in range(team.app.outbox.max_attempts + 2):
        team.clock.advance(minutes=10)  # past any backoff (capped at 5 min)
        await team.app.outbox.drain()
    failed = await _entries(team, "failed")
    assert len(failed) == 1 and failed[0].incident_number == 1
    assert "gave up after 8 attempts" in failed[0].last_error and "chat API unreachable" in failed[0].last_error
    assert failed[0].summary.startswith("Status update from alice: during the outage")
    team.chat.failures.clear()
    async with team.service._uow() as uow:
        assert await uow.outbox.requeue_failed(team.clock.now()) == 1
        await uow.commit()
    await team.app.outbox.drain()
    assert sum("during the outage" in t for t in team.chat.texts(thread)) == 1


async def test_backoff_grows_exponentially_with_jitter_and_is_bounded(team):
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    team.chat.fail_next(*[TimeoutError()] * 5)
    await team.ok('status "s"', room=thread)
    waits = []
    for _ in range(5):
        [entry] = await _entries(team, "pending")
        waits.append((entry.next_attempt_at - team.clock.now()).total_seconds())
        team.clock.current = entry.next_attempt_at
        await team.app.outbox.drain()
    assert all(0.5 * 2 ** i <= wait <= 2 ** i for i, wait in enumerate(waits)), waits
    assert sum("Status update" in t for t in team.chat.texts(thread)) == 1


async def test_permanent_failure_is_kept_as_failed_at_once(team):
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    team.chat.fail_next(DeliveryError("channel_not_found", permanent=True))
    await team.ok('status "s"', room=thread)
    [failed] = await _entries(team, "failed")
    assert failed.attempts == 1 and failed.last_error == "channel_not_found"


async def test_posts_wait_for_the_room_and_keep_their_order(team):
    team.chat.fail_next(ConnectionError("down"))  # the card (open_room) fails first
    reply = await team.ok('declare P1 "x"')
    assert reply.message.text.startswith("Declared INC-1")  # recorded and acknowledged anyway
    assert team.chat.sent == []
    team.clock.advance(seconds=5)
    await team.app.outbox.drain()
    kinds = [s.message.kind for s in team.chat.sent]
    assert kinds[0] == "card" and kinds[1:3] == ["checklist", "checklist"]
    thread = await team.room(1)
    assert all(s.room == thread for s in team.chat.sent[1:])


async def test_a_crash_after_commit_resends_after_restart(settings, clock):
    first = await start_harness(settings, clock)
    await first.ok('declare P1 "x"')
    thread = await first.room(1)
    first.chat.fail_next(ConnectionError("process died mid-send"))
    await first.ok('status "committed before the crash"', room=thread)
    await first.app.close()  # the process goes away with the message still in the outbox

    second = await start_harness(settings, clock)
    clock.advance(seconds=5)
    await second.app.service.tick()
    assert sum("committed before the crash" in t for t in second.chat.texts()) == 1
    await second.app.service.tick()
    assert sum("committed before the crash" in t for t in second.chat.texts()) == 1
    await second.app.close()


async def test_a_message_left_sending_by_a_dead_sender_is_retried_after_its_lease(team):
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    async with team.service._uow() as uow:
        from bot.ports import Message, Outbound
        await uow.outbox.enqueue(Outbound(platform="console", operation="post", message=Message(text="orphan"),
                                          dedupe_key="orphan", incident_number=1), team.clock.now())
        from datetime import timedelta
        claimed = await uow.outbox.claim(team.clock.now(), 10, timedelta(minutes=2))
        await uow.commit()
    assert [c.outbound.message.text for c in claimed] == ["orphan"]
    await team.app.outbox.drain()
    assert "orphan" not in team.chat.texts(thread)
    team.clock.advance(minutes=3)
    await team.app.outbox.drain()
    assert team.chat.texts(thread).count("orphan") == 1


async def test_the_same_dedupe_key_is_queued_once(team):
    await team.ok('declare P1 "x"')
    from bot.ports import Message, Outbound
    async with team.service._uow() as uow:
        for _ in range(3):
            await uow.outbox.enqueue(Outbound(platform="console", operation="post", message=Message(text="once"),
                                              dedupe_key="k-1", incident_number=1), team.clock.now())
        await uow.commit()
    await team.app.outbox.drain()
    assert team.chat.texts(await team.room(1)).count("once") == 1


async def _timeline(team):
    async with team.service._uow() as uow:
        return await uow.incidents.timeline(1)


async def test_a_burst_through_a_flaky_chat_api_is_delivered_exactly_once(team):
    import random

    from bot.ports import DeliveryError

    rng = random.Random(20261124)

    class Flaky:
        """Every send fails a third of the time: 429 with Retry-After, a 500, or a timeout (seeded)."""

        def __init__(self, inner) -> None:
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        async def _roll(self) -> None:
            roll = rng.random()
            if roll < 0.11:
                raise DeliveryError("ratelimited", retry_after=rng.choice([1, 2, 5]))
            if roll < 0.22:
                raise DeliveryError("500 internal_error")
            if roll < 0.33:
                raise TimeoutError("read timeout")

        async def post(self, **kwargs):
            await self._roll()
            return await self.inner.post(**kwargs)

        async def update(self, **kwargs):
            await self._roll()
            return await self.inner.update(**kwargs)

        async def open_incident_room(self, **kwargs):
            await self._roll()
            return await self.inner.open_incident_room(**kwargs)

    team.app.outbox._chat = {"console": Flaky(team.chat)}
    for n in range(10):
        await team.ok(f'declare P1 "incident {n}"')
    for n in range(1, 11):
        for k in range(5):
            await team.ok(f'status INC-{n} "update {n}.{k}"')
    for _ in range(200):  # let retry time pass until the outbox is empty
        team.clock.advance(seconds=30)
        await team.app.outbox.drain()
        async with team.service._uow() as uow:
            if not await uow.outbox.entries(("pending", "sending", "failed")):
                break
    texts = team.chat.texts()
    for n in range(1, 11):
        for k in range(5):
            assert sum(t.startswith(f"Status update from alice: update {n}.{k}.") for t in texts) == 1
    assert sum(1 for s in team.chat.sent if s.message.kind == "card") == 10
    async with team.service._uow() as uow:
        assert await uow.outbox.entries(("failed",)) == []


async def test_a_declare_is_delivered_in_one_claim_and_one_record(team):
    import sqlalchemy as sa

    transactions = []

    def began(connection) -> None:
        transactions.append(connection)

    sa.event.listen(team.app.engine.sync_engine, "begin", began)
    try:
        await team.ok('declare P1 "Payments down"')
    finally:
        sa.event.remove(team.app.engine.sync_engine, "begin", began)

    assert [s.message.kind for s in team.chat.sent][:3] == ["card", "checklist", "checklist"]
    # the declare itself; one claim of the card and everything behind it; one record of the outcomes
    assert len(transactions) == 3


async def test_after_a_failure_mid_incident_the_messages_behind_it_wait_unsent_and_keep_their_order(team):
    from bot.ports import Message, Outbound

    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    async with team.service._uow() as uow:
        for text in ("m1", "m2", "m3", "m4"):
            await uow.outbox.enqueue(Outbound(platform="console", operation="post", message=Message(text=text),
                                              dedupe_key=text, incident_number=1), team.clock.now())
        await uow.commit()
    previous = team.chat.on_sent
    team.chat.on_sent = lambda sent: (previous(sent), sent.message.text == "m1"
                                      and team.chat.fail_next(ConnectionError("down")))

    await team.app.outbox.drain()

    assert [t for t in team.chat.texts(thread) if t.startswith("m")] == ["m1"]
    waiting = {e.summary: e.attempts for e in await _entries(team, "pending", "sending")}
    assert waiting == {"m2": 1, "m3": 0, "m4": 0}  # m3 and m4 were put back, never attempted
    team.clock.advance(seconds=5)
    await team.app.outbox.drain()
    assert [t for t in team.chat.texts(thread) if t.startswith("m")] == ["m1", "m2", "m3", "m4"]
