"""Compile an incident's stored timeline into a blameless post-mortem (Markdown via a template, or JSON).

Pure and deterministic: the same incident and timeline give byte-identical output, so post-mortems can be
regenerated and committed to a docs repository without noise.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from dataclasses import dataclass
from datetime import datetime, tzinfo
from itertools import groupby
from typing import TypedDict

from bot.briefs.report import Deliveries, delivery_records, recipient_outcome
from bot.incident.domain import (
    BOT_REMINDER_KINDS,
    ActionItem,
    EventKind,
    Incident,
    TimelineEvent,
    format_duration,
)
from bot.incident.targets import Verdict, judge, peak_severity, severity_changes, severity_periods
from playbooks.schema import Ladder, SeverityLevel

TO_BE_WRITTEN = "_to be written_"
_SECTION_KINDS = {EventKind.ROOT_CAUSE, EventKind.CONTRIBUTING, EventKind.WENT_WELL}
# How a timeline line reads for event kinds whose stored text is the user's own words.
_LINE_PREFIX = {EventKind.STATUS_UPDATE: "status update: ", EventKind.NOTE: "note: "}


def slugify(text: str, limit: int = 60) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "incident"


def postmortem_filename(incident: Incident, tz: tzinfo, fmt: str = "md") -> str:
    day = incident.declared_at.astimezone(tz).date().isoformat()
    return f"{day}-inc-{incident.number}-{slugify(incident.title)}.{fmt}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|")


@dataclass(frozen=True)
class TimelineLine:
    at: datetime
    until: datetime | None
    author: str
    text: str
    kind: str
    pinned: bool
    deleted: bool


SeverityChangeFact = TypedDict("SeverityChangeFact", {"at": datetime, "from": str, "to": str, "by": str})


class PostmortemFacts(TypedDict):
    """What a post-mortem says, before it is written as Markdown or JSON."""

    key: str
    title: str
    date: str
    severity: str
    severity_label: str
    status: str
    duration: str
    started: str
    ended: str
    time_to_acknowledge: str
    time_to_resolve: str
    peak_severity: str
    peak_severity_label: str
    severity_changes: list[SeverityChangeFact]
    severity_changes_text: str
    impact: str
    reporter: str
    roles: dict[str, str]
    summary: str
    root_cause: list[str]
    contributing: list[str]
    went_well: list[str]
    timeline: list[TimelineLine]
    multi_day: bool
    actions: list[ActionItem]
    deliveries: Deliveries
    timezone: str


# Events about the post-mortem itself (compiled, its pull request opened) are not part of it: compiling again
# after a pull request was opened must give the same document.
_ABOUT_THE_DOCUMENT = {EventKind.POSTMORTEM, EventKind.FOLLOWUP}


def compile_document(compiler: PostmortemCompiler, ladder: Ladder, incident: Incident,
                     timeline: list[TimelineEvent], fmt: str = "md", deliveries: Deliveries = ()) -> str:
    """The post-mortem of an incident as Markdown or JSON, at its severity's level of the ladder, with the
    per-recipient outcome of its customer briefs."""
    level = ladder.level(incident.severity) or ladder.level(ladder.default)
    assert level is not None  # the ladder's default is one of its levels (checked when it loads)
    timeline = [event for event in timeline if event.kind not in _ABOUT_THE_DOCUMENT]
    if fmt == "json":
        return compiler.json(incident, level, timeline, ladder=ladder, deliveries=deliveries)
    return compiler.markdown(incident, level, timeline, ladder=ladder, deliveries=deliveries)


class PostmortemCompiler:
    def __init__(self, *, tz: tzinfo, template: string.Template) -> None:
        self._tz = tz
        self._template = template

    # -- shared facts -------------------------------------------------------------------------------

    def _stamp(self, moment: datetime, multi_day: bool) -> str:
        local = moment.astimezone(self._tz)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}" if multi_day else f"{local:%H:%M} {local.tzname()}"

    def _lines(self, timeline: list[TimelineEvent]) -> list[TimelineLine]:
        """Timeline in occurrence order; consecutive bot reminders collapse into one line."""
        events = [e for e in timeline if e.kind not in _SECTION_KINDS]
        lines: list[TimelineLine] = []
        for is_reminder, group in groupby(events, key=lambda e: e.kind in BOT_REMINDER_KINDS):
            run = list(group)
            if is_reminder and len(run) > 1:
                nudges = sum(1 for e in run if e.kind is EventKind.NUDGE)
                others = len(run) - nudges
                parts = [f"{nudges} update nudges" if nudges else "", f"{others} reminders" if others else ""]
                lines.append(TimelineLine(at=run[0].occurred_at, until=run[-1].occurred_at, author=run[0].author,
                                          text=" and ".join(p for p in parts if p) + " (no update in between)",
                                          kind="reminders", pinned=False, deleted=False))
                continue
            lines += [TimelineLine(at=e.occurred_at, until=None, author=e.author,
                                   # a deleted message keeps no words, even one stored before deletes blanked
                                   text="" if e.deleted else _LINE_PREFIX.get(e.kind, "") + _one_line(e.text),
                                   kind=e.kind.value, pinned=e.pinned, deleted=e.deleted) for e in run]
        return lines

    def facts(self, incident: Incident, level: SeverityLevel, timeline: list[TimelineEvent], *,
              ladder: Ladder | None = None, deliveries: Deliveries = ()) -> PostmortemFacts:
        """`level`: the incident's current level; `ladder`: every level, to judge targets under earlier ones;
        `deliveries`: the customer briefs sent, with each recipient's delivery state."""
        tz = self._tz
        end = incident.resolved_at
        multi_day = any(
            e.occurred_at.astimezone(tz).date() != incident.declared_at.astimezone(tz).date() for e in timeline
        ) or (end is not None and end.astimezone(tz).date() != incident.declared_at.astimezone(tz).date())
        if end is not None:
            minutes = int((end - incident.declared_at).total_seconds() // 60)
            duration = (f"{self._stamp(incident.declared_at, multi_day)} → {self._stamp(end, multi_day)} "
                        f"({minutes} minutes)")
        else:
            duration = f"{self._stamp(incident.declared_at, multi_day)} → ongoing"
        # Targets are judged against the severity in force at the time (see bot.incident.targets).
        changes = severity_changes(timeline)
        periods = severity_periods(incident, changes)

        def level_of(name: str) -> SeverityLevel | None:
            if ladder is not None:
                return ladder.level(name)
            return level if name.upper() == level.name.upper() else None

        def verdict_text(verdict: Verdict) -> str:
            if verdict.target is None or verdict.met is None:
                return ""
            at = f" at {verdict.severity}" if changes else ""
            return f" (target {format_duration(verdict.target)}{at}, {'met' if verdict.met else 'missed'})"

        tta = "not acknowledged"
        if incident.acknowledged_at is not None:
            tta = format_duration(incident.acknowledged_at - incident.declared_at) + verdict_text(judge(
                start=incident.declared_at, done_at=incident.acknowledged_at, now=incident.acknowledged_at,
                periods=periods, target_of=lambda name: getattr(level_of(name), "response_target", None)))
        ttr = "not resolved"
        if incident.resolved_at is not None:
            ttr = format_duration(incident.resolved_at - incident.declared_at) + verdict_text(judge(
                start=incident.declared_at, done_at=incident.resolved_at, now=incident.resolved_at,
                periods=periods, target_of=lambda name: getattr(level_of(name), "resolution_target", None)))
        peak = peak_severity(periods, ladder.level_names if ladder is not None else (level.name,))
        peak_level = level_of(peak)
        changes_text = "; ".join(f"{self._stamp(c.at, multi_day)} {c.previous} → {c.to} ({c.by})" for c in changes)
        by_kind = {kind: [e.text.strip() for e in timeline if e.kind is kind and not e.deleted]
                   for kind in _SECTION_KINDS}
        return {
            "key": incident.key,
            "title": incident.title,
            "date": incident.declared_at.astimezone(tz).date().isoformat(),
            "severity": incident.severity,
            "severity_label": level.label,
            "status": incident.status.value,
            "duration": duration,
            "started": self._stamp(incident.declared_at, multi_day),
            "ended": self._stamp(end, multi_day) if end else "ongoing",
            "time_to_acknowledge": tta,
            "time_to_resolve": ttr,
            "peak_severity": peak,
            "peak_severity_label": peak_level.label if peak_level else "not in this ladder",
            "severity_changes": [{"at": c.at, "from": c.previous, "to": c.to, "by": c.by} for c in changes],
            "severity_changes_text": changes_text or "none",
            "impact": incident.impact or TO_BE_WRITTEN,
            "reporter": incident.reporter,
            "roles": {role.title: user for role, user in incident.roles.items()},
            "summary": incident.summary or "",
            "root_cause": by_kind[EventKind.ROOT_CAUSE],
            "contributing": by_kind[EventKind.CONTRIBUTING],
            "went_well": by_kind[EventKind.WENT_WELL],
            "timeline": self._lines(timeline),
            "multi_day": multi_day,
            "actions": incident.actions,
            "deliveries": deliveries,
            "timezone": str(getattr(tz, "key", tz)),
        }

    # -- formats ------------------------------------------------------------------------------------

    def markdown(self, incident: Incident, level: SeverityLevel, timeline: list[TimelineEvent], *,
                 ladder: Ladder | None = None, deliveries: Deliveries = ()) -> str:
        f = self.facts(incident, level, timeline, ladder=ladder, deliveries=deliveries)
        timeline_md = []
        for line in f["timeline"]:
            stamp = self._stamp(line.at, f["multi_day"])
            if line.until is not None:  # "10:15–10:45 EAT"
                start, _, zone = stamp.rpartition(" ")
                stamp = f"{start}–{line.until.astimezone(self._tz):%H:%M} {zone}"
            text = "_(message deleted)_" if line.deleted else line.text
            marker = "📌 " if line.pinned else ""
            timeline_md.append(f"- {stamp} — {marker}{line.author}: {text}")
        actions = "_none yet_"
        if f["actions"]:
            rows = ["| # | Item | Owner | Due | Status |", "|---|---|---|---|---|"]
            rows += [f"| {a.number} | {_cell(a.text)} | {_cell(a.owner or '—')} | {a.due or '—'} | "
                     f"{'done' if a.is_done else 'open'} |" for a in f["actions"]]
            actions = "\n".join(rows)
        briefs = "_no customer briefs sent_"
        if f["deliveries"]:
            rows = ["| Brief | Recipient | Delivery |", "|---|---|---|"]
            rows += [f"| #{brief.id} {brief.kind} | {_cell(r.label)} | {_cell(recipient_outcome(r))} |"
                     for brief, recipients in f["deliveries"] for r in recipients]
            briefs = "\n".join(rows)

        def bullets(items: list[str]) -> str:
            return "\n".join(f"- {_one_line(i)}" for i in items) if items else TO_BE_WRITTEN

        values = {
            **{k: v for k, v in f.items() if k in ("key", "title", "date", "severity", "severity_label", "status",
                                                   "duration", "started", "ended", "time_to_acknowledge",
                                                   "time_to_resolve", "peak_severity", "peak_severity_label",
                                                   "impact", "reporter", "timezone")},
            "severity_changes": f["severity_changes_text"],
            "roles": "; ".join(f"{role}: {user}" for role, user in f["roles"].items()) or "_none assigned_",
            "timeline": "\n".join(timeline_md) or "_no events_",
            "root_cause": "\n\n".join(f["root_cause"]) or TO_BE_WRITTEN,
            "contributing": bullets(f["contributing"]),
            "went_well": bullets(f["went_well"]),
            "resolution": f["summary"] or TO_BE_WRITTEN,
            "summary": f["summary"] or TO_BE_WRITTEN,
            "actions": actions,
            "customer_briefs": briefs,
        }
        return self._template.safe_substitute(values).rstrip() + "\n"

    def json(self, incident: Incident, level: SeverityLevel, timeline: list[TimelineEvent], *,
             ladder: Ladder | None = None, deliveries: Deliveries = ()) -> str:
        f = self.facts(incident, level, timeline, ladder=ladder, deliveries=deliveries)
        document = {
            **{k: v for k, v in f.items() if k in ("key", "title", "date", "severity", "severity_label", "status",
                                                   "duration", "time_to_acknowledge", "time_to_resolve",
                                                   "peak_severity", "impact", "reporter", "roles", "summary",
                                                   "root_cause", "contributing", "went_well", "timezone")},
            "severity_changes": [{**c, "at": c["at"].isoformat()} for c in f["severity_changes"]],
            "declared_at": incident.declared_at.isoformat(),
            "acknowledged_at": incident.acknowledged_at.isoformat() if incident.acknowledged_at else None,
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
            "timeline": [
                {"at": line.at.isoformat(), "until": line.until.isoformat() if line.until else None,
                 "author": line.author, "kind": line.kind, "text": line.text, "pinned": line.pinned,
                 "deleted": line.deleted}
                for line in f["timeline"]
            ],
            "customer_briefs": delivery_records(f["deliveries"]),
            "action_items": [
                {"number": a.number, "text": a.text, "owner": a.owner, "due": a.due.isoformat() if a.due else None,
                 "done": a.is_done}
                for a in f["actions"]
            ],
        }
        return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
