"""Signatures, Slack's retries, rate limits, server errors, and paging — against the fake Web API."""

from __future__ import annotations

import json
import logging
import time

from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler

from adapters.slack.chat import SAFE_TO_REPEAT, make_web_client
from tests.adapters.slack.slack_team import INCIDENTS, SECRET


def in_thread(thread: str, needle: str):
    return lambda c: c.params.get("thread_ts") == thread and needle in c.params.get("text", "")


async def test_a_bad_signature_is_refused_and_nothing_happens(slack):
    body = json.dumps({"type": "event_callback", "event_id": "Ev0BAD", "event": {
        "type": "app_mention", "user": "U0BOB0002", "text": '<@UBOT> declare P1 "x"', "ts": "1.1",
        "channel": INCIDENTS}})

    response = await slack.send(body, content_type="application/json", secret="not-the-secret")

    assert response.status_code == 401
    assert slack.fake.calls == []  # not even auth.test
    assert await slack.service.incidents(open_only=False) == []


async def test_a_stale_timestamp_is_refused(slack):
    response = await slack.send('{"type": "event_callback", "event": {"type": "app_mention"}}',
                               content_type="application/json", timestamp=int(time.time()) - 301)

    assert response.status_code == 401
    assert slack.fake.calls == []


async def test_a_slash_command_with_a_bad_signature_declares_nothing(slack):
    response = await slack.send("command=%2Fincident&text=declare+P1+%22x%22&user_id=U0BOB0002&channel_id=C1",
                               content_type="application/x-www-form-urlencoded", secret=SECRET[::-1])

    assert response.status_code == 401
    assert await slack.service.incidents(open_only=False) == []


async def test_429_is_retried_after_retry_after_and_the_message_is_delivered_once(slack):
    card = await slack.declare()
    thread = card.response["ts"]
    slack.fake.fail("chat.postMessage", status=429, retry_after=1)

    await slack.mention('status "callbacks flowing again"', thread=thread)

    [delivered] = await slack.fake.wait_calls("chat.postMessage", where=in_thread(thread, "Status update"))
    attempts = [c for c in slack.fake.of("chat.postMessage", ok_only=False) if "Status update" in c.params["text"]]
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0  # honoured Retry-After: 1


async def test_a_500_on_a_post_is_not_resent_by_the_client_but_by_the_outbox_after_a_lookup(slack):
    card = await slack.declare()
    thread = card.response["ts"]
    slack.fake.fail("chat.postMessage", status=500)  # nothing stored: the look-up finds nothing, the retry posts

    await slack.mention('status "replaying callbacks"', thread=thread)
    slack.clock.advance(minutes=1)
    await slack.service.tick()

    attempts = [c.status for c in slack.fake.of("chat.postMessage", ok_only=False)
                if "Status update" in c.params["text"]]
    assert attempts == [500, 200]
    [lookup] = slack.fake.of("conversations.replies")
    assert lookup.params["include_all_metadata"] in (True, "true", "1") and lookup.params["ts"] == thread


async def test_a_message_that_still_fails_is_kept_by_the_outbox_and_delivered_once_later(slack, caplog):
    card = await slack.declare()
    thread = card.response["ts"]
    slack.fake.fail("chat.postMessage", status=500)  # a write is never re-sent by the client itself

    await slack.mention('status "still investigating"', thread=thread)

    kept = [r.getMessage() for r in caplog.records if r.name == "warroom.outbox" and "INC-1" in r.getMessage()]
    assert kept and "Slack chat.postMessage: internal_error" in kept[0]
    assert not [c for c in slack.fake.of("chat.postMessage") if c.params["text"].startswith("Status update")]
    slack.clock.advance(minutes=1)
    await slack.service.tick()
    statuses = [c for c in slack.fake.of("chat.postMessage") if c.params["text"].startswith("Status update")]
    assert len(statuses) == 1 and statuses[0].params["thread_ts"] == thread


async def test_an_error_retrying_cannot_fix_is_given_up_and_logged_with_the_incident_id(slack, caplog):
    slack.errors_expected = True
    card = await slack.declare()
    thread = card.response["ts"]
    slack.fake.fail("chat.postMessage", status=200, error="not_in_channel")

    await slack.mention('status "still investigating"', thread=thread)

    [given_up] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "undeliverable (INC-1)" in given_up and "not_in_channel" in given_up
    assert len(slack.fake.of("chat.postMessage", ok_only=False)) == len(slack.fake.of("chat.postMessage")) + 1


async def test_retry_handlers_cover_rate_limits_and_repeat_only_calls_that_are_safe_to_repeat():
    client = make_web_client(token="xoxb-test", base_url="http://127.0.0.1:1/api")
    kinds = [type(handler).__name__ for handler in client.retry_handlers]
    assert kinds == ["_RetryAfter", "_ServerErrorRetry", "_ConnectionErrorRetry"]
    assert isinstance(client.retry_handlers[2], AsyncConnectionErrorRetryHandler)
    assert client.base_url == "http://127.0.0.1:1/api/"
    assert not {"chat.postMessage", "chat.postEphemeral", "files.completeUploadExternal", "conversations.create",
                "views.open"} & SAFE_TO_REPEAT


async def test_a_failed_upload_is_retried_whole_and_the_postmortem_arrives_once(slack):
    card = await slack.declare()
    thread = card.response["ts"]
    slack.fake.fail("files.completeUploadExternal", status=500)

    await slack.mention("postmortem", thread=thread)
    assert slack.fake.of("files.completeUploadExternal") == []
    slack.clock.advance(minutes=1)
    await slack.service.tick()

    [completed] = slack.fake.of("files.completeUploadExternal")
    assert completed.params["thread_ts"] == thread
    assert not [c for c in slack.fake.of("chat.postMessage") if "Post-mortem" in c.params["text"]]


async def test_a_message_the_database_could_not_store_is_answered_500_and_its_redelivery_stored_once(slack):
    card = await slack.declare()
    thread = card.response["ts"]
    ts = slack.fake.add_message(INCIDENTS, text="rolled back the deploy", user="U0BOB0002", thread_ts=thread)
    event = {"type": "message", "user": "U0BOB0002", "text": "rolled back the deploy", "ts": ts,
             "channel": INCIDENTS, "thread_ts": thread, "event_ts": ts}
    slack.errors_expected = True
    async with slack.app.engine.begin() as connection:  # the timeline table is gone: every insert fails
        await connection.exec_driver_sql("ALTER TABLE timeline_event RENAME TO timeline_event_away")

    refused = await slack.send_event_without_waiting(event, event_id="Ev0DBDOWN1")

    assert refused.status_code == 500  # Slack delivers it again; a 200 would have lost it
    async with slack.app.engine.begin() as connection:
        await connection.exec_driver_sql("ALTER TABLE timeline_event_away RENAME TO timeline_event")
    await slack.event(event, event_id="Ev0DBDOWN1", retry_num=1, times=2)
    await slack.event(event, event_id="Ev0DBDOWN1", retry_num=2, times=3)
    assert (await slack.service.export_postmortem(1)).count("rolled back the deploy") == 1
