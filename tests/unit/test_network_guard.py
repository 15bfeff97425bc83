"""The autouse guard in tests/conftest.py: a test that reaches beyond loopback fails, loopback and unix sockets
work. Addresses are from TEST-NET-3 (203.0.113.0/24, never routed) and example.com, so even without the guard
nothing would leave the machine for long."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

OUTSIDE = ("203.0.113.7", 443)


def test_a_socket_to_a_public_address_is_refused(no_network_beyond_loopback: list[str]):
    for family, address in ((socket.AF_INET, OUTSIDE), (socket.AF_INET6, ("2001:db8::1", 443, 0, 0))):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            with pytest.raises(RuntimeError, match="beyond loopback"):
                sock.connect(address)
            with pytest.raises(RuntimeError, match="beyond loopback"):
                sock.connect_ex(address)
    assert len(no_network_beyond_loopback) == 4
    no_network_beyond_loopback.clear()  # expected here; any other test with an entry fails at teardown


def test_resolving_a_public_name_is_refused(no_network_beyond_loopback: list[str]):
    with pytest.raises(RuntimeError, match="beyond loopback"):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(RuntimeError, match="beyond loopback"):
        socket.create_connection(("example.com", 443), timeout=1)
    no_network_beyond_loopback.clear()


async def test_asyncio_and_httpx_cannot_leave_the_machine(no_network_beyond_loopback: list[str]):
    with pytest.raises(RuntimeError, match="beyond loopback"):
        await asyncio.wait_for(asyncio.open_connection(*OUTSIDE), 2)
    with pytest.raises(RuntimeError, match="beyond loopback"):
        await asyncio.wait_for(asyncio.open_connection("example.com", 443), 2)
    with pytest.raises(RuntimeError, match="beyond loopback"):
        await asyncio.get_running_loop().getaddrinfo("slack.com", 443)
    async with httpx.AsyncClient(timeout=2) as http:
        with pytest.raises(RuntimeError, match="beyond loopback"):
            await http.get("https://graph.facebook.com/v21.0/me")
    assert no_network_beyond_loopback
    no_network_beyond_loopback.clear()


async def test_a_swallowed_attempt_still_fails_the_test(no_network_beyond_loopback: list[str]):
    try:
        socket.getaddrinfo("discord.com", 443)
    except Exception:  # code under test that hides connection errors cannot hide this one
        pass
    assert no_network_beyond_loopback == ["resolve ('discord.com',)"]
    no_network_beyond_loopback.clear()


async def test_loopback_and_unix_sockets_are_allowed(tmp_path: Path):
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"pong")
        await writer.drain()
        writer.close()

    for host in ("127.0.0.1", "localhost", "::1"):
        try:
            server = await asyncio.start_server(answer, host, 0)
        except OSError:  # no IPv6 on this machine
            assert host == "::1"
            continue
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection(host, port)
            assert await reader.read() == b"pong"
            writer.close()
    path = str(tmp_path / "s.sock")
    server = await asyncio.start_unix_server(answer, path)
    async with server:
        reader, writer = await asyncio.open_unix_connection(path)
        assert await reader.read() == b"pong"
        writer.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with socket.socket() as sock:  # nothing listens there: refused by the kernel, not by the guard
        assert sock.connect_ex(("127.0.0.2", port)) != 0
