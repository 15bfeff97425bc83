"""The port's remaining methods on real discord.py: private replies, display names, files people read."""

from __future__ import annotations

import re
from pathlib import Path

import discord

from adapters.discord.bot import REQUIRED_PERMISSIONS, invite_url
from adapters.discord.chat import answering
from bot.ports import Message, Room
from tests.adapters.discord.conftest import DiscordGuild

DOCS = Path(__file__).parents[3] / "docs" / "discord.md"
EPHEMERAL = 64


async def test_reply_privately_answers_through_the_pending_interaction_as_ephemeral(guild: DiscordGuild) -> None:
    payload = guild.command_payload("list")
    interaction = discord.Interaction(data=payload, state=guild.client._connection)
    await interaction.response.defer(ephemeral=True, thinking=True)
    room = Room("discord", guild.incidents["id"])

    with answering(interaction):
        await guild.chat.reply_privately(room=room, user=guild.alice.id, message=Message(text="only for you"))

    (followup,) = [a for a in guild.fake.answers(payload["token"])
                   if a["method"] == "POST" and "callback" not in a["path"]]
    assert followup["content"] == "only for you" and followup["flags"] == EPHEMERAL
    assert not [m for m in guild.fake.sent_to(guild.incidents["id"]) if m["content"] == "only for you"]


async def test_reply_privately_without_an_interaction_addresses_the_person_in_the_room(guild: DiscordGuild) -> None:
    room = Room("discord", guild.incidents["id"])
    await guild.chat.reply_privately(room=room, user=guild.bob.id, message=Message(text="your update is due"))
    (sent,) = [c for c in guild.fake.requests("POST", rf"^/channels/{guild.incidents['id']}/messages$")]
    assert sent.json["content"] == f"<@{guild.bob.id}> your update is due"
    assert sent.json["allowed_mentions"] == {"parse": [], "users": [int(guild.bob.id)]}  # only that person


async def test_display_name_is_the_server_nickname_fetched_once(guild: DiscordGuild) -> None:
    assert await guild.chat.display_name(user=guild.alice.id) == "Alice (IC)"
    assert await guild.chat.display_name(user=guild.alice.id) == "Alice (IC)"
    assert len(guild.fake.requests("GET", rf"/members/{guild.alice.id}$")) == 1
    assert await guild.chat.display_name(user=guild.bob.id) == "Bob Builder"  # no nickname: the global name
    assert await guild.chat.display_name(user="1310000000000099999") == "1310000000000099999"  # unknown: the id


async def test_mentions_in_the_attached_postmortem_are_names(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    await guild.command("role", role="ic", user=guild.bob, where=thread)
    await guild.command("resolve", where=thread)
    await guild.command("postmortem", where=thread)
    (upload,) = [c for c in guild.fake.requests("POST", rf"^/channels/{thread['id']}/messages$") if c.files]
    document = upload.files[0][1].decode("utf-8")
    assert "@Bob Builder" in document and "<@" not in document


def test_the_invite_url_asks_for_exactly_the_documented_permissions() -> None:
    url = invite_url(1310000000000000000)
    assert "scope=bot+applications.commands" in url
    assert f"permissions={REQUIRED_PERMISSIONS.value}" in url
    assert not REQUIRED_PERMISSIONS.mention_everyone and not REQUIRED_PERMISSIONS.administrator
    documented = set(re.findall(r"permissions=(\d+)", DOCS.read_text(encoding="utf-8")))
    assert documented == {str(REQUIRED_PERMISSIONS.value)}
