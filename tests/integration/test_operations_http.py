"""The operations HTTP routes on the real ASGI app: alert intake (401/400/200), the deploy-freeze API (423/200/401)
and /metrics, parsed with prometheus-client's own parser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.http import build_http_app
from adapters.ops_http import ops_routes
from bot.ports import ManualClock
from tests.support import Harness, make_settings, start_harness

ALERT_TOKEN = "alert-secret-123"
FREEZE_TOKEN = "freeze-secret-456"
FIRING = {
    "version": "4", "groupKey": '{}:{alertname="PostgresDown"}', "status": "firing", "receiver": "warroom",
    "groupLabels": {"alertname": "PostgresDown"}, "commonLabels": {"alertname": "PostgresDown"},
    "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
    "alerts": [{"status": "firing", "labels": {"alertname": "PostgresDown", "severity": "critical", "instance": "db-1"},
                "annotations": {"summary": "Postgres is down"}, "startsAt": "2026-11-24T06:45:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "fp-1"}],
}


@pytest.fixture
async def ops(tmp_path: Path, database_url: str,
              clock: ManualClock) -> AsyncIterator[tuple[Harness, httpx.AsyncClient]]:
    settings = make_settings(tmp_path, database_url=database_url, alert_token=ALERT_TOKEN, freeze_token=FREEZE_TOKEN)
    team = await start_harness(settings, clock)
    app = build_http_app(ops_routes(team.app))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warroom") as client:
        yield team, client
    await team.app.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stored(team: Harness) -> tuple[int, int, int]:
    """(incidents, alert groups, outbox messages)."""
    snapshot = await team.app.operations.metrics()
    return snapshot.declared_total, sum(snapshot.alert_groups.values()), len(team.chat.sent)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


# ------------------------------------------------------------------------------------------------- alert intake


async def test_alertmanager_and_generic_alerts_with_the_token_declare(ops):
    team, client = ops
    response = await client.post("/alerts/alertmanager", json=FIRING, headers=bearer(ALERT_TOKEN))
    assert response.status_code == 200
    assert response.json() == {"received": 1, "declared": ["INC-1"], "updated": [], "proposed": 0, "ignored": 0,
                               "resolved": []}
    again = await client.post("/alerts/alertmanager", json=FIRING, headers=bearer(ALERT_TOKEN))
    assert again.status_code == 200 and again.json()["declared"] == []
    generic = await client.post("/alerts/generic", headers=bearer(ALERT_TOKEN),
                                json={"title": "Checkout 5xx above 5%", "severity": "critical", "source": "grafana"})
    assert generic.status_code == 200 and generic.json()["declared"] == ["INC-2"]


WRONG_ALERT_AUTH = [{}, bearer("wrong"), {"Authorization": ALERT_TOKEN}, {"Authorization": f"Basic {ALERT_TOKEN}"},
                    bearer(FREEZE_TOKEN), bearer(ALERT_TOKEN + "x"), bearer(ALERT_TOKEN[:-1])]


async def test_a_missing_or_wrong_token_is_401_and_nothing_is_stored(ops):
    team, client = ops
    for path, body in (("/alerts/alertmanager", FIRING), ("/alerts/generic", {"title": "x"})):
        for headers in WRONG_ALERT_AUTH:
            response = await client.post(path, json=body, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "bearer token" in response.json()["error"]
    assert await stored(team) == (0, 0, 0)
    samples = metric_samples((await client.get("/metrics")).text)
    rejects = ("warroom_webhook_rejects_total", (("endpoint", "generic"), ("reason", "unauthorized")))
    assert samples[rejects] == len(WRONG_ALERT_AUTH)


MALFORMED = [
    (b"{not json", "body is not valid JSON"),
    (b"", "body is not valid JSON"),
    (b"\xff\xfe\x00garbage", "body is not valid JSON"),
    (b'{"version": "4", "alerts": "many"}', "field 'alerts' must be a list of alerts"),
    (b'{"version": "4", "alerts": [{"status": "maybe", "labels": {}}]}', 'alerts[0].status must be "firing"'),
    (b'{"version": "4", "alerts": [{"status": "firing", "labels": {"a": [1]}}]}',
     "alerts[0].labels.a must be a string"),
    (b"[" * 100_000 + b"]" * 100_000, "body is not valid JSON"),  # nested past the recursion limit
]


async def test_a_malformed_alertmanager_body_is_400_saying_what_is_wrong(ops):
    team, client = ops
    for body, message in MALFORMED:
        response = await client.post("/alerts/alertmanager", content=body, headers=bearer(ALERT_TOKEN))
        assert response.status_code == 400, body[:40]
        assert message in response.json()["error"], (body[:40], response.json())
    generic = await client.post("/alerts/generic", json={"severity": "critical"}, headers=bearer(ALERT_TOKEN))
    assert generic.status_code == 400 and generic.json() == {"error": "title is required (a non-empty string)"}
    assert await stored(team) == (0, 0, 0)


async def test_unset_tokens_turn_endpoints_off_and_a_metrics_token_guards_metrics(tmp_path, database_url, clock):
    team = await start_harness(make_settings(tmp_path, database_url=database_url, metrics_token="scrape-me"), clock)
    app = build_http_app(ops_routes(team.app))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warroom") as client:
        intake = await client.post("/alerts/alertmanager", json=FIRING, headers=bearer("anything"))
        freeze = await client.get("/api/freeze", headers=bearer("anything"))
        unauthorised = await client.get("/metrics")
        metrics = await client.get("/metrics", headers=bearer("scrape-me"))
    assert intake.status_code == 503 and "WARROOM_ALERT_TOKEN is not set" in intake.json()["error"]
    assert freeze.status_code == 503 and "WARROOM_FREEZE_TOKEN is not set" in freeze.json()["error"]
    assert (unauthorised.status_code, metrics.status_code) == (401, 200)
    assert await stored(team) == (0, 0, 0)
    await team.app.close()


async def test_metrics_are_open_without_a_metrics_token(ops):
    team, client = ops
    assert (await client.get("/metrics")).status_code == 200


# ------------------------------------------------------------------------------------------------------- freeze


async def test_freeze_is_423_while_an_open_incident_has_it_on_and_200_otherwise(ops):
    team, client = ops
    calm = await client.get("/api/freeze", headers=bearer(FREEZE_TOKEN))
    assert calm.status_code == 200 and calm.json() == {"frozen": False, "incidents": []}

    await team.ok('declare P1 "Payments down"')
    await team.ok('declare P2 "Exports slow"')
    frozen_at = team.clock.advance(minutes=3)
    await team.ok("freeze INC-2 on")
    team.clock.advance(minutes=5)
    await team.ok("freeze INC-1 on")
    frozen = await client.get("/api/freeze", headers=bearer(FREEZE_TOKEN))
    assert frozen.status_code == 423
    body = frozen.json()
    assert (body["frozen"], body["incidents"], body["since"]) == (True, ["INC-1", "INC-2"], frozen_at.isoformat())
    assert body["details"][1] == {"incident": "INC-2", "severity": "P2", "title": "Exports slow",
                                  "since": frozen_at.isoformat()}
    assert frozen.headers["cache-control"] == "no-store"

    await team.ok("freeze INC-2 off")
    assert (await client.get("/api/freeze", headers=bearer(FREEZE_TOKEN))).json()["incidents"] == ["INC-1"]
    await team.ok('resolve INC-1 "fixed"')  # resolved: the freeze no longer holds deploys
    after = await client.get("/api/freeze", headers=bearer(FREEZE_TOKEN))
    assert after.status_code == 200 and after.json() == {"frozen": False, "incidents": []}


@pytest.mark.empty_database
async def test_a_freeze_on_before_the_upgrade_keeps_when_it_went_on(tmp_path, database_url, clock):
    import sqlalchemy as sa

    from storage.engine import create_engine
    from storage.migrate import upgrade
    from tests.support import BACKEND, START

    engine = create_engine(database_url)
    await upgrade(engine, "0003")
    declared, frozen = START - timedelta(hours=2), START - timedelta(hours=1)
    params = {"d": declared, "f": frozen} if BACKEND == "postgres" else \
        {"d": declared.replace(tzinfo=None), "f": frozen.replace(tzinfo=None)}
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO incident (number, title, severity, reporter, status, declared_at, roles, frozen, checklist, "
            "escalations_sent, resolution_escalated) VALUES (1, 'Legacy', 'P1', 'alice', 'declared', :d, '{}', true, "
            "'[]', 0, false)"), params)
        for kind, text, when in (("declared", "declared P1: Legacy", "d"), ("freeze", "deploy freeze on", "f")):
            await conn.execute(sa.text(
                "INSERT INTO timeline_event (incident_number, kind, author, text, occurred_at, recorded_at, source, "
                f"pinned, deleted) VALUES (1, '{kind}', 'alice', '{text}', :{when}, :{when}, 'command', false, false)"),
                params)
        await conn.execute(sa.text("UPDATE counter SET value = 1 WHERE name = 'incident'"))
    await engine.dispose()
    settings = make_settings(tmp_path, database_url=database_url, freeze_token=FREEZE_TOKEN)
    team = await start_harness(settings, clock)  # migrates to head
    app = build_http_app(ops_routes(team.app))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warroom") as client:
        response = await client.get("/api/freeze", headers=bearer(FREEZE_TOKEN))
    assert response.status_code == 423
    assert response.json()["since"] == frozen.isoformat()
    await team.app.close()


async def test_freeze_without_its_token_is_401(ops):
    team, client = ops
    await team.ok('declare P1 "Payments down"')
    await team.ok("freeze INC-1 on")
    for headers in ({}, bearer("nope"), bearer(ALERT_TOKEN), {"Authorization": FREEZE_TOKEN}):
        response = await client.get("/api/freeze", headers=headers)
        assert response.status_code == 401, headers
        assert "frozen" not in response.json()  # nothing about incidents leaks without the token


# ------------------------------------------------------------------------------------------------------ metrics


async def test_metrics_in_prometheus_text_with_database_counts_and_process_counters(ops):
    team, client = ops
    await team.ok('declare P1 "Payments down"')
    await team.ok('declare P2 "Exports slow"')
    await team.ok('declare P2 "Search flaky"')
    await team.ok('resolve INC-3 "retry fixed it"')
    await team.ok("freeze INC-1 on")
    await team.tick(minutes=16)  # INC-1 (P1, 15 min) unacknowledged: an escalation, and a nudge for both P1s
    await client.post("/alerts/alertmanager", json=FIRING, headers=bearer("wrong"))
    await client.post("/alerts/alertmanager", content=b"{", headers=bearer(ALERT_TOKEN))
    await client.post("/alerts/alertmanager", json=FIRING, headers=bearer(ALERT_TOKEN))  # INC-4, P1
    assert not (await team.run("ack INC-9")).ok  # an unknown incident: counted as an error
    team.chat.fail_next(RuntimeError("platform down"))
    await team.ok("status INC-2 \"looking\"")  # its thread post fails once: one message waits in the outbox

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = metric_samples(response.text)

    assert samples[("warroom_open_incidents", (("severity", "P1"),))] == 2
    assert samples[("warroom_open_incidents", (("severity", "P2"),))] == 1
    assert samples[("warroom_open_incidents", (("severity", "P3"),))] == 0
    assert samples[("warroom_incidents_declared_total", ())] == 4
    assert samples[("warroom_reminders_fired_total", (("kind", "ack_escalation"),))] == 1
    assert samples[("warroom_reminders_fired_total", (("kind", "update_nudge"),))] == 1
    assert samples[("warroom_reminders_fired_total", (("kind", "postmortem_due"),))] == 0
    assert samples[("warroom_escalations_total", ())] == 1
    assert samples[("warroom_outbox_messages", (("status", "pending"),))] == 1
    assert samples[("warroom_outbox_messages", (("status", "failed"),))] == 0
    assert samples[("warroom_deploy_freeze_incidents", ())] == 1
    assert samples[("warroom_alert_groups", (("state", "declared"),))] == 1
    assert samples[("warroom_webhook_rejects_total", (("endpoint", "alertmanager"), ("reason", "unauthorized")))] == 1
    assert samples[("warroom_webhook_rejects_total", (("endpoint", "alertmanager"), ("reason", "bad_json")))] == 1
    assert samples[("warroom_alerts_received_total", (("endpoint", "alertmanager"), ("status", "firing")))] == 1
    declares = (("command", "Declare"), ("outcome", "ok"))
    assert samples[("warroom_command_duration_seconds_count", declares)] == 3
    assert samples[("warroom_command_duration_seconds_bucket", tuple(sorted((*declares, ("le", "+Inf")))))] == 3
    assert samples[("warroom_command_duration_seconds_sum", declares)] > 0
    freezes = (("command", "SetFreeze"), ("outcome", "ok"))
    assert samples[("warroom_command_duration_seconds_count", freezes)] == 1
    assert samples[("warroom_command_duration_seconds_count", (("command", "Acknowledge"), ("outcome", "error")))] == 1


async def test_two_replicas_report_the_same_database_numbers(ops, clock):
    team, client = ops
    await team.ok('declare P1 "Payments down"')
    other = await start_harness(team.settings, clock)
    other_app = build_http_app(ops_routes(other.app))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url="http://b") as replica:
        here = metric_samples((await client.get("/metrics")).text)
        there = metric_samples((await replica.get("/metrics")).text)
    key = ("warroom_open_incidents", (("severity", "P1"),))
    assert here[key] == there[key] == 1
    assert ("warroom_command_duration_seconds_count", (("command", "Declare"), ("outcome", "ok"))) not in there
    await other.app.close()
