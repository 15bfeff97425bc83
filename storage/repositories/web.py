"""The web pages: sign-in tokens, public updates, early status."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.briefs.templates import Brief, Recipient
from bot.incident.domain import (
    TimelineEvent,
)
from bot.ports import (
    ReminderPlan,
)
from bot.web.public import PublicUpdate
from storage.repositories._shared import (
    _TIMELINE,
    _TIMELINE_OF,
    _run,
    _to_event,
    table_of,
)
from storage.repositories.customers import SqlCustomerRepository
from storage.repositories.reminders import SqlReminderRepository
from storage.tables import (
    BriefRow,
    IncidentTenantRow,
    PublicUpdateRow,
    WebTokenRow,
)


class SqlWebRepository:
    """The web pages' storage: public updates, sign-in links and sessions (digests only), and extra reads."""

    def __init__(self, session: AsyncSession, customers: SqlCustomerRepository,
                 reminders: SqlReminderRepository) -> None:
        self._session = session
        self._customers = customers
        self._reminders = reminders

    async def publish(self, *, incident_number: int, state: str, text: str, areas: Sequence[str],
                      now: datetime) -> None:
        self._session.add(PublicUpdateRow(incident_number=incident_number, status=state, text=text,
                                          areas=list(areas), published_at=now))
        await self._session.flush()

    async def public_updates(self, *, since: datetime) -> list[PublicUpdate]:
        """Updates published since `since`, and every update of incidents whose latest one is not 'resolved'."""
        rows = (await self._session.exec(select(PublicUpdateRow).order_by(col(PublicUpdateRow.id)))).all()
        latest: dict[int, PublicUpdateRow] = {}
        for row in rows:
            latest[row.incident_number] = row
        keep = {n for n, row in latest.items() if row.status != "resolved" or row.published_at >= since}
        return [PublicUpdate(incident_number=r.incident_number, state=r.status, text=r.text, areas=tuple(r.areas),
                             published_at=r.published_at, id=r.id or 0) for r in rows if r.incident_number in keep]

    async def last_public_state(self, incident_number: int) -> str | None:
        row = (await self._session.exec(select(PublicUpdateRow.status).where(
            col(PublicUpdateRow.incident_number) == incident_number).order_by(col(PublicUpdateRow.id).desc()).limit(1)
        )).first()
        return row

    async def known_tenants(self) -> set[str]:
        linked = (await self._session.exec(select(IncidentTenantRow.tenant).distinct())).all()
        return set(linked) | set(await self._customers.tenants())

    async def incidents_of_tenant(self, tenant: str) -> set[int]:
        return set((await self._session.exec(select(IncidentTenantRow.incident_number).where(
            col(IncidentTenantRow.tenant) == tenant))).all())

    async def add_token(self, *, digest: str, kind: str, name: str, csrf: str | None, now: datetime,
                        expires_at: datetime) -> None:
        self._session.add(WebTokenRow(digest=digest, kind=kind, name=name, csrf=csrf, created_at=now,
                                      expires_at=expires_at))
        await self._session.flush()

    async def link_state(self, digest: str, now: datetime) -> str:
        row = await self._session.get(WebTokenRow, digest)
        if row is None or row.kind != "link":
            return "unknown"
        if row.used_at is not None:
            return "used"
        return "expired" if row.expires_at <= now else "ok"

    async def use_link(self, digest: str, now: datetime) -> str | None:
        table = table_of(WebTokenRow)
        name: str | None = await _run(self._session, sa.update(table).where(
            table.c.digest == digest, table.c.kind == "link", table.c.used_at.is_(None),
            table.c.expires_at > now).values(used_at=now).returning(table.c.name), fetch="scalar")
        return name

    async def session(self, digest: str, now: datetime) -> tuple[str, str] | None:
        row = await self._session.get(WebTokenRow, digest)
        if row is None or row.kind != "session" or row.used_at is not None or row.expires_at <= now:
            return None
        return row.name, row.csrf or ""

    async def end_session(self, digest: str, now: datetime) -> None:
        table = table_of(WebTokenRow)
        await _run(self._session, sa.update(table).where(table.c.digest == digest, table.c.kind == "session")
                   .values(used_at=now))
        # forget links and sessions that ended more than a day ago
        await _run(self._session, sa.delete(table).where(table.c.expires_at < now - timedelta(days=1)))

    async def timeline_after(self, after_id: int, numbers: Collection[int], limit: int
                             ) -> list[tuple[int, TimelineEvent]]:
        if not numbers:
            return []
        query = (sa.select(_TIMELINE).where(_TIMELINE.c.id > after_id, _TIMELINE.c.incident_number.in_(list(numbers)))
                 .order_by(_TIMELINE.c.id).limit(limit))
        rows = await _run(self._session, query, fetch="all")
        return [(row.incident_number, _to_event(row)) for row in rows]

    async def timeline_window(self, number: int, *, latest: int | None) -> tuple[list[TimelineEvent], int, int]:
        """The newest `latest` entries (all with None) in time order, plus pinned ones older than those; the
        number of entries in all, and the highest entry id (where a live page resumes)."""
        where = _TIMELINE.c.incident_number == number
        total, last = (await _run(self._session, sa.select(sa.func.count(), sa.func.max(_TIMELINE.c.id))
                                  .where(where), fetch="all"))[0]
        if latest is None or total <= latest:
            rows = await _run(self._session, _TIMELINE_OF, {"number": number}, fetch="all")
            return [_to_event(row) for row in rows], total, last or 0
        newest = await _run(self._session, sa.select(_TIMELINE).where(where).order_by(
            _TIMELINE.c.occurred_at.desc(), _TIMELINE.c.id.desc()).limit(latest), fetch="all")
        oldest_shown = (newest[-1].occurred_at, newest[-1].id)
        pinned = await _run(self._session, sa.select(_TIMELINE).where(where, _TIMELINE.c.pinned.is_(True)), fetch="all")
        shown = {row.id: row for row in newest}
        shown.update({row.id: row for row in pinned if (row.occurred_at, row.id) < oldest_shown})
        rows = sorted(shown.values(), key=lambda row: (row.occurred_at, row.id))
        return [_to_event(row) for row in rows], total, last or 0

    async def timeline_of_kinds(self, number: int, kinds: Collection[str]) -> list[TimelineEvent]:
        rows = await _run(self._session, sa.select(_TIMELINE).where(
            _TIMELINE.c.incident_number == number, _TIMELINE.c.kind.in_(list(kinds))).order_by(
            _TIMELINE.c.occurred_at, _TIMELINE.c.id), fetch="all")
        return [_to_event(row) for row in rows]

    async def last_timeline_id(self) -> int:
        return await _run(self._session, sa.select(sa.func.max(_TIMELINE.c.id)), fetch="scalar") or 0

    async def pending_reminders(self, incident_number: int) -> list[ReminderPlan]:
        return await self._reminders.pending(incident_number)

    async def briefs_of(self, incident_number: int) -> list[tuple[Brief, list[Recipient]]]:
        rows = (await self._session.exec(select(BriefRow).where(col(BriefRow.incident_number) == incident_number)
                                         .order_by(col(BriefRow.id)))).all()
        return [(SqlCustomerRepository._brief(row), await self._customers.recipients(row.id))  # type: ignore[arg-type]
                for row in rows]
