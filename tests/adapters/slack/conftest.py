"""A real warroom on Slack: the fake Slack Web API on 127.0.0.1, the real AsyncWebClient pointed at it, the real
Bolt app behind the real Starlette app, the suite's database, and signed payloads sent over ASGI.

Bolt acknowledges before a listener finishes, so tests wait deterministically: on the fake's recorded calls
(`fake.wait_calls`) or on the listener having finished (`SlackInbound.wait_handled`), never on a sleep.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.http import build_http_app, slack_routes
from adapters.slack.app import SlackInbound
from adapters.slack.chat import SlackChat, make_web_client
from adapters.slack.settings import SlackSettings
from bot.app.bootstrap import build
from bot.app.settings import Settings
from bot.ports import ManualClock
from tests.adapters.slack.slack_team import SECRET, START, USERS, SlackTeam
from tests.fakes.slack_api import FakeSlackApi


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackApi]:
    api = await FakeSlackApi(users=USERS).start()
    yield api
    await api.close()


@pytest.fixture
def slack_errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    caplog.set_level(logging.WARNING)
    return lambda: [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("warroom")]


@pytest.fixture
async def make_slack(fake: FakeSlackApi, tmp_path: Path, database_url: str,
                     slack_errors: Callable[[], list[logging.LogRecord]]
                     ) -> AsyncIterator[Callable[..., Awaitable[SlackTeam]]]:
    """Build a warroom on Slack (thread mode by default); `database_url` is the suite's (SQLite or PostgreSQL)."""
    built: list[SlackTeam] = []

    async def make(*, incident_mode: str = "thread", announce: str | None = None, warm_names: bool = True,
                   timeout: int = 30, deliver_inline: bool = True, **overrides: Any) -> SlackTeam:
        slack_settings = SlackSettings(_env_file=None, bot_token="xoxb-test", signing_secret=SECRET,
                                       api_url=fake.url, incidents_channel=announce)
        settings = Settings(_env_file=None, database_url=database_url, ladder="P1-P3",
                            timezone="Africa/Nairobi", postmortem_dir=tmp_path / "postmortems",
                            slack=slack_settings, incident_mode=incident_mode, **overrides)
        clock = ManualClock(START)
        # Short client backoff keeps retry tests fast; Retry-After itself is always honoured.
        client = make_web_client(token="xoxb-test", base_url=fake.url, backoff=0.05, jitter=0.05, timeout=timeout)
        chat = SlackChat(client=client, incident_mode=settings.incident_mode,
                         announce_channel=slack_settings.incidents_channel, clock=clock)
        if warm_names:  # what a running server has done long before: the workspace's names are known
            await chat.warm_names()
            fake.calls.clear()
        app = await build(settings, chat={"slack": chat}, clock=clock, deliver_inline=deliver_inline)
        inbound = SlackInbound(service=app.service, chat=chat, signing_secret=SECRET)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_http_app(slack_routes(inbound.app))),
                                 base_url="http://warroom.test")
        slack = SlackTeam(fake=fake, app=app, chat=chat, inbound=inbound, http=http, clock=clock, settings=settings)
        built.append(slack)
        return slack

    yield make
    for slack in built:
        await slack.inbound.close()
        await slack.http.aclose()
        await slack.app.close()
        await slack.chat.aclose()
    if not any(slack.errors_expected for slack in built):
        errors = slack_errors()
        assert not errors, "unexpected errors logged:\n" + "\n".join(r.getMessage() for r in errors)


@pytest.fixture
async def slack(make_slack: Callable[..., Awaitable[SlackTeam]]) -> SlackTeam:
    return await make_slack()
