"""The public status page as values: what customers may see, built only from text published on purpose.

    page = status_page(updates, numbers=None, components=("payments", "api"), now=now)
    page.overall, page.active[0].updates[0].text, page.history

Nothing here reads the incident's title, timeline, names or notes: an incident exists on the status page only
through its `PublicUpdate`s (`/incident public …`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

HISTORY = timedelta(days=90)
STATE_LABELS = {"investigating": "Investigating", "identified": "Identified", "monitoring": "Monitoring",
                "resolved": "Resolved"}


@dataclass(frozen=True)
class PublicUpdate:
    incident_number: int
    state: str  # investigating | identified | monitoring | resolved
    text: str
    areas: tuple[str, ...]
    published_at: datetime
    id: int = 0

    @property
    def label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)


@dataclass(frozen=True)
class PublicIncident:
    """One incident as customers see it: its published updates, newest first."""

    number: int
    updates: tuple[PublicUpdate, ...]

    @property
    def key(self) -> str:
        return f"INC-{self.number}"

    @property
    def latest(self) -> PublicUpdate:
        return self.updates[0]

    @property
    def state(self) -> str:
        return self.latest.state

    @property
    def areas(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(area for update in reversed(self.updates) for area in update.areas))

    @property
    def started_at(self) -> datetime:
        return self.updates[-1].published_at

    @property
    def headline(self) -> str:
        areas = ", ".join(self.areas)
        return f"Incident {self.key}" + (f" affecting {areas}" if areas else "")


@dataclass(frozen=True)
class Component:
    name: str
    state: str  # operational | degraded

    @property
    def label(self) -> str:
        return "Operational" if self.state == "operational" else "Degraded"


@dataclass(frozen=True)
class StatusPage:
    tenant: str | None
    generated_at: datetime
    components: tuple[Component, ...]
    active: tuple[PublicIncident, ...]
    history: tuple[PublicIncident, ...]  # resolved within the last 90 days, newest first

    @property
    def overall(self) -> str:
        if not self.active:
            return "All systems operational"
        return "We are working on an incident" if len(self.active) == 1 else \
            f"We are working on {len(self.active)} incidents"

    @property
    def all_operational(self) -> bool:
        return not self.active


def status_page(updates: Sequence[PublicUpdate], *, components: Collection[str], now: datetime,
                tenant: str | None = None, numbers: Collection[int] | None = None) -> StatusPage:
    """The page from every update published in the last 90 days (plus older ones of still-active incidents);
    `numbers` limits it to a tenant's incidents."""
    by_incident: dict[int, list[PublicUpdate]] = {}
    for update in updates:
        if numbers is None or update.incident_number in numbers:
            by_incident.setdefault(update.incident_number, []).append(update)
    incidents = [PublicIncident(number=n, updates=tuple(sorted(u, key=lambda x: (x.published_at, x.id),
                                                               reverse=True)))
                 for n, u in by_incident.items()]
    incidents.sort(key=lambda i: (i.latest.published_at, i.number), reverse=True)
    active = tuple(i for i in incidents if i.state != "resolved")
    history = tuple(i for i in incidents if i.state == "resolved" and now - i.latest.published_at <= HISTORY)
    hurt = {area for incident in active for area in incident.areas}
    return StatusPage(tenant=tenant, generated_at=now, active=active, history=history,
                      components=tuple(Component(name, "degraded" if name in hurt else "operational")
                                       for name in components))


def summary(page: StatusPage) -> dict[str, object]:
    """`/status/summary.json`: small and stable, for other tools to poll."""
    return {
        "status": "operational" if page.all_operational else "incident",
        "description": page.overall,
        "tenant": page.tenant,
        "updated_at": page.generated_at.isoformat(),
        "components": [{"name": c.name, "status": c.state} for c in page.components],
        "incidents": [{"id": i.key, "status": i.state, "areas": list(i.areas),
                       "started_at": i.started_at.isoformat(), "updated_at": i.latest.published_at.isoformat(),
                       "latest": i.latest.text} for i in page.active],
    }
