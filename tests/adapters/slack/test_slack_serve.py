"""`warroom serve` as a real process: uvicorn on a free port, Slack at POST /slack/events, GET /health, and a
graceful stop on SIGTERM. The process talks to the fake Slack Web API running in this test."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from tests.adapters.slack.slack_team import ALICE, INCIDENTS, SECRET, TEAM
from tests.fakes.slack_api import FakeSlackApi

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log: list[str] = []

    async def wait_for_line(self, needle: str, timeout: float = 20.0) -> str:
        async def read() -> str:
            assert self.process.stderr is not None
            while True:
                raw = await self.process.stderr.readline()
                if not raw:
                    raise AssertionError("warroom serve exited:\n" + "".join(self.log))
                line = raw.decode("utf-8", "replace")
                self.log.append(line)
                if needle in line:
                    return line

        return await asyncio.wait_for(read(), timeout)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 20)


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator:
    started: list[Served] = []

    async def start(**env: str) -> Served:
        port = free_port()
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))}
        variables = {**clean, "PYTHONPATH": str(ROOT), "WARROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
                     "WARROOM_HTTP_HOST": "127.0.0.1", "WARROOM_HTTP_PORT": str(port), "WARROOM_LADDER": "P1-P3",
                     "WARROOM_POSTMORTEM_DIR": str(tmp_path / "pm"), "WARROOM_LOG_LEVEL": "INFO", **env}
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", cwd=tmp_path,
                                                       env=variables, stderr=asyncio.subprocess.PIPE,
                                                       stdout=asyncio.subprocess.DEVNULL)
        served = Served(process, port)
        started.append(served)
        await served.wait_for_line("Uvicorn running on")
        return served

    yield start
    for served in started:
        if served.process.returncode is None:
            served.process.kill()
            await served.process.wait()


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
