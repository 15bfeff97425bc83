"""Real `warroom serve` processes for tests: start on a free port, read their log, stop or kill -9 them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).resolve().parents[1]


# What a developer's shell or CI may export for the real platforms; a child process started by a test sees
# none of it, only what the test sets (a stray SLACK_BOT_TOKEN would otherwise make `warroom serve` talk to Slack).
PLATFORM_PREFIXES = ("SLACK_", "DISCORD_", "WHATSAPP_", "WARROOM_", "PAGERDUTY_")


def child_env(**variables: str) -> dict[str, str]:
    """This process's environment without any platform variable, plus `variables` (the test's own)."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith(PLATFORM_PREFIXES)}
    return {**clean, **variables}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log: list[str] = []
        self._reader: asyncio.Task | None = None

    @classmethod
    async def start(cls, *, cwd: Path, env: dict[str, str], ready: str = "Uvicorn running on",
                    timeout: float = 30.0) -> ServeProcess:
        port = free_port()
        variables = child_env(**{"PYTHONPATH": str(ROOT), "WARROOM_HTTP_HOST": "127.0.0.1",
                                 "WARROOM_HTTP_PORT": str(port), "WARROOM_LOG_LEVEL": "INFO", **env})
        # stdout too: uvicorn writes its access log there, and tests read every line the server logs
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.app.cli", "serve", cwd=cwd,
                                                       env=variables, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT)
        served = cls(process, port)
        await served.wait_for_line(ready, timeout)
        served._reader = asyncio.create_task(served._keep_reading())  # never let a full pipe block the server
        return served

    async def wait_for_line(self, needle: str, timeout: float = 30.0) -> str:
        async def read() -> str:
            assert self.process.stdout is not None
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError("warroom serve exited:\n" + "".join(self.log))
                line = raw.decode("utf-8", "replace")
                self.log.append(line)
                if needle in line:
                    return line

        return await asyncio.wait_for(read(), timeout)

    async def _keep_reading(self) -> None:
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            self.log.append(raw.decode("utf-8", "replace"))

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 30)
        if self._reader is not None:
            await self._reader
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()  # SIGKILL: no cleanup, no flush — a crash
        await self.process.wait()
        if self._reader is not None:
            await self._reader


def signed(secret: str, body: str, content_type: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)}


async def slash_command(http: httpx.AsyncClient, secret: str, *, text: str, user: str, channel: str,
                        trigger: str) -> httpx.Response:
    body = urlencode({"command": "/incident", "text": text, "user_id": user, "channel_id": channel,
                      "team_id": "T0WARROOM", "trigger_id": trigger, "response_url": "http://127.0.0.1:9/unused"})
    return await http.post("/slack/events", content=body,
                           headers=signed(secret, body, "application/x-www-form-urlencoded"))
