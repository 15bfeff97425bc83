"""Alerts from monitoring, as neutral values: parse Alertmanager and generic JSON payloads, match rules.

Pure functions, no I/O. `parse_alertmanager` and `parse_generic` turn a decoded JSON body into `AlertBatch`
values or raise `AlertPayloadError` saying what is wrong (the HTTP layer answers 400 with it); `decide` picks the
rule, level and action for a group of alerts. The use case that stores and declares is `bot.alerts.intake`.

Grouping follows Alertmanager (and PagerDuty's integration with it): one Alertmanager *group* — one
notification's `groupKey` — is one incident, and each alert in it (one fingerprint) is a line in that incident's
timeline. A generic alert is a group of its own, keyed by its fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bot.incident.commands import clean_text
from playbooks.schema import AlertRule, AlertRules, Ladder, SeverityLevel

MAX_ALERTS = 1000  # per request; Alertmanager's max_alerts is usually far lower
MAX_LABELS = 64
MAX_LABEL_VALUE = 1000
MAX_TITLE = 200
MAX_DESCRIPTION = 2000
MAX_KEY = 200
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")

AlertStatus = Literal["firing", "resolved"]
Action = Literal["declare", "propose", "ignore"]


class AlertPayloadError(ValueError):
    """The body is not a valid alert payload; the message says which field and what is expected."""


@dataclass(frozen=True)
class Alert:
    """One alert (one fingerprint) from a monitoring system."""

    fingerprint: str
    status: AlertStatus
    title: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    url: str | None = None

    @property
    def label_text(self) -> str:
        """`alertname=X instance=db-1 …` for timeline lines, most telling labels first."""
        first = [name for name in ("alertname", "severity", "instance", "job", "service") if name in self.labels]
        rest = sorted(name for name in self.labels if name not in first)
        return " ".join(f"{name}={self.labels[name]}" for name in [*first, *rest])


@dataclass(frozen=True)
class AlertBatch:
    """Alerts that belong together: an Alertmanager group notification, or one generic alert.

    `key` identifies the group across notifications (one incident per key); `status` is the group's (resolved
    only when every alert in it is)."""

    source: str  # alertmanager | the generic payload's `source`
    key: str
    status: AlertStatus
    alerts: tuple[Alert, ...]
    common_labels: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None


# -- parsing --------------------------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _text(value: object, where: str, *, limit: int, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise AlertPayloadError(f"{where} is required (a non-empty string)")
        return None
    if not isinstance(value, str):
        raise AlertPayloadError(f"{where} must be a string, got {type(value).__name__}")
    cleaned = clean_text(value).strip()
    if not cleaned:
        if required:
            raise AlertPayloadError(f"{where} is required (a non-empty string)")
        return None
    return cleaned[:limit]


def _labels(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AlertPayloadError(f"{where} must be an object of name: string, got {type(value).__name__}")
    if len(value) > MAX_LABELS:
        raise AlertPayloadError(f"{where} has {len(value)} entries; at most {MAX_LABELS} are accepted")
    labels: dict[str, str] = {}
    for name, raw in value.items():
        if not _LABEL_NAME.match(name):
            raise AlertPayloadError(f"{where}: {name[:40]!r} is not a label name (letters, digits and _)")
        if isinstance(raw, bool) or raw is None or not isinstance(raw, (str, int, float)):
            raise AlertPayloadError(f"{where}.{name} must be a string, got {type(raw).__name__}")
        labels[name] = clean_text(str(raw))[:MAX_LABEL_VALUE]
    return labels


def _time(value: object, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AlertPayloadError(f"{where} must be an RFC 3339 time string, got {type(value).__name__}")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Go writes up to nine fractional digits; Python reads six.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AlertPayloadError(f"{where}: {value[:40]!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.year <= 1:  # Go's zero time: "not set"
        return None
    return moment.astimezone(UTC)


def _status(value: object, where: str, default: AlertStatus | None = None) -> AlertStatus:
    if value is None and default is not None:
        return default
    if value not in ("firing", "resolved"):
        raise AlertPayloadError(f"{where} must be \"firing\" or \"resolved\", got {json.dumps(value)[:40]}")
    return value


def _key(value: str) -> str:
    return value if len(value) <= MAX_KEY else _digest(value)


def label_fingerprint(labels: Mapping[str, str]) -> str:
    """A stable fingerprint from labels when the sender gives none (Alertmanager's identity is its label set)."""
    return _digest(*(f"{name}={labels[name]}" for name in sorted(labels)))[:16]


def parse_alertmanager(payload: Any) -> AlertBatch:
    """An Alertmanager webhook (version 4) body → one batch (its group). Raises AlertPayloadError."""
    if not isinstance(payload, dict):
        raise AlertPayloadError("expected a JSON object (Alertmanager webhook, version 4)")
    version = payload.get("version")
    if version is not None and str(version) != "4":
        raise AlertPayloadError(f"unsupported Alertmanager webhook version {str(version)[:10]!r}; expected \"4\"")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise AlertPayloadError("field 'alerts' must be a list of alerts")
    if len(alerts) > MAX_ALERTS:
        raise AlertPayloadError(f"{len(alerts)} alerts in one request; at most {MAX_ALERTS} are accepted")
    common = _labels(payload.get("commonLabels"), "commonLabels")
    common_annotations = _labels(payload.get("commonAnnotations"), "commonAnnotations")
    parsed: list[Alert] = []
    for index, raw in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(raw, dict):
            raise AlertPayloadError(f"{where} must be an object")
        labels = _labels(raw.get("labels"), f"{where}.labels")
        annotations = {**common_annotations, **_labels(raw.get("annotations"), f"{where}.annotations")}
        fingerprint = _text(raw.get("fingerprint"), f"{where}.fingerprint", limit=MAX_KEY) or label_fingerprint(labels)
        title = (annotations.get("summary") or labels.get("alertname") or "Alert").strip() or "Alert"
        parsed.append(Alert(
            fingerprint=fingerprint, status=_status(raw.get("status"), f"{where}.status"),
            title=clean_text(title)[:MAX_TITLE], labels=labels, annotations=annotations,
            description=annotations["description"][:MAX_DESCRIPTION] if annotations.get("description") else None,
            starts_at=_time(raw.get("startsAt"), f"{where}.startsAt"),
            ends_at=_time(raw.get("endsAt"), f"{where}.endsAt"),
            url=_text(raw.get("generatorURL"), f"{where}.generatorURL", limit=1000)))
    group_key = _text(payload.get("groupKey"), "groupKey", limit=10_000)
    receiver = _text(payload.get("receiver"), "receiver", limit=200) or ""
    if group_key is None:
        # Not from a real Alertmanager (it always sends groupKey): the alerts' labels in common make the group.
        group_key = "labels:" + label_fingerprint(common or (parsed[0].labels if len(parsed) == 1 else {}))
    status: AlertStatus = "firing" if any(a.status == "firing" for a in parsed) else "resolved"
    declared = payload.get("status")
    if declared is not None:
        _status(declared, "status")
    return AlertBatch(source="alertmanager", key=_key(f"am:{receiver}:{_digest(group_key)[:40]}"),
                      status=status, alerts=tuple(parsed), common_labels=common,
                      url=_text(payload.get("externalURL"), "externalURL", limit=1000))


GENERIC_FIELDS = ("title", "severity", "source", "fingerprint", "labels", "description", "status", "url")


def parse_generic(payload: Any) -> list[AlertBatch]:
    """The documented generic JSON — one alert object, or a list of them — → one batch per alert.

        {"title": "Checkout 5xx above 5%", "severity": "critical", "source": "grafana",
         "fingerprint": "checkout-5xx", "labels": {"service": "checkout"}, "description": "…",
         "status": "firing"}

    `title` is required; `status` defaults to firing; `severity` and `source` become labels (`severity`,
    `source`) for the rules; without a `fingerprint` one is made from source, title and labels.
    """
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise AlertPayloadError("expected an alert object or a non-empty list of them")
    if len(items) > MAX_ALERTS:
        raise AlertPayloadError(f"{len(items)} alerts in one request; at most {MAX_ALERTS} are accepted")
    batches = []
    for index, raw in enumerate(items):
        where = f"[{index}]." if isinstance(payload, list) else ""
        if not isinstance(raw, dict):
            raise AlertPayloadError(f"{where or 'body '}must be an object with at least a title")
        unknown = sorted(set(raw) - set(GENERIC_FIELDS))
        if unknown:
            raise AlertPayloadError(f"{where}unknown field(s) {', '.join(u[:30] for u in unknown[:5])}; "
                                    f"allowed: {', '.join(GENERIC_FIELDS)}")
        title = _text(raw.get("title"), f"{where}title", limit=MAX_TITLE, required=True)
        source = _text(raw.get("source"), f"{where}source", limit=64) or "generic"
        severity = _text(raw.get("severity"), f"{where}severity", limit=64)
        labels = _labels(raw.get("labels"), f"{where}labels")
        labels.setdefault("source", source)
        if severity is not None:
            labels["severity"] = severity
        labels.setdefault("alertname", title or "")
        description = _text(raw.get("description"), f"{where}description", limit=MAX_DESCRIPTION)
        fingerprint = _text(raw.get("fingerprint"), f"{where}fingerprint", limit=MAX_KEY) \
            or label_fingerprint({**labels, "title": title or ""})
        alert = Alert(fingerprint=fingerprint, status=_status(raw.get("status"), f"{where}status", "firing"),
                      title=title or "Alert", labels=labels,
                      annotations={"summary": title or "", **({"description": description} if description else {})},
                      description=description, url=_text(raw.get("url"), f"{where}url", limit=1000))
        batches.append(AlertBatch(source=source, key=_key(f"generic:{source}:{fingerprint}"), status=alert.status,
                                  alerts=(alert,), common_labels=labels, url=alert.url))
    return batches


# -- rules ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What to do with a batch: the deciding alert's rule, level and action, and the incident title."""

    rule: AlertRule | None
    action: Action
    level: SeverityLevel | None
    title: str
    alert: Alert | None


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def render_title(rule: AlertRule | None, alert: Alert) -> str:
    """The rule's title template filled from the alert's labels and annotations; the alert's own title without one."""
    if rule is None or rule.title is None:
        return alert.title
    values = _Defaults({**alert.annotations, **alert.labels})
    values.setdefault("summary", alert.title)
    values.setdefault("title", alert.title)
    try:
        title = string.Formatter().vformat(rule.title, (), values)
    except (ValueError, IndexError, KeyError, AttributeError):  # a template that slipped past validation
        return alert.title
    return clean_text(title).strip()[:MAX_TITLE] or alert.title


def decide(batch: AlertBatch, rules: AlertRules, ladder: Ladder) -> Decision:
    """Match each firing alert against the ordered rules (first match wins); the most severe match decides the
    batch (declare before propose before ignore on a tie). No firing alert, or no rule: ignore."""
    ranks = {level.name: index for index, level in enumerate(ladder.levels)}
    action_order = {"declare": 0, "propose": 1, "ignore": 2}
    best: tuple[tuple[int, int, int], Decision] | None = None
    for alert in (a for a in batch.alerts if a.status == "firing"):
        rule = rules.first_match(alert.labels)
        if rule is None:
            continue
        level = rule.level_for(ladder)
        # An ignore rule decides only when nothing else matched; then the most severe level, then the action.
        sort_key = (rule.action == "ignore", ranks.get(level.name, len(ranks)) if level else len(ranks),
                    action_order[rule.action])
        if best is None or sort_key < best[0]:
            best = (sort_key, Decision(rule=rule, action=rule.action, level=level,
                                       title=render_title(rule, alert), alert=alert))
    if best is None:
        first = batch.alerts[0] if batch.alerts else None
        return Decision(rule=None, action="ignore", level=None, title=first.title if first else "Alert", alert=first)
    decision = best[1]
    firing = sum(1 for a in batch.alerts if a.status == "firing")
    if firing > 1:
        decision = Decision(rule=decision.rule, action=decision.action, level=decision.level,
                            title=f"{decision.title} (+{firing - 1} more)"[:MAX_TITLE], alert=decision.alert)
    return decision


def alert_line(alert: Alert) -> str:
    """One alert for a timeline entry or a thread post."""
    text = f"{alert.title} [{alert.label_text}]" if alert.labels else alert.title
    if alert.description and alert.description != alert.title:
        text += f" — {alert.description}"
    return text[:1500]


def summary_lines(alerts: Sequence[Alert], limit: int = 10) -> str:
    lines = [f"• {alert_line(a)}" for a in alerts[:limit]]
    if len(alerts) > limit:
        lines.append(f"• … and {len(alerts) - limit} more")
    return "\n".join(lines)


__all__ = ["Alert", "AlertBatch", "AlertPayloadError", "Decision", "alert_line", "decide", "label_fingerprint",
           "parse_alertmanager", "parse_generic", "render_title", "summary_lines"]
