"""`warroom oncall …`: people, rotations, overrides, the board and the iCalendar export from the shell; bad input
is one line naming what is valid, exit non-zero, nothing saved."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from bot.app.cli import main

PLATFORM_VARIABLE = re.compile(r"^(WARROOM|SLACK|DISCORD|WHATSAPP|PAGERDUTY)_")


@pytest.fixture(autouse=True)
def in_a_fresh_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if PLATFORM_VARIABLE.match(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
            return 1
        return int(stop.code or 0)


def test_a_team_sets_up_a_rotation_and_exports_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["oncall", "person", "add", "alice", "--slack", "U1", "--whatsapp", "+254 700 000 011"]) == 0
    assert run(["oncall", "person", "add", "bob", "--pagerduty", "R0UTING"]) == 0
    assert run(["oncall", "rotation", "add", "platform", "--weekly", "mon", "09:00", "Africa/Nairobi",
                "alice", "bob"]) == 0
    assert "Saved: platform: weekly, mon 09:00 Africa/Nairobi, alice → bob." in capsys.readouterr().out
    assert run(["oncall", "show"]) == 0
    assert re.search(r"platform:\s+(alice|bob) until", capsys.readouterr().out)
    assert run(["oncall", "export", "--ics", "-o", "oncall.ics"]) == 0
    ics = (tmp_path / "oncall.ics").read_bytes().decode("utf-8")
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and ics.endswith("END:VCALENDAR\r\n")
    assert ics.count("BEGIN:VEVENT") == 13  # the running shift, whole, and the next 12 weeks
    assert "SUMMARY:On call: platform — alice" in ics and "SUMMARY:On call: platform — bob" in ics
    # whole shifts: every start and end is a hand-off at 09:00 Nairobi (06:00 UTC)
    assert all(line.endswith("T060000Z") for line in ics.splitlines() if line.startswith(("DTSTART", "DTEND")))


def test_a_rotation_that_starts_later_is_reported_as_a_gap(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["oncall", "person", "add", "alice", "--slack", "U1"]) == 0
    assert run(["oncall", "rotation", "add", "dba", "--weekly", "mon", "09:00", "Europe/London", "alice",
                "--from", "2099-01-05"]) == 0
    assert "Gap: dba is not covered from" in capsys.readouterr().out
    assert run(["oncall", "gaps"]) == 1
    assert "dba is not covered from" in capsys.readouterr().out


CASES = [
    (["oncall", "person", "add", "carol"], "needs at least one contact point: --slack"),
    (["oncall", "person", "add", "carol", "--whatsapp", "12"], "E.164"),
    (["oncall", "rotation", "add", "platfrm", "--weekly", "mon", "09:00", "UTC", "alice"],
     "unknown role 'platfrm'; roles: platform, coordinator"),
    (["oncall", "rotation", "add", "platform", "--weekly", "mon", "09:00", "Mars/Base", "alice"],
     "unknown timezone 'Mars/Base'"),
    (["oncall", "rotation", "add", "platform", "--weekly", "mon", "09:00", "UTC", "alice", "zed"],
     "unknown person zed; people: alice"),
    (["oncall", "rotation", "add", "platform", "--weekly", "mon", "09:00", "UTC"], "needs at least one person"),
    (["oncall", "rotation", "add", "platform", "--weekly", "mon"], "--weekly needs a weekday, a hand-off time"),
    (["oncall", "override", "add", "platform", "zed", "2099-01-01", "2099-01-02"], "unknown person 'zed'"),
    (["oncall", "override", "add", "platform", "alice", "2099-01-01", "soon"], "'soon' is not a date"),
    (["oncall", "override", "remove", "7"], "no override #7; overrides: none"),
    (["oncall", "person", "remove", "zed"], "unknown person 'zed'; people: alice"),
]


@pytest.mark.parametrize(("argv", "said"), CASES, ids=[" ".join(argv[1:4]) for argv, _ in CASES])
def test_bad_oncall_input_is_one_line_and_saves_nothing(argv: list[str], said: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["oncall", "person", "add", "alice", "--slack", "U1"]) == 0
    capsys.readouterr()
    assert run(argv) != 0
    out, err = capsys.readouterr()
    lines = (out + err).strip().splitlines()
    assert len(lines) == 1 and said in lines[0], lines
    assert run(["oncall", "rotation", "list"]) == 0
    assert run(["oncall", "person", "list"]) == 0
    listing = capsys.readouterr().out
    assert "No rotations." in listing and listing.count("slack=") == 1 and "carol" not in listing


def test_a_bad_oncall_plan_fails_playbooks_check_naming_the_file_and_the_valid_roles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mine" / "oncall"
    folder.mkdir(parents=True)
    (folder / "default.yaml").write_text(
        "name: default\ndescription: x\nladder: P0-P3\nroles: [{name: platform}, {name: dba}]\n"
        "policies:\n  - severity: P1\n    levels: [{roles: [platfrom], timeout: 15m}]\n")
    assert run(["playbooks", "check", str(tmp_path / "mine")]) == 1
    err = capsys.readouterr().err
    assert "default.yaml" in err and "unknown role 'platfrom'; roles: platform, dba" in err
    (folder / "default.yaml").write_text(
        "name: default\ndescription: x\nladder: P0-P3\nroles: [{name: platform}]\n"
        "policies:\n  - severity: P7\n    levels: [{roles: [platform]}]\n")
    assert run(["playbooks", "check", str(tmp_path / "mine")]) == 1
    assert "'P7' is not in ladder P0-P3; allowed: P0, P1, P2, P3" in capsys.readouterr().err
    assert run(["playbooks", "check"]) == 0
    assert "1 on-call plan(s) (default)" in capsys.readouterr().out
