"""The webhook's pure functions: `verify_signature` (X-Hub-Signature-256) and `parse_webhook` on payloads shaped
like Meta's (text, template quick-reply button, interactive reply, media, statuses with errors, batches)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.whatsapp.webhook import e164, parse_webhook, sign, verify_signature
from bot.ports import CustomerMessageReceived, CustomerMessageStatus

APP_SECRET = "c0ffee-app-secret-51d2"
AT = 1764000000  # 2025-11-24T16:00:00Z
WHEN = datetime.fromtimestamp(AT, tz=UTC)


def envelope(*values: dict[str, Any], entries: int = 1) -> dict[str, Any]:
    """A webhook with `values` as the changes of each of `entries` entries."""
    return {"object": "whatsapp_business_account", "entry": [
        {"id": f"10229012934039{n}", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            **value}} for value in values]}
        for n in range(entries)]}


def inbound(message: dict[str, Any], *, wa_id: str = "254700000001", name: str | None = "Wanjiru") -> dict:
    base = {"from": wa_id, "id": "wamid.HBgMMjU0NzAwMDAwMDAxFQIAEhgUM0E", "timestamp": str(AT)}
    value: dict[str, Any] = {"messages": [{**base, **message}]}
    if name is not None:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
    return value


def status(state: str, *, errors: list[dict[str, Any]] | None = None, wamid: str = "wamid.OUT1") -> dict:
    item: dict[str, Any] = {"id": wamid, "status": state, "timestamp": str(AT), "recipient_id": "254700000001"}
    if state in ("sent", "delivered"):
        item["conversation"] = {"id": "CONV1", "origin": {"type": "utility"}}
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "utility"}
    if errors:
        item["errors"] = errors
    return {"statuses": [item]}


# -- signatures -------------------------------------------------------------------------------------------------

BODY = json.dumps(envelope(inbound({"type": "text", "text": {"body": "STOP"}}))).encode()


def meta_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_good_signature_verifies() -> None:
    assert verify_signature(APP_SECRET, BODY, meta_signature(APP_SECRET, BODY))
    assert verify_signature(SecretStr(APP_SECRET), BODY, meta_signature(APP_SECRET, BODY))
    assert sign(APP_SECRET, BODY) == meta_signature(APP_SECRET, BODY)


@pytest.mark.parametrize("header", [
    None,                                                    # missing
    "",                                                      # empty
    meta_signature("another-app-secret", BODY),              # wrong secret
    meta_signature(APP_SECRET, BODY + b" "),                 # body changed after signing
    meta_signature(APP_SECRET, BODY).removeprefix("sha256="),  # no prefix
    "sha1=" + hmac.new(APP_SECRET.encode(), BODY, hashlib.sha1).hexdigest(),  # old X-Hub-Signature style
    "sha256=" + "0" * 64,
    "sha256=zz",                                             # not hex
])
def test_a_bad_or_missing_signature_does_not_verify(header: str | None) -> None:
    assert not verify_signature(APP_SECRET, BODY, header)


def test_an_empty_app_secret_verifies_nothing() -> None:
    assert not verify_signature("", BODY, meta_signature("", BODY))


def test_the_signature_is_over_the_raw_bytes_not_reserialised_json() -> None:
    pretty = json.dumps(json.loads(BODY), indent=2).encode()
    assert not verify_signature(APP_SECRET, pretty, meta_signature(APP_SECRET, BODY))
    assert verify_signature(APP_SECRET, BODY, meta_signature(APP_SECRET, BODY).upper().replace("SHA256=", "sha256="))


# -- inbound messages -------------------------------------------------------------------------------------------


def test_a_text_message() -> None:
    [event] = parse_webhook(envelope(inbound({"type": "text", "text": {"body": "Is it fixed yet?"}})))

    assert event == CustomerMessageReceived(phone="+254700000001", text="Is it fixed yet?",
                                            message_id="wamid.HBgMMjU0NzAwMDAwMDAxFQIAEhgUM0E", at=WHEN,
                                            profile_name="Wanjiru", button_payload=None)
    assert event.at.tzinfo is UTC


def test_a_template_quick_reply_button() -> None:
    message = {"type": "button", "context": {"from": "15550783881", "id": "wamid.OUT1"},
               "button": {"payload": "stop-updates", "text": "Stop updates"}}

    [event] = parse_webhook(envelope(inbound(message)))

    assert (event.text, event.button_payload) == ("Stop updates", "stop-updates")


def test_an_interactive_reply_button() -> None:
    message = {"type": "interactive", "context": {"from": "15550783881", "id": "wamid.OUT2"},
               "interactive": {"type": "button_reply", "button_reply": {"id": "ack:INC-7", "title": "Acknowledge"}}}

    [event] = parse_webhook(envelope(inbound(message)))

    assert isinstance(event, CustomerMessageReceived)
    assert (event.text, event.button_payload, event.phone) == ("Acknowledge", "ack:INC-7", "+254700000001")


def test_an_interactive_list_reply() -> None:
    message = {"type": "interactive", "interactive": {
        "type": "list_reply", "list_reply": {"id": "inc:9", "title": "INC-9", "description": "Payments"}}}

    [event] = parse_webhook(envelope(inbound(message)))

    assert (event.text, event.button_payload) == ("INC-9", "inc:9")


@pytest.mark.parametrize("message", [
    {"type": "location", "location": {"latitude": -1.28, "longitude": 36.82}},
    {"type": "reaction", "reaction": {"message_id": "wamid.OUT1", "emoji": "👍"}},
    {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]},
    {"type": "some_future_type"},
    {"type": "image", "image": {"id": "img1", "mime_type": "image/jpeg"}},
    {},  # no type at all
])
def test_other_message_types_become_messages_without_text(message: dict[str, Any]) -> None:
    [event] = parse_webhook(envelope(inbound(message)))

    assert isinstance(event, CustomerMessageReceived)
    assert (event.text, event.button_payload, event.phone) == ("", None, "+254700000001")


def test_a_media_message_keeps_its_caption() -> None:
    message = {"type": "image", "image": {"id": "img1", "mime_type": "image/jpeg", "caption": "error screen"}}

    [event] = parse_webhook(envelope(inbound(message)))

    assert event.text == "error screen"


def test_profile_name_is_matched_by_wa_id_and_optional() -> None:
    value = inbound({"type": "text", "text": {"body": "hi"}}, name=None)
    [event] = parse_webhook(envelope(value))
    assert event.profile_name is None

    two = {"contacts": [{"profile": {"name": "Amina"}, "wa_id": "254700000009"},
                        {"profile": {"name": "Wanjiru"}, "wa_id": "254700000001"}],
           "messages": inbound({"type": "text", "text": {"body": "hi"}})["messages"]}
    [event] = parse_webhook(envelope(two))
    assert event.profile_name == "Wanjiru"


# -- statuses ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["sent", "delivered", "read"])
def test_status_updates(state: str) -> None:
    [event] = parse_webhook(envelope(status(state)))

    assert event == CustomerMessageStatus(message_id="wamid.OUT1", status=state, at=WHEN, phone="+254700000001",
                                          error_code=None, error_title=None)


def test_a_failed_status_carries_the_error() -> None:
    error = {"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
             "error_data": {"details": "Message failed to send because more than 24 hours have passed since the "
                                       "customer last replied to this number."},
             "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}

    [event] = parse_webhook(envelope(status("failed", errors=[error])))

    assert isinstance(event, CustomerMessageStatus)
    assert (event.status, event.error_code, event.message_id) == ("failed", 131047, "wamid.OUT1")
    assert event.error_title is not None and event.error_title.startswith("Re-engagement message: ")
    assert "24 hours" in event.error_title


def test_a_failed_status_with_only_a_message() -> None:
    [event] = parse_webhook(envelope(status("failed", errors=[{"code": 131026, "message": "Message undeliverable"}])))

    assert (event.error_code, event.error_title) == (131026, "Message undeliverable")


# -- batches ----------------------------------------------------------------------------------------------------


def test_several_entries_and_changes_in_payload_order() -> None:
    text = inbound({"type": "text", "text": {"body": "hello"}})
    mixed = {**inbound({"type": "text", "text": {"body": "STOP"}}, wa_id="254700000002", name="Otieno"),
             **status("read", wamid="wamid.OUT9")}
    template_update = {"event": "APPROVED", "message_template_id": 1, "message_template_name": "incident_update"}
    payload = envelope(text, status("delivered"), mixed, entries=2)
    payload["entry"][1]["changes"].append({"field": "message_template_status_update", "value": template_update})

    events = parse_webhook(payload)

    assert [(type(e).__name__, getattr(e, "text", None) or getattr(e, "status", None)) for e in events] == [
        ("CustomerMessageReceived", "hello"), ("CustomerMessageStatus", "delivered"),
        ("CustomerMessageReceived", "STOP"), ("CustomerMessageStatus", "read"),
    ] * 2
    stop = events[2]
    assert (stop.phone, stop.profile_name) == ("+254700000002", "Otieno")


def test_a_change_without_messages_or_statuses_yields_nothing() -> None:
    assert parse_webhook(envelope({})) == []
    assert parse_webhook({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": []}]}) == []


# -- malformed --------------------------------------------------------------------------------------------------


def _broken(change: Any) -> dict[str, Any]:
    payload = envelope(inbound({"type": "text", "text": {"body": "hi"}}))
    change(payload)
    return payload


@pytest.mark.parametrize(("payload", "problem"), [
    ([], "expected a JSON object"),
    ("hello", "expected a JSON object"),
    ({"object": "page", "entry": []}, "object is 'page'"),
    ({"object": "whatsapp_business_account"}, "entry is missing"),
    ({"object": "whatsapp_business_account", "entry": {}}, "entry is not a list"),
    ({"object": "whatsapp_business_account", "entry": ["x"]}, "entry[0] is not an object"),
    ({"object": "whatsapp_business_account", "entry": [{"id": "1"}]}, "entry[0].changes is missing"),
    (_broken(lambda p: p["entry"][0]["changes"][0].update(value=[])), "entry[0].changes[0].value is not an object"),
    (_broken(lambda p: p["entry"][0]["changes"][0]["value"].update(messages={})),
     "entry[0].changes[0].value.messages is not a list"),
    (_broken(lambda p: p["entry"][0]["changes"][0]["value"]["messages"][0].pop("from")),
     "entry[0].changes[0].value.messages[0].from is missing"),
    (_broken(lambda p: p["entry"][0]["changes"][0]["value"]["messages"][0].pop("id")),
     "messages[0].id is missing"),
    (_broken(lambda p: p["entry"][0]["changes"][0]["value"]["messages"][0].update(timestamp="yesterday")),
     "messages[0].timestamp is not a Unix time"),
    (_broken(lambda p: p["entry"][0]["changes"][0]["value"]["messages"][0].update({"from": "alice"})),
     "messages[0].from is not a phone number"),
    (envelope({"statuses": [{"id": "wamid.X", "timestamp": str(AT)}]}), "statuses[0].status is missing"),
])
def test_malformed_payloads_raise_value_error_naming_the_place(payload: Any, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_webhook(copy.deepcopy(payload))

    assert problem in str(caught.value)
    assert str(caught.value).startswith("WhatsApp webhook: ")


def test_e164() -> None:
    assert e164("254700000001") == "+254700000001"
    assert e164(16505551234) == "+16505551234"
    with pytest.raises(ValueError):
        e164("0700")
