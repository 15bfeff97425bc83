"""Real `warroom serve` processes against one database and the fake Slack Web API: replicas sharing
PostgreSQL, and a kill -9 in the middle of a burst."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from storage.engine import create_engine
from storage.migrate import upgrade
from tests.fakes.slack_api import FakeSlackApi
from tests.processes import ServeProcess, signed, slash_command
from tests.support import BACKEND

SECRET = "process-test-signing-secret"
INCIDENTS = "C0INCIDENTS"
ALICE = "U0ALICE01"
postgres_only = pytest.mark.skipif(BACKEND != "postgres", reason="replicas share state through PostgreSQL")


@pytest.fixture
async def fake():
    api = await FakeSlackApi(users={ALICE: "alice"}).start()
    yield api
    await api.close()


@pytest.fixture
async def servers(tmp_path, database_url, fake):
    started: list[ServeProcess] = []

    async def start(**extra: str) -> ServeProcess:
        env = {"WARROOM_DATABASE_URL": database_url, "WARROOM_LADDER": "P1-P3", "SLACK_BOT_TOKEN": "xoxb-test",
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.url, "WARROOM_TICK_SECONDS": "0.2",
               # a killed replica's half-sent messages are taken over after this lease (default 120 s)
               "WARROOM_OUTBOX_LEASE_SECONDS": "2",
               "WARROOM_POSTMORTEM_DIR": str(tmp_path / "pm"), **extra}
        served = await ServeProcess.start(cwd=tmp_path, env=env)
        started.append(served)
        return served

    yield start
    for served in started:
        await served.kill()


async def _rows(url: str, query: str) -> list:
    engine = create_engine(url)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(query))).all()
    await engine.dispose()
    return rows


@postgres_only
async def test_two_replicas_fire_a_thousand_reminders_each_exactly_once(database_url, servers, fake):
    engine = create_engine(database_url)
    await upgrade(engine)
    now = datetime.now(UTC)
    cadence = timedelta(minutes=15)  # P1 on the P1-P3 ladder
    incidents, reminders = [], []
    for n in range(1, 1001):
        due = now + timedelta(seconds=3) + timedelta(milliseconds=3 * n)  # all due within ~6 s
        last_update = due - cadence
        incidents.append({"number": n, "title": f"incident {n}", "severity": "P1", "reporter": "alice",
                          "status": "acknowledged", "declared_at": last_update, "acknowledged_at": last_update,
                          "acknowledged_by": "alice", "last_update_at": last_update, "roles": "{}",
                          "checklist": "[]", "platform": "slack", "channel": INCIDENTS, "thread": f"1700000000.{n:06d}",
                          "card_message": f"1700000000.{n:06d}"})
        reminders.append({"incident_number": n, "kind": "update_nudge", "subject": 0, "due_at": due,
                          "status": "pending", "created_at": now})
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO incident (number, title, severity, reporter, status, declared_at, acknowledged_at, "
            "acknowledged_by, last_update_at, roles, frozen, checklist, escalations_sent, resolution_escalated, "
            "platform, channel, thread, card_message) VALUES (:number, :title, :severity, :reporter, :status, "
            ":declared_at, :acknowledged_at, :acknowledged_by, :last_update_at, CAST(:roles AS JSON), false, "
            "CAST(:checklist AS JSON), 0, false, :platform, :channel, :thread, :card_message)"), incidents)
        await conn.execute(sa.text(
            "INSERT INTO reminder (incident_number, kind, subject, due_at, status, created_at) "
            "VALUES (:incident_number, :kind, :subject, :due_at, :status, :created_at)"), reminders)
        await conn.execute(sa.text("UPDATE counter SET value = 1000 WHERE name = 'incident'"))
    await engine.dispose()

    await asyncio.gather(servers(), servers())

    def nudges(api: FakeSlackApi) -> list:
        return [c for c in api.of("chat.postMessage") if "no status update" in c.params.get("text", "")]

    await fake.wait_for(lambda api: len(nudges(api)) >= 1000 or None, timeout=90)
    # Settle: every reminder claimed and every outbox row delivered, so a double claim would have shown up.
    for _ in range(300):
        [(pending,)] = await _rows(database_url, "SELECT count(*) FROM reminder WHERE status = 'pending' "
                                                 "AND due_at < now()")
        [(waiting,)] = await _rows(database_url, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")
        if pending == 0 and waiting == 0:
            break
        await asyncio.sleep(0.1)  # polling the database for quiescence, not timing anything
    per_thread = Counter(c.params["thread_ts"] for c in nudges(fake))
    assert len(per_thread) == 1000 and set(per_thread.values()) == {1}
    fired = await _rows(database_url, "SELECT count(*) FROM reminder WHERE kind = 'update_nudge' AND status = 'fired'")
    assert fired == [(1000,)]


@postgres_only
async def test_two_hundred_concurrent_declares_across_two_replicas_get_unique_consecutive_numbers(servers, fake,
                                                                                                   database_url):
    a, b = await asyncio.gather(servers(), servers())
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as to_a, httpx.AsyncClient(base_url=b.url,
                                                                                         timeout=30) as to_b:
        answers = await asyncio.gather(*(
            slash_command(to_a if n % 2 else to_b, SECRET, text=f'declare P2 "concurrent {n}"', user=ALICE,
                          channel=INCIDENTS, trigger=f"trig-{n}") for n in range(200)))
    assert all(r.status_code == 200 for r in answers)
    declared = sorted(int(r.json()["text"].split("INC-")[1].split(" ")[0]) for r in answers)
    assert declared == list(range(1, 201))
    rows = await _rows(database_url, "SELECT number FROM incident ORDER BY number")
    assert [n for (n,) in rows] == list(range(1, 201))


async def test_kill_9_mid_burst_loses_nothing_acknowledged_and_doubles_nothing(servers, fake, database_url):
    first = await servers()
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
        declared = await slash_command(http, SECRET, text='declare P1 "Burst target"', user=ALICE,
                                       channel=INCIDENTS, trigger="trig-declare")
        assert declared.status_code == 200
    thread = (await fake.wait_calls("chat.postMessage", where=lambda c: "thread_ts" not in c.params))[0].response["ts"]
    # People talk in the thread once it shows its checklists (posted after the room is recorded).
    await fake.wait_calls("chat.postMessage", where=lambda c: c.params.get("text") == "Triage checklist")

    acked_commands: list[int] = []
    acked_messages: list[int] = []
    under_way = asyncio.Event()  # set once 60 requests of the burst are acknowledged

    def acked(into: list[int], n: int) -> None:
        into.append(n)
        if len(acked_commands) + len(acked_messages) >= 60:
            under_way.set()

    async def command(n: int, http: httpx.AsyncClient) -> None:
        try:
            response = await slash_command(http, SECRET, text=f'status INC-1 "burst update {n}"', user=ALICE,
                                           channel=INCIDENTS, trigger=f"trig-burst-{n}")
            if response.status_code == 200:
                acked(acked_commands, n)
        except httpx.HTTPError:
            pass  # the process died before answering: Slack would show the user an error

    def event_body(n: int) -> str:
        ts = f"1800000000.{n:06d}"
        return json.dumps({"token": "legacy", "type": "event_callback", "team_id": "T0WARROOM",
                           "api_app_id": "A0WARROOM", "event_id": f"EvBurst{n:04d}", "event_time": int(time.time()),
                           "authorizations": [{"team_id": "T0WARROOM", "user_id": "UBOT", "is_bot": True}],
                           "event": {"type": "message", "channel": INCIDENTS, "user": ALICE, "channel_type": "channel",
                                     "text": f"burst message {n}", "ts": ts, "event_ts": ts, "thread_ts": thread}})

    async def message(n: int, http: httpx.AsyncClient) -> None:
        body = event_body(n)
        try:
            response = await http.post("/slack/events", content=body, headers=signed(SECRET, body, "application/json"))
            if response.status_code == 200:
                acked(acked_messages, n)
        except httpx.HTTPError:
            pass  # no answer: Slack retries the event later with the same event_id

    async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
        burst = [asyncio.create_task(work(n, http)) for n in range(120) for work in (command, message)]
        await under_way.wait()  # the burst is under way
        await first.kill()
        await asyncio.gather(*burst)
    assert 0 < len(acked_commands) + len(acked_messages) < 240  # the kill landed mid-burst

    second = await servers()
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as http:
        for n in range(120):  # Slack redelivers every event it got no 200 for (and, harmlessly, some it did)
            body = event_body(n)
            response = await http.post("/slack/events", content=body,
                                       headers={**signed(SECRET, body, "application/json"), "X-Slack-Retry-Num": "1",
                                                "X-Slack-Retry-Reason": "http_timeout"})
            assert response.status_code == 200
    rows = await _rows(database_url, "SELECT text FROM timeline_event WHERE incident_number = 1")
    timeline = [text for (text,) in rows]
    for n in acked_commands:
        assert timeline.count(f"burst update {n}") == 1
    for n in range(120):
        assert timeline.count(f"burst message {n}") == 1
    # Every acknowledged status reaches the thread exactly once once the outbox has drained.
    posted = lambda api: [c.params["text"] for c in api.of("chat.postMessage")
                          if c.params.get("text", "").startswith("Status update from alice: burst update")]
    await fake.wait_for(lambda api: len(posted(api)) >= len(set(timeline) & {f"burst update {n}" for n in range(120)})
                        or None, timeout=30)
    counts = Counter(posted(fake))
    assert all(count == 1 for count in counts.values()), counts
    stored = {t for t in timeline if t.startswith("burst update")}
    assert len(counts) == len(stored)
