"""Every shell command, given bad arguments, paths or settings, exits non-zero with one line saying what was wrong
(and what is valid) — never a traceback, never a half-written file."""

from __future__ import annotations

import json
import logging
import os
import re
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


CASES = [
    (["postmortem", "INC-x"], "not an incident id"),
    (["postmortem", "INC-99"], "Unknown incident INC-99"),
    (["postmortem", "INC-1", "-o", "missing/dir/pm.md"], "does not exist"),
    (["postmortem", "INC-1", "-o", "."], "is a folder"),
    (["console", "--script", "nope.txt"], "nope.txt: no such file"),
    (["contacts", "import", "nope.csv"], "nope.csv: no such file"),
    (["contacts", "add", "acme", "Jane", "123"], "E.164"),
    (["operators", "add", "abc"], "E.164"),
    (["operators", "remove", "+254700000001"], "is not an operator"),
    (["playbooks", "check", "/nonexistent/playbooks"], "does not exist"),
    (["playbooks", "check", "."], "holds no playbooks"),
]


@pytest.mark.parametrize(("argv", "said"), CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_a_command_with_bad_input_says_so_in_one_line(argv: list[str], said: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(argv)
    out, err = capsys.readouterr()
    assert code != 0
    words = (out + err).strip().splitlines()
    assert len(words) == 1 and said in words[0], words
    assert "Traceback" not in out + err


@pytest.mark.parametrize(("variable", "value", "said"), [
    ("WARROOM_DATABASE_URL", "mysql://db/warroom", "Unsupported database URL scheme"),
    ("WARROOM_DATABASE_URL", "postgresql://warroom:sekrit@127.0.0.1:1/warroom", "cannot open the database"),
    ("WARROOM_DATABASE_URL", "sqlite:////proc/no/such/warroom.db", "cannot open the database"),
    ("WARROOM_LADDER", "P9-P12", "Unknown severity ladder"),
    ("WARROOM_PLAYBOOKS", "/nonexistent/playbooks", "does not exist"),
    ("WARROOM_HTTP_PORT", "http", "WARROOM_HTTP_PORT"),
])
def test_bad_settings_are_one_line_naming_what_is_wrong(variable: str, value: str, said: str,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(variable, value)
    code = _run(["incidents"])
    out, err = capsys.readouterr()
    assert code != 0
    lines = (out + err).strip().splitlines()
    assert len(lines) == 1 and said in lines[0], lines
    assert "sekrit" not in out + err


def test_a_failed_postmortem_writes_no_file(tmp_path: Path) -> None:
    assert _run(["postmortem", "INC-3", "-o", "pm.md"]) != 0
    assert not (tmp_path / "pm.md").exists()


def test_json_logs_are_one_object_per_line_with_the_context_we_know(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.app.logs import configure_logging

    handler = configure_logging(level="INFO", fmt="json")
    try:
        logging.getLogger("warroom.test").info("delivered", extra={"incident": "INC-7", "platform": "slack"})
        logging.getLogger("uvicorn.access").info('127.0.0.1:1 - "GET /health HTTP/1.1" 200')
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert lines[0]["message"] == "delivered" and lines[0]["incident"] == "INC-7"
    assert lines[0]["platform"] == "slack" and lines[0]["level"] == "INFO" and lines[0]["logger"] == "warroom.test"
    assert lines[1]["logger"] == "uvicorn.access"  # the server's access log goes through the same configuration


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # _settings() and argparse exit with a message
        if isinstance(stop.code, str):
            print(stop.code, file=__import__("sys").stderr)
            return 1
        return int(stop.code or 0)


def test_an_operator_from_the_environment_list_is_not_removed_by_the_cli(monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WARROOM_WHATSAPP_OPERATORS", "alice=+254700000011")
    assert _run(["operators", "remove", "+254700000011"]) == 1
    assert "listed in WARROOM_WHATSAPP_OPERATORS" in capsys.readouterr().err
    assert _run(["operators", "add", "+254700000012", "--name", "bob"]) == 0
    assert _run(["operators", "remove", "+254700000012"]) == 0
    capsys.readouterr()
    assert _run(["operators", "list"]) == 0
    listing = capsys.readouterr().out
    assert "+254700000011" in listing and "from WARROOM_WHATSAPP_OPERATORS" in listing
    assert "+254700000012" not in listing
