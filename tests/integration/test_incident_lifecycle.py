"""The incident loop through the public service entry point, on a real SQLite file."""

from __future__ import annotations

from bot.incident.domain import Status
from tests.support import CHANNEL


async def test_declare_opens_a_thread_with_card_checklists_and_suggested_playbook(team):
    reply = await team.ok('declare P1 "Payments callbacks not arriving" '
                          'impact="customers charged, bookings unconfirmed"')
    assert "Declared INC-1 (P1)" in reply.message.text
    card = team.chat.in_room(CHANNEL)[0]
    assert card.kind == "card" and card.title == "INC-1 · P1 · Payments callbacks not arriving"
    fields = {f.label: f.value for f in card.fields}
    assert fields["Targets"].startswith("respond 15 min · resolve 2 h")
    assert fields["Updates"] == "every 15 min"
    assert fields["Impact"] == "customers charged, bookings unconfirmed"
    assert fields["Status"] == "declared"
    assert [b.action for b in card.buttons] == ["ack", "update", "resolve"]
    thread = await team.room(1)
    assert thread.thread == team.chat.sent[0].message_id
    in_thread = team.chat.in_room(thread)
    assert [m.title for m in in_thread[:2]] == ["First minutes checklist", "Triage checklist"]
    assert in_thread[0].checklist[0].number == 1 and in_thread[1].checklist[0].number > 1
    assert "payment-callbacks" in in_thread[2].title


async def test_declare_without_severity_uses_the_ladder_default(team):
    await team.ok('declare "Slow dashboard"')
    [incident] = await team.service.incidents(open_only=True)
    assert incident.severity == "P2"
    assert incident.reporter == "alice"


async def test_unknown_severity_names_the_ladder_and_changes_nothing(team):
    reply = await team.run('declare P7 "x"')
    assert not reply.ok
    assert reply.message.text == "Unknown severity 'P7'. This workspace uses P1, P2, P3."
    assert await team.service.incidents(open_only=False) == []
    assert team.chat.sent == []


async def test_commands_in_the_thread_infer_the_incident_and_announce_there(team):
    await team.ok('declare P1 "DB down"')
    thread = await team.room(1)
    team.clock.advance(minutes=4)
    assert await team.ok("ack", room=thread, user="bob") is None
    assert team.chat.texts(thread)[-1] == "bob acknowledged INC-1 after 4 min — response target 15 min: met."
    card = team.chat.sent[0].current
    assert {f.label: f.value for f in card.fields}["Status"] == "acknowledged"
    assert [b.action for b in card.buttons] == ["update", "resolve"]


async def test_channel_commands_name_the_incident_and_get_a_private_confirmation(team):
    await team.ok('declare P2 "Import failing"')
    reply = await team.ok('status INC-1 "rolled back the importer"')
    assert reply.message.text.startswith("Done — posted in INC-1's thread: Status update from alice")
    assert team.chat.texts(await team.room(1))[-1].startswith("Status update from alice: rolled back the importer.")


async def test_thread_command_outside_an_incident_says_how_to_name_one(team):
    reply = await team.run('status "x"')
    assert not reply.ok
    assert "inside an incident's thread, or name one" in reply.message.text
    assert "INC-7" in reply.message.text


async def test_unknown_incident_lists_open_ones(team):
    await team.ok('declare P2 "a"')
    reply = await team.run("ack INC-9")
    assert reply.message.text == "Unknown incident INC-9. Open incidents: INC-1."


async def test_full_status_flow_and_reopen(team):
    await team.ok('declare P1 "API 500s"')
    thread = await team.room(1)
    for command in ("ack", "mitigate", 'resolve "rolled back release 42"', "close"):
        await team.ok(command, room=thread)
    [incident] = await team.service.incidents(open_only=False)
    assert incident.status is Status.CLOSED and incident.summary == "rolled back release 42"
    again = await team.run("resolve", room=thread)
    assert not again.ok and "already closed" in again.message.text
    await team.ok("reopen", room=thread)
    [incident] = await team.service.incidents(open_only=True)
    assert incident.status is Status.ACKNOWLEDGED and incident.resolved_at is None


async def test_close_requires_resolve_first(team):
    await team.ok('declare P2 "x"')
    reply = await team.run("close INC-1")
    assert not reply.ok and "`resolve` it before closing" in reply.message.text


async def test_severity_change_says_from_to_and_new_targets(team):
    await team.ok('declare P2 "Checkout slow"')
    thread = await team.room(1)
    await team.ok("sev P1", room=thread)
    assert team.chat.texts(thread)[-1].startswith("Severity P2 → P1 (Critical) by alice. Targets now: respond 15 min")
    same = await team.run("sev P1", room=thread)
    assert not same.ok and same.message.text == "INC-1 is already P1."
    bad = await team.run("sev P9", room=thread)
    assert bad.message.text == "Unknown severity 'P9'. This workspace uses P1, P2, P3."


async def test_roles_one_person_may_hold_several(team):
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    await team.ok("role ic @alice", room=thread)
    await team.ok("role scribe @alice", room=thread)
    await team.ok("role ops @bob", room=thread)
    await team.ok("role ops @carol", room=thread)
    assert team.chat.texts(thread)[-1] == "carol is now ops lead (was bob)."
    [incident] = await team.service.incidents(open_only=True)
    assert incident.holder_summary() == "incident commander: alice; ops lead: carol; scribe: alice"


async def test_checklist_tick_records_who_and_rejects_bad_numbers(team):
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    await team.ok("check 2", room=thread, user="bob")
    assert team.chat.texts(thread)[-1].startswith("✓ 2. ")
    assert "bob, 09:50 EAT" in team.chat.texts(thread)[-1]
    twice = await team.run("check 2", room=thread)
    assert "already ticked by bob" in twice.message.text
    [incident] = await team.service.incidents(open_only=True)
    too_far = await team.run(f"check {len(incident.checklist) + 1}", room=thread)
    assert f"items 1–{len(incident.checklist)}" in too_far.message.text


async def test_freeze_shows_on_the_card(team):
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    await team.ok("freeze on", room=thread)
    assert "deploy freeze ON" in {f.label: f.value for f in team.chat.sent[0].current.fields}["Status"]
    again = await team.run("freeze on", room=thread)
    assert again.message.text == "Deploy freeze is already on for INC-1."


async def test_action_items_added_and_done(team):
    await team.ok('declare P2 "x"')
    thread = await team.room(1)
    await team.ok('action "Alert on unrouted callbacks" owner=@bob due=2026-12-01', room=thread)
    await team.ok("action done 1", room=thread)
    missing = await team.run("action done 3", room=thread)
    assert missing.message.text == "No action item 3; INC-1's action items: 1–1."
    [incident] = await team.service.incidents(open_only=True)
    assert incident.actions[0].owner == "bob" and incident.actions[0].is_done


async def test_playbook_lists_with_suggestion_first_and_posts_one(team):
    await team.ok('declare P1 "Postgres primary unreachable"')
    thread = await team.room(1)
    listing = await team.run("playbook", room=thread)
    assert listing.message.text.splitlines()[0].startswith("★ database-unavailable")
    assert await team.run("playbook secret-leak", room=thread) is None
    assert team.chat.in_room(thread)[-1].title.startswith("Playbook: ")
    unknown = await team.run("playbook nope", room=thread)
    assert unknown.message.text.startswith("No playbook named 'nope'. Playbooks: ")


async def test_every_human_message_in_the_thread_is_captured(team):
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    assert await team.say("seeing 502s from the LB", room=thread)
    assert not await team.say("lunch?", room=CHANNEL)
    timeline = await _timeline(team, 1)
    assert ("bob", "seeing 502s from the LB") in [(e.author, e.text) for e in timeline]


async def test_backdated_note_is_ordered_by_when_it_happened(team):
    team.clock.advance(minutes=10)  # 10:00 EAT
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    await team.ok('note --at 09:52 "first failed callback in the logs"', room=thread)
    timeline = await _timeline(team, 1)
    assert timeline[0].text == "first failed callback in the logs"
    future = await team.run('note --at 10:30 "later"', room=thread)
    # 10:30 today is in the future, so it means yesterday 10:30 — accepted, ordered first.
    assert future is None
    assert (await _timeline(team, 1))[0].text == "later"


async def test_duplicate_delivery_is_processed_once(team):
    await team.ok('declare P1 "x"', delivery_id="evt-1")
    assert await team.run('declare P1 "x"', delivery_id="evt-1") is None
    assert len(await team.service.incidents(open_only=False)) == 1


async def test_list_and_show(team):
    await team.ok('declare P1 "first"')
    await team.ok('declare P3 "second"')
    listing = await team.run("list")
    assert listing.message.title == "2 open incident(s)"
    assert "INC-2 P3 [declared] second" in listing.message.text
    shown = await team.run("show INC-1")
    assert shown.message.title == "INC-1 · P1 · first"
    assert {f.label for f in shown.message.fields} >= {"Checklist", "Action items"}


async def test_long_text_is_rejected_whole(team):
    await team.ok('declare P1 "x"')
    thread = await team.room(1)
    reply = await team.run('status "' + "a" * 4100 + '"', room=thread)
    assert not reply.ok and "limited to 4,000" in reply.message.text
    assert not any(e.kind.value == "status_update" for e in await _timeline(team, 1))


async def test_incident_numbers_are_gapless_after_a_rejected_declare(team):
    await team.ok('declare P1 "a"')
    await team.run('declare P9 "bad"')
    await team.ok('declare P1 "b"')
    assert [i.key for i in await team.service.incidents(open_only=False)] == ["INC-1", "INC-2"]


async def _timeline(team, number: int):
    async with team.service._uow() as uow:
        return await uow.incidents.timeline(number)
