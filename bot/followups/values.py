"""What goes to the code host, as values: the post-mortem pull request and the draft scenario playbook.

Pure and deterministic (no I/O, no clock): the same incident and timeline give the same branch, paths and
bytes, so compiling again updates the same pull request with no noise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import yaml

from bot.incident.domain import EventKind, Incident, TimelineEvent
from bot.incident.postmortem import slugify
from bot.ports import ChangeSet, FileChange, IssueDraft
from playbooks.schema import Scenario

TEXT_LIMIT = 2000  # NonEmptyText in playbooks.schema
LIST_LIMIT = 12
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("the and for with from not are was were has have had but into onto out off all any our its "
                  "this that these those after before down up over under when then than".split())


@dataclass(frozen=True)
class FollowupConfig:
    """Where things go in the repository (validated by the settings) and when a playbook is drafted."""

    repository: str  # "owner/name", for messages
    postmortem_path: str = "docs/runbook/post-mortems/{date}-{slug}.md"
    playbook_dir: str = "playbooks/scenarios"
    pr_on_compile: bool = False
    draft_after: timedelta = timedelta(minutes=10)
    assignees: tuple[tuple[str, str], ...] = ()  # chat name → GitHub login (WARROOM_GITHUB_ASSIGNEES)
    labels: tuple[str, ...] = ("incident-follow-up",)


def branch_name(incident: Incident) -> str:
    """One branch per incident, named after it: `incident/inc-7-payments-down`."""
    return f"incident/inc-{incident.number}-{slugify(incident.title, 40)}"


def postmortem_path(pattern: str, incident: Incident, tz: tzinfo) -> str:
    day = incident.declared_at.astimezone(tz).date().isoformat()
    return pattern.format(date=day, slug=slugify(incident.title), number=incident.number)


def diagnosis_time(incident: Incident, now: datetime) -> timedelta:
    """Declared → mitigated (or resolved, or now while it is still being worked)."""
    end = incident.mitigated_at or incident.resolved_at or now
    return max(end - incident.declared_at, timedelta())


def needs_draft(incident: Incident, timeline: list[TimelineEvent], *, after: timedelta, now: datetime) -> bool:
    """A new failure mode: no scenario playbook matched (or was posted by hand), or diagnosis took long."""
    matched = incident.suggested_playbook is not None or any(
        event.kind is EventKind.PLAYBOOK_POSTED for event in timeline)
    return not matched or diagnosis_time(incident, now) > after


def _line(text: str) -> str:
    return " ".join(text.split())[:TEXT_LIMIT].strip()


def _lines(texts: list[str]) -> tuple[str, ...]:
    seen: list[str] = []
    for text in texts:
        line = _line(text)
        if line and line not in seen:
            seen.append(line)
    return tuple(seen[:LIST_LIMIT])


def _keywords(incident: Incident) -> tuple[str, ...]:
    words: list[str] = []
    for word in _WORD.findall(slugify(incident.title, 200).replace("-", " ")):
        if len(word) >= 3 and word not in _STOP and word[:40] not in words:
            words.append(word[:40])
    return tuple(words[:8]) or ("incident",)


def draft_scenario(incident: Incident, timeline: list[TimelineEvent]) -> Scenario:
    """A scenario playbook drafted from what happened: symptoms from the title, impact and alerts; diagnosis from
    the status updates and the root cause; steps from the pinned (key) events and the resolution; prevention
    from the action items. Always valid against the playbook schema; its title says it is a draft."""
    live = [event for event in timeline if not event.deleted]
    symptoms = _lines([incident.title, f"Impact: {incident.impact}" if incident.impact else "",
                       *(e.text for e in live if e.kind is EventKind.ALERT)])
    diagnosis = _lines([e.text for e in live if e.kind in (EventKind.STATUS_UPDATE, EventKind.ROOT_CAUSE)])
    steps = _lines([*(e.text for e in live if e.pinned), incident.summary or ""])
    prevention = _lines([item.text for item in incident.actions])
    title = _line(f"DRAFT from {incident.key}: {incident.title}")
    return Scenario(
        name=slugify(incident.title),
        title=title,
        symptoms=symptoms or (f"To be written: what {incident.key} looked like",),
        keywords=_keywords(incident),
        diagnosis=diagnosis,
        steps=steps or (f"To be written: the steps that fixed {incident.key}",),
        prevention=prevention,
    )


def scenario_yaml(scenario: Scenario, incident: Incident) -> str:
    data = scenario.model_dump(mode="json")
    header = (f"# DRAFT drafted by warroom from {incident.key} ({incident.title!r}). Edit it before merging:\n"
              "# symptoms, keywords (what a title must contain to suggest it), diagnosis, steps, prevention.\n")
    body: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
    return header + body


@dataclass(frozen=True)
class PostmortemRequest:
    """The post-mortem pull request for one incident, as the code host will receive it."""

    change: ChangeSet
    postmortem_path: str
    playbook_path: str | None


def postmortem_request(*, incident: Incident, timeline: list[TimelineEvent], document: str, config: FollowupConfig,
                       tz: tzinfo, now: datetime) -> PostmortemRequest:
    path = postmortem_path(config.postmortem_path, incident, tz)
    files = [FileChange(path=path, content=document)]
    playbook_path = None
    draft = None
    if needs_draft(incident, timeline, after=config.draft_after, now=now):
        draft = draft_scenario(incident, timeline)
        playbook_path = f"{config.playbook_dir}/{draft.name}.yaml"
        files.append(FileChange(path=playbook_path, content=scenario_yaml(draft, incident)))
    took = diagnosis_time(incident, now)
    body = [f"Post-mortem of **{incident.key}** ({incident.severity}): {incident.title}", "",
            f"- `{path}`: the blameless post-mortem compiled by warroom from the incident's timeline."]
    if draft is not None:
        why = ("no scenario playbook matched" if incident.suggested_playbook is None
               else f"diagnosis took {int(took.total_seconds() // 60)} min")
        body.append(f"- `{playbook_path}`: a **draft** scenario playbook ({why}). Edit it, or delete it from "
                    "this branch if the failure mode is not new.")
    body += ["", "Sections that say _to be written_ are for people to fill in. Compiling again in the incident "
             "(`/incident postmortem pr`) updates this pull request."]
    change = ChangeSet(branch=branch_name(incident), files=tuple(files),
                       commit_message=f"{incident.key} post-mortem: {_line(incident.title)[:60]}",
                       title=f"Post-mortem {incident.key}: {_line(incident.title)[:200]}", body="\n".join(body))
    return PostmortemRequest(change=change, postmortem_path=path, playbook_path=playbook_path)


_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")


def assignee_for(owner: str | None, config: FollowupConfig) -> str | None:
    """The GitHub login for an action item's owner: mapped in WARROOM_GITHUB_ASSIGNEES, else the chat name
    itself when it can be a login (`@bob` → bob)."""
    if not owner:
        return None
    name = owner.lstrip("@")
    mapped = dict(config.assignees).get(name)
    if mapped:
        return mapped
    return name if _LOGIN.match(name) else None


def issue_label(incident: Incident) -> str:
    """The label every issue of an incident carries: how a retry finds an issue whose answer was lost."""
    return f"warroom-inc-{incident.number}"


def issue_marker(incident: Incident, number: int) -> str:
    return f"warroom:{incident.key}/action-{number}"


def action_issue(incident: Incident, number: int, *, config: FollowupConfig, link: str | None) -> IssueDraft:
    item = incident.action(number)
    lines = [f"Follow-up from **{incident.key}** ({incident.severity}): {incident.title}", "",
             f"- Action item {item.number}: {item.text}"]
    if item.owner:
        lines.append(f"- Owner: {item.owner}")
    if item.due:
        lines.append(f"- Due: {item.due.isoformat()}")
    lines.append(f"- Added by {item.created_by}")
    if link:
        lines.append(f"- Incident: {link}")
    lines += ["", "Closing this issue marks the action item done in warroom; reopening it marks it open again."]
    return IssueDraft(title=f"[{incident.key}] {_line(item.text)[:200]}", body="\n".join(lines),
                      labels=(*config.labels, issue_label(incident)), assignee=assignee_for(item.owner, config))
