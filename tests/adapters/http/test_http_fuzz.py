"""Fuzz the HTTP server warroom exposes (Slack, WhatsApp, /health) with hypothesis: malformed JSON and form
bodies, signed and unsigned, wrong content types, huge bodies. Never a 500, never a stored row."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from adapters.http import MAX_BODY_BYTES
from tests.adapters.http.surface import SLACK_SECRET, TABLES, WA_SECRET, Server

PATHS = ["/slack/events", "/whatsapp/webhook", "/health", "/nope"]
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data",
                 "application/json; charset=latin-1", "", "application/xml"]

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                       max_size=4), max_leaves=12)
slack_shaped = st.fixed_dictionaries({
    "type": st.sampled_from(["event_callback", "url_verification", "block_actions", "view_submission", "x"]),
    "event_id": st.text(max_size=8), "team_id": st.text(max_size=8),
    "event": st.dictionaries(st.sampled_from(["type", "channel", "user", "text", "ts", "thread_ts", "subtype"]),
                             json_values, max_size=7)})
whatsapp_shaped = st.fixed_dictionaries({
    "object": st.sampled_from(["whatsapp_business_account", "page", ""]),
    "entry": st.lists(st.dictionaries(st.sampled_from(["id", "changes"]), json_values, max_size=2), max_size=3)})
forms = st.dictionaries(st.sampled_from(["command", "text", "user_id", "channel_id", "trigger_id", "payload", "x"]),
                        st.text(max_size=40).filter(lambda t: "declare" not in t.lower()), max_size=6)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    slack_shaped.map(lambda v: json.dumps(v).encode()),
    whatsapp_shaped.map(lambda v: json.dumps(v).encode()),
    forms.map(lambda f: urlencode(f).encode()),
    forms.map(lambda f: urlencode({"payload": json.dumps(f)}).encode()),
)


def _headers(path: str, body: bytes, content_type: str, sign: bool) -> dict[str, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    if sign and path == "/slack/events":
        stamp = str(int(time.time()))
        text = body.decode("utf-8", "replace")
        headers |= {"X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=stamp, body=text)}
        body_bytes = text.encode()
        assert body_bytes is not None
    if sign and path == "/whatsapp/webhook":
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(WA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return headers


def test_malformed_requests_never_cause_a_500_or_a_stored_row(tmp_path):
    with asyncio.Runner() as runner:
        server = runner.run(Server().start(tmp_path))
        statuses: list[int] = []

        @settings(max_examples=250, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        @given(path=st.sampled_from(PATHS), body=bodies, content_type=st.sampled_from(CONTENT_TYPES),
               sign=st.booleans(), method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
        def probe(path: str, body: bytes, content_type: str, sign: bool, method: str) -> None:
            if sign and path == "/slack/events":
                body = body.decode("utf-8", "replace").encode()  # Slack signs text; keep the signed bytes exact
            response = runner.run(server.http.request(method, path, content=body,
                                                      headers=_headers(path, body, content_type, sign)))
            statuses.append(response.status_code)
            assert response.status_code < 500, (path, body[:200], response.status_code, response.text[:300])

        probe()
        assert runner.run(server.stored_rows()) == dict.fromkeys(TABLES, 0)
        assert {401, 404, 405} <= set(statuses)  # the fuzzing reached the refusals, not only one path
        runner.run(server.stop())


async def test_bodies_over_the_limit_get_413_declared_or_streamed(tmp_path):
    server = await Server().start(tmp_path)
    huge = b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"

    async def streamed():  # no Content-Length: chunked
        for start in range(0, len(huge), 65536):
            yield huge[start:start + 65536]

    for path in ("/slack/events", "/whatsapp/webhook"):
        declared = await server.http.post(path, content=huge, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413 and "too large" in declared.json()["error"]
        chunked = await server.http.post(path, content=streamed(), headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413
    assert (await server.http.get("/health")).status_code == 200
    assert await server.stored_rows() == dict.fromkeys(TABLES, 0)
    await server.stop()
