"""No configured secret reaches a log line, at any level, in any logger, in uvicorn's access log or in a traceback.

A full request flow — Slack slash commands and events, Meta's webhook handshake and a signed WhatsApp delivery,
alert intake, the freeze API, a metrics scrape, refusals of each — runs against warroom, and every captured line is
searched for each secret: the Slack signing secret and bot token, the WhatsApp access token, app secret and verify
token, the alert, freeze and metrics tokens. Once in-process (every logger at DEBUG, uvicorn's real access records
formatted by its own AccessFormatter) and once through a real `warroom serve` process (its whole stderr)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from slack_sdk.signature import SignatureVerifier
from uvicorn.logging import AccessFormatter

import adapters.http as http_module
from adapters.http import build_http_app, slack_routes
from adapters.ops_http import ops_routes
from adapters.slack.app import SlackInbound
from adapters.slack.chat import SlackChat, make_web_client
from adapters.whatsapp.client import WhatsAppCloud
from adapters.whatsapp.routes import whatsapp_routes
from bot.app.bootstrap import build
from bot.ports import ManualClock
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.slack_api import FakeSlackApi
from tests.processes import ServeProcess, free_port
from tests.support import START, make_settings

SECRETS = {
    "SLACK_SIGNING_SECRET": "sss-5f1c0a9e7d3b4c21",
    "SLACK_BOT_TOKEN": "xoxb-botbotbot-77aa31c9",
    "WHATSAPP_ACCESS_TOKEN": "EAAGwaaccess9c2e7f41",
    "WHATSAPP_APP_SECRET": "appsecret-b8d4e0f3a2",
    "WHATSAPP_VERIFY_TOKEN": "verifytok-3e9a1c7b55",
    "WARROOM_ALERT_TOKEN": "alerttok-1a2b3c4d5e",
    "WARROOM_FREEZE_TOKEN": "freezetok-6f7e8d9c0b",
    "WARROOM_METRICS_TOKEN": "metricstok-0b9c8d7e6f",
}
PHONE_NUMBER_ID = "106540352242922"
ALICE, CHANNEL = "U0ALICE01", "C0INCIDENTS"


def _slack_signed(body: str, content_type: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(SECRETS["SLACK_SIGNING_SECRET"]).generate_signature(
                timestamp=stamp, body=body)}


def _slash(text: str, trigger: str, response_url: str) -> tuple[str, dict[str, str]]:
    body = urlencode({"command": "/incident", "text": text, "user_id": ALICE, "channel_id": CHANNEL,
                      "team_id": "T0WARROOM", "trigger_id": trigger, "response_url": response_url})
    return body, _slack_signed(body, "application/x-www-form-urlencoded")


async def run_flow(http: httpx.AsyncClient, *, response_url: str) -> list[int]:
    """Every route, accepted and refused; returns the statuses (the caller checks the flow really ran)."""
    s = SECRETS
    statuses = [(await http.get("/health")).status_code]
    for text in ('declare P1 "Payments down"', "status INC-1 \"rolling back\"", "list"):
        body, headers = _slash(text, f"trig-{len(statuses)}", response_url)
        statuses.append((await http.post("/slack/events", content=body, headers=headers)).status_code)
    event = json.dumps({"type": "url_verification", "challenge": "chal-1", "token": "legacy"})
    statuses.append((await http.post("/slack/events", content=event,
                                     headers=_slack_signed(event, "application/json"))).status_code)
    forged_body, forged = _slash("list", "trig-forged", response_url)
    forged["X-Slack-Signature"] = "v0=" + "0" * 64
    statuses.append((await http.post("/slack/events", content=forged_body, headers=forged)).status_code)
    statuses.append((await http.post("/slack/events", content=forged_body, headers={
        **forged, "X-Slack-Request-Timestamp": "9" * 5000})).status_code)
    # Meta's handshake puts the verify token in the URL: exactly what an access log would print
    for token in (s["WHATSAPP_VERIFY_TOKEN"], "wrong-token"):
        statuses.append((await http.get("/whatsapp/webhook", params={
            "hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"})).status_code)
    delivery = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
                                       "contacts": [{"profile": {"name": "Wanjiru"}, "wa_id": "254700000001"}],
                                       "messages": [{"from": "254700000001", "id": "wamid.IN1",
                                                     "timestamp": str(int(time.time())), "type": "text",
                                                     "text": {"body": "Still broken"}}]}}]}]}).encode()
    signature = "sha256=" + hmac.new(s["WHATSAPP_APP_SECRET"].encode(), delivery, hashlib.sha256).hexdigest()
    for sig in (signature, "sha256=" + "0" * 64):
        statuses.append((await http.post("/whatsapp/webhook", content=delivery, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": sig})).status_code)
    alert = {"title": "Checkout 5xx above 5%", "severity": "critical", "fingerprint": "checkout-5xx",
             "labels": {"service": "checkout"}}
    for token in (s["WARROOM_ALERT_TOKEN"], "wrong"):
        statuses.append((await http.post("/alerts/generic", json=alert,
                                         headers={"Authorization": f"Bearer {token}"})).status_code)
    statuses.append((await http.post("/alerts/alertmanager", content=b"[" * 10_000,
                                     headers={"Authorization": f"Bearer {s['WARROOM_ALERT_TOKEN']}"})).status_code)
    for path, name in (("/api/freeze", "WARROOM_FREEZE_TOKEN"), ("/metrics", "WARROOM_METRICS_TOKEN")):
        for token in (s[name], "wrong"):
            statuses.append((await http.get(path, headers={"Authorization": f"Bearer {token}"})).status_code)
        statuses.append((await http.get(path, params={"access_token": s[name]})).status_code)
    return statuses


def leaks(lines: list[str]) -> dict[str, list[str]]:
    return {name: [line[:300] for line in lines if value in line] for name, value in SECRETS.items()
            if any(value in line for line in lines)}


async def test_a_full_run_in_process_logs_no_secret_at_any_level(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)  # every logger, every level: slack_sdk, httpx, uvicorn, warroom…
    slack = await FakeSlackApi(users={ALICE: "alice"}).start()
    graph = await FakeGraphApi(token=SECRETS["WHATSAPP_ACCESS_TOKEN"], phone_number_id=PHONE_NUMBER_ID).start()
    config = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'w.db'}",
                      postmortem_dir=tmp_path / "pm", slack_bot_token=SECRETS["SLACK_BOT_TOKEN"],
                      slack_signing_secret=SECRETS["SLACK_SIGNING_SECRET"], slack_api_url=slack.url,
                      alert_token=SECRETS["WARROOM_ALERT_TOKEN"], freeze_token=SECRETS["WARROOM_FREEZE_TOKEN"],
                      metrics_token=SECRETS["WARROOM_METRICS_TOKEN"])
    clock = ManualClock(START)
    chat = SlackChat(client=make_web_client(token=SECRETS["SLACK_BOT_TOKEN"], base_url=slack.url, backoff=0.01,
                                            jitter=0.01), incident_mode="thread", announce_channel=None, clock=clock)
    cloud = WhatsAppCloud(phone_number_id=PHONE_NUMBER_ID, access_token=SECRETS["WHATSAPP_ACCESS_TOKEN"],
                          api_url=graph.url)
    app = await build(config, chat={"slack": chat}, clock=clock, messenger=cloud)
    inbound = SlackInbound(service=app.service, chat=chat, signing_secret=SECRETS["SLACK_SIGNING_SECRET"])
    asgi = build_http_app([*slack_routes(inbound.app),
                           *whatsapp_routes(verify_token=SECRETS["WHATSAPP_VERIFY_TOKEN"],
                                            app_secret=SECRETS["WHATSAPP_APP_SECRET"],
                                            on_event=app.operators.customer_event),
                           *ops_routes(app)])
    port = free_port()
    # the server exactly as `warroom serve` configures it, minus uvicorn's own handlers (caplog captures instead)
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           log_level="debug"))
    http_module.redact_access_log()
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0)  # yield until it listens
            assert not serving.done()
        await app.service.briefs.add_contact(tenant="acme", name="Jane", phone="+254700000001")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            statuses = await run_flow(http, response_url=slack.response_url())
        # an outbound WhatsApp send (Bearer access token) and Slack calls (bot token) happened too
        await cloud.send_text(to="+254700000001", text="probe")
        await inbound.drain()
    finally:
        server.should_exit = True
        await serving
        await inbound.close()
        await app.close()
        await cloud.aclose()
        await slack.close()
        await graph.close()

    assert {200, 401, 403} <= set(statuses), statuses
    assert graph.requests and slack.calls, "the flow reached neither fake"
    access = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    lines = []
    own_client = f"http://127.0.0.1:{port}/"  # this test's own httpx client logs the URLs it asks for
    for record in caplog.records:
        if record.name == "httpx" and own_client in record.getMessage():
            continue
        lines += [plain.format(record), repr(record.args), record.exc_text or ""]
        if record.name == "uvicorn.access":
            lines.append(access.format(record))
    assert any("hub.verify_token=[redacted]" in line for line in lines), "the access log was not captured"
    assert leaks(lines) == {}


async def test_a_real_warroom_serve_logs_no_secret(tmp_path: Path):
    slack = await FakeSlackApi(users={ALICE: "alice"}).start()
    graph = await FakeGraphApi(token=SECRETS["WHATSAPP_ACCESS_TOKEN"], phone_number_id=PHONE_NUMBER_ID).start()
    served = await ServeProcess.start(cwd=tmp_path, env={
        **SECRETS, "WARROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "WARROOM_LADDER": "P1-P3",
        "WARROOM_POSTMORTEM_DIR": str(tmp_path / "pm"), "SLACK_API_URL": slack.url, "WHATSAPP_API_URL": graph.url,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID, "WARROOM_LOG_LEVEL": "DEBUG"})
    try:
        async with httpx.AsyncClient(base_url=served.url) as http:
            statuses = await run_flow(http, response_url=slack.response_url())
        assert await served.stop() == 0
    finally:
        await served.kill()
        await slack.close()
        await graph.close()

    assert {200, 401, 403} <= set(statuses), statuses
    assert any("/whatsapp/webhook?hub.mode=subscribe" in line for line in served.log), "".join(served.log)
    assert leaks(served.log) == {}
