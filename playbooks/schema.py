"""The shape of playbook data: severity ladders, scenario playbooks, post-mortem templates.

Everything a team tunes about its process lives in YAML validated by these models, so a typo in a
runbook fails at start-up with the file, the field and what is allowed, not at 3 a.m. mid-incident.
"""

from __future__ import annotations

import re
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
    targets_note: str | None = Field(default=None, description="how the targets read to people, e.g. 'next business day'")
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
    def _levels_are_consistent(self) -> "Ladder":
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
    kind: Literal["investigating", "update", "resolved"]
    language: Annotated[str, Field(pattern=r"^[a-z]{2}(_[A-Z]{2})?$")] = "en"
    whatsapp_template: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,512}$")]
    parameters: tuple[Annotated[str, Field(pattern=r"^[a-z_]+$")], ...] = ()
    text: NonEmptyText

    @model_validator(mode="after")
    def _placeholders_match_parameters(self) -> "BriefTemplate":
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
