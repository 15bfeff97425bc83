"""Every HTTP route warroom serves authenticates before it parses, and no input — signed or not — gets a 500 or a
traceback in the log: 10,000-level nested JSON, odd Slack timestamps, clients that hang up mid-body, and a
property-based run of deep, wide, mistyped and truncated bodies at every route (Slack, WhatsApp, alert intake,
freeze, metrics, health). Every refusal is a 4xx whose body says what was wrong."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

import adapters.http as http_module
from tests.adapters.http.surface import ALERT, FREEZE, METRICS, SLACK_SECRET, TABLES, VERIFY, WA_SECRET, Server
from tests.processes import free_port

POSTS = ["/slack/events", "/whatsapp/webhook", "/alerts/alertmanager", "/alerts/generic"]
GETS = ["/api/freeze", "/metrics", "/health", "/whatsapp/webhook"]
DEPTH = 10_000


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    started = await Server().start(tmp_path)
    yield started
    await started.stop()


def credentials(path: str, body: bytes, *, stamp: str | None = None) -> dict[str, str]:
    """The headers that authenticate `body` on `path`, as each caller would send them."""
    if path == "/slack/events":
        stamp = stamp or str(int(time.time()))
        return {"X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": "v0=" + hmac.new(SLACK_SECRET.encode(), f"v0:{stamp}:".encode() + body,
                                                      hashlib.sha256).hexdigest()}
    if path == "/whatsapp/webhook":
        return {"X-Hub-Signature-256": "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()}
    if path.startswith("/alerts/"):
        return {"Authorization": f"Bearer {ALERT}"}
    if path == "/api/freeze":
        return {"Authorization": f"Bearer {FREEZE}"}
    if path == "/metrics":
        return {"Authorization": f"Bearer {METRICS}"}
    return {}


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Records a refusal must never produce: anything at ERROR or above, or carrying a traceback."""
    return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.ERROR or r.exc_info or r.exc_text]


def says_what_was_wrong(response: httpx.Response) -> str:
    text = response.text
    assert text.strip(), f"a {response.status_code} with an empty body"
    return text


def nested(kind: str, depth: int = DEPTH) -> bytes:
    return {"list": b"[" * depth + b"]" * depth,
            "object": b'{"a":' * depth + b"1" + b"}" * depth,
            "slack": b'{"type":"event_callback","event":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}",
            "whatsapp": b'{"object":"whatsapp_business_account","entry":' + b"[" * depth + b"]" * depth + b"}",
            }[kind]


# -- 1. deep JSON ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
async def test_json_nested_ten_thousand_levels_is_a_4xx_on_every_route(server: Server, signed: bool,
                                                                       caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    for path in POSTS:
        for kind in ("list", "object", "slack", "whatsapp"):
            body = nested(kind)
            for content_type in ("application/json", "application/x-www-form-urlencoded"):
                form = content_type.endswith("urlencoded")
                raw = b"payload=" + body if form else body
                headers = {"Content-Type": content_type, **(credentials(path, raw) if signed else {})}
                response = await server.http.post(path, content=raw, headers=headers)
                assert 400 <= response.status_code < 500, (path, kind, content_type, response.status_code)
                says_what_was_wrong(response)
                if not signed:
                    assert response.status_code == 401, (path, kind, response.status_code, response.text)
    assert tracebacks(caplog) == []
    assert await server.stored_rows() == dict.fromkeys(TABLES, 0)


async def test_a_signed_deep_slack_body_says_it_is_nested_too_deeply(server: Server):
    body = nested("object")
    response = await server.http.post("/slack/events", content=body, headers={
        "Content-Type": "application/json", **credentials("/slack/events", body)})
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]
    body = nested("list")
    response = await server.http.post("/whatsapp/webhook", content=body,
                                      headers={"Content-Type": "application/json",
                                               **credentials("/whatsapp/webhook", body)})
    assert response.status_code == 400 and "nested too deeply" in response.text


# -- 1. Slack timestamps --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stamp", ["abc", "9" * 5000, "-5", "1e9", "12.5", "١٢٣", "0x10", " ", "0"],
                         ids=["letters", "5000-digits", "negative", "exponent", "float", "arabic-digits", "hex",
                              "blank", "epoch"])
async def test_an_odd_slack_timestamp_is_a_401_naming_the_header(server: Server, stamp: str,
                                                                 caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    body = b'{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention","text":"hi"}}'
    # signed with that very timestamp, so only the timestamp can be what is wrong
    signature = "v0=" + hmac.new(SLACK_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body,
                                 hashlib.sha256).hexdigest()
    response = await server.http.post("/slack/events", content=body, headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp.encode(),
        "X-Slack-Signature": signature})

    assert response.status_code == 401, response.text
    assert "X-Slack-Request-Timestamp" in response.json()["error"]
    assert tracebacks(caplog) == []


async def test_slack_refusals_say_which_header_is_missing_or_wrong(server: Server):
    body = b'{"type":"event_callback"}'
    stamp = str(int(time.time()))
    cases = {"X-Slack-Request-Timestamp header is missing": {"X-Slack-Signature": "v0=00"},
             "X-Slack-Signature header is missing": {"X-Slack-Request-Timestamp": stamp},
             "does not match": {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + "0" * 64},
             "5 minutes": credentials("/slack/events", body, stamp=str(int(time.time()) - 3600))}
    for expected, headers in cases.items():
        response = await server.http.post("/slack/events", content=body,
                                          headers={"Content-Type": "application/json", **headers})
        assert response.status_code == 401 and expected in response.json()["error"], response.text


def test_the_slack_signature_check_agrees_with_slack_sdk():
    body = 'command=%2Fincident&text=list'
    stamp = str(int(time.time()))
    good = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=stamp, body=body)
    assert http_module.slack_signature_problem(SLACK_SECRET, body.encode(), stamp, good) is None
    assert http_module.slack_signature_problem("other", body.encode(), stamp, good) is not None
    assert http_module.slack_signature_problem(SLACK_SECRET, body.encode(), stamp, good,
                                   now=time.time() + 301) is not None


async def test_an_unsigned_malformed_slack_body_is_refused_for_its_signature_not_parsed(server: Server):
    # before: the body was shape-checked first (400 "malformed") — parsing what nobody vouched for
    response = await server.http.post("/slack/events", content=b'{"type": 5}',
                                      headers={"Content-Type": "application/json"})
    assert response.status_code == 401 and "Slack request refused" in response.json()["error"]


async def test_an_odd_content_length_is_a_4xx_saying_so(server: Server):
    for declared, status, says in ((b"abc", 400, "not a number"), (b"9" * 5000, 413, "too large"),
                                   (b"-1", 400, "not a number")):
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict, sent: list[dict] = sent) -> None:
            sent.append(message)

        await server.asgi({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                           "scheme": "http", "path": "/slack/events", "raw_path": b"/slack/events",
                           "query_string": b"", "root_path": "", "server": ("warroom.test", 80),
                           "client": ("127.0.0.1", 5000), "headers": [(b"content-length", declared)]}, receive, send)
        assert sent[0]["status"] == status and says in json.loads(sent[1]["body"])["error"], (declared[:10], sent)


# -- 1. a client that hangs up mid-body -----------------------------------------------------------------------


async def test_a_client_that_disconnects_mid_body_logs_no_traceback_under_uvicorn(server: Server,
                                                                                  caplog: pytest.LogCaptureFixture):
    """The real server: uvicorn on loopback, a raw socket that promises 1,000 bytes, sends 10 and hangs up."""
    caplog.set_level(logging.DEBUG)
    finished: asyncio.Queue[str] = asyncio.Queue()

    async def app(scope: dict, receive: Any, send: Any) -> None:
        try:
            await server.asgi(scope, receive, send)
        finally:  # uvicorn logs an escaping exception right after this, in the same step of its task
            if scope["type"] == "http":
                finished.put_nowait(scope["path"])

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None, log_level="debug")
    uv = uvicorn.Server(config)
    serving = asyncio.create_task(uv.serve())
    while not uv.started:
        await asyncio.sleep(0)  # yield to the server task until it listens (no timing involved)
        assert not serving.done(), serving
    try:
        for path in POSTS:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = [f"POST {path} HTTP/1.1", "Host: warroom", "Content-Type: application/json",
                    "Content-Length: 1000", *(f"{k}: {v}" for k, v in credentials(path, b"x").items())]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + b'{"entry": ')
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            assert await asyncio.wait_for(finished.get(), 10) == path
            await asyncio.sleep(0)  # let uvicorn's task finish the step that logs (still no timing)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/health")).status_code == 200  # still serving
    finally:
        uv.should_exit = True
        await serving
    assert tracebacks(caplog) == []


async def test_a_disconnect_mid_body_answers_400_in_process(server: Server, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    for path in POSTS:
        messages = [{"type": "http.request", "body": b'{"entry": ', "more_body": True}, {"type": "http.disconnect"}]
        sent: list[dict] = []

        async def receive(messages: list[dict] = messages) -> dict:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict, sent: list[dict] = sent) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json"), (b"content-length", b"1000"),
                   *((k.lower().encode(), v.encode()) for k, v in credentials(path, b"x").items())]
        await server.asgi({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                           "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                           "root_path": "", "headers": headers, "server": ("warroom.test", 80),
                           "client": ("127.0.0.1", 5000)}, receive, send)
        assert sent[0]["status"] == 400 and b"disconnected" in sent[1]["body"], (path, sent)
    assert tracebacks(caplog) == []


# -- 2. property-based: every route, signed and unsigned -----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=30)
alert_shaped = st.fixed_dictionaries({
    "version": st.sampled_from(["4", 4, None, "x"]), "status": st.sampled_from(["firing", "resolved", 1, None]),
    "groupKey": json_values, "commonLabels": json_values, "alerts": st.lists(st.dictionaries(
        st.sampled_from(["status", "labels", "annotations", "startsAt", "endsAt", "fingerprint", "title",
                         "severity", "service"]), json_values, max_size=9), max_size=3)})
generic_shaped = st.dictionaries(st.sampled_from(["title", "severity", "service", "status", "key", "labels",
                                                  "summary", "alerts", "fingerprint"]), json_values, max_size=9)
slack_shaped = st.fixed_dictionaries({
    "type": st.sampled_from(["event_callback", "url_verification", "block_actions", "view_submission", 7]),
    "event_id": json_values, "team_id": json_values, "challenge": json_values,
    "event": st.dictionaries(st.sampled_from(["type", "channel", "user", "text", "ts", "thread_ts", "subtype"]),
                             json_values, max_size=7)})
whatsapp_shaped = st.fixed_dictionaries({
    "object": st.sampled_from(["whatsapp_business_account", "page", ""]),
    "entry": st.lists(st.dictionaries(st.sampled_from(["id", "changes"]), json_values, max_size=2), max_size=3)})


def deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"[]" + b"}" * depth


def wide(width: int) -> bytes:
    return json.dumps({f"k{i}": [i] * 3 for i in range(width)}).encode()


documents = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    alert_shaped.map(lambda v: json.dumps(v).encode()),
    generic_shaped.map(lambda v: json.dumps(v).encode()),
    slack_shaped.map(lambda v: json.dumps(v).encode()),
    whatsapp_shaped.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([10, 500, 5_000, 20_000]).map(deep),
    st.sampled_from([1_000, 20_000]).map(wide),
)
bodies = st.one_of(
    documents,
    st.tuples(documents, st.floats(0, 1)).map(lambda t: t[0][:int(len(t[0]) * t[1])]),  # truncated
    documents.map(lambda d: b"payload=" + d),
    st.binary(max_size=200),
)


def test_no_body_signed_or_not_gets_a_500_or_a_traceback_on_any_route(tmp_path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    with asyncio.Runner() as runner:
        server = runner.run(Server().start(tmp_path))
        statuses: set[int] = set()
        try:
            @settings(max_examples=300, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                             HealthCheck.data_too_large])
            @given(route=st.sampled_from([("POST", p) for p in POSTS] + [("GET", p) for p in GETS]),
                   body=bodies, signed=st.booleans(),
                   content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                                 "text/plain", ""]))
            def probe(route: tuple[str, str], body: bytes, signed: bool, content_type: str) -> None:
                method, path = route
                headers = {"Content-Type": content_type} if content_type else {}
                if signed:
                    headers |= credentials(path, body)
                params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY if signed else "no",
                          "hub.challenge": "42"} if method == "GET" and path == "/whatsapp/webhook" else None
                caplog.clear()
                response = runner.run(server.http.request(method, path, content=body, headers=headers, params=params))
                statuses.add(response.status_code)
                assert response.status_code < 500, (method, path, signed, body[:200], response.text[:300])
                if response.status_code >= 400:
                    says_what_was_wrong(response)
                if not signed and path not in ("/health", "/metrics"):
                    assert response.status_code in (401, 403, 413), (path, response.status_code)
                assert tracebacks(caplog) == [], (method, path, signed, body[:200])

            probe()
        finally:
            runner.run(server.stop())
        assert {200, 400, 401} <= statuses
