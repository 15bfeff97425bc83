"""Rendering and the pure edges: escaping, mentions, parser text built from options, intents, settings."""

from __future__ import annotations

from datetime import time

import pytest
from pydantic import ValidationError

from adapters.discord.bot import (
    build_intents,
    command_text,
    incident_ref,
    quote,
    start_discord,
)
from adapters.discord.render import SAFE_MENTIONS, clip, escape, render
from adapters.discord.settings import DiscordSettings
from bot.incident import commands as cmd
from bot.ports import Attachment, Button, ChecklistLine, Field, Message
from tests.adapters.discord.conftest import DiscordGuild


@pytest.mark.parametrize(("text", "expected"), [
    ("db *down* for _all_ ~~users~~ ||now||", r"db \*down\* for \_all\_ \~\~users\~\~ \|\|now\|\|"),
    ("# not a heading\n> not a quote\n-# not small", "\\# not a heading\n\\> not a quote\n\\-# not small"),
    ("[click me](https://evil.example)", r"\[click me](https://evil.example)"),
    ("see https://grafana.example/d/a_b_c?x=1_2", "see https://grafana.example/d/a_b_c?x=1_2"),
    ("run `docker compose ps` then *wait*", r"run `docker compose ps` then \*wait\*"),
    ("a stray ` backtick and a back\\slash", r"a stray \` backtick and a back\\slash"),
    ("<@131000000000000001> and <#131000000000000002>", "<@131000000000000001> and <#131000000000000002>"),
    ("INC-7 [declared] 2 * 3", r"INC-7 [declared] 2 \* 3"),
])
def test_escape_shows_user_text_as_typed(text: str, expected: str) -> None:
    assert escape(text) == expected


def test_clip_never_leaves_a_dangling_escape() -> None:
    assert clip("abc", 3) == "abc"
    assert clip(r"ab\*cd", 4) == "ab…"
    assert len(clip("x" * 5000, 4096)) == 4096


def test_a_card_renders_as_an_embed_with_persistent_buttons() -> None:
    card = Message(title="INC-7 · P1 · *Payments* down", fields=(Field("Status", "declared"),),
                   checklist=(ChecklistLine(1, "Page the on-call", done=True), ChecklistLine(2, "Roll back")),
                   buttons=(Button("ack", "Acknowledge", "INC-7", "primary"), Button("resolve", "Resolve", "INC-7",
                                                                                    "danger")),
                   footer="Run commands in this thread", kind="card")
    rendered = render(card)
    assert rendered.content is None
    (embed,) = rendered.embeds
    assert embed.title == r"INC-7 · P1 · \*Payments\* down"
    assert embed.description == "☑ 1. Page the on-call\n☐ 2. Roll back"
    assert [(f.name, f.value) for f in embed.fields] == [("Status", "declared")]
    assert rendered.view is not None and rendered.view.timeout is None and rendered.view.is_persistent()
    assert [c.custom_id for c in rendered.view.children] == ["warroom:ack:INC-7", "warroom:resolve:INC-7"]


def test_plain_text_is_message_content_and_long_text_an_embed() -> None:
    assert render(Message(text="INC-7 resolved.", kind="update")).content == "INC-7 resolved."
    assert render(Message(text="no update for 20 min", kind="nudge")).content == "⏰ no update for 20 min"
    long = render(Message(text="x" * 3000, kind="playbook"))
    assert long.content is None and len(long.embeds[0].description or "") == 3000


def test_an_attachment_becomes_a_fresh_discord_file_each_time() -> None:
    rendered = render(Message(title="Post-mortem", attachment=Attachment("inc-7.md", b"# INC-7\n")))
    first, second = rendered.file(), rendered.file()
    assert first is not second and first.filename == "inc-7.md" and first.fp.read() == b"# INC-7\n"


def test_allowed_mentions_forbid_everyone_here_and_roles() -> None:
    assert SAFE_MENTIONS.to_dict() == {"parse": ["users"]}


async def test_everyone_in_a_status_update_is_sent_with_mentions_that_forbid_it(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    role = guild.fake.next_id()
    await guild.command("status", text=f"@everyone @here <@&{role}> db is back", where=thread)
    (sent,) = [c for c in guild.fake.requests("POST", rf"^/channels/{thread['id']}/messages$")
               if "db is back" in (c.json.get("content") or "")]
    assert f"@everyone @here <@&{role}> db is back" in sent.json["content"]
    assert sent.json["allowed_mentions"] == {"parse": ["users"]}  # no "everyone", no "roles"


async def test_markdown_in_a_status_update_is_escaped(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    await guild.command("status", text="**all** fixed, see [runbook](https://evil.example)", where=thread)
    content = guild.fake.sent_to(thread["id"])[-1]["content"]
    assert r"\*\*all\*\* fixed, see \[runbook](https://evil.example)" in content


@pytest.mark.parametrize("text", [
    'plain', 'with "double" quotes', "it's", "“curly” and 'single' and \"double\"", "«guillemets»",
    'all of them " “” «» \' ‘’', "owner=bob due=2026-12-01 impact=x", "--at 09:00 rootcause",
])
def test_quoted_free_text_reaches_the_parser_intact(text: str) -> None:
    parsed = cmd.parse(command_text("status", quote(text), incident="7"))
    assert isinstance(parsed, cmd.PostStatus) and parsed.incident == 7
    # Only text holding every closing quote the parser knows loses one: its " becomes ”.
    expected = text.replace('"', "”") if text.startswith("all of them") else text
    assert parsed.text == expected


def test_option_values_become_core_commands() -> None:
    assert cmd.parse(command_text("declare", f"sev={quote('p2')}", quote("Search slow"),
                                  f"impact={quote('EU users')}")) == cmd.Declare(
        title="Search slow", severity="P2", impact="EU users")
    assert cmd.parse(command_text("note", "rootcause", f"--at {quote('09:52')}", quote("expired cert"),
                                  incident="INC-3")) == cmd.AddNote(incident=3, text="expired cert",
                                                                    tag="rootcause", at=time(9, 52))
    assert cmd.parse(command_text("action", "done", "2")) == cmd.CompleteAction(item=2)
    assert cmd.parse(command_text("role", quote("ic"), "<@131000000000000001>")) == cmd.AssignRole(
        role="ic", user="<@131000000000000001>")
    assert cmd.parse(command_text("help")) == cmd.Help()


@pytest.mark.parametrize(("value", "expected"), [("INC-7", "INC-7 "), ("7", "INC-7 "), ("#7", "INC-7 "),
                                                 ("inc7", "INC-7 "), (None, ""), ("  ", "")])
def test_incident_option_forms(value: str | None, expected: str) -> None:
    assert incident_ref(value) == expected


def test_the_runtime_asks_for_the_message_content_intent_and_not_members() -> None:
    intents = build_intents()
    assert intents.message_content and intents.guild_messages and intents.guild_reactions and intents.guilds
    assert not intents.members and not intents.presences


async def test_the_started_client_uses_those_intents(guild: DiscordGuild) -> None:
    assert guild.client.intents.message_content
    assert guild.client._connection._intents.value == build_intents().value


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "abc.def")
    monkeypatch.setenv("DISCORD_GUILD_ID", "1310000000000000001")
    monkeypatch.setenv("DISCORD_INCIDENTS_CHANNEL_ID", "1310000000000000003")
    monkeypatch.setenv("DISCORD_API_URL", "http://127.0.0.1:9/api/v10/")
    settings = DiscordSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.configured and settings.bot_token.get_secret_value() == "abc.def"  # type: ignore[union-attr]
    assert (settings.guild_id, settings.incidents_channel_id) == (1310000000000000001, 1310000000000000003)
    assert settings.route_base == "http://127.0.0.1:9/api/v10"
    assert "abc.def" not in repr(settings)
    with pytest.raises(ValidationError):
        settings.guild_id = 1  # type: ignore[misc]  # frozen
    monkeypatch.delenv("DISCORD_BOT_TOKEN")
    assert not DiscordSettings(_env_file=None).configured  # type: ignore[call-arg]


async def test_starting_without_a_token_says_which_variable_is_missing(guild: DiscordGuild,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISCORD_BOT_TOKEN", raising=False)
    with pytest.raises(ValueError, match="DISCORD_BOT_TOKEN"):
        await start_discord(guild.service, DiscordSettings(_env_file=None), connect=False)  # type: ignore[call-arg]


def test_text_that_no_discord_user_wrote_pings_nobody() -> None:
    """A customer's reply, an operator's phone or an alert carrying `<@…>` reaches the thread as text: Discord is
    told to ping nobody. A Discord member's own mention in their status still pings (users only)."""
    from adapters.discord.render import render
    from bot.ports import Message

    foreign = render(Message(text="<@123456789012345678> please call me", kind="update"))
    assert foreign.send_kwargs()["allowed_mentions"].to_dict() == {"parse": []}
    assert foreign.edit_kwargs()["allowed_mentions"].to_dict() == {"parse": []}
    own = render(Message(text="<@123456789012345678> take the lead", kind="update", mentions_from="discord"))
    assert own.send_kwargs()["allowed_mentions"].to_dict() == {"parse": ["users"]}
