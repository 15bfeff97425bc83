"""WARROOM_INCIDENT_MODE=channel: a channel per incident, the reporter invited, an announcement in #incidents."""

from __future__ import annotations

import pytest

from adapters.slack.chat import channel_name
from bot.ports import Room
from tests.adapters.slack.slack_team import ALICE, BOB


@pytest.fixture
async def slack(make_slack):
    return await make_slack(incident_mode="channel", announce="#incidents")


async def test_declare_creates_a_channel_invites_the_reporter_and_announces_it(slack):
    slack.fake.taken_names.add("inc-1-payments-callbacks-not-arriving")

    await slack.command('declare P1 "Payments callbacks not arriving"', user=ALICE)

    created = slack.fake.of("conversations.create", ok_only=False)
    assert [(c.params["name"], c.response.get("error")) for c in created] == [
        ("inc-1-payments-callbacks-not-arriving", "name_taken"), ("inc-1-payments-callbacks-not-arriving-2", None)]
    channel = created[1].response["channel"]["id"]
    [invite] = slack.fake.of("conversations.invite")
    assert invite.params == {"channel": channel, "users": ALICE}
    card, *rest = slack.fake.of("chat.postMessage")
    assert card.params["channel"] == channel and "thread_ts" not in card.params
    [announcement] = [c for c in rest if c.params["channel"] == "#incidents"]
    assert announcement.params["text"] == f"[INCIDENT] P1 - Payments callbacks not arriving · <#{channel}>"
    checklists = [c for c in rest if c.params["channel"] == channel]
    assert checklists and all("thread_ts" not in c.params for c in checklists)  # the channel is the room
    assert await slack.service.room_of(1) == Room("slack", channel, None)


async def test_commands_and_messages_in_the_incident_channel_infer_the_incident(slack):
    await slack.command('declare P2 "Importer stuck"', user=ALICE)
    channel = slack.fake.of("conversations.create")[0].response["channel"]["id"]

    response = await slack.command('status "restarted the importer"', user=BOB, channel=channel)
    await slack.say("queue draining", channel=channel, thread=None, user=BOB)
    await slack.say("in a side thread", channel=channel, thread=slack.fake.next_ts(), user=ALICE)

    assert response.status_code == 200 and "text" not in (response.json() if response.content else {})
    [status] = [c for c in slack.fake.of("chat.postMessage") if c.params["text"].startswith("Status update")]
    assert status.params["channel"] == channel and "thread_ts" not in status.params
    assert slack.fake.of("response_url") == []  # said in the incident's own channel: no echo
    timeline = await slack.service.export_postmortem(1)
    assert "bob: queue draining" in timeline and "alice: in a side thread" in timeline


@pytest.mark.parametrize(("key", "title", "expected"), [
    ("INC-7", "Payments down", "inc-7-payments-down"),
    ("INC-8", "Pagos caídos: ¡API 500s!  (EU/US)", "inc-8-pagos-caidos-api-500s-eu-us"),
    ("INC-9", "支付中断", "inc-9"),
    ("INC-10", "x" * 200, "inc-10-" + "x" * 73),
    ("INC-11", "under_score -- dashes", "inc-11-under_score-dashes"),
])
def test_channel_names_follow_slack_rules(key, title, expected):
    name = channel_name(key, title)
    assert name == expected and len(name) <= 80


async def test_an_announcement_that_fails_does_not_fail_the_incident_channel(slack, caplog):
    slack.errors_expected = True
    slack.fake.fail("chat.postMessage", status=200, error="not_in_channel",
                    where=lambda params: params.get("channel") == "#incidents")

    await slack.command('declare P1 "Payments callbacks not arriving"', user=ALICE)

    channel = slack.fake.of("conversations.create")[0].response["channel"]["id"]
    assert await slack.service.room_of(1) == Room("slack", channel, None)
    assert len(slack.fake.of("conversations.create", ok_only=False)) == 1
    assert any("could not announce" in r.getMessage() and "INC-1" in r.getMessage() for r in caplog.records)


async def test_a_failed_card_post_is_retried_in_the_channel_already_created(slack):
    slack.fake.fail("chat.postMessage", status=200, error="fatal_error", where=lambda p: "header" in str(p))

    await slack.command('declare P1 "Payments callbacks not arriving"', user=ALICE)
    assert await slack.service.room_of(1) is None  # the outbox keeps the open_room for later
    slack.clock.advance(minutes=1)
    await slack.service.tick()

    [created] = slack.fake.of("conversations.create", ok_only=False)
    channel = created.response["channel"]["id"]
    assert await slack.service.room_of(1) == Room("slack", channel, None)
    assert [c.params["users"] for c in slack.fake.of("conversations.invite")] == [ALICE]
