"""`warroom serve` as a real process: uvicorn on a free port, Slack at POST /slack/events, GET /health, and a
graceful stop on SIGTERM. The process talks to the fake Slack Web API running in this test."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from tests.adapters.slack.slack_team import ALICE, INCIDENTS, SECRET, TEAM
from tests.fakes.slack_api import FakeSlackApi
from tests.processes import ServeProcess


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator:
    started: list[ServeProcess] = []

    async def start(**env: str) -> ServeProcess:
        served = await ServeProcess.start(cwd=tmp_path, env={
            "WARROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "WARROOM_LADDER": "P1-P3",
            "WARROOM_POSTMORTEM_DIR": str(tmp_path / "pm"), **env})
        started.append(served)
        return served

    yield start
    for served in started:
        await served.kill()


async def test_serve_answers_slack_and_health_and_stops_gracefully(serve, fake: FakeSlackApi):
    served = await serve(SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.url)
    body = urlencode({"command": "/incident", "text": 'declare P1 "Payments down"', "user_id": ALICE,
                      "channel_id": INCIDENTS, "team_id": TEAM, "trigger_id": "trig-serve",
                      "response_url": fake.response_url()})
    stamp = str(int(time.time()))
    async with httpx.AsyncClient(base_url=served.url) as http:
        health = await http.get("/health")
        slash = await http.post("/slack/events", content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=body)})
        forged = await http.post("/slack/events", content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": "v0=" + "0" * 64})

    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert slash.status_code == 200 and slash.json()["text"].startswith("Declared INC-1 (P1): Payments down.")
    assert forged.status_code == 401
    [card] = await fake.wait_calls("chat.postMessage", where=lambda c: "thread_ts" not in c.params, timeout=10)
    assert card.params["channel"] == INCIDENTS and card.params["text"] == "INC-1 · P1 · Payments down"
    assert await served.stop() == 0


async def test_serve_without_a_chat_platform_still_answers_health(serve):
    served = await serve()

    async with httpx.AsyncClient(base_url=served.url) as http:
        health = await http.get("/health")
        slack = await http.post("/slack/events", content=b"{}")

    assert health.json() == {"status": "ok"}
    assert slack.status_code == 404
    assert any("no chat platform configured" in line for line in served.log)
    assert await served.stop() == 0


async def test_socket_mode_receives_commands_and_acknowledges_over_the_websocket(slack):
    await slack.inbound.connect_socket_mode("xapp-1-test")
    await slack.fake.wait_calls("apps.connections.open")
    await slack.fake.wait_calls("socket_connect")

    await slack.fake.socket_send({"envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
                                  "payload": {"command": "/incident", "text": 'declare P1 "Payments down"',
                                              "user_id": ALICE, "channel_id": INCIDENTS, "team_id": TEAM,
                                              "trigger_id": "trig-socket", "response_url": slack.fake.response_url()}})

    [ack] = await slack.fake.wait_calls("socket_ack")
    assert ack.params["envelope_id"] == "env-1"
    assert ack.params["payload"]["response_type"] == "ephemeral"
    assert ack.params["payload"]["text"].startswith("Declared INC-1 (P1): Payments down.")
    await slack.inbound.wait_handled("trig-socket")
    card = slack.fake.of("chat.postMessage")[0]
    assert card.params["channel"] == INCIDENTS and card.params["text"] == "INC-1 · P1 · Payments down"
