"""Issue 13, seeded chaos on Slack: a burst of declares, thread messages, status updates, edits and deletes while the
fake Web API flips (by a seeded `random.Random`) between healthy, slow (calls held until released), 429, 5xx and
answers lost after the write. Afterwards, with the clock advanced instead of sleeping: every outbox message is in
Slack exactly once, every edit and delete is in the timeline and the post-mortem, and nothing is left in the outbox.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from tests.adapters.slack.slack_team import ALICE, BOB, CAROL, INCIDENTS, SlackTeam

SEEDS = [7, 1311, 90210]
STEPS = 36
FAULTY = ("chat.postMessage", "chat.update", "conversations.replies")


@dataclass
class Said:
    incident: int
    ts: str
    thread: str
    text: str
    deleted: bool = False


@dataclass
class Script:
    rng: random.Random
    incidents: int = 0
    statuses: list[str] = field(default_factory=list)
    said: list[Said] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)


def _chaos(slack: SlackTeam, script: Script) -> str:
    """Flip the fake Slack into one of its moods for the next action; returns the mood."""
    rng, fake = script.rng, slack.fake
    mode = rng.choice(["healthy", "healthy", "slow", "429", "5xx", "lost"])
    method = rng.choice(FAULTY)
    if mode == "slow":
        fake.hold(rng.choice(("chat.postMessage", "chat.update")))
    elif mode == "429":  # Retry-After 0 keeps the client's own wait short; 4 in a row go back to the outbox
        fake.fail(method, status=429, retry_after=0, times=rng.randint(1, 4))
    elif mode == "5xx":
        fake.fail(method, status=rng.choice((500, 502, 503)), times=rng.randint(1, 2))
    elif mode == "lost":
        fake.lose_answer(rng.choice(("chat.postMessage", "chat.update")), how=rng.choice(("500", "drop")))
    script.modes.append(f"{mode}:{method}")
    return mode


async def _run(slack: SlackTeam, mode: str, action: Callable[[], Awaitable[object]]) -> None:
    if mode != "slow":
        await action()
        return
    task = asyncio.ensure_future(action())
    for _ in range(2000):  # until the held call has arrived (or the action needed none): no timing sleep
        if slack.fake.waiting or task.done():
            break
        await asyncio.sleep(0)
    slack.fake.release()
    await task


async def _threads(slack: SlackTeam) -> dict[int, str]:
    return {i.number: i.thread for i in await slack.service.incidents(open_only=True) if i.thread}


async def _step(slack: SlackTeam, script: Script, index: int) -> None:
    rng = script.rng
    threads = await _threads(slack)
    live = [s for s in script.said if not s.deleted]
    choices = ["declare"] * (3 if script.incidents < 2 else 1 if script.incidents < 5 else 0)
    if threads:
        choices += ["say", "say", "say", "status"]
    if live:
        choices += ["edit", "delete"]
    what = rng.choice(choices)
    mode = _chaos(slack, script)
    user = rng.choice((ALICE, BOB, CAROL))
    if what == "declare":
        script.incidents += 1
        title = f"chaos {index} outage"
        await _run(slack, mode, lambda: slack.command(f'declare P{rng.randint(1, 3)} "{title}"', user=user))
    elif what == "say":
        number, thread = rng.choice(sorted(threads.items()))
        text = f"said-{index}-{rng.randrange(10**6)}"
        ts_box: list[str] = []

        async def say() -> None:
            ts_box.append(await slack.say(text, thread=thread, user=user))

        await _run(slack, mode, say)
        script.said.append(Said(number, ts_box[0], thread, text))
    elif what == "status":
        number, thread = rng.choice(sorted(threads.items()))
        token = f"status-{index}-{rng.randrange(10**6)}"
        script.statuses.append(token)
        await _run(slack, mode, lambda: slack.mention(f'status "{token}"', thread=thread, user=user))
    elif what == "edit":
        said = rng.choice(live)
        new = f"{said.text.split(' ')[0]} edited-{index}"
        event = slack.edit_event(said.ts, old=said.text, new=new, thread=said.thread)
        await _run(slack, mode, lambda: slack.event(event))
        said.text = new
    else:
        said = rng.choice(live)
        event = slack.delete_event(said.ts, text=said.text, thread=said.thread)
        await _run(slack, mode, lambda: slack.event(event))
        said.deleted = True
    script.modes[-1] += f" → {what}"


async def _outbox(slack: SlackTeam) -> dict[str, int]:
    async with slack.service._uow() as uow:
        return await uow.outbox.counts()


async def _drain_until_quiet(slack: SlackTeam) -> dict[str, int]:
    """Heal the fake, then let the outbox's retries come due (the clock moves, nothing sleeps)."""
    slack.fake.release()
    slack.fake._failures.clear()
    slack.fake._lost.clear()
    counts: dict[str, int] = {}
    for _ in range(12):
        slack.clock.advance(minutes=10)  # past any Retry-After and the longest backoff
        await slack.service.tick()
        await slack.app.outbox.drain()
        counts = await _outbox(slack)
        if not any(counts.get(s) for s in ("pending", "sending", "failed")):
            break
    return counts


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_seeded_burst_under_a_flaky_slack_is_delivered_exactly_once(make_slack, seed):
    slack = await make_slack(timeout=2)
    slack.errors_expected = True  # 5xx and lost answers are logged on purpose
    script = Script(random.Random(seed))
    for index in range(STEPS):
        await _step(slack, script, index)
    counts = await _drain_until_quiet(slack)
    trail = f"seed {seed}: " + "; ".join(script.modes)

    assert not any(counts.get(s) for s in ("pending", "sending", "failed")), (counts, trail)

    incidents = {i.number: i for i in await slack.service.incidents(open_only=False)}
    assert len(incidents) == script.incidents, trail
    cards = slack.fake.posted(INCIDENTS, where=lambda m: not m.get("thread_ts"))
    for number, incident in incidents.items():
        mine = [m for m in cards if f"INC-{number}" in json.dumps(m)]
        assert len(mine) == 1, (f"INC-{number}: {len(mine)} cards", trail)
        assert incident.thread == mine[0]["ts"], trail
        in_thread = slack.fake.posted(INCIDENTS, where=lambda m, ts=mine[0]["ts"]: m.get("thread_ts") == ts)
        checklists = [m["text"] for m in in_thread if m["text"] in ("First minutes checklist", "Triage checklist")]
        assert sorted(checklists) == ["First minutes checklist", "Triage checklist"], (number, checklists, trail)
    for token in script.statuses:
        copies = slack.fake.posted(INCIDENTS, where=lambda m, t=token: t in m.get("text", ""))
        assert len(copies) == 1, (token, len(copies), trail)

    for number in incidents:
        document = await slack.service.export_postmortem(number)
        async with slack.service._uow() as uow:
            timeline = json.dumps([str(entry) for entry in await uow.incidents.timeline(number)])
        for said in (s for s in script.said if s.incident == number):
            token = said.text.split(" ")[0]
            if said.deleted:
                assert token not in document and token not in timeline, (said, trail)
            else:
                assert said.text in document, (said, trail)
                assert document.count(token) == 1, (said, trail)
