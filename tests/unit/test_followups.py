"""The values of the code host follow-ups: every drafted scenario playbook passes the playbook schema (property
test over arbitrary incidents and timelines), paths and branches are deterministic, and a draft is proposed
exactly when the failure mode looks new."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.followups.values import (
    FollowupConfig,
    branch_name,
    draft_scenario,
    needs_draft,
    postmortem_request,
    scenario_yaml,
)
from bot.incident.domain import EventKind, Incident, TimelineEvent
from playbooks.loader import load_playbooks
from playbooks.schema import Scenario

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=3000)
KINDS = st.sampled_from([EventKind.STATUS_UPDATE, EventKind.ROOT_CAUSE, EventKind.ALERT, EventKind.NOTE,
                         EventKind.MESSAGE, EventKind.PLAYBOOK_POSTED])


def incident(title: str = "Thumbnails render blank", **values: object) -> Incident:
    made = Incident.declare(number=7, title=title, severity="P2", impact=None, reporter="alice", now=T0,
                            checklist=[], suggested_playbook=None)
    for key, value in values.items():
        setattr(made, key, value)
    return made


@st.composite
def incidents(draw: st.DrawFn) -> tuple[Incident, list[TimelineEvent]]:
    made = incident(draw(TEXT), impact=draw(st.none() | TEXT), summary=draw(st.none() | TEXT))
    for number, text in enumerate(draw(st.lists(TEXT, max_size=20)), start=1):
        made.add_action(by="alice", text=text, owner=None, due=date(2026, 12, 1), now=T0)
        assert made.actions[-1].number == number
    timeline = [TimelineEvent(kind=draw(KINDS), author="bob", text=text, occurred_at=T0, recorded_at=T0,
                              pinned=draw(st.booleans()), deleted=draw(st.booleans()))
                for text in draw(st.lists(TEXT, max_size=30))]
    return made, timeline


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(incidents())
def test_every_drafted_playbook_passes_the_schema(case: tuple[Incident, list[TimelineEvent]]) -> None:
    made, timeline = case
    draft = draft_scenario(made, timeline)
    text = scenario_yaml(draft, made)
    assert text.startswith("# DRAFT")
    assert Scenario.model_validate(yaml.safe_load(text)) == draft  # what is written reads back the same


def test_a_drafted_playbook_loads_with_the_bundled_ones(tmp_path: Path) -> None:
    made = incident(impact="grey boxes on listing pages")
    draft = draft_scenario(made, [])
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / f"{draft.name}.yaml").write_text(scenario_yaml(draft, made), encoding="utf-8")
    assert load_playbooks(tmp_path).scenarios[draft.name].title == "DRAFT from INC-7: Thumbnails render blank"


def test_a_draft_only_for_a_new_failure_mode() -> None:
    quick = incident(suggested_playbook="elevated-5xx", mitigated_at=T0 + timedelta(minutes=5))
    slow = incident(suggested_playbook="elevated-5xx", mitigated_at=T0 + timedelta(minutes=45))
    unmatched = incident(mitigated_at=T0 + timedelta(minutes=5))
    after = timedelta(minutes=10)
    assert not needs_draft(quick, [], after=after, now=T0 + timedelta(hours=2))
    assert needs_draft(slow, [], after=after, now=T0 + timedelta(hours=2))
    assert needs_draft(unmatched, [], after=after, now=T0 + timedelta(hours=2))
    posted = TimelineEvent(kind=EventKind.PLAYBOOK_POSTED, author="bob", text="playbook posted: stuck-state",
                           occurred_at=T0, recorded_at=T0)
    assert not needs_draft(unmatched, [posted], after=after, now=T0 + timedelta(hours=2))


def test_the_request_is_deterministic_and_uses_the_configured_paths() -> None:
    made = incident()
    config = FollowupConfig(repository="acme/runbooks", postmortem_path="pm/{number}-{date}-{slug}.md",
                            playbook_dir="runbook/scenarios")
    first = postmortem_request(incident=made, timeline=[], document="# pm", config=config, tz=UTC, now=T0)
    again = postmortem_request(incident=made, timeline=[], document="# pm", config=config, tz=UTC, now=T0)
    assert first == again
    assert first.change.branch == branch_name(made) == "incident/inc-7-thumbnails-render-blank"
    assert [f.path for f in first.change.files] == ["pm/7-2026-11-24-thumbnails-render-blank.md",
                                                    "runbook/scenarios/thumbnails-render-blank.yaml"]
