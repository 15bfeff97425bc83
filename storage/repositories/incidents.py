"""Incidents: the row, its action items, tenants, timeline, held message revisions and followers."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.incident.domain import (
    Incident,
    MessageRevision,
    Status,
    TimelineEvent,
)
from bot.ports import (
    Room,
)
from storage.repositories._shared import (
    _ACTIONS_OF,
    _ATTACH_ROOM,
    _DROP_HELD,
    _HELD_REVISIONS,
    _INSERT_INCIDENT,
    _INSERT_TIMELINE,
    _NEXT_NUMBER,
    _NUMBER_OF_CHANNEL,
    _NUMBER_OF_THREAD,
    _PENDING_REVISION,
    _TENANTS_OF,
    _TIMELINE,
    _TIMELINE_OF,
    _UPDATE_INCIDENT,
    _row_values,
    _run,
    _timeline_values,
    _to_event,
    _to_incident,
)
from storage.tables import (
    ActionRow,
    IncidentRow,
    IncidentTenantRow,
    TimelineRow,
)


class SqlIncidentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # What this unit of work read or wrote per incident (row values, tenant links, action rows), so that a
        # save writes only what changed instead of re-reading the children and rewriting the whole row.
        self._known: dict[int, tuple[dict[str, Any], set[str], dict[int, ActionRow]]] = {}

    def _remember(self, incident: Incident, actions: Sequence[ActionRow], tenants: Sequence[str]) -> Incident:
        self._known[incident.number] = (_row_values(incident), set(tenants), {a.number: a for a in actions})
        return incident

    async def next_number(self) -> int:
        # A row-locked increment in the declaring transaction: numbers stay unique and gapless, because a
        # rolled-back declare rolls its increment back too.
        value: int | None = await _run(self._session, _NEXT_NUMBER, fetch="scalar")
        if value is None:
            raise RuntimeError("incident counter row missing: run `warroom db upgrade`")
        return value

    async def add(self, incident: Incident) -> None:
        values = _row_values(incident)
        await _run(self._session, _INSERT_INCIDENT, {"number": incident.number, **values})
        self._known[incident.number] = (values, set(), {})
        await self._write_children(incident)

    async def save(self, incident: Incident) -> None:
        values = _row_values(incident)
        known = self._known.get(incident.number)
        if known is None or known[0] != values:  # a message captured into the timeline changes no column
            await _run(self._session, _UPDATE_INCIDENT, {"incident_key": incident.number, **values})
            if known is not None:
                self._known[incident.number] = (values, known[1], known[2])
        await self._write_children(incident)

    async def _write_children(self, incident: Incident) -> None:
        known = self._known.get(incident.number)
        if known is not None:
            linked, existing = known[1], known[2]
        else:
            linked = set((await self._session.exec(
                select(IncidentTenantRow.tenant)
                .where(col(IncidentTenantRow.incident_number) == incident.number))).all())
            existing = {
                row.number: row
                for row in (await self._session.exec(
                    select(ActionRow).where(col(ActionRow.incident_number) == incident.number))).all()
            }
        added = False
        for tenant in incident.tenants:
            if tenant not in linked:
                self._session.add(IncidentTenantRow(incident_number=incident.number, tenant=tenant))
                linked.add(tenant)
                added = True
        for item in incident.actions:
            row = existing.get(item.number)
            if row is None:
                row = existing[item.number] = ActionRow(incident_number=incident.number, number=item.number,
                                                        text=item.text, created_by=item.created_by,
                                                        created_at=item.created_at)
            elif (row.text, row.owner, row.due, row.done_at, row.done_by, row.overdue_reminded, row.issue_number,
                  row.issue_url) == (item.text, item.owner, item.due, item.done_at, item.done_by,
                                     item.overdue_reminded, item.issue, item.issue_url):
                continue
            row.text, row.owner, row.due = item.text, item.owner, item.due
            row.done_at, row.done_by, row.overdue_reminded = item.done_at, item.done_by, item.overdue_reminded
            row.issue_number, row.issue_url = item.issue, item.issue_url
            self._session.add(row)
            added = True
        if added:
            await self._session.flush()
        await self.append_timeline([(incident.number, event) for event in incident.take_new_timeline()])

    async def _load(self, row: IncidentRow | None) -> Incident | None:
        if row is None:
            return None
        actions = (await self._session.exec(_ACTIONS_OF, params={"number": row.number})).all()
        tenants = (await self._session.exec(_TENANTS_OF, params={"number": row.number})).all()
        return self._remember(_to_incident(row, actions, tenants), actions, tenants)

    async def number_of_issue(self, issue: int) -> int | None:
        """The incident whose action item is code host issue `issue`, if any."""
        return (await self._session.exec(select(ActionRow.incident_number).where(
            col(ActionRow.issue_number) == issue).limit(1))).first()

    async def get(self, number: int) -> Incident | None:
        return await self._load(await self._session.get(IncidentRow, number))

    async def get_by_room(self, room: Room) -> Incident | None:
        number = (await self.numbers_by_room([room])).get(room)
        return await self.get(number) if number is not None else None

    async def attach_room(self, number: int, *, platform: str, channel: str, thread: str | None,
                          card_message: str | None) -> None:
        """Record where an incident's room opened (once: a room never moves), without loading the incident."""
        await _run(self._session, _ATTACH_ROOM, {"incident_key": number, "to_platform": platform,
                                                 "to_channel": channel, "to_thread": thread, "to_card": card_message})
        self._known.pop(number, None)

    async def numbers_by_room(self, rooms: Collection[Room]) -> dict[Room, int]:
        """Which incident each room belongs to (the newest; in channel mode a room is a whole channel); rooms of
        no incident left out.
        One indexed lookup per distinct room: a batch of chat messages comes from a handful of rooms, and a
        statement without a variable-length IN list is compiled once and runs on the connection directly."""
        def lookup(sync_session: Any) -> dict[Room, int]:
            connection = sync_session.connection()
            found: dict[Room, int] = {}
            for room in rooms:
                if room.thread is None:
                    number = connection.execute(_NUMBER_OF_CHANNEL, {
                        "platform": room.platform, "channel": room.channel}).scalar()
                else:
                    number = connection.execute(_NUMBER_OF_THREAD, {
                        "platform": room.platform, "channel": room.channel, "thread": room.thread}).scalar()
                if number is not None:
                    found[room] = number
            return found

        return await self._session.run_sync(lookup)

    async def append_timeline(self, events: Sequence[tuple[int, TimelineEvent]]) -> None:
        """Add events to incidents' timelines without loading the incidents (chat messages, many at once)."""
        if events:
            await _run(self._session, _INSERT_TIMELINE, [_timeline_values(number, event) for number, event in events])

    async def get_many(self, numbers: Sequence[int]) -> dict[int, Incident]:
        """Several incidents in three queries (rows, action items, tenants), by number; unknown ones left out."""
        found: dict[int, Incident] = {}
        unique = sorted(set(numbers))
        for start in range(0, len(unique), 500):
            query = select(IncidentRow).where(col(IncidentRow.number).in_(unique[start:start + 500]))
            found.update((incident.number, incident) for incident in await self.load_many(query))
        return found

    async def list(self, *, open_only: bool) -> builtins.list[Incident]:
        query = select(IncidentRow).order_by(col(IncidentRow.number))
        if open_only:
            query = query.where(col(IncidentRow.status).in_([s.value for s in Status if s.is_open]))
        return await self.load_many(query)

    async def load_many(self, query: Any) -> builtins.list[Incident]:
        """Incidents for a select of IncidentRow, with their action items and tenants in two more queries."""
        rows = (await self._session.exec(query)).all()
        numbers = [row.number for row in rows]
        actions: dict[int, builtins.list[ActionRow]] = {n: [] for n in numbers}
        tenants: dict[int, builtins.list[str]] = {n: [] for n in numbers}
        if numbers:
            for action in (await self._session.exec(
                    select(ActionRow).where(col(ActionRow.incident_number).in_(numbers)))).all():
                actions[action.incident_number].append(action)
            for link in (await self._session.exec(select(IncidentTenantRow).where(
                    col(IncidentTenantRow.incident_number).in_(numbers)))).all():
                tenants[link.incident_number].append(link.tenant)
        return [self._remember(_to_incident(row, actions[row.number], tenants[row.number]), actions[row.number],
                               tenants[row.number]) for row in rows]

    async def timeline(self, number: int) -> builtins.list[TimelineEvent]:
        # Plain rows, not ORM objects: a post-mortem reads thousands of them.
        rows = await _run(self._session, _TIMELINE_OF, {"number": number}, fetch="all")
        return [_to_event(row) for row in rows]

    async def find_message(self, number: int, message_ref: str) -> TimelineEvent | None:
        row = (await self._session.exec(
            select(TimelineRow)
            .where(col(TimelineRow.incident_number) == number, col(TimelineRow.message_ref) == message_ref)
            .order_by(col(TimelineRow.id)).limit(1)
        )).first()
        return _to_event(row) if row else None

    async def edit_message(self, event_id: int, *, text: str | None = None, deleted: bool | None = None,
                           pinned: bool | None = None) -> None:
        values = {k: v for k, v in (("text", text), ("deleted", deleted), ("pinned", pinned)) if v is not None}
        if values:
            await self._session.exec(sa.update(TimelineRow).where(col(TimelineRow.id) == event_id).values(**values))

    async def revise_message(self, number: int, message_ref: str, revision: MessageRevision) -> bool:
        """Apply an edit/delete/pin to the message's timeline entry; False when it is not captured (yet)."""
        # `MessageRevision.applied_to` as one UPDATE on the row's current values, not read-modify-write: two
        # revisions applied at once (a delete and a pin racing on PostgreSQL) cannot overwrite each other.
        values: dict[str, Any] = {}
        if revision.deleted:
            values.update(deleted=True, text="")
        elif revision.text is not None:
            values["text"] = sa.case((_TIMELINE.c.deleted, _TIMELINE.c.text), else_=sa.literal(revision.text))
        if revision.pinned:
            values["pinned"] = True
        where = (_TIMELINE.c.incident_number == number) & (_TIMELINE.c.message_ref == message_ref)
        if not values:
            return bool(await _run(self._session, sa.select(sa.func.count()).where(where), fetch="scalar"))
        return bool(await _run(self._session, sa.update(_TIMELINE).where(where).values(**values)))

    async def hold_revision(self, number: int, message_ref: str, revision: MessageRevision, now: datetime) -> None:
        """Keep a revision whose message is not captured yet (see `apply_held_revisions`)."""
        await _run(self._session, sa.insert(_PENDING_REVISION), {
            "incident_number": number, "message_ref": message_ref, "text": revision.text,
            "deleted": revision.deleted, "pinned": revision.pinned, "received_at": now})

    async def apply_held_revisions(self, messages: Collection[tuple[int, str]]) -> int:
        """Apply, in arrival order, the held revisions of these (incident number, message ref) whose message is
        now captured, and drop them. How many were applied."""
        if not messages:
            return 0
        numbers = sorted({number for number, _ in messages})
        refs = sorted({ref for _, ref in messages})
        held = await _run(self._session, _HELD_REVISIONS, {"numbers": numbers, "refs": refs}, fetch="all")
        applied = []
        for row in held:
            if (row.incident_number, row.message_ref) not in messages:
                continue
            revision = MessageRevision(text=row.text, deleted=row.deleted, pinned=row.pinned)
            if await self.revise_message(row.incident_number, row.message_ref, revision):
                applied.append(row.id)
        if applied:
            await _run(self._session, _DROP_HELD, {"ids": applied})
        return len(applied)
