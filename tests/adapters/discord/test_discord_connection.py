"""The Discord connection tells the truth: "connected" only after the gateway's READY; a fatal close (4014
MESSAGE CONTENT intent, 4004 bad token) makes /health unhealthy with the fix in the log; the gateway URL and an
HTTP proxy are settings. Real discord.py against the fake's REST API and gateway WebSocket on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import httpx
import pytest
from discord_api import FakeDiscord

from adapters.discord.bot import DiscordRuntime, discord_chat_from_settings, make_client, start_discord
from adapters.discord.settings import DEFAULT_GATEWAY_URL, DiscordSettings
from adapters.http import build_http_app
from bot.app.bootstrap import build
from bot.ports import ManualClock
from tests.adapters.discord.conftest import START, core_settings


@pytest.fixture
def gateway_setting():
    original = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = original


@pytest.fixture
async def connect(fake: FakeDiscord, tmp_path: Path, database_url: str, gateway_setting) -> AsyncIterator:
    """Start warroom's Discord side against the fake, gateway included; returns (runtime, what it announced)."""
    started: list[tuple[DiscordRuntime, object]] = []

    async def start() -> tuple[DiscordRuntime, list[str]]:
        settings = DiscordSettings(_env_file=None, bot_token="test-token", guild_id=int(fake.guild_id),  # type: ignore[call-arg]
                                   incidents_channel_id=int(fake.incidents_channel["id"]), api_url=fake.base_url,
                                   gateway_url=fake.gateway_url)
        # guild_ready_timeout=0: discord.py would otherwise wait 2 s for GUILD_CREATEs before READY.
        chat = discord_chat_from_settings(settings, client=make_client(guild_ready_timeout=0.0))
        app = await build(core_settings(tmp_path, database_url), chat={"discord": chat}, clock=ManualClock(START))
        said: list[str] = []
        runtime = await start_discord(app.service, settings, chat=chat, announce=said.append)
        started.append((runtime, app))
        return runtime, said

    yield start
    for runtime, app in started:
        await runtime.stop()
        await app.close()  # type: ignore[attr-defined]


async def health(runtime: DiscordRuntime) -> httpx.Response:
    app = build_http_app(health_checks={"discord": runtime.health_problem})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warroom") as client:
        return await client.get("/health")


async def test_connected_is_said_only_after_the_gateways_ready(fake: FakeDiscord, connect) -> None:
    runtime, said = await connect()

    assert await runtime.wait_ready(timeout=10)
    assert said == ["Discord connected."]
    assert fake.identified and fake.identified[0]["intents"] & discord.Intents(message_content=True).value
    assert runtime.health_problem() is None
    assert (await health(runtime)).status_code == 200


@pytest.mark.parametrize(("code", "fix"), [
    (4014, "MESSAGE CONTENT INTENT"),
    (4004, "DISCORD_BOT_TOKEN"),
])
async def test_a_fatal_gateway_close_makes_health_unhealthy_with_the_fix(
        fake: FakeDiscord, connect, caplog: pytest.LogCaptureFixture, code: int, fix: str) -> None:
    fake.gateway_close = code
    caplog.set_level(logging.ERROR, logger="warroom.discord")

    runtime, said = await connect()

    assert not await runtime.wait_ready(timeout=10)
    assert "Discord connected." not in said
    assert runtime.health_problem() is not None and fix in runtime.health_problem()
    answer = await health(runtime)
    assert answer.status_code == 503 and fix in answer.json()["problems"]["discord"]
    assert any(fix in record.getMessage() for record in caplog.records)  # the fix is in the log


def test_gateway_url_and_proxy_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_GATEWAY_URL", "wss://discord-gw.egress.internal/")
    monkeypatch.setenv("DISCORD_PROXY", "http://proxy.internal:3128")
    settings = DiscordSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.gateway_url == "wss://discord-gw.egress.internal/"
    assert settings.proxy == "http://proxy.internal:3128"
    chat = discord_chat_from_settings(settings)
    assert chat.client.http.proxy == "http://proxy.internal:3128"  # REST and the gateway go through it

    monkeypatch.setenv("DISCORD_PROXY", "")
    monkeypatch.delenv("DISCORD_GATEWAY_URL")
    default = DiscordSettings(_env_file=None)  # type: ignore[call-arg]
    assert default.proxy is None and default.gateway_url == DEFAULT_GATEWAY_URL


def test_the_env_example_documents_the_gateway_and_proxy_settings() -> None:
    example = (Path(__file__).parents[3] / ".env.example").read_text(encoding="utf-8")
    assert "DISCORD_GATEWAY_URL=" in example and "DISCORD_PROXY=" in example
