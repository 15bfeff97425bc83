"""The shape of playbook data: severity ladders, scenario playbooks, post-mortem templates.

Everything a team tunes about its process lives in YAML validated by these models, so a typo in a
runbook fails at start-up with the file, the field and what is allowed, not at 3 a.m. mid-incident.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

_DURATION = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_MINUTES = {"m": 1, "min": 1, "h": 60, "d": 1440, "w": 10080}


def parse_duration(value: object) -> timedelta | None:
    """'15m', '2h', '1d', '1w' → timedelta; None/'none' → None (no target)."""
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        if value.strip().lower() in {"none", "null", ""}:
            return None
        match = _DURATION.match(value)
        if match:
            return timedelta(minutes=int(match.group(1)) * _UNIT_MINUTES[match.group(2).lower()])
    raise ValueError(f"expected a duration like 15m, 2h, 1d or 1w (or none), got {value!r}")


Duration = Annotated[timedelta | None, BeforeValidator(parse_duration)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)]
NonEmptyText = Annotated[str, Field(min_length=1, max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeverityLevel(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,8}$")]
    label: NonEmptyText
    definition: NonEmptyText
    examples: tuple[NonEmptyText, ...] = ()
    response_target: Duration = None
    resolution_target: Duration = None
    targets_note: str | None = Field(default=None,
                                     description="how the targets read to people, e.g. 'next business day'")
    update_cadence: Duration = None
    postmortem_due: Duration = None
    first_minutes: tuple[NonEmptyText, ...] = ()
    triage: tuple[NonEmptyText, ...] = ()

    @field_validator("update_cadence")
    @classmethod
    def _cadence_is_sane(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(minutes=5):
            raise ValueError("update_cadence must be at least 5m (or none)")
        return value


class EscalationLevel(_Strict):
    name: NonEmptyText
    who: NonEmptyText
    when: NonEmptyText


class Ladder(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,20}$")]
    description: NonEmptyText
    source: str | None = None
    default: str
    levels: tuple[SeverityLevel, ...] = Field(min_length=2)
    escalation: tuple[EscalationLevel, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _levels_are_consistent(self) -> Ladder:
        names = [level.name.upper() for level in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"level names must be unique, got {', '.join(names)}")
        if self.default.upper() not in names:
            raise ValueError(f"default {self.default!r} is not one of the levels: {', '.join(names)}")
        return self

    def level(self, name: str) -> SeverityLevel | None:
        wanted = name.strip().upper()
        return next((level for level in self.levels if level.name.upper() == wanted), None)

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.levels)


class Scenario(_Strict):
    name: Slug
    title: NonEmptyText
    symptoms: tuple[NonEmptyText, ...] = Field(min_length=1)
    keywords: tuple[Annotated[str, Field(min_length=2, max_length=40)], ...] = Field(min_length=1)
    diagnosis: tuple[NonEmptyText, ...] = ()
    steps: tuple[NonEmptyText, ...] = Field(min_length=1)
    prevention: tuple[NonEmptyText, ...] = ()

    @field_validator("keywords")
    @classmethod
    def _lowercase_keywords(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(keyword.lower() for keyword in value)


class BriefTemplate(_Strict):
    name: Slug
    kind: Literal["investigating", "update", "resolved", "operator"]
    language: Annotated[str, Field(pattern=r"^[a-z]{2}(_[A-Z]{2})?$")] = "en"
    whatsapp_template: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,512}$")]
    parameters: tuple[Annotated[str, Field(pattern=r"^[a-z_]+$")], ...] = ()
    text: NonEmptyText

    @model_validator(mode="after")
    def _placeholders_match_parameters(self) -> BriefTemplate:
        import string

        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(self.text) if field is not None]
        except ValueError as exc:
            raise ValueError(f"text is not a valid template ({exc}); write {{{{ and }}}} for literal braces") from None
        if len(set(self.parameters)) != len(self.parameters):
            raise ValueError(f"parameters must be unique, got {', '.join(self.parameters)}")
        bad = sorted({field for field in fields if not re.fullmatch(r"[a-z_]+", field)})
        if bad:
            raise ValueError(
                f"text placeholders must be plain names like {{area}}, got {', '.join('{' + b + '}' for b in bad)}"
            )
        used, declared = set(fields), set(self.parameters)
        if used != declared:
            problems = []
            if used - declared:
                problems.append(f"not in parameters: {', '.join('{' + n + '}' for n in sorted(used - declared))}")
            if declared - used:
                problems.append(f"parameters never used in text: {', '.join(sorted(declared - used))}")
            raise ValueError(
                f"text placeholders must match parameters ({'; '.join(problems)}); "
                f"parameters are: {', '.join(self.parameters) or '(none)'}"
            )
        return self


# -- alert rules ---------------------------------------------------------------------------------------

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LEVEL_NAME = re.compile(r"^[A-Za-z0-9]{1,8}$")
_LADDER_KEY = re.compile(r"^(\*|[A-Za-z0-9-]{1,20})$")

LevelRef = int | str  # a rank (1 = the ladder's most severe level) or a level name


@dataclass(frozen=True)
class LabelMatcher:
    """One label condition: `value` (equal), `~regex` (full match), `!value` (not equal), `!~regex` (no match).
    A missing label counts as the empty string, as in Alertmanager."""

    label: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    @classmethod
    def parse(cls, label: str, spec: str) -> LabelMatcher:
        op: Literal["=", "!=", "=~", "!~"] = "="
        if spec.startswith("!~"):
            op, spec = "!~", spec[2:]
        elif spec.startswith("~"):
            op, spec = "=~", spec[1:]
        elif spec.startswith("!"):
            op, spec = "!=", spec[1:]
        if op in ("=~", "!~"):
            spec = spec.strip()
            if len(spec) >= 2 and spec[0] == spec[-1] and spec[0] in "\"'":
                spec = spec[1:-1]  # ~"Postgres.*" reads like PromQL
            try:
                re.compile(spec)
            except re.error as exc:
                raise ValueError(f"label {label!r}: {spec!r} is not a valid regular expression ({exc})") from None
        return cls(label=label, op=op, value=spec)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


def _level_ref(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("level must be a rank (1 = most severe), a level name, or a map of ladder → level")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"level rank must be 1 or more (1 = the ladder's most severe level), got {value}")
        return value
    if isinstance(value, str):
        if not _LEVEL_NAME.match(value.strip()):
            raise ValueError(f"level {value!r} is not a level name (letters and digits, e.g. P1) or a rank like 1")
        return value.strip()
    raise ValueError("level must be a rank (1 = most severe), a level name, or a map of ladder → level")


class AlertRule(_Strict):
    """Alerts whose labels match every matcher get this rule's level and action (the first matching rule wins)."""

    name: Slug
    match: dict[str, str] = Field(default_factory=dict)
    level: LevelRef | dict[str, LevelRef] | None = None
    action: Literal["declare", "propose", "ignore"] = "declare"
    auto_resolve: bool = False
    title: Annotated[str, Field(min_length=1, max_length=300)] | None = None

    @field_validator("match", mode="before")
    @classmethod
    def _match_is_a_mapping(cls, value: object) -> object:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("match must be a mapping of label: value (value, ~regex, !value or !~regex)")
        out = {}
        for label, spec in value.items():
            if not isinstance(label, str) or not _LABEL_NAME.match(label):
                raise ValueError(f"label name {label!r} is not valid (letters, digits, _; not starting with a digit)")
            if isinstance(spec, bool) or spec is None or not isinstance(spec, (str, int, float)):
                raise ValueError(f"label {label!r}: expected a string (value, ~regex, !value or !~regex), got {spec!r}")
            out[label] = str(spec)
        return out

    @field_validator("level", mode="before")
    @classmethod
    def _level_shape(cls, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, dict):
            if not value:
                raise ValueError("a level map needs at least one entry, e.g. {P0-P3: P1, '*': 1}")
            for ladder in value:
                if not isinstance(ladder, str) or not _LADDER_KEY.match(ladder):
                    raise ValueError(f"level map keys are ladder names or '*', got {ladder!r}")
            return {ladder: _level_ref(ref) for ladder, ref in value.items()}
        return _level_ref(value)

    @model_validator(mode="after")
    def _consistent(self) -> AlertRule:
        for label, spec in self.match.items():
            LabelMatcher.parse(label, spec)  # regexes compile
        if self.action != "ignore" and self.level is None:
            raise ValueError(f"rule {self.name!r}: level is required for action {self.action} "
                             "(a rank like 1 = most severe, a level name like P1, or a map of ladder → level)")
        if self.title is not None:
            import string

            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(self.title) if f is not None]
            except ValueError as exc:
                raise ValueError(f"title is not a valid template ({exc}); "
                                 "write {{ and }} for literal braces") from None
            bad = sorted({f for f in fields if not _LABEL_NAME.match(f)})
            if bad:
                raise ValueError(f"title placeholders must be label or annotation names like {{alertname}}, "
                                 f"got {', '.join('{' + b + '}' for b in bad)}")
        return self

    @property
    def matchers(self) -> tuple[LabelMatcher, ...]:
        return tuple(LabelMatcher.parse(label, spec) for label, spec in self.match.items())

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.matchers)

    def level_for(self, ladder: Ladder) -> SeverityLevel | None:
        """This rule's level in `ladder`; raises ValueError saying what the ladder allows."""
        ref = self.level
        if ref is None:
            return None
        if isinstance(ref, dict):
            if ladder.name in ref:
                ref = ref[ladder.name]
            elif "*" in ref:
                ref = ref["*"]
            else:
                raise ValueError(f"no level for ladder {ladder.name} (the map has {', '.join(ref)}); "
                                 f"add '{ladder.name}: <level>' or '\"*\": <rank>'")
        ranks = ", ".join(f"{rank}={level.name}" for rank, level in enumerate(ladder.levels, start=1))
        if isinstance(ref, int):
            if ref > len(ladder.levels):
                raise ValueError(f"level rank {ref} does not exist in ladder {ladder.name} "
                                 f"({len(ladder.levels)} levels: {ranks})")
            return ladder.levels[ref - 1]
        level = ladder.level(ref)
        if level is None:
            raise ValueError(f"level {ref!r} is not in ladder {ladder.name}; allowed: "
                             f"{', '.join(ladder.level_names)} or a rank ({ranks})")
        return level


class AlertRules(_Strict):
    """An ordered list of alert rules (playbooks/alerts/<name>.yaml); WARROOM_ALERT_RULES picks one by name."""

    name: Slug
    description: NonEmptyText
    rules: tuple[AlertRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> AlertRules:
        names = [rule.name for rule in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique, repeated: {', '.join(duplicates)}")
        return self

    def first_match(self, labels: Mapping[str, str]) -> AlertRule | None:
        return next((rule for rule in self.rules if rule.matches(labels)), None)

    def check_ladder(self, ladder: Ladder) -> None:
        """Raise ValueError naming the rule's field when a level does not exist in `ladder`."""
        for index, rule in enumerate(self.rules):
            try:
                rule.level_for(ladder)
            except ValueError as exc:
                raise ValueError(f"field 'rules.{index}.level' (rule {rule.name!r}): {exc}") from None


# -- on-call structure (playbooks/oncall/<name>.yaml): roles, escalation policies, who-to-page rules ----------


class OnCallRole(_Strict):
    name: Slug
    description: NonEmptyText | None = None


class BusinessHours(_Strict):
    """When a level may page: `days` from `start` to `end`, wall-clock in `timezone`."""

    timezone: NonEmptyText
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = ("mon", "tue", "wed", "thu", "fri")
    start: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "09:00"
    end: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-4]):[0-5][0-9]$")] = "17:00"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as Africa/Nairobi") from None
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> BusinessHours:
        if self.start >= self.end:
            raise ValueError(f"business hours start {self.start} must be before end {self.end}")
        return self


class PolicyLevel(_Strict):
    """One rung of an escalation policy: page `roles`, repeat every `repeat` until acknowledged, climb to the
    next level after `timeout`."""

    roles: tuple[Slug, ...] = Field(min_length=1)
    timeout: Duration = None
    repeat: Duration = None
    business_hours: BusinessHours | None = None

    @field_validator("repeat", "timeout")
    @classmethod
    def _at_least_a_minute(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(minutes=1):
            raise ValueError("must be at least 1m (or none)")
        return value


class EscalationPolicy(_Strict):
    severity: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,8}$")]
    levels: tuple[PolicyLevel, ...] = Field(min_length=1)


class PageRule(_Strict):
    """Extra roles to page on declare when an incident matches: its scenario playbook, an alert label, a
    severity. Every condition given must hold."""

    scenario: Slug | None = None
    severity: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,8}$")] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    page: tuple[Slug, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _has_a_condition(self) -> PageRule:
        if self.scenario is None and self.severity is None and not self.labels:
            raise ValueError("a rule needs a condition: scenario, severity or labels")
        return self


class OnCallPlan(_Strict):
    """Roles, escalation policies per severity and who-to-page rules. People and rotations are not here: they
    live in the database (`warroom oncall …`), because names and phones are never committed."""

    name: Slug
    description: NonEmptyText
    ladder: NonEmptyText  # the severity ladder the policies and rules name levels of
    roles: tuple[OnCallRole, ...] = Field(min_length=1)
    policies: tuple[EscalationPolicy, ...] = ()
    rules: tuple[PageRule, ...] = ()

    @model_validator(mode="after")
    def _roles_exist(self) -> OnCallPlan:
        names = [role.name for role in self.roles]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"role names must be unique, repeated: {', '.join(repeated)}")
        valid = ", ".join(names)
        for p, policy in enumerate(self.policies):
            for lv, level in enumerate(policy.levels):
                for role in level.roles:
                    if role not in names:
                        raise ValueError(f"policies.{p}.levels.{lv}.roles: unknown role {role!r}; roles: {valid}")
        for r, rule in enumerate(self.rules):
            for role in rule.page:
                if role not in names:
                    raise ValueError(f"rules.{r}.page: unknown role {role!r}; roles: {valid}")
        severities = [policy.severity for policy in self.policies]
        twice = sorted({s for s in severities if severities.count(s) > 1})
        if twice:
            raise ValueError(f"one policy per severity, repeated: {', '.join(twice)}")
        return self

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(role.name for role in self.roles)

    def check_ladder(self, ladder: Ladder) -> None:
        """Raise ValueError naming the field when a policy's or rule's severity is not in `ladder`."""
        for p, policy in enumerate(self.policies):
            if ladder.level(policy.severity) is None:
                raise ValueError(f"policies.{p}.severity: {policy.severity!r} is not in ladder {ladder.name}; "
                                 f"allowed: {', '.join(ladder.level_names)}")
        for r, rule in enumerate(self.rules):
            if rule.severity is not None and ladder.level(rule.severity) is None:
                raise ValueError(f"rules.{r}.severity: {rule.severity!r} is not in ladder {ladder.name}; "
                                 f"allowed: {', '.join(ladder.level_names)}")
