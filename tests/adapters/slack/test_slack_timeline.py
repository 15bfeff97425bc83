"""Thread messages → timeline → post-mortem: display names, edits, deletes, :pushpin:, retries, bot posts."""

from __future__ import annotations

from tests.adapters.slack.slack_team import BOB, CAROL, INCIDENTS
from tests.fakes.slack_api import BOT_ID, BOT_USER


async def test_thread_messages_edits_deletes_and_pins_reach_the_uploaded_postmortem(slack):
    card = await slack.declare()
    thread = card.response["ts"]
    first = await slack.say("checking the callback queue", thread=thread, user=BOB)
    second = await slack.say("queue at 40k &amp; rising, <@U0BOB0002> look", thread=thread, user=CAROL)
    typo = await slack.say("wrong thread sorry", thread=thread, user=BOB)

    await slack.event(slack.edit_event(first, old="checking the callback queue",
                                     new="checking the callback queue: consumer restarted", thread=thread))
    await slack.event(slack.delete_event(typo, text="wrong thread sorry", thread=thread))
    slack.chat._threads.clear()  # as after a restart: the pin must find the thread through conversations.replies
    await slack.event(slack.reaction_event(second))
    await slack.event(slack.reaction_event(first, reaction="eyes"))  # only :pushpin: marks a key event

    assert [c.params["ts"] for c in slack.fake.of("conversations.replies")] == [second]
    await slack.mention("postmortem", thread=thread)
    document = await slack.postmortem_upload()

    assert "bob: checking the callback queue: consumer restarted" in document
    assert "📌 carol: queue at 40k & rising, @bob look" in document  # names for mentions in the uploaded copy
    assert "_(message deleted)_" in document and "wrong thread sorry" not in document  # deleted: no words kept
    assert document.count("📌") == 1
    [completed] = slack.fake.of("files.completeUploadExternal")
    assert completed.params["channel_id"] == INCIDENTS and completed.params["thread_ts"] == thread
    assert completed.params["files"][0]["title"] == "INC-1 post-mortem"
    assert completed.params["initial_comment"].startswith(":memo: *Post-mortem for INC-1: Payments callbacks")
    [getter] = slack.fake.of("files.getUploadURLExternal")
    assert getter.params["filename"].endswith(".md")
    [written] = (slack.settings.postmortem_dir).glob("*.md")
    assert "queue at 40k & rising, <@U0BOB0002> look" in written.read_text(encoding="utf-8")


async def test_display_names_come_from_the_workspace_list_and_a_newcomer_is_looked_up_once(slack):
    card = await slack.declare()  # alice and bob are known from users.list at start: no look-up at all
    thread = card.response["ts"]
    slack.fake.users["U0DAVE004"] = "dave"  # joined the workspace after the start
    for text in ("one", "two", "three"):
        await slack.say(text, thread=thread, user=BOB)
        await slack.say(f"dave {text}", thread=thread, user="U0DAVE004")

    assert [c.params["user"] for c in slack.fake.of("users.info")] == ["U0DAVE004"]
    document = await slack.service.export_postmortem(1)
    assert "bob: one" in document and "dave: dave two" in document


async def test_bot_posts_channel_chatter_and_other_threads_stay_out_of_the_timeline(slack):
    card = await slack.declare()
    thread = card.response["ts"]

    own = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": "our own echo", "ts": slack.fake.next_ts(),
           "channel": INCIDENTS, "thread_ts": thread}
    response = await slack.send_event_without_waiting(own)
    assert response.status_code == 200  # Bolt drops the bot's own events before any listener
    await slack.say("another bot says hi", thread=thread, user="U0DEPLOY1", bot_id="B0DEPLOY", subtype="bot_message")
    await slack.say("lunch?", thread=None)
    await slack.say("unrelated thread", thread="1699999999.000009")
    await slack.event({"type": "message", "subtype": "channel_join", "user": CAROL, "text": "<@U0CAROL03> joined",
                      "ts": slack.fake.next_ts(), "channel": INCIDENTS, "thread_ts": thread})
    await slack.say("the real thing", thread=thread)

    timeline = await slack.service.export_postmortem(1)
    assert "the real thing" in timeline
    for text in ("our own echo", "another bot says hi", "lunch?", "unrelated thread", "joined"):
        assert text not in timeline
    assert slack.fake.of("users.info", ok_only=False) == []  # skipped events looked nobody up


async def test_a_retried_event_is_recorded_once(slack):
    card = await slack.declare()
    thread = card.response["ts"]
    ts = slack.fake.add_message(INCIDENTS, text="db failover done", user=BOB, thread_ts=thread)
    event = {"type": "message", "user": BOB, "text": "db failover done", "ts": ts, "channel": INCIDENTS,
             "thread_ts": thread, "event_ts": ts}

    await slack.event(event, event_id="Ev0RETRY01")
    await slack.event(event, event_id="Ev0RETRY01", retry_num=1, times=2)

    assert (await slack.service.export_postmortem(1)).count("db failover done") == 1


async def test_a_retried_mention_command_runs_once(slack):
    card = await slack.declare()
    thread = card.response["ts"]
    raw = '<@UBOT> status "db back"'
    event = {"type": "app_mention", "user": BOB, "text": raw, "ts": slack.fake.next_ts(), "channel": INCIDENTS,
             "thread_ts": thread}

    await slack.event(event, event_id="Ev0RETRY02")
    await slack.event(event, event_id="Ev0RETRY02", retry_num=1, times=2)

    statuses = [c for c in slack.fake.of("chat.postMessage") if c.params["text"].startswith("Status update from bob")]
    assert len(statuses) == 1


async def test_a_deleted_thread_parent_is_struck(slack):
    card = await slack.declare()
    thread = card.response["ts"]
    ts = await slack.say("parent with replies", thread=thread)
    event = slack.edit_event(ts, old="parent with replies", new="This message was deleted.", thread=thread)
    event["message"]["subtype"] = "tombstone"

    await slack.event(event)

    document = await slack.service.export_postmortem(1)
    assert "_(message deleted)_" in document and "parent with replies" not in document


async def test_file_shares_are_recorded_with_the_file_name(slack):
    card = await slack.declare()
    thread = card.response["ts"]

    await slack.say("graph of the spike", thread=thread, subtype="file_share",
                   files=[{"id": "F1", "name": "latency.png", "title": "latency"}])

    assert "bob: graph of the spike 📎 latency.png" in await slack.service.export_postmortem(1)
