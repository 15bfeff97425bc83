"""Load and validate playbook data from a folder; errors name the file, the field and what is allowed.

Layout of a playbook folder (every part optional in a user's folder, which overlays the bundled one by name):

    severities/<ladder>.yaml     one severity ladder per file
    scenarios/<name>.yaml        one scenario playbook per file
    briefs/<name>.yaml           one customer brief template per file
    postmortem/<name>.md         post-mortem templates ($placeholders, see POSTMORTEM_PLACEHOLDERS)
    alerts/<name>.yaml           ordered alert rules: label matchers → level and action (WARROOM_ALERT_RULES)
    oncall/<name>.yaml           on-call roles, escalation policies per severity, who-to-page rules (WARROOM_ONCALL)
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from playbooks.schema import AlertRules, BriefTemplate, Ladder, OnCallPlan, Scenario

BUNDLED = Path(__file__).resolve().parent

POSTMORTEM_PLACEHOLDERS = frozenset(
    {
        "key", "title", "date", "severity", "severity_label", "status", "duration", "started", "ended",
        "time_to_acknowledge", "impact", "reporter", "roles", "timeline", "root_cause", "contributing",
        "went_well", "resolution", "actions", "summary", "timezone", "time_to_resolve", "peak_severity",
        "peak_severity_label", "severity_changes", "customer_briefs",
    }
)

_Model = TypeVar("_Model", bound=BaseModel)


class PlaybookError(ValueError):
    """A playbook file is invalid; the message names the file, the field and what is allowed."""


@dataclass(frozen=True)
class Playbooks:
    ladders: dict[str, Ladder]
    scenarios: dict[str, Scenario]
    briefs: dict[str, BriefTemplate] = field(default_factory=dict)
    postmortem_templates: dict[str, str] = field(default_factory=dict)
    alert_rules: dict[str, AlertRules] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)  # "alerts/<name>" → the file it came from
    oncall: dict[str, OnCallPlan] = field(default_factory=dict)

    def oncall_plan(self, name: str) -> OnCallPlan:
        try:
            return self.oncall[name]
        except KeyError:
            raise PlaybookError(
                f"Unknown on-call plan {name!r}; available: {', '.join(sorted(self.oncall)) or 'none'}"
            ) from None

    def ladder(self, name: str) -> Ladder:
        try:
            return self.ladders[name]
        except KeyError:
            raise PlaybookError(
                f"Unknown severity ladder {name!r}; available: {', '.join(sorted(self.ladders))}"
            ) from None

    def postmortem_template(self, name: str) -> string.Template:
        try:
            return string.Template(self.postmortem_templates[name])
        except KeyError:
            raise PlaybookError(
                f"Unknown post-mortem template {name!r}; available: {', '.join(sorted(self.postmortem_templates))}"
            ) from None

    def alert_rules_for(self, name: str, ladder: Ladder) -> AlertRules:
        """The alert rules named `name`, checked against the configured ladder: every rule's level must exist."""
        try:
            rules = self.alert_rules[name]
        except KeyError:
            raise PlaybookError(
                f"Unknown alert rules {name!r}; available: {', '.join(sorted(self.alert_rules)) or 'none'}"
            ) from None
        try:
            rules.check_ladder(ladder)
        except ValueError as exc:
            where = self.sources.get(f"alerts/{name}", Path(f"alerts/{name}.yaml"))
            raise PlaybookError(f"{where}: {exc}") from None
        return rules


def _describe(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        where = ".".join(str(piece) for piece in problem["loc"]) or "(top level)"
        parts.append(f"field '{where}': {problem['msg']}")
    return "; ".join(parts)


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml_model(path: Path, model: type[_Model]) -> _Model:
    try:
        # libyaml's C parser when PyYAML has it: the bundled playbooks parse ~10× faster at every start-up.
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PlaybookError(f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PlaybookError(f"{path}: {_describe(exc)}") from None


def _load_template(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    names: set[str] = set()
    for match in string.Template.pattern.finditer(text):
        if match.group("invalid") is not None:
            raise PlaybookError(f"{path}: a '$' not followed by a placeholder name (write $$ for a literal dollar)")
        name = match.group("named") or match.group("braced")
        if name:
            names.add(name)
    unknown = sorted(names - POSTMORTEM_PLACEHOLDERS)
    if unknown:
        raise PlaybookError(
            f"{path}: unknown placeholder(s) {', '.join('$' + n for n in unknown)}; "
            f"allowed: {', '.join('$' + n for n in sorted(POSTMORTEM_PLACEHOLDERS))}"
        )
    return text


def _load_folder(root: Path, into: Playbooks) -> None:
    for path in sorted((root / "severities").glob("*.yaml")):
        ladder = _load_yaml_model(path, Ladder)
        into.ladders[ladder.name] = ladder
    for path in sorted((root / "scenarios").glob("*.yaml")):
        scenario = _load_yaml_model(path, Scenario)
        into.scenarios[scenario.name] = scenario
    for path in sorted((root / "briefs").glob("*.yaml")):
        brief = _load_yaml_model(path, BriefTemplate)
        into.briefs[brief.name] = brief
    for path in sorted((root / "postmortem").glob("*.md")):
        into.postmortem_templates[path.stem] = _load_template(path)
    for path in sorted((root / "alerts").glob("*.yaml")):
        rules = _load_yaml_model(path, AlertRules)
        into.alert_rules[rules.name] = rules
        into.sources[f"alerts/{rules.name}"] = path
    for path in sorted((root / "oncall").glob("*.yaml")):
        plan = _load_yaml_model(path, OnCallPlan)
        into.oncall[plan.name] = plan
        into.sources[f"oncall/{plan.name}"] = path


def _check_oncall(playbooks: Playbooks) -> None:
    """Policies and rules name levels of the plan's ladder: the ladder must exist and have them."""
    for name, plan in playbooks.oncall.items():
        where = playbooks.sources.get(f"oncall/{name}", Path(f"oncall/{name}.yaml"))
        ladder = playbooks.ladders.get(plan.ladder)
        if ladder is None:
            raise PlaybookError(f"{where}: field 'ladder': unknown severity ladder {plan.ladder!r}; available: "
                                f"{', '.join(sorted(playbooks.ladders))}")
        try:
            plan.check_ladder(ladder)
        except ValueError as exc:
            raise PlaybookError(f"{where}: {exc}") from None


def load_playbooks(extra: Path | None = None) -> Playbooks:
    """The bundled playbooks, overlaid by the files in `extra` (same name replaces), all validated."""
    playbooks = Playbooks(ladders={}, scenarios={}, briefs={}, postmortem_templates={}, alert_rules={}, sources={},
                          oncall={})
    _load_folder(BUNDLED, playbooks)
    if extra is not None:
        if not extra.is_dir():
            raise PlaybookError(f"{extra}: playbook folder does not exist or is not a folder")
        _load_folder(extra, playbooks)
    _check_oncall(playbooks)
    return playbooks
