"""Issue 13, seeded chaos on Discord: a burst of declares, thread messages, status updates, edits and deletes (some
replayed back to back, as after a RESUME) while the fake REST API flips (by a seeded `random.Random`) between healthy,
slow (a short 429 discord.py waits out), long 429s, 5xx and answers lost after the write (inside and outside
Discord's nonce window, whose clock is the test's). Afterwards, with the clock advanced instead of sleeping: every
outbox message is in Discord exactly once, every edit and delete is in the timeline and the post-mortem, and nothing
is left in the outbox."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.adapters.discord.conftest import DiscordGuild, message_text

SEEDS = [7, 1311, 90210]
STEPS = 26


@dataclass
class Said:
    incident: int
    message: dict[str, Any]
    text: str
    deleted: bool = False


@dataclass
class Script:
    rng: random.Random
    incidents: int = 0
    statuses: list[tuple[str, str]] = field(default_factory=list)  # (thread id, token)
    said: list[Said] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    threads_fed: set[str] = field(default_factory=set)


def _chaos(guild: DiscordGuild, script: Script) -> str:
    rng, fake = script.rng, guild.fake
    mode = rng.choice(["healthy", "healthy", "slow", "429", "5xx", "lost"])
    method, path = rng.choice([("POST", r"/messages$"), ("PATCH", r"/messages/\d+$"), ("POST", r"/threads$")])
    if mode == "slow":  # Discord says wait a moment: discord.py waits it out itself
        fake.fail_next(1, status=429, retry_after=0.05, method=method, path=path)
    elif mode == "429":  # too long for discord.py (or a proxy's, without Via): back to the outbox
        fake.fail_next(rng.randint(1, 2), status=429, retry_after=60.0, via=rng.random() < 0.5, method=method,
                       path=path)
    elif mode == "5xx":  # 503 goes back to the outbox at once; a 500 is retried by discord.py after 1 s
        fake.fail_next(1, status=rng.choice((503, 503, 503, 500)), method=method, path=path)
    elif mode == "lost":  # "500": discord.py re-sends (same nonce); "drop": the outbox comes back later
        fake.lose_answer_next(1, how=rng.choice(("drop", "drop", "500")), method="POST", path=r"/messages$")
    script.modes.append(f"{mode}:{method} {path}")
    return mode


async def _threads(guild: DiscordGuild, script: Script) -> dict[int, dict[str, Any]]:
    """Open incidents whose thread warroom knows; a thread opened late is announced to the client as the gateway
    would (THREAD_CREATE)."""
    threads = {}
    for incident in await guild.service.incidents(open_only=True):
        if not incident.thread or incident.thread not in guild.fake.channels:
            continue
        thread = guild.fake.channels[incident.thread]
        if thread["id"] not in script.threads_fed:
            guild.feed("THREAD_CREATE", {**thread, "newly_created": True})
            await guild.inbound.wait_handled(f"thread:{thread['id']}")
            script.threads_fed.add(thread["id"])
        threads[incident.number] = thread
    return threads


async def _step(guild: DiscordGuild, script: Script, index: int) -> None:
    rng = script.rng
    threads = await _threads(guild, script)
    live = [s for s in script.said if not s.deleted]
    choices = ["declare"] * (3 if script.incidents < 2 else 1 if script.incidents < 5 else 0)
    if threads:
        choices += ["say", "say", "status", "replay"]
    if live:
        choices += ["edit", "delete"]
    what = rng.choice(choices)
    _chaos(guild, script)
    person = rng.choice((guild.alice, guild.bob))
    if what == "declare":
        script.incidents += 1
        await guild.command("declare", title=f"chaos {index} outage", severity=f"P{rng.randint(1, 3)}", by=person)
    elif what == "status":
        number, thread = rng.choice(sorted(threads.items()))
        token = f"status-{index}-{rng.randrange(10**6)}"
        script.statuses.append((thread["id"], token))
        await guild.command("status", text=token, where=thread, by=person)
    elif what == "say":
        number, thread = rng.choice(sorted(threads.items()))
        text = f"said-{index}-{rng.randrange(10**6)}"
        message = await guild.say(text, thread=thread, user=person)
        script.said.append(Said(number, message, text))
    elif what == "replay":  # a message and its deletion delivered back to back (a RESUME after a reconnect)
        number, thread = rng.choice(sorted(threads.items()))
        text = f"replayed-{index}-{rng.randrange(10**6)}"
        payload = guild.message_payload(text, channel=thread, user=person)
        guild.feed("MESSAGE_CREATE", payload)
        guild.feed("MESSAGE_DELETE", {"id": payload["id"], "channel_id": thread["id"], "guild_id": guild.fake.guild_id})
        await guild.inbound.wait_handled(f"message:{payload['id']}")
        await guild.inbound.wait_handled(f"delete:{payload['id']}")
        script.said.append(Said(number, payload, text, deleted=True))
    elif what == "edit":
        said = rng.choice(live)
        new = f"{said.text.split(' ')[0]} edited-{index}"
        await guild.edit(said.message, new)
        said.text = new
    else:
        said = rng.choice(live)
        await guild.delete(said.message)
        said.deleted = True
    script.modes[-1] += f" → {what}"


async def _outbox(guild: DiscordGuild) -> dict[str, int]:
    async with guild.service._uow() as uow:
        return await uow.outbox.counts()


async def _drain_until_quiet(guild: DiscordGuild, script: Script) -> dict[str, int]:
    """Heal the fake, then let the outbox's retries come due (the clock moves, nothing sleeps)."""
    guild.fake._faults.clear()
    counts: dict[str, int] = {}
    for _ in range(12):
        # within Discord's nonce window sometimes (the nonce finds the copy), past it other times (history does)
        guild.clock.advance(minutes=script.rng.choice((1, 2, 10)))
        await guild.service.tick()
        await guild.app.outbox.drain()
        await _threads(guild, script)
        counts = await _outbox(guild)
        if not any(counts.get(s) for s in ("pending", "sending", "failed")):
            break
    return counts


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_seeded_burst_under_a_flaky_discord_is_delivered_exactly_once(guild: DiscordGuild, seed: int) -> None:
    guild.fake.clock = lambda: guild.clock.now().timestamp()  # Discord's nonce window runs on the test's clock
    script = Script(random.Random(seed))
    for index in range(STEPS):
        await _step(guild, script, index)
    counts = await _drain_until_quiet(guild, script)
    trail = f"seed {seed}: " + "; ".join(script.modes)

    assert not any(counts.get(s) for s in ("pending", "sending", "failed")), (counts, trail)

    incidents = {i.number: i for i in await guild.service.incidents(open_only=False)}
    assert len(incidents) == script.incidents, trail
    cards = [m for m in guild.fake.sent_to(guild.incidents["id"]) if m["embeds"]]
    for number, incident in incidents.items():
        mine = [m for m in cards if f"INC-{number}" in json.dumps(m["embeds"])]
        assert len(mine) == 1, (f"INC-{number}: {len(mine)} cards", trail)
        assert incident.thread == mine[0]["id"], trail
        titles = [e.get("title") for m in guild.fake.sent_to(mine[0]["id"]) for e in m["embeds"]]
        assert titles.count("First minutes checklist") == 1 and titles.count("Triage checklist") == 1, (
            number, titles, trail)
    for thread_id, token in script.statuses:
        copies = [m for m in guild.fake.sent_to(thread_id) if token in message_text(m)]
        assert len(copies) == 1, (token, len(copies), trail)

    for number in incidents:
        document = await guild.service.export_postmortem(number)
        timeline = json.dumps([str(entry) for entry in await guild.timeline(number)])
        for said in (s for s in script.said if s.incident == number):
            token = said.text.split(" ")[0]
            if said.deleted:
                assert token not in document and token not in timeline, (said.text, trail)
            else:
                assert said.text in document, (said.text, trail)
                assert document.count(token) == 1, (said.text, trail)
