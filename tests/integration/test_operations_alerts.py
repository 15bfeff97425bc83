"""Alert intake end to end: Alertmanager and generic payloads → incidents, timeline entries, thread posts and
Declare proposals, on a real service and database (SQLite, or PostgreSQL with WARROOM_TEST_DATABASE=postgres)."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import pytest

from bot.alerts.rules import parse_alertmanager, parse_generic
from bot.incident.domain import EventKind, Status
from bot.incident.service import Context
from bot.ports import Actor
from playbooks.loader import PlaybookError
from tests.support import CHANNEL, Harness, make_settings, start_harness


def alert(fingerprint: str, *, status: str = "firing", severity: str = "critical", alertname: str = "PostgresDown",
          instance: str = "db-1", summary: str | None = None) -> dict:
    return {"status": status, "labels": {"alertname": alertname, "severity": severity, "instance": instance},
            "annotations": {"summary": summary or f"{alertname} on {instance}"},
            "startsAt": "2026-11-24T06:45:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint}


def notification(*alerts: dict, group: str = "PostgresDown") -> dict:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{group}"}}', "status": status, "receiver": "warroom",
            "groupLabels": {"alertname": group}, "commonLabels": {"alertname": group},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": list(alerts)}


async def send(team: Harness, payload: dict):
    return await team.app.alerts.receive([parse_alertmanager(payload)])


async def timeline(team: Harness, number: int) -> list:
    async with team.service._uow() as uow:
        return await uow.incidents.timeline(number)


async def alert_lines(team: Harness, number: int) -> list[str]:
    return [e.text for e in await timeline(team, number) if e.kind is EventKind.ALERT]


# ----------------------------------------------------------------------------------------------------- declaring


async def test_a_critical_alert_declares_an_incident_with_the_alert_in_its_timeline_and_thread(team):
    result = await send(team, notification(alert("fp-1", summary="Postgres primary is down")))
    assert result.as_json() == {"received": 1, "declared": ["INC-1"], "updated": [], "proposed": 0, "ignored": 0,
                                "resolved": []}
    [incident] = await team.service.incidents(open_only=True)
    assert (incident.key, incident.severity, incident.reporter) == ("INC-1", "P1", "alertmanager")
    assert incident.title == "PostgresDown: Postgres primary is down"
    assert incident.suggested_playbook == "database-unavailable"
    events = await timeline(team, 1)
    assert events[0].kind is EventKind.DECLARED and events[0].author == "alertmanager"
    [line] = await alert_lines(team, 1)
    assert line.startswith("alert firing (rule critical → P1): Postgres primary is down [alertname=PostgresDown "
                           "severity=critical instance=db-1]")
    assert events[-1].source == "alert"
    room = await team.room(1)
    assert room.channel == "#incidents"  # declared into the alert room: the console platform's #incidents
    posted = [m for m in team.chat.in_room(room) if m.kind == "alert"]
    assert posted[0].title == "Declared from 1 firing alert (alertmanager)"
    assert "Source: http://prometheus:9090/graph" in posted[0].text


async def test_a_grouped_notification_is_one_incident_with_every_alert_in_its_timeline(team):
    result = await send(team, notification(alert("fp-1", instance="db-1"), alert("fp-2", instance="db-2"),
                                           alert("fp-3", instance="db-3")))
    assert result.declared == ["INC-1"] and result.received == 3
    [incident] = await team.service.incidents(open_only=True)
    assert incident.title == "PostgresDown: PostgresDown on db-1 (+2 more)"
    assert [line.split("instance=")[1].split("]")[0] for line in await alert_lines(team, 1)] == ["db-1", "db-2", "db-3"]


async def test_the_same_alert_firing_again_is_neither_a_second_incident_nor_news(team):
    payload = notification(alert("fp-1"))
    await send(team, payload)
    before = (len(await timeline(team, 1)), len(team.chat.sent))
    repeat = await send(team, copy.deepcopy(payload))
    assert repeat.declared == [] and repeat.updated == []
    assert [i.key for i in await team.service.incidents(open_only=False)] == ["INC-1"]
    assert (len(await timeline(team, 1)), len(team.chat.sent)) == before


async def test_concurrent_deliveries_of_one_alert_declare_once(settings, clock):
    first = await start_harness(settings, clock)
    second = await start_harness(settings, clock, chat=first.chat)  # another replica on the same database
    payload = notification(alert("fp-1"))
    results = await asyncio.gather(*(team.app.alerts.receive([parse_alertmanager(copy.deepcopy(payload))])
                                     for _ in range(4) for team in (first, second)))
    assert sorted(key for r in results for key in r.declared) == ["INC-1"]
    assert [i.key for i in await first.service.incidents(open_only=False)] == ["INC-1"]
    await first.ok('declare P2 "next one"')  # the losers' rolled-back declares left no gap in the numbers
    assert [i.key for i in await first.service.incidents(open_only=False)] == ["INC-1", "INC-2"]
    await first.app.close()
    await second.app.close()


# ------------------------------------------------------------------------------------------ an incident is open


async def test_a_new_alert_in_the_group_goes_to_the_open_incident(team):
    await send(team, notification(alert("fp-1", instance="db-1")))
    result = await send(team, notification(alert("fp-1", instance="db-1"), alert("fp-2", instance="db-2")))
    assert result.declared == [] and result.updated == ["INC-1"]
    lines = await alert_lines(team, 1)
    assert lines[-1].startswith("alert firing: PostgresDown on db-2")
    room = await team.room(1)
    assert team.chat.in_room(room)[-1].text.startswith("• firing: PostgresDown on db-2")


async def test_resolved_alerts_are_noted_and_the_incident_stays_open_without_auto_resolve(team):
    await send(team, notification(alert("fp-1", instance="db-1"), alert("fp-2", instance="db-2")))
    partly = await send(team, notification(alert("fp-1", status="resolved", instance="db-1"),
                                           alert("fp-2", instance="db-2")))
    assert partly.updated == ["INC-1"]
    done = await send(team, notification(alert("fp-1", status="resolved", instance="db-1"),
                                         alert("fp-2", status="resolved", instance="db-2")))
    assert done.updated == ["INC-1"] and done.resolved == []
    lines = await alert_lines(team, 1)
    assert [line.split(":")[0] for line in lines] == ["alert firing (rule critical → P1)"] * 2 + ["alert resolved"] * 2
    [incident] = await team.service.incidents(open_only=True)
    assert incident.status is Status.DECLARED  # the rule has no auto_resolve: a human verifies the fix
    last = team.chat.in_room(await team.room(1))[-1].text
    assert "Every alert has resolved; resolve INC-1 once the fix is verified" in last


async def test_after_people_resolve_a_repeat_is_noted_not_declared_and_a_new_firing_is_a_new_incident(team):
    await send(team, notification(alert("fp-1")))
    await team.ok("resolve INC-1")
    repeat = await send(team, notification(alert("fp-1")))  # Alertmanager's repeat_interval: still the same alert
    assert repeat.declared == []
    await send(team, notification(alert("fp-1", status="resolved")))  # noted in the resolved incident's timeline
    assert (await alert_lines(team, 1))[-1].startswith("alert resolved: PostgresDown on db-1")
    again = await send(team, notification(alert("fp-1")))  # it resolved, and now fires again: a new incident
    assert again.declared == ["INC-2"]
    assert (await alert_lines(team, 1))[-1] == "alerts fired again after INC-1 was resolved; declared INC-2"


# ---------------------------------------------------------------------------------------------------- proposing


async def test_a_warning_proposes_with_a_declare_button_and_the_press_declares(team):
    result = await send(team, notification(alert("fp-w", severity="warning", alertname="DiskFilling",
                                                 summary="Disk 85% full"), group="DiskFilling"))
    assert result.proposed == 1 and result.declared == []
    assert await team.service.incidents(open_only=False) == []
    [proposal] = [m for m in team.chat.in_room(CHANNEL) if m.kind == "alert"]
    assert proposal.title == "Alert: DiskFilling: Disk 85% full"
    [button] = proposal.buttons
    assert (button.action, button.label) == ("declare", "Declare P2")
    again = await send(team, notification(alert("fp-w", severity="warning", alertname="DiskFilling"),
                                          group="DiskFilling"))
    assert again.proposed == 0  # one proposal per group, however often Alertmanager repeats it

    ctx = Context(actor=Actor("U1", "bob"), room=CHANNEL)
    reply = await team.service.press_button(ctx, action="declare", value=button.value)
    assert reply.ok and reply.message.text.startswith("Declared INC-1 (P2): DiskFilling: Disk 85% full")
    [incident] = await team.service.incidents(open_only=True)
    assert (incident.severity, incident.reporter) == ("P2", "bob")
    assert (await alert_lines(team, 1))[0].startswith("declared by bob from the alert proposal (rule warning); "
                                                       "1 of 1 alert(s) firing")
    twice = await team.service.press_button(ctx, action="declare", value=button.value)
    assert twice.message.text == "Already declared: INC-1 (DiskFilling: Disk 85% full)."
    # From now on the group's alerts go to INC-1, and the warning rule's auto_resolve resolves it with them.
    done = await send(team, notification(alert("fp-w", status="resolved", severity="warning",
                                               alertname="DiskFilling"), group="DiskFilling"))
    assert done.resolved == ["INC-1"]
    [resolved] = await team.service.incidents(open_only=False)
    assert resolved.status is Status.RESOLVED and resolved.summary == "all alerts resolved"
    assert "INC-1 resolved automatically" in team.chat.in_room(await team.room(1))[-1].text


async def test_a_proposal_that_resolves_by_itself_says_so_in_the_channel(team):
    await send(team, notification(alert("fp-w", severity="warning", alertname="DiskFilling"), group="DiskFilling"))
    await send(team, notification(alert("fp-w", status="resolved", severity="warning", alertname="DiskFilling"),
                                  group="DiskFilling"))
    assert team.chat.texts(CHANNEL)[-1].startswith("Resolved before anyone declared: DiskFilling")
    assert await team.service.incidents(open_only=False) == []


async def test_info_alerts_are_ignored_and_an_unknown_declare_button_is_an_error(team):
    result = await send(team, notification(alert("fp-i", severity="info", alertname="Watchdog"), group="Watchdog"))
    assert result.ignored == 1 and result.declared == [] and result.proposed == 0
    assert team.chat.sent == []
    ctx = Context(actor=Actor("U1", "bob"), room=CHANNEL)
    assert not (await team.service.press_button(ctx, action="declare", value="alert-999")).ok
    assert not (await team.service.press_button(ctx, action="declare", value="INC-1")).ok


# ------------------------------------------------------------------------------------------------- generic JSON


async def test_generic_alerts_declare_note_and_resolve(team):
    firing = {"title": "Checkout 5xx above 5%", "severity": "critical", "source": "grafana",
              "fingerprint": "checkout-5xx", "labels": {"service": "checkout"},
              "description": "5.3% of requests failing", "status": "firing"}
    result = await team.app.alerts.receive(parse_generic(firing))
    assert result.declared == ["INC-1"]
    [incident] = await team.service.incidents(open_only=True)
    assert (incident.reporter, incident.severity, incident.title) == ("grafana", "P1",
                                                                      "Checkout 5xx above 5%: Checkout 5xx above 5%")
    assert (await team.app.alerts.receive(parse_generic(firing))).declared == []
    await team.app.alerts.receive(parse_generic({**firing, "status": "resolved"}))
    lines = await alert_lines(team, 1)
    assert lines[0].startswith("alert firing (rule critical → P1): Checkout 5xx above 5% [alertname=Checkout 5xx "
                               "above 5% severity=critical service=checkout source=grafana] — 5.3% of requests failing")
    assert lines[-1].startswith("alert resolved: Checkout 5xx above 5%")
    events = await timeline(team, 1)
    assert {e.author for e in events if e.kind is EventKind.ALERT} == {"grafana"}


# ------------------------------------------------------------------------------------------------- configuration


async def test_rules_naming_a_level_the_ladder_lacks_fail_at_start_up(tmp_path: Path, clock):
    folder = tmp_path / "ours"
    (folder / "alerts").mkdir(parents=True)
    (folder / "alerts" / "default.yaml").write_text(
        "name: default\ndescription: ours\nrules:\n  - name: deep\n    level: 4\n", encoding="utf-8")
    settings = make_settings(tmp_path, playbooks=folder)  # P1-P3: three levels; fails before touching a database
    with pytest.raises(PlaybookError) as info:
        await start_harness(settings, clock)
    assert "default.yaml" in str(info.value) and "level rank 4 does not exist in ladder P1-P3" in str(info.value)
