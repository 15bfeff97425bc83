"""Two `warroom serve` replicas on PostgreSQL; one is killed (-9) while Slack hangs on the messages it claimed, and
restarted under the same WARROOM_INSTANCE_ID: it takes them back at once instead of after the 120 s lease, the
hung write is not posted twice, and reminders fire once (issue 13, must-hold 5)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from storage.engine import create_engine
from storage.migrate import upgrade
from tests.fakes.slack_api import FakeSlackApi
from tests.processes import ServeProcess, slash_command
from tests.support import BACKEND

SECRET = "replica-restart-signing-secret"
INCIDENTS = "C0INCIDENTS"
ALICE = "U0ALICE01"
BURST = 20
REMINDERS = 40
pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="replicas share state through PostgreSQL")


@pytest.fixture
async def fake():
    api = await FakeSlackApi(users={ALICE: "alice"}).start()
    yield api
    api.release()
    await api.close()


@pytest.fixture
async def servers(tmp_path, database_url, fake):
    started: list[ServeProcess] = []

    async def start(name: str) -> ServeProcess:
        env = {"WARROOM_DATABASE_URL": database_url, "WARROOM_LADDER": "P1-P3", "SLACK_BOT_TOKEN": "xoxb-test",
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.url, "WARROOM_TICK_SECONDS": "0.2",
               "WARROOM_OUTBOX_LEASE_SECONDS": "120",  # the default: a restart must not wait it out
               "WARROOM_INSTANCE_ID": name, "WARROOM_POSTMORTEM_DIR": str(tmp_path / "pm")}
        served = await ServeProcess.start(cwd=tmp_path, env=env)
        started.append(served)
        return served

    yield start
    for served in started:
        await served.kill()


async def _rows(url: str, query: str, **params: object) -> list:
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(query), params)).all()
    await engine.dispose()
    return rows


async def _poll(check, what: str, deadline: float):
    """Poll (a process test may) until `check()` returns something truthy, or fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {deadline:g} s: {what}")


async def _seed_reminders(url: str, due_in: timedelta) -> None:
    """Incidents 101.. with an update nudge each, all due together."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    due = now + due_in
    last_update = due - timedelta(minutes=15)  # P1's cadence on the P1-P3 ladder
    async with engine.begin() as conn:
        for n in range(101, 101 + REMINDERS):
            await conn.execute(sa.text(
                "INSERT INTO incident (number, title, severity, reporter, status, declared_at, acknowledged_at, "
                "acknowledged_by, last_update_at, roles, frozen, checklist, escalations_sent, resolution_escalated, "
                "platform, channel, thread, card_message) VALUES (:n, :title, 'P1', 'alice', 'acknowledged', :at, "
                ":at, 'alice', :at, CAST('{}' AS JSON), false, CAST('[]' AS JSON), 0, false, 'slack', :channel, "
                ":thread, :thread)"), {"n": n, "title": f"seeded {n}", "at": last_update, "channel": INCIDENTS,
                                       "thread": f"1700000000.{n:06d}"})
            await conn.execute(sa.text(
                "INSERT INTO reminder (incident_number, kind, subject, due_at, status, created_at) "
                "VALUES (:n, 'update_nudge', 0, :due, 'pending', :now)"), {"n": n, "due": due, "now": now})
    await engine.dispose()


async def test_a_replica_killed_mid_burst_takes_back_its_claims_within_seconds_of_restarting(
        servers, fake, database_url):
    engine = create_engine(database_url)
    await upgrade(engine)
    await engine.dispose()
    replicas = dict(zip(("replica-a", "replica-b"),
                        await asyncio.gather(servers("replica-a"), servers("replica-b")), strict=True))
    a = replicas["replica-a"]
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
        assert (await slash_command(http, SECRET, text='declare P1 "Burst target"', user=ALICE, channel=INCIDENTS,
                                    trigger="trig-declare")).status_code == 200
        await fake.wait_calls("chat.postMessage", where=lambda c: c.params.get("text") == "Triage checklist")
        # Slack hangs on the burst's posts: replica A claims them and is killed while waiting for the answer.
        fake.hold("chat.postMessage", lambda params: "burst update" in params.get("text", ""))
        await _seed_reminders(database_url, due_in=timedelta(seconds=4))
        answers = await asyncio.gather(*(
            slash_command(http, SECRET, text=f'status INC-1 "burst update {n}"', user=ALICE, channel=INCIDENTS,
                          trigger=f"trig-{n}") for n in range(BURST)))
    assert all(r.status_code == 200 for r in answers)
    # Whichever replica claimed the burst (both drain) is the one killed, and restarted under its name.
    claimed = await _poll(lambda: _rows(database_url, "SELECT id, claimed_by FROM outbox WHERE status = 'sending' "
                                                      "AND incident_number = 1"), "a replica claims the burst", 20)
    victim = claimed[0][1]
    assert victim in replicas and {by for _, by in claimed} == {victim}
    await replicas[victim].kill()
    fake.release()  # the hung write lands in Slack after all, but replica A never hears the answer
    await _poll(lambda: asyncio.sleep(0, fake.waiting == 0), "the held writes land in the fake", 10)

    restarted_at = time.monotonic()
    await servers(victim)
    restarted = time.monotonic()

    def posted() -> Counter:
        return Counter(c.params["text"] for c in fake.of("chat.postMessage")
                       if c.params.get("text", "").startswith("Status update from alice: burst update"))

    async def all_delivered() -> bool:
        [(waiting,)] = await _rows(database_url, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending') "
                                                 "AND incident_number = 1")
        return waiting == 0 and len(posted()) == BURST

    await _poll(all_delivered, "replica A's claimed messages delivered after its restart (lease is 120 s)", 15)
    taken = time.monotonic() - restarted
    assert taken < 10, taken
    assert set(posted().values()) == {1}, posted()  # the write whose answer was lost is found, not posted twice
    assert len(claimed) >= 1
    print(f"claimed by the killed replica: {len(claimed)}; delivered {taken:.2f} s after the restart was up "
          f"({time.monotonic() - restarted_at:.2f} s after it was started)")

    def nudges() -> Counter:
        return Counter(c.params.get("thread_ts") for c in fake.of("chat.postMessage")
                       if "no status update" in c.params.get("text", ""))

    await _poll(lambda: asyncio.sleep(0, len(nudges()) >= REMINDERS), "every seeded reminder fires", 30)
    await asyncio.sleep(1)  # a doubled reminder would show up within a few ticks (0.2 s each)
    assert set(nudges().values()) == {1} and len(nudges()) == REMINDERS
    [(fired,)] = await _rows(database_url, "SELECT count(*) FROM reminder WHERE incident_number > 100 AND "
                                           "status = 'fired'")
    assert fired == REMINDERS
