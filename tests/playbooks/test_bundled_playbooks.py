"""The bundled playbook data loads, has the shape the bot relies on, and broken data fails loudly."""

from __future__ import annotations

import re
import string
from datetime import timedelta
from pathlib import Path

import pytest

from playbooks.loader import (
    BUNDLED,
    POSTMORTEM_PLACEHOLDERS,
    PlaybookError,
    load_playbooks,
)
from playbooks.schema import BriefTemplate

EXPECTED_LADDERS = {
    "P0-P3": ("P0", "P1", "P2", "P3"),
    "P1-P3": ("P1", "P2", "P3"),
    "SEV0-SEV3": ("SEV0", "SEV1", "SEV2", "SEV3"),
    "S1-S4": ("S1", "S2", "S3", "S4"),
}
EXPECTED_DEFAULTS = {"P0-P3": "P2", "P1-P3": "P2", "SEV0-SEV3": "SEV2", "S1-S4": "S3"}

REQUIRED_SCENARIOS = {
    "provider-outage",
    "database-unavailable",
    "third-party-rate-limit",
    "webhook-signature-failures",
    "secret-leak",
    "approval-queue-stuck",
    "payment-callbacks",
    "duplicate-ledger-entries",
    "stuck-state",
    "timers-not-firing",
    "container-unhealthy",
    "permission-denied",
    "tool-contradictions",
    "personal-data-breach",
    "elevated-5xx",
    "bad-deploy-rollback",
}

# Product names from the reference runbooks that must not leak into the shipped data.
PRODUCT_NAMES = ("ratiba", "daraja", "hubspot", "sartiq", "sdaia", "pdpl", "dealix", "livekit", "docusaurus")

MINUTES = timedelta(minutes=1)


@pytest.fixture(scope="module")
def bundled():
    return load_playbooks()


# --- severity ladders -------------------------------------------------------------------------


def test_every_expected_ladder_is_bundled_with_levels_in_order(bundled):
    assert set(bundled.ladders) == set(EXPECTED_LADDERS)
    for name, levels in EXPECTED_LADDERS.items():
        assert bundled.ladder(name).level_names == levels


def test_ladder_file_names_match_ladder_names():
    stems = {path.stem for path in (BUNDLED / "severities").glob("*.yaml")}
    assert stems == set(EXPECTED_LADDERS)


def test_default_levels(bundled):
    for name, default in EXPECTED_DEFAULTS.items():
        assert bundled.ladder(name).default == default


@pytest.mark.parametrize("name", sorted(EXPECTED_LADDERS))
def test_urgent_levels_have_15_to_30_minute_cadence_and_lowest_has_none(bundled, name):
    ladder = bundled.ladder(name)
    urgent = ladder.levels[:2]
    for level in urgent:
        assert level.update_cadence is not None, level.name
        assert 15 * MINUTES <= level.update_cadence <= 30 * MINUTES, level.name
    assert ladder.levels[0].update_cadence == 15 * MINUTES
    assert ladder.levels[-1].update_cadence is None
    assert ladder.levels[-1].postmortem_due is None


@pytest.mark.parametrize("name", sorted(EXPECTED_LADDERS))
def test_every_level_is_filled_in(bundled, name):
    ladder = bundled.ladder(name)
    for level in ladder.levels:
        assert level.label and level.definition
        assert 2 <= len(level.examples) <= 3, level.name
        assert level.response_target is not None, level.name
        assert level.first_minutes, level.name
        assert level.triage, level.name
        for item in level.first_minutes + level.triage:
            assert len(item) < 120, item
    # urgent levels get the full checklist, lower levels a shorter one
    assert len(ladder.levels[0].first_minutes) >= 5
    assert len(ladder.levels[0].triage) >= 5
    assert len(ladder.levels[-1].first_minutes) < len(ladder.levels[0].first_minutes)
    # targets get looser as severity drops
    responses = [level.response_target for level in ladder.levels]
    assert responses == sorted(responses)


@pytest.mark.parametrize("name", sorted(EXPECTED_LADDERS))
def test_every_ladder_has_its_own_escalation_list(bundled, name):
    escalation = bundled.ladder(name).escalation
    assert 3 <= len(escalation) <= 4
    for level in escalation:
        assert level.name and level.who and level.when


def test_p1_p3_targets_match_the_runbook(bundled):
    p1, p2, p3 = bundled.ladder("P1-P3").levels
    assert (p1.response_target, p1.resolution_target) == (timedelta(minutes=15), timedelta(hours=2))
    assert (p2.response_target, p2.resolution_target) == (timedelta(hours=1), timedelta(hours=8))
    assert (p3.response_target, p3.resolution_target) == (timedelta(days=1), timedelta(hours=48))
    assert p3.targets_note == "next business day"
    assert p1.postmortem_due == timedelta(hours=48)
    assert p2.postmortem_due == timedelta(weeks=1)
    assert p3.postmortem_due is None


def test_other_ladder_top_targets_match_the_runbooks(bundled):
    assert bundled.ladder("P0-P3").level("P0").response_target == timedelta(minutes=15)
    assert bundled.ladder("P0-P3").level("P1").update_cadence == timedelta(minutes=30)
    sev = bundled.ladder("SEV0-SEV3")
    assert [level.response_target for level in sev.levels[:3]] == [
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=4),
    ]
    s = bundled.ladder("S1-S4")
    assert [level.response_target for level in s.levels[:2]] == [timedelta(minutes=30), timedelta(hours=2)]


# --- scenarios --------------------------------------------------------------------------------


def test_required_scenarios_exist(bundled):
    assert len(bundled.scenarios) >= 14
    assert REQUIRED_SCENARIOS <= set(bundled.scenarios)


def test_scenario_file_names_match_scenario_names(bundled):
    stems = {path.stem for path in (BUNDLED / "scenarios").glob("*.yaml")}
    assert stems == set(bundled.scenarios)


def test_every_scenario_is_filled_in(bundled):
    for scenario in bundled.scenarios.values():
        assert scenario.title
        assert scenario.symptoms, scenario.name
        assert scenario.keywords, scenario.name
        assert scenario.diagnosis, scenario.name
        assert len(scenario.steps) >= 2, scenario.name
        assert scenario.prevention, scenario.name
        assert all(keyword == keyword.lower() for keyword in scenario.keywords)
        assert len(set(scenario.keywords)) == len(scenario.keywords), scenario.name


def test_no_product_names_from_the_reference_runbooks():
    for path in BUNDLED.rglob("*"):
        if path.suffix in {".yaml", ".md"}:
            text = path.read_text(encoding="utf-8").lower()
            for product in PRODUCT_NAMES:
                assert product not in text, f"{path} mentions {product}"


def _score(text: str, keywords: tuple[str, ...]) -> int:
    lowered = text.lower()
    return sum(1 for keyword in keywords if re.search(rf"(?<![\w-]){re.escape(keyword)}(?![\w-])", lowered))


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Payments callbacks not arriving", "payment-callbacks"),
        ("Postgres primary unreachable", "database-unavailable"),
        ("API key leaked on GitHub", "secret-leak"),
        ("WhatsApp webhook rejecting messages: invalid signature", "webhook-signature-failures"),
        ("CRM sync failing with 429 too many requests", "third-party-rate-limit"),
        ("Same idempotency key created duplicate ledger entries", "duplicate-ledger-entries"),
        ("Backend container unhealthy, restarting in a crash loop", "container-unhealthy"),
        ("Admin cannot resolve disputes: permission denied", "permission-denied"),
        ("LLM provider outage, fallbacks not triggering", "provider-outage"),
        ("Customer personal data exposed - possible data breach", "personal-data-breach"),
        ("Customers charged twice: duplicate ledger entries", "duplicate-ledger-entries"),
        ("Dispute timer not visible and not firing", "timers-not-firing"),
    ],
)
def test_keywords_pick_the_right_scenario(bundled, title, expected):
    scores = {name: _score(title, scenario.keywords) for name, scenario in bundled.scenarios.items()}
    best = max(scores.values())
    assert scores[expected] == best > 0, scores
    assert [name for name, score in scores.items() if score == best] == [expected], scores


# --- briefs -----------------------------------------------------------------------------------


def test_briefs_exist_for_each_kind(bundled):
    assert {brief.kind for brief in bundled.briefs.values()} == {"investigating", "update", "resolved", "operator"}
    assert bundled.briefs["investigating"].whatsapp_template == "incident_investigating"
    assert bundled.briefs["investigating"].parameters == ("area", "eta_minutes")
    assert bundled.briefs["update"].parameters == ("area", "update", "eta_minutes")
    assert bundled.briefs["resolved"].parameters == ("area",)


def test_brief_placeholders_equal_parameters(bundled):
    for brief in bundled.briefs.values():
        placeholders = {field for _, field, _, _ in string.Formatter().parse(brief.text) if field}
        assert placeholders == set(brief.parameters), brief.name
        filled = brief.text.format(**{name: f"<{name}>" for name in brief.parameters})
        assert "{" not in filled


def test_brief_with_unknown_placeholder_is_rejected():
    with pytest.raises(ValueError, match=r"\{eta\}.*parameters are: area"):
        BriefTemplate(name="x", kind="update", whatsapp_template="x", parameters=("area",), text="{area} in {eta}")


def test_brief_with_unused_parameter_is_rejected():
    with pytest.raises(ValueError, match="never used in text: eta_minutes"):
        BriefTemplate(
            name="x", kind="update", whatsapp_template="x", parameters=("area", "eta_minutes"), text="About {area}."
        )


def test_brief_with_unbalanced_brace_is_rejected():
    with pytest.raises(ValueError, match="literal braces"):
        BriefTemplate(name="x", kind="update", whatsapp_template="x", parameters=("area",), text="{area} {oops")


# --- post-mortem templates --------------------------------------------------------------------


SAMPLE = {
    "key": "INC-7",
    "title": "Payments callbacks not arriving",
    "date": "2026-11-24",
    "severity": "P1",
    "severity_label": "Critical",
    "status": "resolved",
    "duration": "09:52 EAT → 11:40 EAT (108 minutes)",
    "started": "09:52 EAT",
    "ended": "11:40 EAT",
    "time_to_acknowledge": "4 minutes (target 15 minutes, met)",
    "time_to_resolve": "1 h 48 min (target 2 h, met)",
    "peak_severity": "P1",
    "peak_severity_label": "Critical",
    "severity_changes": "none",
    "customer_briefs": "_no customer briefs sent_",
    "impact": "Customers charged without confirmation",
    "reporter": "alice",
    "roles": "incident commander: alice; scribe: bob",
    "timeline": "- 09:52 EAT — alice: declared",
    "root_cause": "_to be written_",
    "contributing": "_to be written_",
    "went_well": "_to be written_",
    "resolution": "Callback URL fixed",
    "actions": "_none yet_",
    "summary": "Callbacks were not delivered.",
    "timezone": "EAT",
}


def test_sample_covers_every_placeholder():
    assert set(SAMPLE) == POSTMORTEM_PLACEHOLDERS


@pytest.mark.parametrize("name", ["blameless", "incident-log"])
def test_postmortem_templates_load_and_fill(bundled, name):
    filled = bundled.postmortem_template(name).substitute(SAMPLE)
    assert "$" not in filled
    assert "INC-7" in filled and "09:52 EAT → 11:40 EAT (108 minutes)" in filled


def test_blameless_template_follows_the_postmortem_form(bundled):
    text = bundled.postmortem_templates["blameless"]
    assert text.splitlines()[0] == "# $key post-mortem"
    assert "## Incident: $title — $date" in text
    headings = ["### Timeline", "### Root cause", "### Contributing factors", "### What we did right",
                "### Action items"]
    positions = [text.index(heading) for heading in headings]
    assert positions == sorted(positions)
    assert "blameless" in text.lower()


def test_incident_log_template_has_every_field(bundled):
    text = bundled.postmortem_templates["incident-log"]
    for label in ("Date", "Severity", "Reported by", "Resolved by", "Resolution time", "Description", "Impact",
                  "Root cause", "Resolution", "Prevention", "Lessons learned"):
        assert f"**{label}:**" in text, label
    assert "**Resolved by:** $roles" in text
    assert "**Resolution time:** $duration" in text
    assert "$actions" in text.split("**Prevention:**")[1].split("**Lessons learned:**")[0]
    assert "$went_well" in text.split("**Lessons learned:**")[1]


# --- broken user data -------------------------------------------------------------------------


GOOD_LADDER = """\
name: Custom
description: A custom ladder
default: {default}
levels:
  - name: A
    label: Bad
    definition: Very bad
    response_target: {response}
  - name: B
    label: Meh
    definition: Not so bad
escalation:
  - name: One
    who: Someone
    when: Always
"""


def _write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_user_folder_overlays_the_bundled_one(tmp_path):
    _write(tmp_path, "severities/custom.yaml", GOOD_LADDER.format(default="B", response="15m"))
    playbooks = load_playbooks(tmp_path)
    assert playbooks.ladder("Custom").level_names == ("A", "B")
    assert set(EXPECTED_LADDERS) <= set(playbooks.ladders)


def test_unknown_default_names_file_field_and_allowed_levels(tmp_path):
    path = _write(tmp_path, "severities/custom.yaml", GOOD_LADDER.format(default="Z", response="15m"))
    with pytest.raises(PlaybookError) as info:
        load_playbooks(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "default" in message
    assert "A, B" in message


def test_bad_duration_names_field_and_format(tmp_path):
    path = _write(tmp_path, "severities/custom.yaml", GOOD_LADDER.format(default="A", response='"15 minutes"'))
    with pytest.raises(PlaybookError) as info:
        load_playbooks(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "response_target" in message
    assert "15m, 2h" in message


def test_extra_field_is_named(tmp_path):
    text = GOOD_LADDER.format(default="A", response="15m") + "colour: red\n"
    _write(tmp_path, "severities/custom.yaml", text)
    with pytest.raises(PlaybookError, match="colour"):
        load_playbooks(tmp_path)


def test_invalid_yaml_names_the_file(tmp_path):
    path = _write(tmp_path, "scenarios/broken.yaml", "name: broken\nsteps: [unclosed\n")
    with pytest.raises(PlaybookError) as info:
        load_playbooks(tmp_path)
    assert str(path) in str(info.value)
    assert "YAML" in str(info.value)


def test_unknown_postmortem_placeholder_lists_allowed(tmp_path):
    path = _write(tmp_path, "postmortem/custom.md", "# $key\n\n$nonsense\n")
    with pytest.raises(PlaybookError) as info:
        load_playbooks(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "$nonsense" in message
    for name in POSTMORTEM_PLACEHOLDERS:
        assert f"${name}" in message


def test_bad_brief_in_user_folder_names_file_and_parameters(tmp_path):
    path = _write(
        tmp_path,
        "briefs/custom.yaml",
        "name: custom\nkind: update\nwhatsapp_template: custom\nparameters: [area]\ntext: '{area} back in {eta}'\n",
    )
    with pytest.raises(PlaybookError) as info:
        load_playbooks(tmp_path)
    assert str(path) in str(info.value)
    assert "{eta}" in str(info.value)


def test_missing_folder_is_a_clear_error(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(PlaybookError) as info:
        load_playbooks(missing)
    assert str(missing) in str(info.value)
    assert "does not exist" in str(info.value)
