"""Reminders and escalations with a manual clock: due rows in SQLite, fired by ticks, never by sleeping."""

from __future__ import annotations

import asyncio

from bot.delivery.scheduler import ReminderTicker
from tests.support import start_harness


async def _declare(team, text='declare P1 "Payments down"'):
    await team.ok(text)
    return await team.room(1)


async def test_update_nudge_fires_on_the_severity_cadence(team):
    thread = await _declare(team)  # P1: updates every 15 min
    await team.ok("ack", room=thread)
    assert await team.tick(minutes=14) == 0
    assert await team.tick(minutes=1) == 1
    [nudge] = team.kinds("nudge")
    assert nudge.startswith("INC-1 (P1): no status update for 15 min.")
    assert team.chat.of_kind("nudge")[0].room == thread
    assert await team.tick(minutes=14) == 0
    assert await team.tick(minutes=1) == 1  # keeps nudging every cadence without an update
    assert len(team.kinds("nudge")) == 2


async def test_status_update_restarts_the_nudge_clock(team):
    thread = await _declare(team)
    await team.ok("ack", room=thread)
    team.clock.advance(minutes=10)
    await team.ok('status "found it"', room=thread)
    assert await team.tick(minutes=14) == 0  # 24 min since declare, 14 since the update
    await team.tick(minutes=1)
    assert team.kinds("nudge") == ["INC-1 (P1): no status update for 15 min. Post one with /incident status \"…\" "
                                   "— updates are due every 15 min."]


async def test_severity_change_replans_the_cadence(team):
    thread = await _declare(team, 'declare P2 "Import slow"')  # P2: 30 min cadence
    await team.ok("ack", room=thread)
    team.clock.advance(minutes=5)
    await team.ok("sev P1", room=thread)  # 15 min from the last update (declare) → due at +15
    assert await team.tick(minutes=9) == 0
    assert await team.tick(minutes=1) == 1
    assert "INC-1 (P1)" in team.kinds("nudge")[0]


async def test_snooze_postpones_the_next_nudge_once(team):
    thread = await _declare(team)
    await team.ok("ack", room=thread)
    team.clock.advance(minutes=10)
    await team.ok("snooze 30m", room=thread)
    assert team.chat.texts(thread)[-1] == "alice snoozed update nudges: next one at 10:30 EAT."
    assert await team.tick(minutes=29) == 0
    assert await team.tick(minutes=1) == 1
    await team.tick(minutes=15)  # back on the normal cadence after the snoozed nudge
    assert len(team.kinds("nudge")) == 2


async def test_unacknowledged_incident_escalates_naming_the_next_level(team):
    await _declare(team)  # P1 response target 15 min
    await team.tick(minutes=15)
    [escalation] = team.kinds("escalation")
    level = team.app.playbooks.ladder("P1-P3").escalation[1]
    assert escalation.startswith("ESCALATION INC-1: not acknowledged within the P1 response target (15 min). "
                                 f"Escalating to {level.name} ({level.who}).")
    await team.tick(minutes=15)
    assert len(team.kinds("escalation")) == 2  # still unacknowledged: the next level up


async def test_acknowledging_stops_the_escalation(team):
    thread = await _declare(team)
    team.clock.advance(minutes=14)
    await team.ok("ack", room=thread)
    await team.tick(minutes=5)
    assert team.kinds("escalation") == []


async def test_missed_resolution_target_escalates_once(team):
    thread = await _declare(team)
    await team.ok("ack", room=thread)
    for _ in range(8):  # 2 h in steps, posting updates so only the resolution escalation is due
        team.clock.advance(minutes=15)
        await team.ok('status "still digging"', room=thread)
        await team.tick()
    escalations = team.kinds("escalation")
    assert len(escalations) == 1 and "open past the P1 resolution target (2 h)" in escalations[0]
    await team.tick(hours=3)
    assert len(team.kinds("escalation")) == 1


async def test_resolved_incident_gets_a_postmortem_reminder_when_due(team):
    thread = await _declare(team)  # P1 post-mortem due 48 h after resolution
    await team.ok("resolve", room=thread)
    await team.tick(hours=47)
    assert team.kinds("reminder") == []
    await team.tick(hours=1)
    assert team.kinds("reminder")[0].startswith("INC-1: the post-mortem is due (2 d after resolution).")
    await team.ok("postmortem", room=thread)
    await team.tick(days=3)
    assert len(team.kinds("reminder")) == 1  # compiled: no more reminders


async def test_overdue_action_item_is_reminded_once(team):
    thread = await _declare(team, 'declare P3 "Typo on invoice"')
    await team.ok('action "fix template" owner=@bob due=2026-11-25', room=thread)
    await team.tick(hours=23)  # 2026-11-25 08:50 EAT: due today, not overdue
    assert team.kinds("reminder") == []
    await team.tick(hours=16)  # 00:50 EAT on the 26th: the due day is over
    assert team.kinds("reminder") == ["INC-1: action item 1 is overdue since 2026-11-25: fix template (owner bob). "
                                      "Mark it done with /incident action done 1."]
    await team.tick(days=2)
    assert len(team.kinds("reminder")) == 1


async def test_no_nudges_after_resolve_and_none_for_cosmetic_levels(team):
    thread = await _declare(team)
    await team.ok("resolve", room=thread)
    await team.ok('declare P3 "Misaligned button"')
    await team.tick(hours=6)
    assert team.kinds("nudge") == []


async def test_restart_continues_the_schedule_without_losing_or_doubling(settings, clock):
    first = await start_harness(settings, clock)
    thread = await _declare(first)
    await first.ok("ack", room=thread)
    await first.tick(minutes=15)
    assert len(first.kinds("nudge")) == 1
    await first.app.close()

    second = await start_harness(settings, clock)  # a new process on the same SQLite file
    assert await second.tick() == 0  # the nudge that already fired is not fired again
    await second.tick(minutes=15)
    assert len(second.kinds("nudge")) == 1
    await second.app.close()


async def test_overdue_at_startup_fires_once_not_once_per_missed_interval(settings, clock):
    first = await start_harness(settings, clock)
    thread = await _declare(first)
    await first.ok("ack", room=thread)
    await first.app.close()

    clock.advance(hours=2)  # eight cadences pass while the bot is down
    second = await start_harness(settings, clock)
    assert await second.tick() >= 1
    assert len(second.kinds("nudge")) == 1
    assert await second.tick() == 0
    await second.app.close()


async def test_two_services_on_one_database_fire_each_reminder_once(settings, clock):
    a = await start_harness(settings, clock)
    b = await start_harness(settings, clock, chat=a.chat)  # two replicas, one chat platform
    for n in range(20):
        await a.ok(f'declare P1 "incident {n}"')
    clock.advance(minutes=15)
    fired = await asyncio.gather(a.service.fire_due_reminders(), b.service.fire_due_reminders())
    assert sum(fired) == 40  # 20 nudges + 20 escalations, split between the two, none twice
    assert len(a.kinds("nudge")) == 20 and len(a.kinds("escalation")) == 20
    await a.app.close()
    await b.app.close()


async def test_the_apscheduler_ticker_fires_due_reminders(team):
    await _declare(team)
    team.clock.advance(minutes=15)
    fired = asyncio.Event()

    async def fire_and_signal() -> int:
        count = await team.service.fire_due_reminders()
        if count:
            fired.set()
        return count

    ticker = ReminderTicker(fire_and_signal, interval_seconds=0.05)
    ticker.start()
    try:
        await asyncio.wait_for(fired.wait(), timeout=5)
    finally:
        ticker.shutdown()
    assert len(team.kinds("nudge")) == 1


async def test_the_ticker_wakes_for_a_reminder_due_before_its_next_beat(team):
    from datetime import timedelta

    await _declare(team)
    async with team.service._uow() as uow:
        [nudge] = [p for p in await uow.reminders.pending(1) if p.kind == "update_nudge"]
    team.clock.current = nudge.due_at - timedelta(seconds=1)
    ticked = asyncio.Event()
    fired = asyncio.Event()

    async def fire_and_signal() -> int:
        count = await team.service.fire_due_reminders()
        ticked.set()
        if count:
            fired.set()
        return count

    # A heartbeat of a minute: only the early wake-up can fire the nudge within the test's few seconds.
    ticker = ReminderTicker(fire_and_signal, interval_seconds=60, clock=team.clock,
                            next_due=lambda: team.service.next_reminder_due)
    ticker.start()
    try:
        await asyncio.wait_for(ticked.wait(), timeout=5)  # the first beat: nothing due yet, one second to go
        assert not fired.is_set()
        team.clock.advance(seconds=1)
        await asyncio.wait_for(fired.wait(), timeout=5)
    finally:
        await ticker.stop()
    assert ticker.ticks >= 2
    assert any("update" in text.lower() for text in team.kinds("nudge"))
