"""The daily digest on a ManualClock: 07:00 in Nairobi is 04:00 UTC; its due time lives in the database, so it
posts once a day across restarts and replicas, and a day missed while down posts once at the next start."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.ports import ManualClock
from tests.support import CHANNEL, Harness, make_settings, start_harness

UTC = UTC


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def digests(team: Harness) -> list:
    return [s.current for s in team.chat.sent if s.current.kind == "digest" and s.room == CHANNEL]


async def tick_at(team: Harness, moment: datetime) -> None:
    team.clock.current = moment
    await team.app.tick()


async def test_the_digest_at_seven_in_nairobi_reads_yesterday_and_today_in_nairobi(tmp_path, database_url):
    clock = ManualClock(at(20, 9))
    team = await start_harness(make_settings(tmp_path, database_url=database_url), clock)
    await team.app.tick()  # the first tick plans the first digest (07:00 EAT on the 21st), not one right now
    assert digests(team) == []

    await team.ok('declare P1 "Ledger duplicates"')  # INC-1
    clock.current = at(20, 10)
    await team.ok('resolve INC-1 "deduplicated"')  # P1 post-mortem due in 48 h: overdue by the 25th
    await team.ok('action INC-1 "Add replica lag alert" owner=@bob due=2026-11-24')
    await team.ok('action INC-1 "Due on digest day" due=2026-11-25')
    clock.current = at(23, 19)
    await team.ok('declare P2 "Slow exports"')  # INC-2
    clock.current = at(23, 20)
    await team.ok('declare P1 "Payments down"')  # INC-3
    clock.current = at(23, 20, 5)
    await team.ok("ack INC-3")
    clock.current = at(23, 20, 30)
    await team.ok("resolve INC-2")  # 23:30 EAT on the 23rd: the day before yesterday for the 25th's digest
    clock.current = at(23, 21, 30)
    await team.ok("resolve INC-3")  # 00:30 EAT on the 24th: yesterday in Nairobi, though the 23rd in UTC
    await tick_at(team, at(24, 4))  # 07:00 EAT on the 24th: that day's digest (the missed 21st–23rd: one post)
    assert len(digests(team)) == 1
    clock.current = at(24, 20)
    await team.ok('declare P2 "Webhook retries"')  # INC-4
    clock.current = at(24, 20, 10)
    await team.ok("ack INC-4")
    clock.current = at(24, 22)
    await team.ok("resolve INC-4")  # 01:00 EAT on the 25th: today in Nairobi, yesterday in UTC
    clock.current = at(24, 23)
    await team.ok('declare P1 "Checkout errors"')  # INC-5: never acknowledged
    await team.ok("freeze INC-5 on")

    await tick_at(team, at(25, 3, 59))  # 06:59 EAT: not yet
    assert len(digests(team)) == 1
    await tick_at(team, at(25, 4))  # 07:00 EAT
    assert len(digests(team)) == 2
    digest = digests(team)[-1]
    assert digest.title == "Daily incident digest — Wed 25 Nov 2026"
    assert digest.text.split("\n\n") == [
        "Open incidents (1):\n"
        "  • INC-5 P1 [declared] Checkout errors — open 5 h, last update today 02:00 EAT (5 h ago) · deploy freeze ON",
        "Targets missed in the last 24 h (2):\n"
        "  • INC-5 P1 response target 15 min missed (not acknowledged after 5 h): Checkout errors\n"
        "  • INC-5 P1 resolution target 2 h missed (still open after 5 h): Checkout errors",
        "Post-mortems overdue (1):\n"
        "  • INC-1 P1 Ledger duplicates — due Sun 22 Nov 13:00 EAT, 2 d 18 h overdue: /incident postmortem INC-1",
        "Action items overdue (1):\n"
        "  • INC-1 action 1: Add replica lag alert — due 2026-11-24 (1 day overdue, owner bob)",
        "Resolved since yesterday (2):\n"
        "  • INC-3 P1 Payments down — resolved yesterday 00:30 EAT after 1 h 30 min\n"
        "  • INC-4 P2 Webhook retries — resolved today 01:00 EAT after 2 h",
    ]
    assert digest.footer == "As of 07:00 EAT. Details: /incident list · /incident stats"
    await tick_at(team, at(25, 4, 1))
    assert len(digests(team)) == 2
    await team.app.close()


async def test_the_digest_posts_once_a_day_across_restarts_and_replicas(settings, clock):
    first = await start_harness(settings, clock)  # clock: 06:50 UTC on the 24th = 09:50 EAT
    await first.app.tick()
    await tick_at(first, at(25, 3, 59))
    assert digests(first) == []
    await tick_at(first, at(25, 4))
    await tick_at(first, at(25, 4, 0))
    assert len(digests(first)) == 1
    await first.app.close()

    restarted = await start_harness(settings, clock, chat=first.chat)  # same database, same chat
    await tick_at(restarted, at(25, 4, 2))
    assert len(digests(restarted)) == 1  # a restart does not post it again
    await tick_at(restarted, at(26, 4))
    assert len(digests(restarted)) == 2

    replica = await start_harness(settings, clock, chat=first.chat)
    clock.current = at(27, 4)
    await asyncio.gather(restarted.app.tick(), replica.app.tick(), restarted.app.tick(), replica.app.tick())
    assert len(digests(restarted)) == 3  # two replicas ticking at 07:00: one digest
    await restarted.app.close()
    await replica.app.close()


async def test_a_digest_missed_while_down_posts_once_at_start_not_once_per_day(settings, clock):
    team = await start_harness(settings, clock)
    await team.app.tick()  # planned for 07:00 EAT on the 25th
    await team.app.close()
    clock.current = at(28, 9)  # down for four digests
    back = await start_harness(settings, clock, chat=team.chat)
    await back.app.tick()
    await back.app.tick()
    [late] = digests(back)
    assert late.title == "Daily incident digest — Sat 28 Nov 2026"
    assert "Due today 07:00 EAT; posted late (the bot was not running)." in late.footer
    await tick_at(back, at(29, 3, 59))
    assert len(digests(back)) == 1
    await tick_at(back, at(29, 4))
    assert len(digests(back)) == 2
    await back.app.close()


async def test_a_changed_digest_time_moves_the_next_digest(tmp_path, database_url, clock):
    team = await start_harness(make_settings(tmp_path, database_url=database_url), clock)
    await team.app.tick()  # planned for 07:00 EAT
    await team.app.close()
    later = await start_harness(make_settings(tmp_path, database_url=database_url, digest_time="09:30"), clock,
                                chat=team.chat)
    await later.app.tick()
    await tick_at(later, at(25, 4))  # 07:00 EAT: no longer the time
    assert digests(later) == []
    await tick_at(later, at(25, 6, 30))  # 09:30 EAT
    assert len(digests(later)) == 1
    await later.app.close()


async def test_digest_off_never_posts(tmp_path, database_url, clock):
    team = await start_harness(make_settings(tmp_path, database_url=database_url, digest_time="off"), clock)
    for day in (24, 25, 26):
        await tick_at(team, at(day, 4))
    assert digests(team) == []
    await team.app.close()


async def test_warroom_digest_prints_the_digest_on_demand(tmp_path: Path, database_url, clock, monkeypatch, capsys):
    team = await start_harness(make_settings(tmp_path, database_url=database_url), clock)
    await team.ok('declare P1 "Payments down"')
    await team.app.close()
    monkeypatch.setenv("WARROOM_DATABASE_URL", database_url)
    monkeypatch.setenv("WARROOM_LADDER", "P1-P3")
    monkeypatch.chdir(tmp_path)  # no stray .env
    from bot.app.cli import main

    assert await asyncio.to_thread(main, ["digest"]) == 0
    out = capsys.readouterr().out
    assert "┏ Daily incident digest — " in out
    assert "Open incidents (1):" in out and "INC-1 P1 [declared] Payments down" in out
    assert "Resolved since yesterday: none" in out


def test_playbooks_check_validates_alert_rules_against_the_ladders(tmp_path, capsys, monkeypatch):
    from bot.app.cli import main

    monkeypatch.delenv("WARROOM_LADDER", raising=False)
    assert main(["playbooks", "check"]) == 0
    assert "1 alert rule set(s) (default)" in capsys.readouterr().out
    rules = tmp_path / "alerts" / "ours.yaml"
    rules.parent.mkdir(parents=True)
    rules.write_text("name: ours\ndescription: x\nrules:\n  - name: a\n    level: P0\n", encoding="utf-8")
    assert main(["playbooks", "check", str(tmp_path), "--ladder", "P0-P3"]) == 0
    assert main(["playbooks", "check", str(tmp_path), "--ladder", "P1-P3"]) == 1
    assert "level 'P0' is not in ladder P1-P3" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["7am", "25:00", "7"])
def test_a_bad_digest_time_is_refused_at_start(tmp_path, value):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="HH:MM"):
        make_settings(tmp_path, digest_time=value)
