"""`/incident` app commands through real discord.py: INTERACTION_CREATE → CommandTree → subcommand → service."""

from __future__ import annotations

import pytest

from tests.adapters.discord.conftest import (
    DiscordGuild,
    followup_text,
    handler_failures,
    message_text,
    start_guild,
)

EPHEMERAL = 64
DEFERRED_CHANNEL_MESSAGE = 5
AUTOCOMPLETE_RESULT = 8


async def test_commands_are_synced_to_the_guild_with_the_ladder_as_severity_choices(guild: DiscordGuild) -> None:
    (sync,) = guild.fake.requests("PUT", r"/commands$")
    assert sync.path == f"/applications/{guild.fake.app_id}/guilds/{guild.fake.guild_id}/commands"
    (group,) = sync.json
    assert group["name"] == "incident"
    subcommands = {option["name"]: option for option in group["options"]}
    assert {"declare", "status", "sev", "role", "ack", "note", "playbook", "action", "freeze", "resolve", "close",
            "postmortem", "list", "show", "help"} <= set(subcommands)
    severity = next(o for o in subcommands["declare"]["options"] if o["name"] == "severity")
    assert [c["value"] for c in severity["choices"]] == ["P1", "P2", "P3"]
    incident = next(o for o in subcommands["status"]["options"] if o["name"] == "incident")
    assert incident["autocomplete"] is True


async def test_declare_defers_then_posts_the_card_in_the_incidents_channel_and_opens_a_public_thread(
        guild: DiscordGuild) -> None:
    answers = await guild.command("declare", title="Payments down", severity="P1", impact="EU card payments")

    # Deferred (ephemeral "thinking…") before any work, answered by a follow-up.
    assert answers[0]["type"] == DEFERRED_CHANNEL_MESSAGE and answers[0]["data"]["flags"] == EPHEMERAL
    callback_at = next(i for i, c in enumerate(guild.fake.calls) if c.path.endswith("/callback"))
    first_post_at = next(i for i, c in enumerate(guild.fake.calls) if c.path.endswith("/messages"))
    assert callback_at < first_post_at
    assert "Declared INC-1 (P1): Payments down" in followup_text(answers)
    assert answers[-1]["flags"] == EPHEMERAL

    (card,) = guild.fake.sent_to(guild.incidents["id"])
    embed = card["embeds"][0]
    assert embed["title"] == "INC-1 · P1 · Payments down"
    assert {"name": "Impact", "value": "EU card payments", "inline": True} in embed["fields"]
    assert [b["custom_id"] for b in card["components"][0]["components"]] == [
        "warroom:ack:INC-1", "warroom:update:INC-1", "warroom:resolve:INC-1"]

    (start,) = guild.fake.requests("POST", r"/threads$")
    assert start.path == f"/channels/{guild.incidents['id']}/messages/{card['id']}/threads"
    assert start.json["name"] == "INC-1 Payments down"
    assert "type" not in start.json or start.json["type"] == 11  # from a message: always a public thread
    thread = guild.fake.channels[card["id"]]
    in_thread = [message_text(m) for m in guild.fake.sent_to(thread["id"])]
    assert in_thread[0].startswith("First minutes checklist") and "☐ 1. Drop other work" in in_thread[0]
    assert in_thread[1].startswith("Triage checklist")

    incident = await guild.incident(1)
    assert (incident.platform, incident.channel, incident.thread, incident.card_message) == (
        "discord", guild.incidents["id"], thread["id"], card["id"])
    assert incident.reporter == "Alice (IC)"  # the member's display name (server nickname)


async def test_declare_with_an_unknown_severity_is_refused_with_the_valid_ones(guild: DiscordGuild) -> None:
    text = await guild.reply_text("declare", title="Payments down", severity="P9")
    assert "Unknown severity 'P9'" in text and "P1, P2, P3" in text
    assert guild.fake.sent_to(guild.incidents["id"]) == []


async def test_a_command_inside_the_thread_infers_the_incident(guild: DiscordGuild) -> None:
    card, thread = await guild.declare()
    before = len(guild.fake.sent_to(thread["id"]))

    answers = await guild.command("status", text="Card processor timing out; failing over", where=thread)

    posted = guild.fake.sent_to(thread["id"])[before:]
    assert len(posted) == 1
    assert posted[0]["content"].startswith("Status update from Alice (IC): Card processor timing out; failing over.")
    assert followup_text(answers) == "Done."
    incident = await guild.incident(1)
    assert incident.last_update_at is not None


async def test_a_command_outside_the_thread_names_the_incident_and_reports_where_it_posted(
        guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    text = await guild.reply_text("ack", incident="INC-1")
    assert "posted in INC-1's thread" in text
    assert any("acknowledged INC-1" in (m["content"] or "") for m in guild.fake.sent_to(thread["id"]))


async def test_a_command_in_the_channel_without_an_incident_says_how_to_name_one(guild: DiscordGuild) -> None:
    await guild.declare()
    text = await guild.reply_text("status", text="still broken")
    assert "This needs an incident" in text


async def test_a_malformed_incident_option_is_refused_without_running_anything(guild: DiscordGuild) -> None:
    await guild.declare()
    calls = len(guild.fake.requests("POST", r"/channels/"))
    text = await guild.reply_text("ack", incident="payments")
    assert "'payments' is not an incident id" in text
    assert len(guild.fake.requests("POST", r"/channels/")) == calls


async def test_role_takes_a_discord_member_and_mentions_them(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    await guild.command("role", role="ic", user=guild.bob, where=thread)
    announcement = guild.fake.sent_to(thread["id"])[-1]
    assert announcement["content"] == f"<@{guild.bob.id}> is now incident commander."
    assert announcement["allowed_mentions"] == {"parse": ["users"]}  # the assignee is pinged, nobody else
    card = guild.fake.messages[thread["id"]]
    roles = next(f for f in card["embeds"][0]["fields"] if f["name"] == "Roles")
    assert roles["value"] == f"incident commander: <@{guild.bob.id}>"  # shown as the member's name by Discord


async def test_quotes_and_options_in_free_text_reach_the_core_intact(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    tricky = 'He said "it\'s the “cache”" — owner=bob due=tomorrow'
    await guild.command("note", text=tricky, tag="rootcause", at="06:45", where=thread)
    note = [e for e in await guild.timeline() if e.text == tricky]
    assert len(note) == 1 and note[0].kind.value == "root_cause"


async def test_list_show_and_help_answer_only_the_person_who_asked(guild: DiscordGuild) -> None:
    await guild.declare("Payments down")
    await guild.declare("Search slow", severity="P3")
    listing = await guild.reply_text("list")
    assert "INC-1 P1 [declared] Payments down" in listing and "INC-2 P3 [declared] Search slow" in listing
    shown = await guild.command("show", incident="INC-2")
    assert shown[-1]["flags"] == EPHEMERAL and "INC-2 · P3 · Search slow" in followup_text(shown)
    assert "/incident commands" in await guild.reply_text("help")
    assert "status" in await guild.reply_text("help", command="status")


async def test_autocomplete_offers_the_open_incident_ids(guild: DiscordGuild) -> None:
    await guild.declare("Payments down")
    await guild.declare("Search slow", severity="P3")
    _, thread3 = await guild.declare("Login errors", severity="P2")
    await guild.command("resolve", where=thread3)

    payload = guild.command_payload("status", text="x", incident="", focused="incident")
    guild.feed("INTERACTION_CREATE", payload)
    call = await guild.fake.wait_for(lambda c: c.path.endswith(f"{payload['token']}/callback"))
    assert call.json["type"] == AUTOCOMPLETE_RESULT
    assert [c["value"] for c in call.json["data"]["choices"]] == ["INC-2", "INC-1"]
    assert call.json["data"]["choices"][0]["name"].startswith("INC-2 · P3 · declared · Search slow")

    payload = guild.command_payload("status", text="x", incident="pay", focused="incident")
    guild.feed("INTERACTION_CREATE", payload)
    call = await guild.fake.wait_for(lambda c: c.path.endswith(f"{payload['token']}/callback"))
    assert [c["value"] for c in call.json["data"]["choices"]] == ["INC-1"]


async def test_a_repeated_interaction_delivery_is_handled_once(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    payload = guild.command_payload("status", text="db failing over", where=thread)
    for times in (1, 2):
        guild.feed("INTERACTION_CREATE", payload)
        await guild.inbound.wait_handled(payload["id"], times=times)
    statuses = [m for m in guild.fake.sent_to(thread["id"]) if "db failing over" in (m["content"] or "")]
    assert len(statuses) == 1


async def test_postmortem_attaches_the_markdown_file_in_the_thread(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    await guild.command("resolve", summary="Rolled back the release", where=thread)
    text = await guild.reply_text("postmortem", where=thread)
    assert "Post-mortem for INC-1 written to" in text
    (upload,) = [c for c in guild.fake.requests("POST", rf"/channels/{thread['id']}/messages$") if c.files]
    (name, content) = upload.files[0]
    assert name.endswith(".md") and content.decode("utf-8").startswith("#")
    assert upload.json["attachments"][0]["filename"] == name
    assert upload.json["embeds"][0]["title"] == "Post-mortem for INC-1: Payments down"


async def test_with_background_delivery_the_answer_comes_first_and_the_thread_follows(
        fake, tmp_path, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """`warroom serve` delivers from the outbox behind the answer: nothing is lost, only reordered."""
    guild = await start_guild(fake, tmp_path, database_url=database_url, deliver_inline=False)
    try:
        text = await guild.reply_text("declare", title="Payments down", severity="P1")
        assert "Declared INC-1 (P1): Payments down" in text
        await guild.app.outbox.wait_idle()
        (card,) = fake.sent_to(guild.incidents["id"])
        titles = [m["embeds"][0]["title"] for m in fake.sent_to(card["id"])]
        assert titles[:2] == ["First minutes checklist", "Triage checklist"]
        assert (await guild.incident(1)).thread == card["id"]
    finally:
        await guild.runtime.stop()
        await guild.app.close()
    assert not (failures := handler_failures(caplog)), failures
