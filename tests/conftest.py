"""Shared fixtures: a real warroom on the in-memory chat, a SQLite file and a manual clock."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app.settings import Settings
from bot.ports import ManualClock
from tests.support import (
    BACKEND,
    START,
    Harness,
    create_postgres_database,
    drop_migrated_template,
    drop_postgres_database,
    make_settings,
    start_harness,
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"warroom test database: {BACKEND}"


# -- tests never reach beyond loopback ---------------------------------------------------------------------------


class NetworkAccessBlocked(RuntimeError):
    """A test tried to reach a host that is not this machine. Not an OSError on purpose: retry loops and
    "connection failed" handlers must not swallow it."""


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: Any) -> bool:
    """127.0.0.0/8, ::1 (also as ::ffff:127.x) and localhost; a `None` host (a server binding) too."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip().strip("[]").split("%")[0].lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _check_address(address: Any, family: int | None, what: str, blocked: list[str]) -> None:
    if family == getattr(socket, "AF_UNIX", object()) or isinstance(address, (str, bytes)):
        return  # a unix socket path
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_loopback(host):
        blocked.append(f"{what} {address!r}")
        raise NetworkAccessBlocked(f"tests must not reach beyond loopback: {what} {address!r}")


@pytest.fixture(autouse=True)
def no_network_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fails any test that connects (socket connect / connect_ex, asyncio create_connection) to, or resolves
    (getaddrinfo), a host outside 127.0.0.0/8, ::1 and localhost. Unix sockets are fine. The attempt raises
    NetworkAccessBlocked at once and the test fails at teardown even if the code under test swallowed it. The
    fixture's value is the list of attempts (a test of the guard itself empties it)."""
    blocked: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo
    real_create_connection = asyncio.BaseEventLoop.create_connection
    real_loop_getaddrinfo = asyncio.BaseEventLoop.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        _check_address(address, self.family, "connect to", blocked)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        _check_address(address, self.family, "connect to", blocked)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        _check_address((host,), None, "resolve", blocked)
        return real_getaddrinfo(host, *args, **kwargs)

    async def create_connection(self: asyncio.BaseEventLoop, protocol_factory: Any, host: Any = None,
                                *args: Any, **kwargs: Any) -> Any:
        _check_address((host,), None, "connect to", blocked)  # host None: an already connected `sock=`
        return await real_create_connection(self, protocol_factory, host, *args, **kwargs)

    async def loop_getaddrinfo(self: asyncio.BaseEventLoop, host: Any, *args: Any, **kwargs: Any) -> Any:
        _check_address((host,), None, "resolve", blocked)
        return await real_loop_getaddrinfo(self, host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", create_connection)
    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", loop_getaddrinfo)
    yield blocked
    if blocked:
        pytest.fail("tests must not reach beyond loopback; this test tried: " + "; ".join(blocked), pytrace=False)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    if BACKEND == "postgres":
        # Migrated already (a copy of a template), unless the test is about migrating an empty database.
        url = await create_postgres_database(migrated=request.node.get_closest_marker("empty_database") is None)
        yield url
        await drop_postgres_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'warroom.db'}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
async def team(settings: Settings, clock: ManualClock) -> AsyncIterator[Harness]:
    harness = await start_harness(settings, clock)
    yield harness
    await harness.app.close()


@pytest.fixture(scope="session", autouse=True)
def _drop_the_migrated_template() -> Iterator[None]:
    yield
    if BACKEND == "postgres":
        asyncio.run(drop_migrated_template())
