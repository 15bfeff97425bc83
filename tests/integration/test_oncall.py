"""The on-call roster through the real service and storage: `/incident oncall` shows now and next per role,
overrides win, hand-offs follow the injected clock across daylight saving, and bad input names what is valid
and saves nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.oncall.roster import RosterError
from tests.support import Harness

UTC = UTC


async def staffed(team: Harness) -> None:
    roster = team.app.oncall
    await roster.add_person(name="alice", slack="U0ALICE", whatsapp="+254700000011")
    await roster.add_person(name="bob", discord="4242")
    await roster.add_person(name="dave", pagerduty="R0UTINGKEY")
    await roster.set_rotation(role="platform", weekday="mon", at="09:00", timezone="Africa/Nairobi",
                              people=["alice", "bob"])


def field(reply, role: str) -> str:
    return next(f.value for f in reply.message.fields if f.label == role)


async def overrides(team: Harness) -> list:
    async with team.app.service._uow() as uow:
        return await uow.oncall.overrides(ending_after=datetime(2000, 1, 1, tzinfo=UTC))


async def test_oncall_shows_who_is_on_call_now_and_next_for_each_role(team: Harness) -> None:
    await staffed(team)  # the clock: Tue 2026-11-24 06:00 UTC (09:00 in Nairobi)
    reply = await team.ok("oncall")
    assert field(reply, "platform") == ("alice until Mon 2026-11-30 09:00 EAT; "
                                        "next bob from Mon 2026-11-30 09:00 EAT")
    assert field(reply, "dba") == "nobody"
    assert [f.label for f in reply.message.fields] == list(team.app.oncall.roles)
    team.clock.current = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday 09:00 EAT: bob's turn
    assert field(await team.ok("oncall"), "platform").startswith("bob until Mon 2026-12-07 09:00 EAT")


async def test_an_override_from_chat_wins_and_the_board_says_so(team: Harness) -> None:
    await staffed(team)
    reply = await team.ok("oncall override platform @dave 2026-11-25 2026-11-26", user="carol")
    assert "dave holds platform from Wed 2026-11-25 00:00 EAT to Fri 2026-11-27 00:00 EAT" in reply.message.text
    assert field(await team.ok("oncall"), "platform").startswith("alice until Wed 2026-11-25 00:00 EAT; next dave")
    team.clock.current = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert field(await team.ok("oncall"), "platform") == ("dave until Fri 2026-11-27 00:00 EAT (override); "
                                                          "next alice from Fri 2026-11-27 00:00 EAT")
    [saved] = await overrides(team)
    assert saved.created_by == "carol"


async def test_an_override_can_name_a_person_by_their_chat_mention(team: Harness) -> None:
    await staffed(team)
    await team.ok("oncall override platform <@U0ALICE> 2026-12-01 2026-12-01")
    assert [o.person for o in await overrides(team)] == ["alice"]


@pytest.mark.parametrize(("text", "said"), [
    ("oncall override platfrm @dave 2026-12-01 2026-12-02", "unknown role 'platfrm'; roles: platform, coordinator"),
    ("oncall override platform @zed 2026-12-01 2026-12-02", "unknown person '@zed'; people: alice, bob, dave"),
    ("oncall override platform @dave 2026-12-03 2026-12-01", "ends (2026-12-01) before it starts (2026-12-03)"),
    ("oncall override platform @dave 2026-11-01 2026-11-02", "is already over"),
    ("oncall override platform @dave 2026-13-01 2026-12-02", "is not a date: use YYYY-MM-DD"),
    ("oncall override platform @dave tomorrow 2026-12-02", "'tomorrow' is not a date"),
    ("oncall override platform @dave", "Give a role, a person and two dates"),
    ("oncall everyone", "'oncall' takes nothing or 'override …'"),
])
async def test_a_bad_override_says_what_is_valid_and_saves_nothing(team: Harness, text: str, said: str) -> None:
    await staffed(team)
    reply = await team.run(text)
    assert reply is not None and not reply.ok
    assert said in reply.message.text
    assert await overrides(team) == []


async def test_an_overlapping_override_is_refused_naming_the_one_in_the_way(team: Harness) -> None:
    await staffed(team)
    await team.ok("oncall override platform @dave 2026-12-24 2026-12-27")
    reply = await team.run("oncall override platform @bob 2026-12-27 2026-12-28")
    assert not reply.ok
    assert "overlaps override #1: dave holds platform from Thu 2026-12-24 00:00 EAT" in reply.message.text
    await team.ok("oncall override dba @bob 2026-12-27 2026-12-28")  # another role is not in the way
    await team.ok("oncall override platform @bob 2026-12-28 2026-12-29")  # nor the day after
    assert sorted((o.role, o.person, f"{o.starts_at:%m-%d}") for o in await overrides(team)) == [
        ("dba", "bob", "12-26"), ("platform", "bob", "12-27"), ("platform", "dave", "12-23")]  # UTC: EAT − 3 h


async def test_a_rotation_naming_an_unknown_person_keeps_the_old_rotation(team: Harness) -> None:
    await staffed(team)
    roster = team.app.oncall
    with pytest.raises(RosterError, match="unknown person zed, yan; people: alice, bob, dave"):
        await roster.set_rotation(role="platform", weekday="tue", at="10:00", timezone="UTC",
                                  people=["dave", "zed", "yan"])
    [rotation] = await roster.rotations()
    assert rotation.people == ("alice", "bob") and rotation.timezone == "Africa/Nairobi"


@pytest.mark.parametrize(("change", "said"), [
    (dict(role="dbas"), "unknown role 'dbas'; roles: platform, coordinator, decision-owner, dba"),
    (dict(timezone="Europe/Londres"), "unknown timezone 'Europe/Londres'; use an IANA name"),
    (dict(weekday="funday"), "unknown weekday 'funday'; use one of mon, tue, wed, thu, fri, sat, sun"),
    (dict(at="9am"), "expected a time as HH:MM"),
    (dict(people=[]), "a rotation needs at least one person"),
    (dict(people=["alice", "alice"]), "alice named twice"),
])
async def test_a_bad_rotation_is_refused_and_nothing_is_saved(team: Harness, change: dict, said: str) -> None:
    roster = team.app.oncall
    await roster.add_person(name="alice", slack="U1")
    values = dict(role="dba", weekday="mon", at="09:00", timezone="Europe/London", people=["alice"]) | change
    with pytest.raises(RosterError, match=said.replace("(", r"\(").replace(")", r"\)")):
        await roster.set_rotation(**values)
    assert await roster.rotations() == []


async def test_a_person_needs_a_contact_point_and_a_valid_phone(team: Harness) -> None:
    roster = team.app.oncall
    with pytest.raises(RosterError, match="at least one contact point"):
        await roster.add_person(name="carol")
    with pytest.raises(RosterError, match="E.164"):
        await roster.add_person(name="carol", slack="U1", whatsapp="0700 000 000")
    with pytest.raises(RosterError, match="not a person's name"):
        await roster.add_person(name="Carol Smith", slack="U1")
    assert await roster.people() == []
    await roster.add_person(name="carol", slack="U1")
    with pytest.raises(RosterError, match="already exists; add --replace"):
        await roster.add_person(name="carol", discord="7")
    await roster.add_person(name="carol", discord="7", replace=True)
    [carol] = await roster.people()
    assert carol.contact_points == ("discord",)


async def test_a_person_in_a_rotation_cannot_be_removed(team: Harness) -> None:
    await staffed(team)
    with pytest.raises(RosterError, match="bob is still in rotation platform"):
        await team.app.oncall.remove_person("bob")
    await team.app.oncall.remove_person("dave")
    assert [p.name for p in await team.app.oncall.people()] == ["alice", "bob"]


async def test_new_york_handoff_follows_local_nine_across_the_fall_back(team: Harness) -> None:
    roster = team.app.oncall
    await roster.add_person(name="alice", slack="U1")
    await roster.add_person(name="bob", slack="U2")
    team.clock.current = datetime(2026, 10, 20, 15, 0, tzinfo=UTC)  # Tue 20 Oct, EDT
    await roster.set_rotation(role="platform", weekday="mon", at="09:00", timezone="America/New_York",
                              people=["alice", "bob"])
    board = {w.role: w for w in await roster.board(datetime(2026, 11, 2, 13, 30, tzinfo=UTC))}  # 08:30 EST
    assert board["platform"].now.person == "bob"
    assert board["platform"].next.starts_at == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # 09:00 EST, not 13:00
    board = {w.role: w for w in await roster.board(datetime(2026, 11, 2, 14, 0, tzinfo=UTC))}
    assert board["platform"].now.person == "alice"


async def test_saving_a_rotation_that_starts_later_reports_the_gap(team: Harness) -> None:
    roster = team.app.oncall
    await roster.add_person(name="alice", slack="U1")
    saved = await roster.set_rotation(role="dba", weekday="mon", at="09:00", timezone="Europe/London",
                                      people=["alice"], starting="2026-12-07")
    [gap] = saved.gaps
    assert gap.starts_at == team.clock.now() and gap.ends_at == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    gaps = await roster.gaps(start=team.clock.now(), end=datetime(2026, 12, 31, tzinfo=UTC))
    assert [g.role for g in gaps] == ["dba"]


async def test_help_explains_oncall(team: Harness) -> None:
    reply = await team.ok("help oncall")
    assert "oncall override <role> @person" in reply.message.text
