"""HTML for the web pages. Every string from the database or a person goes through `h()` (or the Markdown
renderer, which escapes first); the markup carries no inline script or style, so the CSP can forbid both."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from html import escape
from urllib.parse import quote

from adapters.web import markdown
from adapters.web.svg import bar_chart, timeline_chart
from bot.incident.domain import EventKind, Status, TimelineEvent, format_duration
from bot.web.public import StatusPage
from bot.web.views import REMINDER_LABELS, IncidentFilter, IncidentPage, IncidentRow, StatsPage

STATIC = "/static/web"


_HTTPS_URL = re.compile(r"https://[^\s<>\"']+")


def linked(text: str) -> str:
    """Escaped text whose https:// addresses (a pull request, an issue) are links; nothing else becomes markup."""
    parts, last = [], 0
    for match in _HTTPS_URL.finditer(text):
        parts.append(h(text[last:match.start()]))
        url = h(match.group(0))
        parts.append(f'<a href="{url}" rel="noopener noreferrer">{url}</a>')
        last = match.end()
    parts.append(h(text[last:]))
    return "".join(parts)


def h(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def when(moment: datetime | None, tz: tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(tz)
    return f'<time datetime="{h(moment.isoformat())}">{h(local.strftime(fmt))} {h(local.tzname())}</time>'


def duration(delta: timedelta | None) -> str:
    return "—" if delta is None else h(format_duration(delta))


def layout(*, title: str, body: str, user: str | None = None, csrf: str | None = None, script: bool = False,
           public: bool = False, head: str = "") -> str:
    nav = ""
    if user is not None:
        nav = (f'<nav aria-label="Main"><a href="/web">Incidents</a> <a href="/web/stats">Stats</a> '
               f'<a href="/status">Status page</a> '
               f'<form method="post" action="/web/logout" class="inline">'
               f'<input type="hidden" name="csrf" value="{h(csrf)}">'
               f'<button type="submit">Sign out {h(user)}</button></form></nav>')
    scripts = f'<script src="{STATIC}/web.js" defer></script>' if script else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{h(title)}</title><link rel="stylesheet" href="{STATIC}/web.css">{head}{scripts}</head>'
            f'<body class="{"public" if public else "team"}"><a class="skip" href="#main">Skip to content</a>'
            f'<header>{nav}</header><main id="main">{body}</main></body></html>')


def message_page(*, title: str, text: str, hint: str = "", user: str | None = None, csrf: str | None = None) -> str:
    more = f"<p>{h(hint)}</p>" if hint else ""
    return layout(title=title, user=user, csrf=csrf, body=f"<h1>{h(title)}</h1><p>{h(text)}</p>{more}")


def login_page(*, token: str) -> str:
    return layout(title="Sign in to warroom", body=(
        "<h1>Sign in to warroom</h1><p>This one-time link signs this browser in. It works once.</p>"
        '<form method="post" action="/web/login">'
        f'<input type="hidden" name="token" value="{h(token)}">'
        '<button type="submit" id="sign-in">Sign in</button></form>'))


# -- the incidents list ----------------------------------------------------------------------------------

def _select(name: str, label: str, options: Sequence[tuple[str, str]], chosen: str | None) -> str:
    opts = "".join(f'<option value="{h(v)}"{" selected" if v == (chosen or "") else ""}>{h(t)}</option>'
                   for v, t in options)
    return f'<label for="f-{name}">{h(label)}</label><select id="f-{name}" name="{name}">{opts}</select>'


def incidents_page(rows: Sequence[IncidentRow], wanted: IncidentFilter, *, severities: Sequence[str],
                   platforms: Sequence[str], tz: tzinfo, user: str, csrf: str) -> str:
    statuses = [("", "any"), ("open", "open"), *((s.value, s.value) for s in Status)]
    form = ('<form method="get" action="/web" class="filters" aria-label="Filter incidents">'
            + _select("status", "Status", statuses, wanted.status)
            + _select("severity", "Severity", [("", "any"), *((s, s) for s in severities)], wanted.severity)
            + _select("platform", "Platform", [("", "any"), *((p, p) for p in platforms)], wanted.platform)
            + f'<label for="f-since">From</label><input id="f-since" type="date" name="since" '
              f'value="{h(wanted.since or "")}">'
            + f'<label for="f-until">To</label><input id="f-until" type="date" name="until" '
              f'value="{h(wanted.until or "")}">'
            + '<button type="submit">Filter</button></form>')
    lines = []
    for row in rows:
        i = row.incident
        roles = ", ".join(f"{role.value}: {who}" for role, who in i.roles.items())
        lines.append(
            f'<tr><td><a href="/web/incidents/{i.number}">{h(i.key)}</a></td><td>{h(i.title)}</td>'
            f'<td>{h(i.severity)}</td><td>{h(i.status.value)}</td><td>{h(i.platform or "—")}</td>'
            f'<td>{duration(row.age)}</td><td>{duration(row.time_to_acknowledge)}</td>'
            f'<td>{when(row.last_update_at, tz)}</td><td>{h(roles or "—")}</td></tr>')
    table = ('<table class="incidents"><caption>Incidents, newest first</caption><thead><tr>'
             '<th scope="col">Incident</th><th scope="col">Title</th><th scope="col">Severity</th>'
             '<th scope="col">Status</th><th scope="col">Platform</th><th scope="col">Age</th>'
             '<th scope="col">Time to acknowledge</th><th scope="col">Last update</th><th scope="col">Roles</th>'
             f'</tr></thead><tbody>{"".join(lines)}</tbody></table>') if lines else \
        "<p>No incidents match these filters.</p>"
    return layout(title="Incidents — warroom", user=user, csrf=csrf,
                  body=f"<h1>Incidents</h1>{form}{table}")


# -- one incident ----------------------------------------------------------------------------------------

_KIND_TEXT = {EventKind.MESSAGE: "message", EventKind.STATUS_UPDATE: "status update", EventKind.NOTE: "note",
              EventKind.PUBLIC_UPDATE: "public update"}


def timeline_item(event: TimelineEvent, tz: tzinfo) -> str:
    classes = ["event", f"kind-{event.kind.value}"]
    marks = []
    if event.pinned:
        classes.append("pinned")
        marks.append('<span class="badge">pinned</span>')
    if event.deleted:
        classes.append("deleted")
        marks.append('<span class="badge">deleted</span>')
    # A deleted message keeps no words (the capture blanks them): the page says it was deleted, like the post-mortem.
    text = "<del>(message deleted)</del>" if event.deleted else h(event.text)
    kind = _KIND_TEXT.get(event.kind, event.kind.value.replace("_", " "))
    return (f'<li class="{" ".join(classes)}" id="event-{event.id}" data-id="{event.id}">'
            f'{when(event.occurred_at, tz, "%H:%M")} <span class="author">{h(event.author)}</span> '
            f'<span class="kind">{h(kind)}</span> {"".join(marks)}<span class="text">{text}</span></li>')


def incident_page(page: IncidentPage, *, tz: tzinfo, user: str, csrf: str) -> str:
    i = page.incident
    level = page.level
    facts = [("Severity", f"{i.severity} ({level.label})" if level else i.severity), ("Status", i.status.value),
             ("Declared", None), ("Reported by", i.reporter), ("Impact", i.impact or "—"),
             ("Acknowledged", None), ("Deploy freeze", "on" if i.frozen else "off"),
             ("Platform", i.platform or "—"), ("Tenants", ", ".join(i.tenants) or "—")]
    rendered = {"Declared": when(i.declared_at, tz),
                "Acknowledged": (f"{when(i.acknowledged_at, tz)} by {h(i.acknowledged_by)}"
                                 if i.acknowledged_at else "not yet")}
    card = "".join(f"<dt>{h(k)}</dt><dd>{rendered[k] if v is None else h(v)}</dd>" for k, v in facts)
    roles = "".join(f"<li>{h(role.title)}: {h(who)}</li>" for role, who in i.roles.items()) or "<li>none yet</li>"
    checklist = "".join(
        f'<li class="{"done" if item.checked_at else "todo"}">{"✓" if item.checked_at else "☐"} {item.number}. '
        f'{h(item.text)}{f" — {h(item.checked_by)}" if item.checked_by else ""}</li>' for item in i.checklist)
    reminders = "".join(f"<li>{h(REMINDER_LABELS.get(r.kind, r.kind))}: {when(r.due_at, tz)}</li>"
                        for r in page.reminders) or "<li>nothing due</li>"
    timeline = "".join(timeline_item(e, tz) for e in page.timeline)
    briefs = []
    for view in page.briefs:
        b = view.brief
        recipients = "".join(
            f'<tr><td>{h(r.name)}</td><td>{h(r.tenant)}</td><td>{h(r.phone)}</td>'
            f'<td class="state-{h(r.status)}">{h(r.status)}</td><td>{h(r.error or "")}</td></tr>'
            for r in view.recipients)
        briefs.append(
            f'<section class="brief"><h3>Brief #{b.id} to {h(b.target)} ({h(b.status)})</h3><p>{h(b.text)}</p>'
            '<table><caption>Delivery per recipient</caption><thead><tr><th scope="col">Name</th>'
            '<th scope="col">Tenant</th><th scope="col">Number</th><th scope="col">State</th>'
            f'<th scope="col">Error</th></tr></thead><tbody>{recipients}</tbody></table></section>')
    issues = {a.number: a.issue_url for a in i.actions if a.issue_url}
    actions = "".join(
        f'<li class="{"done" if a.is_done else "todo"}">{a.number}. {h(a.text)}'
        f'{f" — owner {h(a.owner)}" if a.owner else ""}{f", due {h(a.due)}" if a.due else ""}'
        f'{" (done)" if a.is_done else ""}'
        f'{f" — {linked(issues[a.number])}" if a.number in issues else ""}</li>' for a in i.actions) \
        or "<li>none</li>"
    trail = "".join(f"<li>{when(e.occurred_at, tz)} {linked(e.text)}</li>" for e in page.followups) \
        or "<li>no pull request or issue yet (/incident postmortem pr)</li>"
    public = "".join(f"<li>{when(u.published_at, tz)} <strong>{h(u.label)}</strong>: {h(u.text)}</li>"
                     for u in page.public) or "<li>nothing published; /incident public \"…\" publishes</li>"
    body = (
        f'<h1>{h(i.key)}: {h(i.title)}</h1>'
        f'<p class="links"><a href="/web/incidents/{i.number}/postmortem">Post-mortem</a></p>'
        f'<section aria-labelledby="card-h"><h2 id="card-h">Card</h2><dl class="card">{card}</dl></section>'
        f'<section aria-labelledby="roles-h"><h2 id="roles-h">Roles</h2><ul>{roles}</ul></section>'
        f'<section aria-labelledby="check-h"><h2 id="check-h">Checklist ({page.checklist_done}/{len(i.checklist)})'
        f'</h2><ul class="checklist">{checklist}</ul></section>'
        f'<section aria-labelledby="due-h"><h2 id="due-h">Reminders due</h2><ul>{reminders}</ul></section>'
        f'<section aria-labelledby="chart-h"><h2 id="chart-h">Timeline chart</h2>'
        f'{timeline_chart(page.chart, tz)}</section>'
        f'<section aria-labelledby="tl-h"><h2 id="tl-h">Timeline ({page.total_events} entries)</h2>'
        + (f'<p>Showing the newest {len(page.timeline)} entries and every pinned one. '
           f'<a href="/web/incidents/{i.number}?all=1">Show all {page.total_events}</a> '
           f'(or read the <a href="/web/incidents/{i.number}/postmortem">post-mortem</a>).</p>'
           if page.events_hidden > 0 else "")
        + f'<p class="live" id="live-state" role="status" aria-live="polite">'
        f'Live updates need JavaScript; reload to see new messages.</p>'
        f'<ol class="timeline" id="timeline" data-incident="{i.number}" data-last="{page.last_event_id}">'
        f'{timeline}</ol></section>'
        f'<section aria-labelledby="pub-h"><h2 id="pub-h">Public updates</h2><ul>{public}</ul></section>'
        f'<section aria-labelledby="briefs-h"><h2 id="briefs-h">Customer briefs</h2>'
        f'{"".join(briefs) or "<p>No briefs.</p>"}</section>'
        f'<section aria-labelledby="act-h"><h2 id="act-h">Action items</h2><ul>{actions}</ul></section>'
        f'<section aria-labelledby="trail-h"><h2 id="trail-h">Pull request and issues</h2><ul>{trail}</ul></section>')
    return layout(title=f"{i.key}: {i.title} — warroom", body=body, user=user, csrf=csrf, script=True)


def postmortem_page(*, number: int, key: str, document: str, user: str, csrf: str) -> str:
    body = (f'<h1>{h(key)} post-mortem</h1><p class="links">Download: '
            f'<a href="/web/incidents/{number}/postmortem.md" download>Markdown (.md)</a> · '
            f'<a href="/web/incidents/{number}/postmortem.json" download>JSON (.json)</a> · '
            f'<a href="/web/incidents/{number}">back to {h(key)}</a></p>'
            f'<article class="postmortem">{markdown.render(document)}</article>')
    return layout(title=f"{key} post-mortem — warroom", body=body, user=user, csrf=csrf)


# -- stats -----------------------------------------------------------------------------------------------

def stats_page(page: StatsPage, *, user: str, csrf: str) -> str:
    report = page.report
    def minutes(d: timedelta | None) -> float | None:
        return None if d is None else d.total_seconds() / 60

    mtta = [(s.severity, minutes(s.acknowledge.median)) for s in report.severities]
    mttr = [(s.severity, minutes(s.resolve.median)) for s in report.severities]
    within = [(s.severity, s.within_response.percent) for s in report.severities]
    within_res = [(s.severity, s.within_resolution.percent) for s in report.severities]
    weekly = [(f"{day:%d %b}", float(count)) for day, count in page.weekly]
    current = ' aria-current="page"'
    periods = " ".join(f'<a href="/web/stats?days={d}"{current if d == page.days else ""}>{d} days</a>'
                       for d in (7, 30, 90, 365))
    rows = "".join(
        f"<tr><th scope=\"row\">{h(s.severity)}</th><td>{s.count}</td><td>{duration(s.acknowledge.median)}</td>"
        f"<td>{duration(s.acknowledge.p90)}</td><td>{duration(s.resolve.median)}</td><td>{duration(s.resolve.p90)}"
        f"</td><td>{h(s.within_response.text())}</td><td>{h(s.within_resolution.text())}</td></tr>"
        for s in report.severities)
    body = (f"<h1>Stats, last {page.days} days</h1><p>{periods}</p><p>{report.total} incidents declared.</p>"
            '<table><caption>Per severity</caption><thead><tr><th scope="col">Severity</th><th scope="col">Count'
            '</th><th scope="col">MTTA median</th><th scope="col">MTTA p90</th><th scope="col">MTTR median</th>'
            '<th scope="col">MTTR p90</th><th scope="col">Within response target</th>'
            f'<th scope="col">Within resolution target</th></tr></thead><tbody>{rows}</tbody></table>'
            '<div class="charts">'
            + bar_chart("Median time to acknowledge (minutes)", mtta, unit="min")
            + bar_chart("Median time to resolve (minutes)", mttr, unit="min")
            + bar_chart("Acknowledged within response target (%)", within, unit="%", maximum=100)
            + bar_chart("Resolved within resolution target (%)", within_res, unit="%", maximum=100)
            + bar_chart("Incidents declared per week", weekly, unit="")
            + "</div>")
    return layout(title="Stats — warroom", body=body, user=user, csrf=csrf)


# -- the public status page ------------------------------------------------------------------------------

def status_page(page: StatusPage, *, title: str, tz: tzinfo) -> str:
    base = f"/status/{quote(page.tenant)}" if page.tenant else "/status"
    feed = f"{base}/feed.atom"
    components = "".join(f'<li class="component {h(c.state)}"><span>{h(c.name)}</span> '
                         f'<strong>{h(c.label)}</strong></li>' for c in page.components)

    def incident(item: object) -> str:
        updates = "".join(f"<li>{when(u.published_at, tz)} <strong>{h(u.label)}</strong> — {h(u.text)}</li>"
                          for u in item.updates)  # type: ignore[attr-defined]
        return (f'<article class="incident"><h3>{h(item.headline)}</h3>'  # type: ignore[attr-defined]
                f'<ol class="updates">{updates}</ol></article>')

    active = "".join(incident(i) for i in page.active) or "<p>No current incidents.</p>"
    history = "".join(incident(i) for i in page.history) or "<p>No incidents in the last 90 days.</p>"
    heading = f"{title} — {page.tenant}" if page.tenant else title
    body = (f'<h1>{h(heading)}</h1><p class="overall {"ok" if page.all_operational else "bad"}" role="status">'
            f'{h(page.overall)}</p>'
            + (f'<section aria-labelledby="comp-h"><h2 id="comp-h">Components</h2><ul class="components">'
               f'{components}</ul></section>' if components else "")
            + f'<section aria-labelledby="act-h"><h2 id="act-h">Current incidents</h2>{active}</section>'
            f'<section aria-labelledby="hist-h"><h2 id="hist-h">Past 90 days</h2>{history}</section>'
            f'<p><a href="{h(feed)}">Atom feed</a> · <a href="/status/summary.json">JSON summary</a></p>')
    link = f'<link rel="alternate" type="application/atom+xml" title="{h(heading)}" href="{h(feed)}">'
    return layout(title=heading, body=body, public=True, head=link)


def atom_feed(page: StatusPage, *, title: str, base_url: str) -> str:
    base = f"{base_url}/status" + (f"/{quote(page.tenant)}" if page.tenant else "")
    entries = []
    for item in (*page.active, *page.history):
        for u in item.updates:
            entries.append((u.published_at, (
                f"<entry><id>{h(base)}#update-{u.id}</id><title>{h(item.headline)}: {h(u.label)}</title>"
                f"<updated>{u.published_at.isoformat()}</updated><link href=\"{h(base)}\"/>"
                f"<content type=\"text\">{h(u.text)}</content></entry>")))
    entries.sort(key=lambda e: e[0], reverse=True)
    updated = entries[0][0].isoformat() if entries else page.generated_at.isoformat()
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<id>{h(base)}</id><title>{h(title)}</title><updated>{updated}</updated>"
            f'<link rel="self" href="{h(base)}/feed.atom"/><link href="{h(base)}"/>'
            + "".join(e[1] for e in entries) + "</feed>")


def not_found_page(what: str) -> str:
    return layout(title="Not found", body=f"<h1>Not found</h1><p>{h(what)}</p><p><a href=\"/status\">Status page"
                                          f"</a></p>")


