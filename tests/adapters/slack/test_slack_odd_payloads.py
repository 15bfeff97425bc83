"""Issue 14, "500s from signed but odd payloads": payloads Slack signed but that lack what a listener needs are
answered 200 (Slack does not retry), log no traceback and store nothing. Each is signed with SignatureVerifier
and sent through the real Bolt app behind the real HTTP app."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import urlencode

import pytest

from adapters.slack.blocks import DECLARE_VIEW, UPDATE_VIEW
from tests.adapters.slack.slack_team import ALICE, INCIDENTS, TEAM
from tests.fakes.slack_api import BOT_USER


def _event(slack, event: dict) -> str:
    return json.dumps({"token": "legacy", "team_id": TEAM, "api_app_id": "A0WARROOM", "event": event,
                       "type": "event_callback", "event_id": slack.next_id("Ev"), "event_time": int(time.time()),
                       "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}]})


def _form(payload: dict) -> str:
    payload = {"team": {"id": TEAM, "domain": "warroom-test"}, "api_app_id": "A0WARROOM", "token": "legacy",
               "trigger_id": "trig-odd", **payload}
    return urlencode({"payload": json.dumps(payload)})


def _command(**fields: str) -> str:
    form = {"token": "legacy", "team_id": TEAM, "channel_id": INCIDENTS, "user_id": ALICE, "command": "/incident",
            "text": 'declare P1 "Odd"', "api_app_id": "A0WARROOM", "trigger_id": "trig-odd"}
    form.update(fields)
    return urlencode({k: v for k, v in form.items() if v is not None})


ODD = {
    "app_mention without channel": lambda s: ("json", _event(s, {
        "type": "app_mention", "user": ALICE, "text": f'<@{BOT_USER}> declare P1 "Odd"', "ts": "1.000001"})),
    "message without channel": lambda s: ("json", _event(s, {
        "type": "message", "user": ALICE, "text": "hello", "ts": "1.000002"})),
    "edit without channel": lambda s: ("json", _event(s, {
        "type": "message", "subtype": "message_changed", "ts": "1.000003",
        "message": {"user": ALICE, "text": "new", "ts": "1.000001"}, "previous_message": {"text": "old"}})),
    "delete without channel": lambda s: ("json", _event(s, {
        "type": "message", "subtype": "message_deleted", "ts": "1.000004", "deleted_ts": "1.000001"})),
    "pin without item channel": lambda s: ("json", _event(s, {
        "type": "reaction_added", "user": ALICE, "reaction": "pushpin", "item": {"type": "message"},
        "event_ts": "1.000005"})),
    "command without user_id": lambda s: ("form", _command(user_id=None)),
    "command without channel_id": lambda s: ("form", _command(channel_id=None)),
    "block action without user": lambda s: ("form", _form({
        "type": "block_actions", "channel": {"id": INCIDENTS}, "container": {"channel_id": INCIDENTS},
        "message": {"ts": "1.000001"}, "actions": [{"action_id": "warroom_ack", "value": "INC-1", "type": "button"}]})),
    "block action without channel": lambda s: ("form", _form({
        "type": "block_actions", "user": {"id": ALICE},
        "actions": [{"action_id": "warroom_ack", "value": "INC-1", "type": "button"}]})),
    "update button without user": lambda s: ("form", _form({
        "type": "block_actions", "channel": {"id": INCIDENTS},
        "actions": [{"action_id": "warroom_update", "value": "INC-1", "type": "button"}]})),
    "declare form without state": lambda s: ("form", _form({
        "type": "view_submission", "user": {"id": ALICE},
        "view": {"type": "modal", "id": "V1", "callback_id": DECLARE_VIEW,
                 "private_metadata": json.dumps({"channel": INCIDENTS})}})),
    "declare form without user": lambda s: ("form", _form({
        "type": "view_submission",
        "view": {"type": "modal", "id": "V2", "callback_id": DECLARE_VIEW,
                 "private_metadata": json.dumps({"channel": INCIDENTS}),
                 "state": {"values": {"title": {"title": {"value": "Odd"}}}}}})),
    "declare form with broken metadata": lambda s: ("form", _form({
        "type": "view_submission", "user": {"id": ALICE},
        "view": {"type": "modal", "id": "V3", "callback_id": DECLARE_VIEW, "private_metadata": "{not json",
                 "state": {"values": {"title": {"title": {"value": "Odd"}}}}}})),
    "declare form with a mistyped state": lambda s: ("form", _form({
        "type": "view_submission", "user": {"id": ALICE},
        "view": {"type": "modal", "id": "V4", "callback_id": DECLARE_VIEW,
                 "private_metadata": json.dumps({"channel": INCIDENTS}),
                 "state": {"values": {"title": "Odd", "severity": []}}}})),
    "update form without state": lambda s: ("form", _form({
        "type": "view_submission", "user": {"id": ALICE},
        "view": {"type": "modal", "id": "V5", "callback_id": UPDATE_VIEW,
                 "private_metadata": json.dumps({"incident": "INC-1", "channel": INCIDENTS})}})),
}


@pytest.mark.parametrize("case", list(ODD))
async def test_a_signed_payload_missing_what_it_needs_is_answered_without_a_500_or_a_traceback(
        slack, caplog, case):
    caplog.set_level(logging.DEBUG)
    kind, body = ODD[case](slack)
    content_type = "application/json" if kind == "json" else "application/x-www-form-urlencoded"

    response = await slack.send(body, content_type=content_type)
    await slack.inbound.drain()

    assert response.status_code == 200, response.text
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], \
        [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert await slack.service.incidents(open_only=False) == []
    assert slack.fake.of("chat.postMessage") == []


async def test_a_form_without_state_tells_the_user_instead_of_closing_silently(slack):
    body = ODD["declare form without state"](slack)[1]

    response = await slack.send(body, content_type="application/x-www-form-urlencoded")

    assert response.json() == {"response_action": "errors",
                               "errors": {"title": "Slack sent this form incomplete; try again."}}
