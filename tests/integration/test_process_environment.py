"""Processes the tests start see none of the platform variables of the shell that runs the tests (a developer's
real SLACK_BOT_TOKEN, a half-filled DISCORD_GUILD_ID, CI's WARROOM_DATABASE_URL) — only what the test sets."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.processes import ServeProcess, child_env

LEAKS = {"SLACK_BOT_TOKEN": "xoxb-from-the-shell", "SLACK_SIGNING_SECRET": "from-the-shell",
         "DISCORD_BOT_TOKEN": "from-the-shell", "DISCORD_GUILD_ID": "not-a-number",
         "WHATSAPP_ACCESS_TOKEN": "from-the-shell", "WHATSAPP_PHONE_NUMBER_ID": "123",
         "WARROOM_ALERT_TOKEN": "from-the-shell", "warroom_ladder": "P9-P10"}


def test_child_env_keeps_only_the_tests_own_platform_variables(monkeypatch: pytest.MonkeyPatch):
    for name, value in LEAKS.items():
        monkeypatch.setenv(name, value)
    env = child_env(WARROOM_LADDER="P1-P3", DISCORD_API_URL="http://127.0.0.1:9")
    assert not set(LEAKS) & set(env)
    assert env["WARROOM_LADDER"] == "P1-P3" and env["DISCORD_API_URL"] == "http://127.0.0.1:9"
    assert env.get("PATH") == __import__("os").environ.get("PATH")  # the rest of the environment stays


async def test_a_served_process_ignores_platform_variables_of_the_shell(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path):
    # DISCORD_GUILD_ID=not-a-number would make `warroom serve` exit at start-up if it leaked through
    for name, value in LEAKS.items():
        monkeypatch.setenv(name, value)
    served = await ServeProcess.start(cwd=tmp_path, env={
        "WARROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "WARROOM_POSTMORTEM_DIR": str(tmp_path / "pm")})
    try:
        async with httpx.AsyncClient(base_url=served.url) as http:
            assert (await http.get("/health")).status_code == 200
            assert (await http.post("/slack/events", content=b"{}")).status_code == 404  # Slack is not configured
        assert await served.stop() == 0
    finally:
        await served.kill()
    assert any("no chat platform configured" in line for line in served.log), "".join(served.log)
