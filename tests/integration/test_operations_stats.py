"""`/incident stats [30d]` on a history made with real commands and a ManualClock."""

from __future__ import annotations

from tests.support import Harness


async def build_history(team: Harness) -> None:
    await team.ok('declare P1 "Payments down"')  # INC-1: acknowledged after 5 min, resolved after 1 h
    team.clock.advance(minutes=5)
    await team.ok("ack INC-1")
    team.clock.advance(minutes=55)
    await team.ok("resolve INC-1")
    team.clock.advance(hours=1)
    await team.ok('declare P1 "Checkout errors"')  # INC-2: 25 min, 2 h 30 min, post-mortem an hour later
    team.clock.advance(minutes=25)
    await team.ok("ack INC-2")
    team.clock.advance(minutes=125)
    await team.ok("resolve INC-2")
    team.clock.advance(hours=1)
    await team.ok("postmortem INC-2")
    await team.ok('declare P2 "Exports slow"')  # INC-3: acknowledged after 30 min, still open
    team.clock.advance(minutes=30)
    await team.ok("ack INC-3")


async def test_stats_for_the_last_30_days_per_severity(team):
    await build_history(team)
    reply = await team.ok("stats")
    assert reply.message.title == "Incident stats, last 30 d: 3 incidents"
    assert reply.message.text.splitlines() == [
        "P1 (Critical) — 2 incidents",
        "  acknowledge: median 15 min, p90 23 min (2 acknowledged)",
        "  resolve: median 1 h 45 min, p90 2 h 21 min (2 resolved)",
        "  within response target (15 min): 1/2 (50%)",
        "  within resolution target (2 h): 1/2 (50%)",
        "  post-mortems on time (2 d after resolution): 1/1 (100%)",  # INC-1's is not due yet: not judged
        "P2 (Significant) — 1 incident, 1 still open",
        "  acknowledge: median 30 min, p90 30 min (1 acknowledged)",
        "  resolve: none resolved yet",
        "  within response target (1 h): 1/1 (100%)",
        "  within resolution target (8 h): n/a",
        "  post-mortems on time (7 d after resolution): n/a",
        "P3 — no incidents",
    ]
    assert reply.message.footer.startswith("Declared since 2026-10-25 15:50 EAT")  # 30 days before now


async def test_stats_over_a_shorter_period_leave_older_incidents_out_and_a_bad_period_shows_usage(team):
    await build_history(team)
    team.clock.advance(days=10)
    await team.ok('declare P3 "Typo on the invoice page"')
    reply = await team.ok("stats 7d")
    assert reply.message.title == "Incident stats, last 7 d: 1 incident"
    assert reply.message.text.splitlines()[:2] == ["P1 — no incidents", "P2 — no incidents"]
    assert (await team.ok("stats 30d")).message.title.endswith(": 4 incidents")
    bad = await team.run("stats forever")
    assert not bad.ok
    assert "Bad period 'forever'" in bad.message.text and "Usage: /incident stats [30d]" in bad.message.text


async def test_stats_judge_targets_against_the_severity_in_force_at_the_time(team):
    """A P1 acknowledged after 16 min (the bot escalated at 15) then downgraded to P2 missed its response
    target; counted under P2 (its severity now), it is not "within the 1 h target"."""
    await team.ok('declare P1 "Payments down"')
    await team.tick(minutes=15)
    assert team.kinds("escalation")
    team.clock.advance(minutes=1)
    await team.ok("ack INC-1")
    team.clock.advance(minutes=4)
    await team.ok("sev INC-1 P2")
    lines = (await team.ok("stats")).message.text.splitlines()
    assert "P2 (Significant) — 1 incident, 1 still open" in lines
    assert "  within response target (1 h): 0/1 (0%)" in lines
    # The post-mortem says the same.
    assert "16 min (target 15 min at P1, missed)" in await team.service.export_postmortem(1, "md")
