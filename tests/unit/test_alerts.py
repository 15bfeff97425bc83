"""Alert payloads → neutral alerts, and alert rules (playbooks/alerts/*.yaml) → level and action. Pure, no I/O."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.alerts.rules import (
    AlertPayloadError,
    decide,
    label_fingerprint,
    parse_alertmanager,
    parse_generic,
    render_title,
)
from playbooks.loader import PlaybookError, load_playbooks
from playbooks.schema import AlertRule, AlertRules, LabelMatcher

FIRING = {
    "version": "4", "groupKey": '{}/{severity="critical"}:{alertname="PostgresDown"}', "truncatedAlerts": 0,
    "status": "firing", "receiver": "warroom", "groupLabels": {"alertname": "PostgresDown"},
    "commonLabels": {"alertname": "PostgresDown", "severity": "critical", "job": "postgres"},
    "commonAnnotations": {"runbook": "https://runbooks/db"}, "externalURL": "http://alertmanager:9093",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "PostgresDown", "severity": "critical", "job": "postgres",
                                        "instance": "db-1:5432"},
         "annotations": {"summary": "Postgres primary is down", "description": "db-1 refuses connections"},
         "startsAt": "2026-11-24T06:45:00.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus:9090/graph?g0.expr=pg_up", "fingerprint": "c0ffee01"},
        {"status": "resolved", "labels": {"alertname": "PostgresDown", "severity": "critical", "job": "postgres",
                                          "instance": "db-2:5432"},
         "annotations": {"summary": "Postgres replica is down"},
         "startsAt": "2026-11-24T06:40:00Z", "endsAt": "2026-11-24T06:44:00Z", "fingerprint": "c0ffee02"},
    ],
}


def rules(*specs: dict) -> AlertRules:
    return AlertRules.model_validate({"name": "test", "description": "test rules", "rules": list(specs)})


@pytest.fixture(scope="module")
def playbooks():
    return load_playbooks()


# ------------------------------------------------------------------------------------------------ Alertmanager


def test_an_alertmanager_group_becomes_one_batch_of_its_alerts():
    batch = parse_alertmanager(FIRING)
    assert batch.source == "alertmanager" and batch.status == "firing"
    assert [a.fingerprint for a in batch.alerts] == ["c0ffee01", "c0ffee02"]
    first, second = batch.alerts
    assert first.status == "firing" and second.status == "resolved"
    assert first.title == "Postgres primary is down"
    assert first.description == "db-1 refuses connections"
    assert first.labels["instance"] == "db-1:5432"
    assert first.annotations["runbook"] == "https://runbooks/db"  # common annotations carry over
    assert first.starts_at == datetime(2026, 11, 24, 6, 45, 0, 123456, tzinfo=UTC)  # nanoseconds cut
    assert first.ends_at is None  # Go's zero time means "not set"
    assert first.url.startswith("http://prometheus")
    assert batch.common_labels["severity"] == "critical"


def test_the_group_key_names_the_batch_stably_and_separates_groups():
    other = copy.deepcopy(FIRING)
    other["groupKey"] = '{}:{alertname="DiskFull"}'
    assert parse_alertmanager(FIRING).key == parse_alertmanager(copy.deepcopy(FIRING)).key
    assert parse_alertmanager(FIRING).key != parse_alertmanager(other).key
    assert len(parse_alertmanager(FIRING).key) <= 200


def test_a_group_is_resolved_only_when_every_alert_is():
    resolved = copy.deepcopy(FIRING)
    resolved["status"] = "resolved"
    for alert in resolved["alerts"]:
        alert["status"] = "resolved"
    assert parse_alertmanager(resolved).status == "resolved"
    assert parse_alertmanager(FIRING).status == "firing"


def test_an_alert_without_a_fingerprint_gets_one_from_its_labels():
    payload = copy.deepcopy(FIRING)
    del payload["alerts"][0]["fingerprint"]
    alert = parse_alertmanager(payload).alerts[0]
    assert alert.fingerprint == label_fingerprint(FIRING["alerts"][0]["labels"])
    assert alert.fingerprint == label_fingerprint(dict(reversed(list(FIRING["alerts"][0]["labels"].items()))))


def test_without_a_summary_the_alertname_is_the_title():
    payload = copy.deepcopy(FIRING)
    payload["alerts"][0]["annotations"] = {}
    assert parse_alertmanager(payload).alerts[0].title == "PostgresDown"


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.update(version="3"), "unsupported Alertmanager webhook version"),
    (lambda p: p.pop("alerts"), "'alerts' must be a list"),
    (lambda p: p.update(alerts={"a": 1}), "'alerts' must be a list"),
    (lambda p: p["alerts"].append("x"), "alerts[2] must be an object"),
    (lambda p: p["alerts"][0].update(status="burning"), 'alerts[0].status must be "firing" or "resolved"'),
    (lambda p: p["alerts"][0].update(labels=["a"]), "alerts[0].labels must be an object"),
    (lambda p: p["alerts"][0]["labels"].update({"bad-name": "x"}), "is not a label name"),
    (lambda p: p["alerts"][1]["labels"].update(instance={"nested": 1}), "alerts[1].labels.instance must be a string"),
    (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt"),
    (lambda p: p.update(status="odd"), 'status must be "firing" or "resolved"'),
])
def test_a_malformed_alertmanager_payload_says_which_field_is_wrong(change, message):
    payload = copy.deepcopy(FIRING)
    change(payload)
    with pytest.raises(AlertPayloadError, match=None) as info:
        parse_alertmanager(payload)
    assert message in str(info.value)


@pytest.mark.parametrize("payload", [None, [], "alerts", 4])
def test_a_non_object_is_not_an_alertmanager_payload(payload):
    with pytest.raises(AlertPayloadError, match="expected a JSON object"):
        parse_alertmanager(payload)


def test_control_characters_in_alert_text_are_dropped():
    payload = copy.deepcopy(FIRING)
    payload["alerts"][0]["annotations"]["summary"] = "DB\u202e down\x00 now"
    assert parse_alertmanager(payload).alerts[0].title == "DB down now"


# ------------------------------------------------------------------------------------------------ generic JSON


def test_a_generic_alert_is_one_batch_with_severity_and_source_as_labels():
    [batch] = parse_generic({"title": "Checkout 5xx above 5%", "severity": "critical", "source": "grafana",
                             "fingerprint": "checkout-5xx", "labels": {"service": "checkout"},
                             "description": "5.3% of requests failing", "status": "firing"})
    [alert] = batch.alerts
    assert batch.source == "grafana" and batch.status == "firing"
    assert alert.fingerprint == "checkout-5xx" and alert.title == "Checkout 5xx above 5%"
    assert alert.labels == {"service": "checkout", "source": "grafana", "severity": "critical",
                            "alertname": "Checkout 5xx above 5%"}
    assert alert.description == "5.3% of requests failing"


def test_a_generic_alert_defaults_to_firing_with_a_stable_fingerprint():
    [first] = parse_generic({"title": "Queue backlog", "labels": {"queue": "payments"}})
    [again] = parse_generic({"title": "Queue backlog", "labels": {"queue": "payments"}})
    assert first.status == "firing" and first.source == "generic"
    assert first.key == again.key and first.alerts[0].fingerprint == again.alerts[0].fingerprint


def test_a_list_of_generic_alerts_is_one_batch_each():
    batches = parse_generic([{"title": "A"}, {"title": "B", "status": "resolved"}])
    assert [b.alerts[0].title for b in batches] == ["A", "B"]
    assert [b.status for b in batches] == ["firing", "resolved"]


@pytest.mark.parametrize(("payload", "message"), [
    ({}, "title is required"),
    ({"title": "  "}, "title is required"),
    ({"title": 7}, "title must be a string"),
    ({"title": "x", "status": "open"}, 'status must be "firing" or "resolved"'),
    ({"title": "x", "labels": "a=b"}, "labels must be an object"),
    ({"title": "x", "priority": "high"}, "unknown field(s) priority; allowed: title, severity"),
    ([{"title": "x"}, {"status": "firing"}], "[1].title is required"),
    ([], "non-empty list"),
    ("just text", "must be an object"),
])
def test_a_malformed_generic_alert_says_what_is_wrong(payload, message):
    with pytest.raises(AlertPayloadError) as info:
        parse_generic(payload)
    assert message in str(info.value)


# ------------------------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize(("spec", "value", "matches"), [
    ("critical", "critical", True), ("critical", "warning", False),
    ('~"Postgres.*"', "PostgresDown", True), ("~Postgres.*", "MySQLDown", False),
    ("~Postgres", "PostgresDown", False),  # regexes are anchored, as in Alertmanager
    ("!warning", "critical", True), ("!warning", "warning", False),
    ("!~db-.*", "db-1", False), ("!~db-.*", "web-1", True),
    ("", None, True), ("critical", None, False),  # a missing label is ""
])
def test_label_matchers(spec, value, matches):
    labels = {} if value is None else {"x": value}
    assert LabelMatcher.parse("x", spec).matches(labels) is matches


def test_the_first_matching_rule_wins(playbooks):
    ladder = playbooks.ladder("P1-P3")
    chosen = rules({"name": "db", "match": {"alertname": '~"Postgres.*"'}, "level": "P2", "action": "propose"},
                   {"name": "critical", "match": {"severity": "critical"}, "level": 1})
    decision = decide(parse_alertmanager(FIRING), chosen, ladder)
    assert decision.rule.name == "db" and decision.action == "propose" and decision.level.name == "P2"


def test_the_most_severe_firing_alert_decides_a_group(playbooks):
    payload = copy.deepcopy(FIRING)
    payload["alerts"][1]["status"] = "firing"
    payload["alerts"][1]["labels"]["severity"] = "warning"
    payload["alerts"][0]["labels"]["severity"] = "critical"
    decision = decide(parse_alertmanager(payload), playbooks.alert_rules["default"], playbooks.ladder("P1-P3"))
    assert decision.rule.name == "critical" and decision.action == "declare" and decision.level.name == "P1"
    assert decision.title == "PostgresDown: Postgres primary is down (+1 more)"


def test_resolved_alerts_do_not_decide_and_nothing_matching_is_ignored(playbooks):
    only = rules({"name": "never", "match": {"alertname": "Nope"}, "level": 1})
    assert decide(parse_alertmanager(FIRING), only, playbooks.ladder("P1-P3")).action == "ignore"


def test_the_bundled_default_rules_for_each_ladder(playbooks):
    default = playbooks.alert_rules["default"]
    expected = {"P0-P3": ("P1", "P2"), "P1-P3": ("P1", "P2"), "SEV0-SEV3": ("SEV1", "SEV2"), "S1-S4": ("S1", "S2")}
    for name, (critical, warning) in expected.items():
        ladder = playbooks.ladder(name)
        assert playbooks.alert_rules_for("default", ladder) is default
        assert default.first_match({"severity": "critical"}).level_for(ladder).name == critical
        assert default.first_match({"severity": "warning"}).level_for(ladder).name == warning
    assert default.first_match({"severity": "critical"}).action == "declare"
    assert default.first_match({"severity": "warning"}).action == "propose"
    assert default.first_match({"severity": "info"}).action == "ignore"
    assert default.first_match({}).action == "propose"


def test_a_title_template_fills_labels_and_annotations():
    rule = AlertRule(name="db", level=1, title="Database: {alertname} on {instance} ({summary}) {missing}")
    alert = parse_alertmanager(FIRING).alerts[0]
    assert render_title(rule, alert) == "Database: PostgresDown on db-1:5432 (Postgres primary is down) ?"
    assert render_title(AlertRule(name="plain", level=1), alert) == "Postgres primary is down"


@pytest.mark.parametrize(("rule", "message"), [
    ({"name": "x", "match": {"alertname": "~(unclosed"}, "level": 1}, "not a valid regular expression"),
    ({"name": "x", "match": {"bad-label": "a"}, "level": 1}, "label name 'bad-label' is not valid"),
    ({"name": "x", "level": 0}, "level rank must be 1 or more"),
    ({"name": "x", "level": "P 1"}, "is not a level name"),
    ({"name": "x", "level": {}}, "a level map needs at least one entry"),
    ({"name": "x"}, "level is required for action declare"),
    ({"name": "x", "level": 1, "action": "page"}, "action"),
    ({"name": "x", "level": 1, "title": "{alert name}"}, "title placeholders must be label or annotation names"),
    ({"name": "x", "level": 1, "colour": "red"}, "colour"),
])
def test_a_bad_rule_is_refused_with_what_is_allowed(rule, message):
    with pytest.raises(ValueError) as info:
        rules(rule)
    assert message in str(info.value)


def test_a_rule_without_a_level_is_fine_for_ignore():
    assert rules({"name": "quiet", "match": {"severity": "info"}, "action": "ignore"}).rules[0].level is None


# ------------------------------------------------------------------------------------- rule files, checked at start


def _write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_rule_level_missing_from_the_ladder_names_file_field_and_allowed_levels(tmp_path):
    path = _write(tmp_path, "alerts/ours.yaml",
                  "name: ours\ndescription: ours\nrules:\n  - name: ok\n    level: 1\n  - name: deep\n    level: 4\n")
    playbooks = load_playbooks(tmp_path)
    playbooks.alert_rules_for("ours", playbooks.ladder("P0-P3"))  # four levels: fine
    with pytest.raises(PlaybookError) as info:
        playbooks.alert_rules_for("ours", playbooks.ladder("P1-P3"))
    message = str(info.value)
    assert str(path) in message and "rules.1.level" in message and "deep" in message
    assert "1=P1, 2=P2, 3=P3" in message


def test_a_level_name_from_another_ladder_lists_the_allowed_ones(tmp_path):
    _write(tmp_path, "alerts/ours.yaml", "name: ours\ndescription: ours\nrules:\n  - name: a\n    level: SEV1\n")
    playbooks = load_playbooks(tmp_path)
    with pytest.raises(PlaybookError, match=r"level 'SEV1' is not in ladder P1-P3; allowed: P1, P2, P3"):
        playbooks.alert_rules_for("ours", playbooks.ladder("P1-P3"))


def test_a_level_map_without_the_ladder_or_a_star_says_what_to_add(tmp_path):
    _write(tmp_path, "alerts/ours.yaml", "name: ours\ndescription: ours\nrules:\n  - name: a\n    level: {S1-S4: S2}\n")
    playbooks = load_playbooks(tmp_path)
    with pytest.raises(PlaybookError, match="no level for ladder P1-P3"):
        playbooks.alert_rules_for("ours", playbooks.ladder("P1-P3"))


def test_an_invalid_rule_file_fails_at_load_with_its_path(tmp_path):
    path = _write(tmp_path, "alerts/broken.yaml",
                  "name: broken\ndescription: x\nrules:\n  - name: a\n    match: {alertname: '~[z-a]'}\n    level: 1\n")
    with pytest.raises(PlaybookError) as info:
        load_playbooks(tmp_path)
    assert str(path) in str(info.value) and "rules.0" in str(info.value)


def test_unknown_rule_set_lists_the_available_ones(playbooks):
    with pytest.raises(PlaybookError, match="Unknown alert rules 'nope'; available: default"):
        playbooks.alert_rules_for("nope", playbooks.ladder("P1-P3"))


def test_the_console_shows_a_declare_button_it_cannot_press():
    from adapters.text import to_text
    from bot.ports import Button, Message

    text = to_text(Message(title="Alert: Disk filling", text="1 alert firing",
                           buttons=(Button("declare", "Declare P2", "alert-3", "primary"),
                                    Button("ack", "Acknowledge", "INC-1"))))
    assert "[Declare P2 (alert-3)]  [Acknowledge: /incident ack]" in text


def test_alerts_go_to_the_configured_room_or_the_first_platforms_incidents_channel(tmp_path):
    from adapters.memory import MemoryChat
    from bot.app.bootstrap import alert_room
    from bot.ports import Room
    from tests.support import make_settings

    chat = {"slack": MemoryChat("slack"), "console": MemoryChat("console")}
    assert alert_room(make_settings(tmp_path), {}) == Room("console", "#incidents")
    assert alert_room(make_settings(tmp_path, incidents_channel="#ops"), chat) == Room("slack", "#ops")
    assert alert_room(make_settings(tmp_path, slack_incidents_channel="C0INC"), chat) == Room("slack", "C0INC")
    assert alert_room(make_settings(tmp_path, alert_platform="console", alert_channel="#alerts"), chat) == \
        Room("console", "#alerts")
