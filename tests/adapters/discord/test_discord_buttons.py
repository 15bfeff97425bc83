"""Card buttons (persistent `DynamicItem`s) and the "Post update" form, dispatched by discord.py's view store."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.discord.bot import WarroomClient, start_discord
from tests.adapters.discord.conftest import DiscordGuild, followup_text, handler_failures, start_guild

MODAL = 9
DEFERRED_CHANNEL_MESSAGE = 5


def buttons(message: dict) -> list[str]:
    return [b["custom_id"] for row in message["components"] for b in row["components"]]


async def test_acknowledge_button_acknowledges_and_edits_the_card(guild: DiscordGuild) -> None:
    card, thread = await guild.declare()
    guild.clock.advance(minutes=4)

    _, answers = await guild.click("warroom:ack:INC-1", message=card, user=guild.bob)

    assert answers[0]["type"] == DEFERRED_CHANNEL_MESSAGE
    assert "posted in INC-1's thread" in followup_text(answers)
    incident = await guild.incident(1)
    assert incident.status.value == "acknowledged"
    assert any(m["content"].startswith("Bob Builder acknowledged INC-1 after 4 min")
               for m in guild.fake.sent_to(thread["id"]) if m["content"])
    (edit,) = guild.fake.requests("PATCH", rf"/channels/{guild.incidents['id']}/messages/{card['id']}$")
    fields = {f["name"]: f["value"] for f in edit.json["embeds"][0]["fields"]}
    assert fields["Status"] == "acknowledged"
    edited = guild.fake.messages[card["id"]]
    assert buttons(edited) == ["warroom:update:INC-1", "warroom:resolve:INC-1"]  # Acknowledge is gone


async def test_post_update_opens_a_form_whose_submit_posts_the_status(guild: DiscordGuild) -> None:
    card, thread = await guild.declare()

    _, answers = await guild.click("warroom:update:INC-1", message=card)

    (modal,) = answers
    assert modal["type"] == MODAL
    form = modal["data"]
    assert form["custom_id"].startswith("warroom:update-form:INC-1:")
    text_input = form["components"][0]["component"]
    assert text_input["custom_id"] == "status" and text_input["style"] == 2  # paragraph

    answers = await guild.submit_modal(form["custom_id"], {"status": "Failover done,\nerror rate falling"},
                                       channel=guild.incidents)
    assert answers[0]["type"] == DEFERRED_CHANNEL_MESSAGE
    posted = [m["content"] for m in guild.fake.sent_to(thread["id"]) if m["content"]]
    assert any(p.startswith("Status update from Alice (IC): Failover done, error rate falling.") for p in posted)
    assert (await guild.incident(1)).last_update_at is not None


async def test_resolve_button_resolves_and_removes_the_buttons(guild: DiscordGuild) -> None:
    card, _ = await guild.declare()
    await guild.click("warroom:resolve:INC-1", message=card)
    assert (await guild.incident(1)).status.value == "resolved"
    assert guild.fake.messages[card["id"]]["components"] == []


async def test_card_buttons_still_work_after_a_restart(guild: DiscordGuild, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A new process (new client, new view store) handles a click on a card the old one posted."""
    card, thread = await guild.declare()
    await guild.runtime.stop()

    chat = guild.chat.__class__(client=WarroomClient(), guild_id=guild.chat.guild_id)
    restarted = await start_discord(guild.service, guild.discord_settings, chat=chat, connect=False)
    try:
        restarted.client._connection.parsers["GUILD_CREATE"](guild.fake.guild_create())
        assert restarted.client._connection._view_store._views == {}  # nothing remembered per message
        _, answers = await guild.click("warroom:ack:INC-1", message=card, client=restarted.client,
                                       inbound=restarted.inbound)
        assert "posted in INC-1's thread" in followup_text(answers)
        assert (await guild.incident(1)).status.value == "acknowledged"
    finally:
        await restarted.stop()
        assert not (failures := handler_failures(caplog)), failures


async def test_a_new_warroom_on_the_same_database_answers_old_cards(fake, tmp_path: Path, database_url: str,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    first = await start_guild(fake, tmp_path, database_url=database_url)
    card, thread = await first.declare()
    await first.runtime.stop()
    await first.app.close()

    second = await start_guild(fake, tmp_path, database_url=database_url)
    try:
        # GUILD_CREATE (fed by start_guild) lists the active thread, as Discord's does after a reconnect.
        await second.click("warroom:ack:INC-1", message=card)
        assert (await second.incident(1)).status.value == "acknowledged"
        await second.command("status", text="all good again", where=thread)
        assert any("all good again" in (m["content"] or "") for m in fake.sent_to(thread["id"]))
    finally:
        await second.runtime.stop()
        await second.app.close()
    assert not (failures := handler_failures(caplog)), failures


async def test_snooze_on_a_nudge_postpones_the_next_one(guild: DiscordGuild) -> None:
    card, thread = await guild.declare()
    await guild.click("warroom:ack:INC-1", message=card)
    guild.clock.advance(minutes=16)
    assert await guild.service.fire_due_reminders() >= 1
    nudge = next(m for m in guild.fake.sent_to(thread["id"]) if m["content"] and m["content"].startswith("⏰"))
    assert buttons(nudge) == ["warroom:update:INC-1", "warroom:snooze:INC-1"]
    _, answers = await guild.click("warroom:snooze:INC-1", message=nudge)
    assert "Done." in followup_text(answers)
    assert any("snoozed update nudges" in (m["content"] or "") for m in guild.fake.sent_to(thread["id"]))
