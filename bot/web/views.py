"""What the team's web pages show, as values: the incidents list, one incident, its timeline chart, stats.

    views = WebViews(uow=..., clock=..., ladder=..., tz=...)
    page = await views.incident(7)       # IncidentPage or None (unknown incident → the adapter's 404 page)
    rows = await views.incidents(IncidentFilter(status="open", severity="P1"))

Values only: adapters/web renders them (and escapes every string it renders).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from bot.briefs.templates import Brief, Recipient
from bot.incident.domain import EventKind, Incident, Status, TimelineEvent
from bot.ports import Clock, ReminderPlan, UnitOfWorkFactory
from bot.reports.stats import StatsReport, compute_stats
from bot.web.public import HISTORY, PublicUpdate, StatusPage, status_page
from playbooks.schema import Ladder, SeverityLevel

REMINDER_LABELS = {
    "update_nudge": "status update due", "ack_escalation": "escalation if not acknowledged",
    "resolution_escalation": "escalation if not resolved", "postmortem_due": "post-mortem due",
    "customer_update_due": "customer update promised", "action_overdue": "action item overdue",
}


@dataclass(frozen=True)
class IncidentFilter:
    status: str | None = None  # open | declared | acknowledged | mitigated | resolved | closed
    severity: str | None = None
    platform: str | None = None
    since: date | None = None
    until: date | None = None


@dataclass(frozen=True)
class IncidentRow:
    incident: Incident
    age: timedelta
    time_to_acknowledge: timedelta | None
    last_update_at: datetime | None


@dataclass(frozen=True)
class ChartPhase:
    status: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ChartMark:
    kind: str  # update | severity | nudge | escalation | message | public
    at: datetime
    label: str


@dataclass(frozen=True)
class TimelineChart:
    start: datetime
    end: datetime
    phases: tuple[ChartPhase, ...]
    marks: tuple[ChartMark, ...]

    def position(self, moment: datetime) -> float:
        """0..1 along the time axis."""
        span = (self.end - self.start).total_seconds() or 1.0
        return min(1.0, max(0.0, (moment - self.start).total_seconds() / span))


@dataclass(frozen=True)
class BriefView:
    brief: Brief
    recipients: tuple[Recipient, ...]


@dataclass(frozen=True)
class IncidentPage:
    incident: Incident
    level: SeverityLevel | None
    timeline: tuple[TimelineEvent, ...]
    reminders: tuple[ReminderPlan, ...]
    briefs: tuple[BriefView, ...]
    public: tuple[PublicUpdate, ...]
    chart: TimelineChart
    now: datetime
    last_event_id: int = 0
    followups: tuple[TimelineEvent, ...] = ()  # where the paper trail went: the post-mortem pull request, issues
    total_events: int = 0  # the page shows the newest TIMELINE_SHOWN (and every pinned one) unless asked for all

    @property
    def events_hidden(self) -> int:
        return self.total_events - len(self.timeline)

    @property
    def checklist_done(self) -> int:
        return sum(1 for item in self.incident.checklist if item.checked_at is not None)


@dataclass(frozen=True)
class StatsPage:
    report: StatsReport
    days: int
    weekly: tuple[tuple[date, int], ...] = field(default=())  # incidents declared per week


TIMELINE_SHOWN = 500  # a 10,000-entry incident stays a fast page; "show all" and the post-mortem have the rest
_MARKS = {EventKind.STATUS_UPDATE: "update", EventKind.SEVERITY_CHANGED: "severity", EventKind.NUDGE: "nudge",
          EventKind.ESCALATION: "escalation", EventKind.PUBLIC_UPDATE: "public"}
_PHASE_AT = (("declared_at", Status.DECLARED), ("acknowledged_at", Status.ACKNOWLEDGED),
             ("mitigated_at", Status.MITIGATED), ("resolved_at", Status.RESOLVED), ("closed_at", Status.CLOSED))


def timeline_chart(incident: Incident, timeline: Sequence[TimelineEvent], now: datetime,
                   last_at: datetime | None = None) -> TimelineChart:
    """Status phases from the incident's milestones, and a mark per update, severity change, nudge, escalation
    (`timeline` needs only those kinds; `last_at` is the last entry of any kind, where a closed axis ends)."""
    moments = [(getattr(incident, attr), status) for attr, status in _PHASE_AT if getattr(incident, attr)]
    moments.sort(key=lambda m: m[0])
    ends = [e.occurred_at for e in timeline[-1:]] + ([last_at] if last_at else [])
    end = incident.closed_at or (now if incident.status.is_open or incident.resolved_at is None
                                 else max(incident.resolved_at, *ends))
    end = max(end, incident.declared_at + timedelta(minutes=1))
    phases = tuple(ChartPhase(status.value, at, moments[i + 1][0] if i + 1 < len(moments) else end)
                   for i, (at, status) in enumerate(moments) if status is not Status.CLOSED)
    marks = tuple(ChartMark(_MARKS[e.kind], e.occurred_at, e.text[:80]) for e in timeline
                  if e.kind in _MARKS and not e.deleted)
    return TimelineChart(start=incident.declared_at, end=end, phases=phases, marks=marks)


class WebViews:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, ladder: Ladder, tz: tzinfo,
                 components: Sequence[str] = ()) -> None:
        self._uow = uow
        self._clock = clock
        self.ladder = ladder
        self.tz = tz
        self.components = tuple(components)

    def now(self) -> datetime:
        return self._clock.now()

    async def incidents(self, wanted: IncidentFilter) -> list[IncidentRow]:
        now = self._clock.now()
        async with self._uow() as uow:
            every = await uow.incidents.list(open_only=wanted.status == "open")
        rows = []
        for incident in sorted(every, key=lambda i: i.number, reverse=True):
            if wanted.status not in (None, "", "open") and incident.status.value != wanted.status:
                continue
            if wanted.severity and incident.severity != wanted.severity:
                continue
            if wanted.platform and (incident.platform or "") != wanted.platform:
                continue
            day = incident.declared_at.astimezone(self.tz).date()
            if (wanted.since and day < wanted.since) or (wanted.until and day > wanted.until):
                continue
            acknowledged = incident.acknowledged_at - incident.declared_at if incident.acknowledged_at else None
            rows.append(IncidentRow(incident=incident, age=now - incident.declared_at,
                                    time_to_acknowledge=acknowledged, last_update_at=incident.last_update_at))
        return rows

    async def incident(self, number: int, *, everything: bool = False) -> IncidentPage | None:
        now = self._clock.now()
        async with self._uow() as uow:
            incident = await uow.incidents.get(number)
            if incident is None:
                return None
            timeline, total, last = await uow.web.timeline_window(number,
                                                                  latest=None if everything else TIMELINE_SHOWN)
            charted = await uow.web.timeline_of_kinds(number, [kind.value for kind in _MARKS])
            reminders = await uow.web.pending_reminders(number)
            briefs = await uow.web.briefs_of(number)
            public = [u for u in await uow.web.public_updates(since=now - HISTORY) if u.incident_number == number]
            followups = await uow.web.timeline_of_kinds(number, [EventKind.FOLLOWUP.value])
        return IncidentPage(
            incident=incident, level=self.ladder.level(incident.severity), timeline=tuple(timeline),
            reminders=tuple(reminders), briefs=tuple(BriefView(b, tuple(r)) for b, r in briefs),
            public=tuple(public), chart=timeline_chart(incident, charted, now, last_at=timeline[-1].occurred_at
                                                       if timeline else None),
            now=now, last_event_id=last, total_events=total, followups=tuple(followups))

    async def exists(self, number: int) -> bool:
        async with self._uow() as uow:
            return await uow.incidents.get(number) is not None

    async def timeline_after(self, after_id: int, numbers: Sequence[int], limit: int = 500
                             ) -> list[tuple[int, TimelineEvent]]:
        async with self._uow() as uow:
            return await uow.web.timeline_after(after_id, numbers, limit)

    async def last_timeline_id(self) -> int:
        async with self._uow() as uow:
            return await uow.web.last_timeline_id()

    async def stats(self, days: int) -> StatsPage:
        now = self._clock.now()
        since = now - timedelta(days=days)
        async with self._uow() as uow:
            incidents = await uow.reports.declared_since(since)
        weeks: dict[date, int] = {}
        for incident in incidents:
            day = incident.declared_at.astimezone(self.tz).date()
            monday = day - timedelta(days=day.weekday())
            weeks[monday] = weeks.get(monday, 0) + 1
        return StatsPage(report=compute_stats(incidents, self.ladder, now=now, since=since), days=days,
                         weekly=tuple(sorted(weeks.items())))

    async def status(self, tenant: str | None = None) -> StatusPage | None:
        """The public page (for one tenant's incidents with `tenant`); None for a tenant nobody knows."""
        now = self._clock.now()
        async with self._uow() as uow:
            numbers = None
            if tenant is not None:
                if tenant not in await uow.web.known_tenants():
                    return None
                numbers = await uow.web.incidents_of_tenant(tenant)
            updates = await uow.web.public_updates(since=now - HISTORY)
        return status_page(updates, components=self.components, now=now, tenant=tenant, numbers=numbers)
