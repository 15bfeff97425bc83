"""WhatsApp Cloud API tests: the real `WhatsAppCloud` (httpx) against the fake Graph API on 127.0.0.1, and the
webhook routes on a Starlette app over `httpx.ASGITransport`. Nothing here sleeps: a slow Graph API is the fake
holding its answers (`fake.hold()`), released by the test."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

FAKES = str(Path(__file__).parents[2] / "fakes")
if FAKES not in sys.path:
    sys.path.insert(0, FAKES)

from graph_api import TOKEN, FakeGraphApi  # noqa: E402

from adapters.whatsapp.client import WhatsAppCloud  # noqa: E402


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraphApi]:
    api = await FakeGraphApi(token=TOKEN).start()
    yield api
    await api.close()


@pytest.fixture
async def make_cloud(fake: FakeGraphApi) -> AsyncIterator[Callable[..., WhatsAppCloud]]:
    made: list[WhatsAppCloud] = []

    def make(**options: Any) -> WhatsAppCloud:
        options.setdefault("phone_number_id", fake.phone_number_id)
        options.setdefault("access_token", TOKEN)
        options.setdefault("api_url", fake.url)
        options.setdefault("timeout", httpx.Timeout(5.0, connect=2.0))
        cloud = WhatsAppCloud(**options)
        made.append(cloud)
        return cloud

    yield make
    fake.release()
    for cloud in made:
        await cloud.aclose()


@pytest.fixture
def cloud(make_cloud: Callable[..., WhatsAppCloud]) -> WhatsAppCloud:
    return make_cloud()


Events = list[Any]


@pytest.fixture
def recorder() -> tuple[Events, Callable[[Any], Awaitable[None]]]:
    events: Events = []

    async def on_event(event: Any) -> None:
        events.append(event)

    return events, on_event
