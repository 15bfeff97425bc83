"""The console adapter end to end: `warroom console --script` plays the shipped demo in a real process."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

from adapters.console import ConsoleChat, ConsoleSession, play
from tests.processes import child_env
from tests.support import start_harness

ROOT = Path(__file__).resolve().parents[2]


def _run_cli(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = child_env(WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}", WARROOM_LADDER="P1-P3",
                    WARROOM_TIMEZONE="Africa/Nairobi", WARROOM_POSTMORTEM_DIR=str(tmp_path / "pm"))
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], cwd=tmp_path, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_demo_script_plays_a_whole_incident_in_a_real_process(tmp_path):
    result = _run_cli(tmp_path, "console", "--script", str(ROOT / "examples" / "payments-outage.txt"),
                      "--user", "alice")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "┏ INC-1 · P1 · Payments callbacks not arriving" in out
    assert "(you are now in the INC-1 thread)" in out
    assert "bob acknowledged INC-1 after 0s — response target 15 min: met." in out
    assert "INC-1 (P1): no status update for 15 min." in out  # the 20-minute wait nudges once, at its due time
    assert "no status update for 20 min" not in out
    assert "Post-mortem for INC-1 written to" in out
    [postmortem] = list((tmp_path / "pm").glob("*-inc-1-payments-callbacks-not-arriving.md"))
    text = postmortem.read_text()
    assert "bob: I can see 403s on /payments/callback since 09:50" in text
    assert "dead-letter table kept every callback" in text
    assert "No open incidents." in out

    exported = _run_cli(tmp_path, "postmortem", "INC-1", "--format", "json")
    assert exported.returncode == 0 and '"key": "INC-1"' in exported.stdout
    listing = _run_cli(tmp_path, "incidents")
    assert "INC-1 P1 [resolved] Payments callbacks not arriving" in listing.stdout
    assert _run_cli(tmp_path, "incidents", "--open").stdout.strip() == "No open incidents."


def test_interactive_console_reads_stdin_lines(tmp_path):
    result = _run_cli(tmp_path, "console", "--user", "dana",
                      stdin='/incident declare P2 "Search slow"\nlooks like the index\n/where\n/quit\n')
    assert result.returncode == 0, result.stderr
    assert "INC-1 thread dana> " in result.stdout
    assert "you are dana in INC-1 thread" in result.stdout


def test_cli_postmortem_of_unknown_incident_fails_clearly(tmp_path):
    result = _run_cli(tmp_path, "postmortem", "INC-3")
    assert result.returncode == 1
    assert result.stderr.strip() == "warroom: Unknown incident INC-3. Open incidents: none."
    bad = _run_cli(tmp_path, "postmortem", "three")
    assert "is not an incident id" in bad.stderr


def test_playbooks_check_validates_a_folder(tmp_path):
    assert "ok: 4 ladders" in _run_cli(tmp_path, "playbooks", "check").stdout
    broken = tmp_path / "mine" / "severities"
    broken.mkdir(parents=True)
    (broken / "bad.yaml").write_text("name: X\ndescription: d\ndefault: Z\nlevels: []\nescalation: []\n")
    result = _run_cli(tmp_path, "playbooks", "check", str(tmp_path / "mine"))
    assert result.returncode == 1
    assert "bad.yaml" in result.stderr and "levels" in result.stderr


def test_bad_settings_fail_start_up_with_the_variable_named(tmp_path):
    env_result = subprocess.run([sys.executable, "-m", "bot.app.cli", "incidents"], cwd=tmp_path, capture_output=True,
                                text=True, env=child_env(WARROOM_TIMEZONE="Mars/Base"), timeout=60)
    assert env_result.returncode != 0
    assert "unknown timezone 'Mars/Base'" in env_result.stderr
    ladder = subprocess.run(
        [sys.executable, "-m", "bot.app.cli", "incidents"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env=child_env(WARROOM_LADDER="P9-P10", WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}"))
    assert ladder.returncode == 2
    assert "Unknown severity ladder 'P9-P10'; available: P0-P3, P1-P3, S1-S4, SEV0-SEV3" in ladder.stderr


async def test_console_session_switches_speaker_and_rooms(settings, clock):
    out = StringIO()
    chat = ConsoleChat(out)
    team = await start_harness(settings, clock, chat=chat)
    session = ConsoleSession(service=team.service, chat=chat, out=out, user="alice", advance=clock.advance)
    await play(session, ['/incident declare P1 "x"', "/as bob", "on it", "/leave", "/enter INC-1", "/wait 16m",
                         "/enter INC-9", "/bogus"])
    text = out.getvalue()
    assert "INC-1 thread bob> on it" in text
    assert "#incidents bob> /enter INC-1" in text
    assert "INC-1 (P1): no status update for 15 min." in text  # fired at its due time, inside the wait
    assert "no incident thread 'INC-9'" in text
    assert "unknown console command '/bogus'" in text
    timeline = [e.text for e in await _timeline(team)]
    assert "on it" in timeline
    await team.app.close()


async def _timeline(team):
    async with team.service._uow() as uow:
        return await uow.incidents.timeline(1)


def test_outbox_list_and_retry_from_the_shell(tmp_path):
    assert _run_cli(tmp_path, "outbox", "list").stdout.strip() == "outbox is empty"
    _run_cli(tmp_path, "console", "--script", str(ROOT / "examples" / "payments-outage.txt"))
    listing = _run_cli(tmp_path, "outbox", "list", "--all")
    assert listing.returncode == 0
    assert "delivered" in listing.stdout and "open_room" in listing.stdout
    assert _run_cli(tmp_path, "outbox", "retry").stdout.startswith("requeued 0 failed message(s)")


async def test_wait_steps_through_each_due_reminder(settings, clock):
    """`/wait 40m` on a 15-minute cadence nudges at +15 and +30, each at its due time, not once at +40."""
    out = StringIO()
    chat = ConsoleChat(out)
    team = await start_harness(settings, clock, chat=chat)
    session = ConsoleSession(service=team.service, chat=chat, out=out, user="alice", advance=clock.advance)
    await play(session, ['/incident declare P1 "Payments down"', "/incident ack", "/wait 40m"])
    start = clock.now() - timedelta(minutes=40)
    nudged_at = [e.occurred_at - start for e in await _timeline(team) if e.kind == "nudge"]
    assert nudged_at == [timedelta(minutes=15), timedelta(minutes=30)]
    text = out.getvalue()
    assert "INC-1 (P1): no status update for 15 min." in text
    assert "INC-1 (P1): no status update for 30 min." in text
    assert clock.now() - start == timedelta(minutes=40)  # the wait still ends where it said
    await team.app.close()
