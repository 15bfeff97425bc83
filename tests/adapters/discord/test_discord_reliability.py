"""Rate limits and failures from the fake Discord API: discord.py's own retry, then the core's outbox."""

from __future__ import annotations

import pytest

from adapters.discord.chat import DiscordChat
from bot.ports import DeliveryError, Message, Room
from tests.adapters.discord.conftest import DiscordGuild


async def outbox_counts(guild: DiscordGuild) -> dict[str, int]:
    async with guild.service._uow() as uow:
        return await uow.outbox.counts()


async def test_a_429_with_retry_after_is_waited_out_and_the_card_delivered_once(guild: DiscordGuild) -> None:
    guild.fake.fail_next(1, status=429, retry_after=0.2, method="POST",
                         path=rf"^/channels/{guild.incidents['id']}/messages$")

    card, thread = await guild.declare()

    posts = guild.fake.requests("POST", rf"^/channels/{guild.incidents['id']}/messages$")
    assert [c.status for c in posts] == [429, 200]
    assert len(guild.fake.sent_to(guild.incidents["id"])) == 1
    assert (await guild.incident(1)).thread == thread["id"]


async def test_a_long_429_goes_back_to_the_outbox_and_is_delivered_once_after_retry_after(
        guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    thread_posts = rf"^/channels/{thread['id']}/messages$"
    guild.fake.fail_next(1, status=429, retry_after=60.0, method="POST", path=thread_posts)

    await guild.command("status", text="Failing over to the standby", where=thread)

    assert [c.status for c in guild.fake.requests("POST", thread_posts)][-1] == 429  # too long for discord.py to wait
    assert not any("standby" in (m["content"] or "") for m in guild.fake.sent_to(thread["id"]))
    assert (await outbox_counts(guild)).get("pending") == 1

    assert await guild.app.outbox.drain() == 0  # not before Discord's retry_after
    guild.clock.advance(seconds=61)
    assert await guild.app.outbox.drain() == 1

    delivered = [m for m in guild.fake.sent_to(thread["id"]) if "standby" in (m["content"] or "")]
    assert len(delivered) == 1
    assert (await outbox_counts(guild)).get("pending", 0) == 0


async def test_a_failed_thread_open_is_retried_without_posting_a_second_card(guild: DiscordGuild) -> None:
    # A 429 without Discord's Via header (a proxy's) is not waited out by discord.py: the outbox comes back.
    guild.fake.fail_next(1, status=429, retry_after=5, via=False, method="POST", path=r"/threads$")

    answers = await guild.command("declare", title="Payments down", severity="P1")

    assert "Declared INC-1" in str(answers[-1])
    assert len(guild.fake.sent_to(guild.incidents["id"])) == 1
    assert (await guild.incident(1)).thread is None
    guild.clock.advance(seconds=6)
    await guild.app.outbox.drain()

    (card,) = guild.fake.sent_to(guild.incidents["id"])
    incident = await guild.incident(1)
    assert incident.thread == card["id"] and incident.card_message == card["id"]
    assert [m["embeds"][0]["title"] for m in guild.fake.sent_to(card["id"])][:2] == [
        "First minutes checklist", "Triage checklist"]


async def test_a_server_error_is_retried_by_discordpy(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    guild.fake.fail_next(1, status=500, method="POST", path=rf"^/channels/{thread['id']}/messages$")
    await guild.command("note", text="customer reports stopped", where=thread)
    assert [c.status for c in guild.fake.requests("POST", rf"^/channels/{thread['id']}/messages$")][-2:] == [500, 200]


async def test_forbidden_and_not_found_are_permanent_delivery_errors(guild: DiscordGuild) -> None:
    chat: DiscordChat = guild.chat
    guild.fake.fail_next(1, status=403, code=50013, method="POST")
    with pytest.raises(DeliveryError, match="403") as forbidden:
        await chat.post(room=Room("discord", guild.incidents["id"]), message=Message(text="hi"))
    assert forbidden.value.permanent
    with pytest.raises(DeliveryError) as unknown:
        await chat.post(room=Room("discord", "1310000000000099999"), message=Message(text="hi"))
    assert unknown.value.permanent


async def test_a_proxy_429_carries_its_retry_after_to_the_outbox(guild: DiscordGuild) -> None:
    guild.fake.fail_next(1, status=429, retry_after=7, via=False, method="POST")
    with pytest.raises(DeliveryError) as limited:
        await guild.chat.post(room=Room("discord", guild.incidents["id"]), message=Message(text="hi"))
    assert limited.value.retry_after == 7 and not limited.value.permanent


async def test_a_permanent_failure_is_given_up_by_the_outbox_not_retried(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    guild.fake.fail_next(1, status=403, code=50001, method="POST", path=rf"^/channels/{thread['id']}/messages$")
    await guild.command("note", text="will not arrive", where=thread)
    assert (await outbox_counts(guild)).get("failed") == 1
    guild.clock.advance(hours=1)
    await guild.app.outbox.drain()
    assert len([c for c in guild.fake.requests("POST", rf"^/channels/{thread['id']}/messages$")
                if c.json and "will not arrive" in (c.json.get("content") or "")]) == 1


def with_text(guild: DiscordGuild, channel_id: str, text: str) -> list[dict]:
    return [m for m in guild.fake.sent_to(channel_id) if text in (m["content"] or "")]


@pytest.mark.parametrize("window", ["within Discord's nonce window", "after it"])
async def test_a_post_stored_whose_answer_was_lost_is_not_posted_twice(guild: DiscordGuild, window: str) -> None:
    _, thread = await guild.declare()
    fake_now = [0.0]
    guild.fake.clock = lambda: fake_now[0]
    guild.fake.lose_answer_next(1, how="drop", method="POST", path=rf"^/channels/{thread['id']}/messages$")

    await guild.command("note", text="customer reports stopped", where=thread)

    assert len(with_text(guild, thread["id"], "customer reports stopped")) == 1  # Discord stored it
    assert (await outbox_counts(guild)).get("pending") == 1  # but warroom could not know
    if window.startswith("within"):
        fake_now[0] += 60
        # Reading history is not allowed here (no Read Message History): the nonce alone must do it.
        guild.fake.fail_next(1, status=403, code=50001, method="GET", path=rf"^/channels/{thread['id']}/messages$")
    else:
        fake_now[0] += 3600  # Discord forgot the nonce: the earlier copy is found in the thread's history
    guild.clock.advance(minutes=5)
    assert await guild.app.outbox.drain() == 1
    assert guild.fake.deduplicated == (1 if window.startswith("within") else 0)

    assert len(with_text(guild, thread["id"], "customer reports stopped")) == 1
    assert (await outbox_counts(guild)).get("pending", 0) == 0
    nonces = {c.json.get("nonce") for c in guild.fake.requests("POST", rf"^/channels/{thread['id']}/messages$")
              if c.json and "customer reports stopped" in (c.json.get("content") or "")}
    assert len(nonces) == 1 and len(nonces.pop()) <= 25  # one nonce per outbox message, not one per attempt


async def test_a_card_stored_whose_answer_was_lost_is_posted_once_and_its_thread_opened(guild: DiscordGuild) -> None:
    guild.fake.lose_answer_next(1, how="drop", method="POST", path=rf"^/channels/{guild.incidents['id']}/messages$")

    answers = await guild.command("declare", title="Payments down", severity="P1")

    assert "Declared INC-1" in str(answers[-1])
    assert (await guild.incident(1)).thread is None
    guild.clock.advance(minutes=5)
    await guild.app.outbox.drain()

    (card,) = guild.fake.sent_to(guild.incidents["id"])
    assert (await guild.incident(1)).thread == card["id"]
    assert guild.fake.requests("GET", rf"^/channels/{guild.incidents['id']}/messages$")  # found, not re-sent


async def test_a_lost_answer_with_a_500_is_retried_by_discordpy_onto_the_same_message(guild: DiscordGuild) -> None:
    _, thread = await guild.declare()
    guild.fake.lose_answer_next(1, how="500", method="POST", path=rf"^/channels/{thread['id']}/messages$")
    await guild.command("note", text="queue drained", where=thread)
    assert len(with_text(guild, thread["id"], "queue drained")) == 1
    assert guild.fake.deduplicated == 1


async def test_the_fake_forgets_a_nonce_after_its_window(fake) -> None:
    import aiohttp

    fake_now = [0.0]
    fake.clock = lambda: fake_now[0]
    url = f"{fake.base_url}/channels/{fake.incidents_channel['id']}/messages"
    async with aiohttp.ClientSession() as session:
        ids = []
        for advance in (0, 10, fake.nonce_window + 1):
            fake_now[0] += advance
            async with session.post(url, json={"content": "x", "nonce": "n1", "enforce_nonce": True}) as answer:
                ids.append((await answer.json())["id"])
    assert ids[0] == ids[1] != ids[2]
