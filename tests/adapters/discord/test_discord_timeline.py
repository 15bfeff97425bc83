"""The thread is the timeline: MESSAGE_CREATE / MESSAGE_UPDATE / MESSAGE_DELETE / 📌 MESSAGE_REACTION_ADD, fed into
discord.py's parsers, reach the core and end up in the post-mortem."""

from __future__ import annotations

from tests.adapters.discord.conftest import DiscordGuild


async def postmortem_markdown(guild: DiscordGuild, thread: dict) -> str:
    await guild.command("postmortem", where=thread)
    uploads = [c for c in guild.fake.requests("POST", rf"/channels/{thread['id']}/messages$") if c.files]
    return uploads[-1].files[0][1].decode("utf-8")


async def test_thread_messages_edits_deletes_and_pins_reach_the_timeline_and_the_postmortem(
        guild: DiscordGuild) -> None:
    _, thread = await guild.declare()

    first = await guild.say("Seeing 502s from the card processor since 06:40", thread=thread)
    second = await guild.say("Restarting the payments pods", thread=thread, user=guild.alice)
    wrong = await guild.say("It is DNS", thread=thread)
    await guild.edit(second, "Restarting the payments pods (all three zones)")
    await guild.delete(wrong)
    await guild.react(first, "📌")
    await guild.react(second, "👍")  # other reactions mean nothing

    messages = [e for e in await guild.timeline() if e.kind.value == "message"]
    assert [(e.author, e.text, e.pinned, e.deleted) for e in messages] == [
        ("Bob Builder", "Seeing 502s from the card processor since 06:40", True, False),
        ("Alice (IC)", "Restarting the payments pods (all three zones)", False, False),
        ("Bob Builder", "", False, True),  # a deleted message keeps no words
    ]
    assert [e.message_ref for e in messages] == [first["id"], second["id"], wrong["id"]]

    document = await postmortem_markdown(guild, thread)
    assert "📌 Bob Builder: Seeing 502s from the card processor since 06:40" in document
    assert "Alice (IC): Restarting the payments pods (all three zones)" in document
    assert "Bob Builder: _(message deleted)_" in document and "It is DNS" not in document


async def test_bot_messages_and_messages_outside_incident_threads_are_not_captured(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    await guild.say("beep, deploy 42 finished", thread=thread, bot=True)
    await guild.say("anyone around?", thread=guild.incidents)
    other = guild.fake.add_channel("random")
    guild.feed("GUILD_CREATE", guild.fake.guild_create())
    await guild.say("lunch?", thread=other)

    texts = [e.text for e in await guild.timeline()]
    assert not any(t in texts for t in ("beep, deploy 42 finished", "anyone around?", "lunch?"))


async def test_the_bot_does_not_capture_its_own_messages(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    own = guild.fake.sent_to(thread["id"])[0]  # the checklist the bot posted, as the gateway echoes it back
    guild.feed("MESSAGE_CREATE", {**own, "member": {"roles": [], "joined_at": "2024-01-01T00:00:00+00:00",
                                                    "deaf": False, "mute": False}})
    await guild.inbound.wait_handled(f"message:{own['id']}")
    assert not [e for e in await guild.timeline() if e.kind.value == "message"]


async def test_a_message_in_a_thread_the_client_has_not_cached_is_still_captured(guild: DiscordGuild) -> None:
    """After a restart the gateway may deliver a message before the thread is cached: the parent is fetched."""
    _, thread = await guild.declare()
    guild.client._connection._get_guild(int(guild.fake.guild_id))._remove_thread(
        guild.client.get_channel(int(thread["id"])))
    guild.chat._parents.clear()

    await guild.say("logs attached in the ticket", thread=thread)

    assert "logs attached in the ticket" in [e.text for e in await guild.timeline()]
    assert guild.fake.requests("GET", rf"/channels/{thread['id']}$")


async def test_mentions_in_thread_messages_are_stored_as_names(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    payload = guild.message_payload(f"<@{guild.bob.id}> can you check the queue?", channel=thread,
                                    user=guild.alice)
    payload["mentions"] = [{**guild.bob.user, "member": {k: v for k, v in guild.bob.member.items() if k != "user"}}]
    guild.feed("MESSAGE_CREATE", payload)
    await guild.inbound.wait_handled(f"message:{payload['id']}")
    assert "@Bob Builder can you check the queue?" in [e.text for e in await guild.timeline()]


async def test_a_repeated_gateway_message_is_captured_once(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    payload = guild.message_payload("db CPU at 100%", channel=thread)
    for times in (1, 2):
        guild.feed("MESSAGE_CREATE", payload)
        await guild.inbound.wait_handled(f"message:{payload['id']}", times=times)
    assert [e.text for e in await guild.timeline()].count("db CPU at 100%") == 1


async def test_reminders_and_escalations_arrive_in_the_thread(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    guild.clock.advance(minutes=16)  # P1: respond within 15 min, updates every 15 min
    assert await guild.service.fire_due_reminders() >= 1
    posted = [m for m in guild.fake.sent_to(thread["id"]) if m["content"]]
    escalation = next(m for m in posted if m["content"].startswith("🚨 ESCALATION INC-1"))
    assert [b["custom_id"] for row in escalation["components"] for b in row["components"]] == ["warroom:ack:INC-1"]
    assert not [m for m in guild.fake.sent_to(guild.incidents["id"]) if m["content"]]  # the channel stays quiet


async def test_a_message_and_its_delete_replayed_back_to_back_leave_no_trace(guild: DiscordGuild) -> None:
    """After a RESUME Discord replays missed events in one burst; discord.py runs their handlers as concurrent
    tasks, so the delete's handler can run before the message's capture is committed."""
    _, thread = await guild.declare()
    written_at = guild.clock.now()
    payload = guild.message_payload("db password is hunter2", channel=thread)
    kept = guild.message_payload("rotating the db password now", channel=thread)
    guild.clock.advance(minutes=5)  # the reconnect: the burst arrives later than it was written
    payload_id = payload["id"]
    guild.feed("MESSAGE_CREATE", payload)
    guild.feed("MESSAGE_DELETE", {"id": payload_id, "channel_id": thread["id"], "guild_id": guild.fake.guild_id})
    guild.feed("MESSAGE_CREATE", kept)
    await guild.inbound.wait_handled(f"message:{payload_id}")
    await guild.inbound.wait_handled(f"delete:{payload_id}")
    await guild.inbound.wait_handled(f"message:{kept['id']}")

    messages = [e for e in await guild.timeline() if e.kind.value == "message"]
    assert [(e.text, e.deleted) for e in messages] == [("", True), ("rotating the db password now", False)]
    assert all(e.occurred_at == written_at for e in messages)  # the snowflake's time, not the arrival
    document = await postmortem_markdown(guild, thread)
    assert "hunter2" not in document and "rotating the db password now" in document
