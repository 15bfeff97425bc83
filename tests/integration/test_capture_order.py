"""Order-independent capture: a message and its edit, delete or pin end in the same timeline and post-mortem
whichever arrives first — one after the other, or all at once (a replay after a reconnect, concurrent webhooks)."""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.ports import Actor
from tests.support import Harness

SAID_AT = datetime(2026, 11, 24, 6, 41, 7, tzinfo=UTC)  # the platform's time, before it reached us
WORDS = "It is DNS, the resolver cache is poisoned"


def arrivals(team: Harness, room, ref: str, kinds: tuple[str, ...]) -> dict[str, object]:
    """What the platform delivers for one message: its creation and its revisions, as unstarted calls."""
    service = team.service
    calls = {
        "post": lambda: service.capture_message(room=room, actor=Actor("U1", "bob"), text=WORDS, message_id=ref,
                                                delivery_id=f"post:{ref}", at=SAID_AT),
        "edit": lambda: service.revise_message(room=room, message_id=ref, text=WORDS + " (not DNS after all)",
                                               delivery_id=f"edit:{ref}"),
        "delete": lambda: service.revise_message(room=room, message_id=ref, deleted=True,
                                                 delivery_id=f"delete:{ref}"),
        "pin": lambda: service.revise_message(room=room, message_id=ref, pinned=True, delivery_id=f"pin:{ref}"),
    }
    return {kind: calls[kind] for kind in kinds}


async def outcome(team: Harness, order: tuple[str, ...], *, together: bool, kinds: tuple[str, ...]) -> tuple:
    """Declare an incident, deliver `order` into its room, return (its messages in the timeline, post-mortem)."""
    await team.ok('declare P1 "Resolver outage"')
    [incident] = [i for i in await team.service.incidents(open_only=True) if i.title == "Resolver outage"
                  and i.number == max(j.number for j in await team.service.incidents(open_only=True))]
    room = await team.room(incident.number)
    calls = arrivals(team, room, f"m-{incident.number}", kinds)
    if together:
        await asyncio.gather(*(calls[kind]() for kind in order))
    else:
        for kind in order:
            await calls[kind]()
    async with team.service._uow() as uow:
        timeline = await uow.incidents.timeline(incident.number)
    messages = [(e.author, e.text, e.occurred_at, e.recorded_at, e.pinned, e.deleted)
                for e in timeline if e.kind.value == "message"]
    document = re.sub(r"INC-\d+", "INC-n", await team.service.export_postmortem(incident.number))
    return messages, document


@pytest.mark.parametrize("kinds", [("post", "edit", "delete"), ("post", "edit", "pin"), ("post", "delete", "pin")])
async def test_any_order_of_a_message_and_its_revisions_ends_in_the_same_timeline(team: Harness, kinds) -> None:
    results = {}
    for together in (False, True):
        for order in itertools.permutations(kinds):
            results[(together, order)] = await outcome(team, order, together=together, kinds=kinds)

    reference = results[(False, kinds)]  # the message first, then its revisions, each after the other
    different = {key: value for key, value in results.items() if value != reference}
    assert not different, f"expected {reference[0]}, got {({k: v[0] for k, v in different.items()})}"

    [(author, text, occurred_at, recorded_at, pinned, deleted)] = reference[0]
    assert occurred_at == SAID_AT and recorded_at == team.clock.now()  # the platform's time, not arrival
    assert pinned == ("pin" in kinds) and deleted == ("delete" in kinds)
    if "delete" in kinds:
        assert text == "" and WORDS not in reference[1]  # a deleted message never survives in a post-mortem
        assert "bob: _(message deleted)_" in reference[1]
    else:
        assert text == WORDS + " (not DNS after all)" and text in reference[1]


async def test_a_revision_of_a_message_that_never_comes_changes_nothing_else(team: Harness) -> None:
    await team.ok('declare P1 "Resolver outage"')
    room = await team.room(1)
    assert await team.service.revise_message(room=room, message_id="never", deleted=True, delivery_id="d:never")
    await team.say("unrelated", room=room)
    async with team.service._uow() as uow:
        messages = [e for e in await uow.incidents.timeline(1) if e.kind.value == "message"]
    assert [(e.text, e.deleted) for e in messages] == [("unrelated", False)]


async def test_messages_replayed_late_keep_the_order_they_were_written_in(team: Harness) -> None:
    await team.ok('declare P1 "Resolver outage"')
    room = await team.room(1)
    team.clock.advance(minutes=10)  # a reconnect: three messages written a minute apart arrive together now
    said = [("first", SAID_AT + timedelta(minutes=3)), ("second", SAID_AT + timedelta(minutes=4)),
            ("third", SAID_AT + timedelta(minutes=5))]
    await asyncio.gather(*(team.service.capture_message(room=room, actor=Actor("U1", "bob"), text=text,
                                                       message_id=text, at=at) for text, at in reversed(said)))
    async with team.service._uow() as uow:
        messages = [e for e in await uow.incidents.timeline(1) if e.kind.value == "message"]
    assert [(e.text, e.occurred_at) for e in messages] == said
