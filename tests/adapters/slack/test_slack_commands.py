"""`/incident`, @warroom in a thread, card and nudge buttons, and the two forms — over signed HTTP, asserted on
what the fake Slack Web API received."""

from __future__ import annotations

import json

from bot.incident.domain import Status
from bot.ports import Room
from tests.adapters.slack.slack_team import ALICE, BOB, CAROL, INCIDENTS
from tests.fakes.slack_api import Call


def blocks(call: Call) -> list[dict]:
    return call.params.get("blocks") or []


def button_actions(call: Call) -> list[tuple[str, str]]:
    return [(element["action_id"], element["value"]) for block in blocks(call) if block["type"] == "actions"
            for element in block["elements"]]


def in_thread(slack, thread: str, needle: str):
    return lambda c: c.params.get("thread_ts") == thread and needle in c.params.get("text", "")


async def test_declare_posts_the_card_in_the_channel_and_the_checklists_in_its_thread(slack):
    response = await slack.command('declare P1 "Payments callbacks not arriving" impact="customers charged"')

    # Slack hears back once the incident is committed, and the answer is the outcome itself.
    answer = response.json()
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("Declared INC-1 (P1): Payments callbacks not arriving.")
    assert slack.fake.of("response_url") == []
    card, *replies = slack.fake.of("chat.postMessage")
    assert card.params["channel"] == INCIDENTS and "thread_ts" not in card.params
    assert blocks(card)[0] == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                          "text": "INC-1 · P1 · Payments callbacks not arriving"}}
    assert button_actions(card) == [("warroom_ack", "INC-1"), ("warroom_update", "INC-1"),
                                    ("warroom_resolve", "INC-1")]
    fields = json.dumps(blocks(card))
    assert "*Impact*\\ncustomers charged" in fields and "by alice" in fields  # display name, not U0ALICE01
    assert "<!date^" in fields  # the refresh time in each reader's own timezone
    thread = card.response["ts"]
    assert [c.params["thread_ts"] for c in replies] == [thread] * len(replies)
    assert [c.params["text"] for c in replies[:2]] == ["First minutes checklist", "Triage checklist"]
    assert await slack.service.room_of(1) == Room("slack", INCIDENTS, thread)
    [incident] = await slack.service.incidents(open_only=True)
    assert incident.reporter == "alice"


async def test_a_renamed_slash_command_works_the_same(slack):
    response = await slack.command("list", name="/warroom")

    assert response.json()["text"] == "No open incidents."


async def test_a_usage_error_is_the_acknowledgement_and_nothing_is_recorded(slack):
    response = await slack.command("declare")

    assert response.json()["response_type"] == "ephemeral"
    assert response.json()["text"].startswith("Missing title")
    assert "&lt;title&gt;" in response.json()["text"]  # the usage's <title> must not become a Slack link
    assert slack.fake.of("chat.postMessage") == [] and slack.fake.of("users.info") == []
    assert await slack.service.incidents(open_only=False) == []


async def test_incident_without_text_opens_the_declare_form_before_any_other_work(slack):
    response = await slack.command("")

    assert response.status_code == 200 and response.text == ""
    assert [c.method for c in slack.fake.calls] == ["auth.test", "views.open"]
    [opened] = slack.fake.of("views.open")
    assert opened.params["trigger_id"] == slack.last_trigger
    view = opened.params["view"]
    assert view["callback_id"] == "warroom_declare"
    severity = view["blocks"][0]["element"]
    assert [o["value"] for o in severity["options"]] == ["P1", "P2", "P3"]
    assert severity["initial_option"]["value"] == "P2"  # the ladder's default
    assert json.loads(view["private_metadata"]) == {"channel": INCIDENTS}


async def test_declare_form_submission_declares_in_the_channel_it_was_opened_from(slack):
    await slack.command("", user=BOB)
    [opened] = slack.fake.of("views.open")

    response = await slack.interact(slack.view_payload(opened.params["view"], {
        "severity": {"severity": {"type": "static_select", "selected_option": {"value": "P1"}}},
        "title": {"title": {"type": "plain_text_input", "value": "Checkout <b> & cart broken"}},
        "impact": {"impact": {"type": "plain_text_input", "value": None}},
    }, user=BOB))

    assert response.status_code == 200 and response.text == ""  # the form closes
    card = slack.fake.of("chat.postMessage")[0]
    assert card.params["channel"] == INCIDENTS
    assert card.params["text"] == "INC-1 · P1 · Checkout &lt;b&gt; &amp; cart broken"
    [private] = slack.fake.of("chat.postEphemeral")
    assert private.params["user"] == BOB and private.params["channel"] == INCIDENTS
    assert private.params["text"].startswith("Declared INC-1 (P1)")
    [incident] = await slack.service.incidents(open_only=True)
    assert (incident.title, incident.severity, incident.reporter) == ("Checkout <b> & cart broken", "P1", "bob")


async def test_declare_form_with_a_blank_title_answers_with_a_form_error(slack):
    await slack.command("")
    [opened] = slack.fake.of("views.open")

    response = await slack.interact(slack.view_payload(opened.params["view"], {
        "severity": {"severity": {"selected_option": {"value": "P2"}}},
        "title": {"title": {"value": "   "}}, "impact": {"impact": {"value": None}}}))

    assert response.json() == {"response_action": "errors",
                               "errors": {"title": "Say what is broken, e.g. Payments down."}}
    assert slack.fake.of("chat.postMessage") == []


async def test_a_mention_in_the_thread_runs_the_command_for_that_incident(slack):
    card = await slack.declare()
    thread = card.response["ts"]
    slack.clock.advance(minutes=4)

    await slack.mention("ack", thread=thread, user=BOB)

    [announce] = await slack.fake.wait_calls("chat.postMessage", where=in_thread(slack, thread, "acknowledged"))
    assert announce.params["text"] == "bob acknowledged INC-1 after 4 min — response target 15 min: met."
    [update] = slack.fake.of("chat.update")
    assert update.params["channel"] == INCIDENTS and update.params["ts"] == thread
    assert ("warroom_ack", "INC-1") not in button_actions(update)
    assert slack.fake.of("chat.postEphemeral") == []  # said in the room: the room sees the answer
    timeline = await slack.service.export_postmortem(1)
    assert "<@UBOT>" not in timeline  # the message event duplicating the mention is not a chat message


async def test_a_mention_outside_an_incident_thread_explains_privately(slack):
    await slack.mention('status "db back"', thread="1699999999.000001", user=CAROL)

    [private] = await slack.fake.wait_calls("chat.postEphemeral")
    assert private.params["user"] == CAROL and private.params["thread_ts"] == "1699999999.000001"
    assert "inside an incident's thread, or name one" in private.params["text"]


async def test_a_mention_in_the_middle_of_a_sentence_is_conversation_not_a_command(slack):
    card = await slack.declare()
    thread = card.response["ts"]

    ts = await slack.say("thanks <@UBOT>, that helped", thread=thread)
    await slack.event({"type": "app_mention", "user": "U0BOB0002", "text": "thanks <@UBOT>, that helped", "ts": ts,
                      "channel": INCIDENTS, "thread_ts": thread, "event_ts": ts})

    assert slack.fake.of("chat.postEphemeral") == []
    assert "bob: thanks <@UBOT>, that helped" in await slack.service.export_postmortem(1)


async def test_channel_command_names_the_incident_and_confirms_privately(slack):
    card = await slack.declare()
    thread = card.response["ts"]

    response = await slack.command('status INC-1 "importer rolled back"', user=CAROL)

    assert response.json()["text"].startswith("Done — posted in INC-1's thread")
    [status] = slack.fake.of("chat.postMessage", ok_only=True)[-1:]
    assert status.params["thread_ts"] == thread
    assert status.params["text"].startswith("Status update from carol: importer rolled back.")


async def test_card_buttons_acknowledge_snooze_and_resolve(slack):
    card = await slack.declare()
    thread = card.response["ts"]

    await slack.interact(slack.button_payload("ack", "INC-1", message_ts=thread, user=BOB))
    await slack.fake.wait_calls("chat.postMessage", where=in_thread(slack, thread, "bob acknowledged INC-1"))
    nudge_ts = slack.fake.next_ts()
    await slack.interact(slack.button_payload("snooze", "INC-1", message_ts=nudge_ts, thread_ts=thread, user=CAROL))
    await slack.fake.wait_calls("chat.postMessage", where=in_thread(slack, thread, "carol snoozed update nudges"))
    await slack.interact(slack.button_payload("resolve", "INC-1", message_ts=thread, user=ALICE))
    await slack.fake.wait_calls("chat.postMessage", where=in_thread(slack, thread, "INC-1 resolved by alice"))

    [incident] = await slack.service.incidents(open_only=False)
    assert incident.status is Status.RESOLVED and incident.acknowledged_by == "bob"
    assert button_actions(slack.fake.of("chat.update")[-1]) == []  # a resolved card has no buttons
    assert slack.fake.of("chat.postEphemeral") == []


async def test_post_update_button_opens_a_form_whose_submission_posts_the_status(slack):
    card = await slack.declare()
    thread = card.response["ts"]

    await slack.interact(slack.button_payload("update", "INC-1", message_ts=thread, user=CAROL))
    [opened] = slack.fake.of("views.open")
    view = opened.params["view"]
    assert view["callback_id"] == "warroom_update"
    assert json.loads(view["private_metadata"]) == {"incident": "INC-1", "channel": INCIDENTS, "thread": thread}

    await slack.interact(slack.view_payload(view, {"status": {"text": {
        "type": "plain_text_input", "value": "Rolled back <!here> & watching"}}}, user=CAROL))

    [status] = await slack.fake.wait_calls("chat.postMessage", where=in_thread(slack, thread, "Status update"))
    assert status.params["text"].startswith("Status update from carol: Rolled back &lt;!here&gt; &amp; watching.")
    assert "carol: status update: Rolled back <!here> & watching" in await slack.service.export_postmortem(1)


async def test_reminders_arrive_in_the_thread_and_nudges_carry_update_and_snooze_buttons(slack):
    card = await slack.declare()
    thread = card.response["ts"]
    await slack.mention("ack", thread=thread)

    await slack.service.tick()  # nothing due yet
    slack.clock.advance(minutes=16)
    await slack.service.tick()

    [nudge] = await slack.fake.wait_calls("chat.postMessage", where=in_thread(slack, thread, "no status update"))
    assert nudge.params["text"].startswith(":alarm_clock: INC-1 (P1): no status update for 16 min.")
    assert button_actions(nudge) == [("warroom_update", "INC-1"), ("warroom_snooze", "INC-1")]


async def test_user_text_cannot_broadcast_or_inject_markup_but_mentions_still_work(slack):
    card = await slack.declare()
    thread = card.response["ts"]

    # As Slack delivers it: typed <x> and & arrive escaped, a typed @channel arrives as <!channel>.
    await slack.mention('status "<!channel> <!subteam^S0ONCALL|@oncall> db &amp; &lt;x&gt; back, ping <@U0CAROL03>"',
                        thread=thread)

    [status] = await slack.fake.wait_calls("chat.postMessage", where=in_thread(slack, thread, "Status update"))
    section = status.params["blocks"][0]["text"]
    assert section["verbatim"] is True
    assert "db &amp; &lt;x&gt; back, ping <@U0CAROL03>" in section["text"]
    assert "@\u2060channel" in section["text"] and "@\u2060oncall" not in section["text"]
    for call in slack.fake.calls:
        assert "<!channel>" not in call.text() and "<!subteam" not in call.text() and "<!here>" not in call.text()


async def test_a_role_given_with_a_mention_is_a_live_mention_in_the_thread_and_a_name_on_the_card(slack):
    card = await slack.declare()
    thread = card.response["ts"]

    await slack.mention("role ic <@U0BOB0002|bob>", thread=thread)  # should_escape: Slack sends the user id

    [update] = await slack.fake.wait_calls("chat.update")
    assert ": @bob" in json.dumps(update.params["blocks"]) and "<@U0BOB0002>" not in update.text()
    [announce] = [c for c in slack.fake.of("chat.postMessage") if "is now" in c.params["text"]]
    assert announce.params["text"].startswith("<@U0BOB0002> is now")
