"""`WhatsAppCloud` (real httpx) against the fake Graph API: request bodies as the Cloud API wants them, and every
failure mapped to a `DeliveryError` the briefs can act on (fall back to a template, retry later, report)."""

from __future__ import annotations

import inspect
import logging
import socket
from collections.abc import Callable

import httpx
import pytest
from graph_api import TOKEN, FakeGraphApi

from adapters.whatsapp.client import (
    WhatsAppCloud,
    WhatsAppDeliveryError,
    _retry_after,
    document_type,
    mask,
    whatsapp_number,
)
from bot.ports import CustomerMessenger, DeliveryError

CUSTOMER = "+254700000001"
OTHER = "+254700000002"


# -- request shapes ---------------------------------------------------------------------------------------------


async def test_template_message_is_exactly_what_the_cloud_api_wants(cloud: WhatsAppCloud,
                                                                    fake: FakeGraphApi) -> None:
    wamid = await cloud.send_template(to=CUSTOMER, template="incident_investigating", language="en",
                                      parameters=("payments", "30"))

    [request] = fake.of("messages")
    assert request.path == f"/v21.0/{fake.phone_number_id}/messages"
    assert request.method == "POST"
    assert request.authorization_ok
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "254700000001",
        "type": "template",
        "template": {
            "name": "incident_investigating",
            "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "payments"},
                                                            {"type": "text", "text": "30"}]}],
        },
    }
    assert wamid == request.response["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    assert request.response["contacts"] == [{"input": "254700000001", "wa_id": "254700000001"}]


async def test_template_without_parameters_has_no_components(cloud: WhatsAppCloud, fake: FakeGraphApi) -> None:
    await cloud.send_template(to=CUSTOMER, template="incident_resolved", language="en_US", parameters=())

    [request] = fake.of("messages")
    assert request.json["template"] == {"name": "incident_resolved", "language": {"code": "en_US"}}


async def test_template_parameters_lose_newlines_tabs_and_long_spaces(cloud: WhatsAppCloud,
                                                                       fake: FakeGraphApi) -> None:
    await cloud.send_template(to=CUSTOMER, template="incident_update", language="en",
                              parameters=("card\npayments\tand      refunds ", "30"))

    [request] = fake.of("messages")
    [component] = request.json["template"]["components"]
    assert component["parameters"][0] == {"type": "text", "text": "card payments and refunds"}


async def test_text_message(cloud: WhatsAppCloud, fake: FakeGraphApi) -> None:
    wamid = await cloud.send_text(to=CUSTOMER, text="Payments are working again. Sorry for the trouble.")

    [request] = fake.of("messages")
    assert request.json == {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": "254700000001", "type": "text",
                            "text": {"body": "Payments are working again. Sorry for the trouble.",
                                     "preview_url": False}}
    assert wamid == request.response["messages"][0]["id"]


async def test_recipient_is_sent_as_digits_only(cloud: WhatsAppCloud, fake: FakeGraphApi) -> None:
    await cloud.send_text(to="+254 700-000 (001)", text="hi")

    assert fake.of("messages")[0].to == "254700000001"


@pytest.mark.parametrize("bad", ["", "12345", "+0700000001", "+2547000000011234", "not a number"])
async def test_an_invalid_number_fails_permanently_without_a_request(cloud: WhatsAppCloud, fake: FakeGraphApi,
                                                                      bad: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        await cloud.send_template(to=bad, template="incident_update", language="en", parameters=("x",))

    assert caught.value.permanent
    assert "invalid recipient" in str(caught.value)
    assert fake.requests == []


async def test_empty_or_too_long_text_fails_as_a_delivery_error(cloud: WhatsAppCloud, fake: FakeGraphApi) -> None:
    for text in ("  ", "x" * 4097):
        with pytest.raises(DeliveryError) as caught:
            await cloud.send_text(to=CUSTOMER, text=text)
        assert caught.value.permanent
    assert fake.requests == []


@pytest.mark.parametrize("method", ["send_template", "send_text"])
def test_whatsapp_cloud_implements_the_customer_messenger_port(method: str) -> None:
    port = inspect.signature(getattr(CustomerMessenger, method))
    ours = inspect.signature(getattr(WhatsAppCloud, method))

    assert inspect.iscoroutinefunction(getattr(WhatsAppCloud, method))
    assert list(ours.parameters) == list(port.parameters)
    assert all(p.kind == inspect.Parameter.KEYWORD_ONLY for name, p in ours.parameters.items() if name != "self")
    assert ours.return_annotation == port.return_annotation == "str"


# -- error mapping ----------------------------------------------------------------------------------------------


async def test_outside_the_24_hour_window_is_permanent_with_its_code(cloud: WhatsAppCloud,
                                                                     fake: FakeGraphApi) -> None:
    fake.fail_recipient(CUSTOMER, code=131047)

    with pytest.raises(DeliveryError) as caught:
        await cloud.send_text(to=CUSTOMER, text="Still on it")

    error = caught.value
    assert isinstance(error, WhatsAppDeliveryError)
    assert (error.code, error.permanent, error.retry_after, error.reason) == (131047, True, None, "outside_window")
    assert "24-hour" in str(error) and "template" in str(error)
    assert "Re-engagement message" in str(error)


@pytest.mark.parametrize(("code", "status", "retry_after", "expected_wait"), [
    (130429, 400, None, 5.0),      # throughput limit, no header → the default
    (130429, 429, "3", 3.0),       # with Retry-After
    (131056, 400, "7", 7.0),       # pair rate limit
    (131056, 400, None, 5.0),
    (4, 429, "2.5", 2.5),          # app-level call limit
])
async def test_rate_limits_carry_retry_after(cloud: WhatsAppCloud, fake: FakeGraphApi, code: int, status: int,
                                             retry_after: str | None, expected_wait: float) -> None:
    fake.fail_next(code=code, status=status, retry_after=retry_after)

    with pytest.raises(DeliveryError) as caught:
        await cloud.send_template(to=CUSTOMER, template="incident_update", language="en", parameters=("x",))

    error = caught.value
    assert (error.code, error.permanent, error.retry_after) == (code, False, expected_wait)
    assert "rate limited" in str(error)


async def test_the_default_retry_after_is_configurable(make_cloud: Callable[..., WhatsAppCloud],
                                                       fake: FakeGraphApi) -> None:
    cloud = make_cloud(default_retry_after=12)
    fake.fail_next(code=130429)

    with pytest.raises(DeliveryError) as caught:
        await cloud.send_text(to=CUSTOMER, text="hi")

    assert caught.value.retry_after == 12


async def test_a_rate_limited_message_goes_through_on_the_next_try(cloud: WhatsAppCloud,
                                                                   fake: FakeGraphApi) -> None:
    fake.fail_recipient(CUSTOMER, code=130429, times=1)

    with pytest.raises(DeliveryError):
        await cloud.send_text(to=CUSTOMER, text="hi")
    wamid = await cloud.send_text(to=CUSTOMER, text="hi")

    assert [r.status for r in fake.of("messages", ok_only=False)] == [400, 200]
    assert [r.response["messages"][0]["id"] for r in fake.sent_to(CUSTOMER)] == [wamid]


@pytest.mark.parametrize(("status", "headers", "permanent", "retry_after"), [
    (429, {"Retry-After": "9"}, False, 9.0),  # a proxy's bare 429: a rate limit
    (429, {}, False, 5.0),
    (502, {}, False, None),                  # a load balancer's HTML error page: transient
    (404, {}, True, None),
])
async def test_answers_that_are_not_graph_errors(make_cloud: Callable[..., WhatsAppCloud], status: int,
                                                 headers: dict[str, str], permanent: bool,
                                                 retry_after: float | None) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, headers=headers,
                                                                   text="<html>Bad Gateway</html>"))
    cloud = make_cloud(transport=transport, api_url="https://graph.facebook.test")

    with pytest.raises(DeliveryError) as caught:
        await cloud.send_text(to=CUSTOMER, text="hi")

    assert (caught.value.permanent, caught.value.retry_after, caught.value.code) == (permanent, retry_after, None)
    assert f"WhatsApp error {status}" in str(caught.value)


@pytest.mark.parametrize(("code", "message"), [
    (131026, None),                                   # undeliverable / not on WhatsApp
    (131030, None),                                   # not in the test number allow-list
    (131009, None),                                   # "Recipient phone number not valid"
    (100, "Invalid parameter 'to': phone number is not a valid WhatsApp id"),
])
async def test_invalid_recipients_are_permanent(cloud: WhatsAppCloud, fake: FakeGraphApi, code: int,
                                                message: str | None) -> None:
    fake.fail_recipient(OTHER, code=code, message=message)

    with pytest.raises(DeliveryError) as caught:
        await cloud.send_template(to=OTHER, template="incident_update", language="en", parameters=("x",))

    error = caught.value
    assert isinstance(error, WhatsAppDeliveryError)
    assert (error.code, error.permanent, error.retry_after, error.reason) == (code, True, None, "invalid_recipient")
    assert "invalid or unreachable recipient" in str(error)


async def test_a_parameter_error_that_is_not_about_the_phone_is_a_bad_request(cloud: WhatsAppCloud,
                                                                               fake: FakeGraphApi) -> None:
    fake.fail_next(code=100, message="Parameter template.language.code is invalid")

    with pytest.raises(WhatsAppDeliveryError) as caught:
        await cloud.send_template(to=CUSTOMER, template="incident_update", language="xx", parameters=("x",))

    assert (caught.value.reason, caught.value.permanent) == ("bad_request", True)
    assert "template.language.code" in str(caught.value)


async def test_a_failing_recipient_does_not_affect_the_others(cloud: WhatsAppCloud, fake: FakeGraphApi) -> None:
    fake.fail_recipient(OTHER, code=131026)

    with pytest.raises(DeliveryError):
        await cloud.send_text(to=OTHER, text="hi")
    assert await cloud.send_text(to=CUSTOMER, text="hi")

    assert len(fake.sent_to(CUSTOMER)) == 1 and fake.sent_to(OTHER) == []


@pytest.mark.parametrize(("code", "status"), [(131000, 500), (2, 503), (1, 500), (131016, 400)])
async def test_server_errors_are_transient(cloud: WhatsAppCloud, fake: FakeGraphApi, code: int,
                                           status: int) -> None:
    fake.fail_next(code=code, status=status)

    with pytest.raises(DeliveryError) as caught:
        await cloud.send_text(to=CUSTOMER, text="hi")

    assert (caught.value.permanent, caught.value.code, caught.value.retry_after) == (False, code, None)


async def test_a_wrong_token_is_permanent_and_never_shown(make_cloud: Callable[..., WhatsAppCloud],
                                                          fake: FakeGraphApi) -> None:
    cloud = make_cloud(access_token="EAAG-wrong-token-0000")

    with pytest.raises(WhatsAppDeliveryError) as caught:
        await cloud.send_text(to=CUSTOMER, text="hi")

    error = caught.value
    assert (error.code, error.http_status, error.permanent, error.reason) == (190, 401, True, "auth")
    assert "EAAG-wrong-token-0000" not in f"{error} {error!r} {error.args} {error.details}"
    [request] = fake.requests
    assert not request.authorization_ok


async def test_a_timeout_is_transient(make_cloud: Callable[..., WhatsAppCloud], fake: FakeGraphApi) -> None:
    cloud = make_cloud(timeout=httpx.Timeout(0.2, connect=2.0))
    fake.hold()  # the fake records the request and answers only when released

    with pytest.raises(DeliveryError) as caught:
        await cloud.send_template(to=CUSTOMER, template="incident_update", language="en", parameters=("x",))

    fake.release()
    assert (caught.value.permanent, caught.value.retry_after) == (False, None)
    assert "did not answer in time" in str(caught.value)
    assert len(fake.of("messages", ok_only=False)) == 1


async def test_a_refused_connection_is_transient(make_cloud: Callable[..., WhatsAppCloud]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cloud = make_cloud(api_url=f"http://127.0.0.1:{port}")

    with pytest.raises(DeliveryError) as caught:
        await cloud.send_text(to=CUSTOMER, text="hi")

    assert not caught.value.permanent
    assert "could not reach WhatsApp" in str(caught.value)


async def test_the_token_never_appears_in_logs_errors_or_reprs(make_cloud: Callable[..., WhatsAppCloud],
                                                               fake: FakeGraphApi,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    cloud = make_cloud(timeout=httpx.Timeout(0.2, connect=2.0))
    errors: list[BaseException] = []

    await cloud.send_template(to=CUSTOMER, template="incident_update", language="en", parameters=("x",))
    await cloud.send_document(to=CUSTOMER, filename="INC-7.md", content=b"# INC-7", caption="Post-mortem")
    for code in (131047, 130429, 131026, 190, 131000):
        fake.fail_next(code=code)
        try:
            await cloud.send_text(to=CUSTOMER, text="hi")
        except DeliveryError as error:
            errors.append(error)
    fake.hold()
    try:
        await cloud.send_text(to=CUSTOMER, text="hi")
    except DeliveryError as error:
        errors.append(error)
    fake.release()

    assert len(errors) == 6
    assert all(r.authorization_ok for r in fake.requests)  # the token was sent…
    assert TOKEN not in caplog.text  # …and never logged
    assert "254700000001" not in caplog.text  # numbers are logged masked
    for error in errors:
        assert TOKEN not in f"{error} {error!r} {error.args} {error.__cause__!r} {error.__context__!r}"
    assert TOKEN not in repr(cloud) and TOKEN not in str(vars(cloud))


# -- buttons and documents (issue 9) ---------------------------------------------------------------------------


async def test_reply_buttons_message(cloud: WhatsAppCloud, fake: FakeGraphApi) -> None:
    wamid = await cloud.send_buttons(to=CUSTOMER, text="[INC-7] P1 Payments callbacks not arriving",
                                     buttons=[("ack:INC-7", "Acknowledge"), ("update:INC-7", "Post update"),
                                              ("resolve:INC-7", "Resolve")], footer="warroom")

    [request] = fake.of("messages")
    assert request.json == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "254700000001",
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "[INC-7] P1 Payments callbacks not arriving"},
            "action": {"buttons": [
                {"type": "reply", "reply": {"id": "ack:INC-7", "title": "Acknowledge"}},
                {"type": "reply", "reply": {"id": "update:INC-7", "title": "Post update"}},
                {"type": "reply", "reply": {"id": "resolve:INC-7", "title": "Resolve"}},
            ]},
            "footer": {"text": "warroom"},
        },
    }
    assert wamid == request.response["messages"][0]["id"]


@pytest.mark.parametrize(("buttons", "problem"), [
    ([("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")], "1 to 3 per message (got 4)"),
    ([], "1 to 3 per message (got 0)"),
    ([("a", "A"), ("a", "B")], "unique ids"),
    ([("a", "Acknowledge the incident now")], "title must be 1-20 characters"),
    ([("", "A")], "id must be 1-256 characters"),
])
async def test_reply_buttons_limits_are_enforced_before_sending(cloud: WhatsAppCloud, fake: FakeGraphApi,
                                                                buttons: list[tuple[str, str]],
                                                                problem: str) -> None:
    with pytest.raises(ValueError, match="reply button") as caught:
        await cloud.send_buttons(to=CUSTOMER, text="pick one", buttons=buttons)

    assert problem in str(caught.value)
    assert fake.requests == []


async def test_document_is_uploaded_then_sent(cloud: WhatsAppCloud, fake: FakeGraphApi) -> None:
    markdown = b"# INC-7 post-mortem\n\nPayments callbacks were not arriving for 42 minutes.\n"

    wamid = await cloud.send_document(to=CUSTOMER, filename="INC-7-postmortem.md", content=markdown,
                                      caption="Post-mortem for INC-7")

    upload, message = fake.requests
    assert upload.path == f"/v21.0/{fake.phone_number_id}/media" and upload.authorization_ok
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    assert upload.form == {"messaging_product": "whatsapp", "type": "text/plain"}
    assert upload.files["file"] == ("INC-7-postmortem.md", "text/plain", markdown)
    media_id = upload.response["id"]
    assert media_id.startswith("media-")
    assert message.json == {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": "254700000001", "type": "document",
                            "document": {"id": media_id, "filename": "INC-7-postmortem.md",
                                         "caption": "Post-mortem for INC-7"}}
    assert wamid == message.response["messages"][0]["id"]
    assert fake.media[media_id] == ("INC-7-postmortem.md", "text/plain", markdown)


async def test_document_to_an_invalid_number_uploads_nothing(cloud: WhatsAppCloud, fake: FakeGraphApi) -> None:
    with pytest.raises(DeliveryError) as caught:
        await cloud.send_document(to="12", filename="a.pdf", content=b"%PDF-1.4")

    assert caught.value.permanent
    assert fake.requests == []


async def test_a_failed_upload_is_a_delivery_error(cloud: WhatsAppCloud, fake: FakeGraphApi) -> None:
    fake.fail_next(code=131000, status=500)

    with pytest.raises(DeliveryError) as caught:
        await cloud.send_document(to=CUSTOMER, filename="a.pdf", content=b"%PDF-1.4")

    assert not caught.value.permanent
    assert [r.endpoint for r in fake.requests] == ["media"]


@pytest.mark.parametrize(("filename", "given", "expected"), [
    ("INC-7.md", None, "text/plain"),
    ("timeline.csv", None, "text/plain"),
    ("report.pdf", None, "application/pdf"),
    ("notes.txt", None, "text/plain"),
    ("INC-7.md", "text/markdown", "text/plain"),
    ("sheet.xlsx", None, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
])
def test_document_types_are_ones_whatsapp_accepts(filename: str, given: str | None, expected: str) -> None:
    assert document_type(filename, given) == expected


# -- small helpers ----------------------------------------------------------------------------------------------


def test_numbers_and_masks() -> None:
    assert whatsapp_number("+1 (650) 555-1234") == "16505551234"
    assert mask("+254700000001") == "+…0001"
    with pytest.raises(ValueError):
        whatsapp_number("+0123")


def test_retry_after_header_forms() -> None:
    assert _retry_after("4") == 4.0
    assert _retry_after("0.5") == 0.5
    assert _retry_after("-3") == 0.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: go now
    assert _retry_after("soon") is None
    assert _retry_after(None) is None


def test_construction_refuses_missing_credentials() -> None:
    with pytest.raises(ValueError, match="access token"):
        WhatsAppCloud(phone_number_id="123", access_token="")
    with pytest.raises(ValueError, match="phone_number_id"):
        WhatsAppCloud(phone_number_id="+254700000001", access_token="t")
