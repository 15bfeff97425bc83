"""Declaring an incident inside a unit of work: shared by `/incident declare` and alert intake (which links the
alert in the same transaction).

    incident = await declarer.declare_in(uow, room=room, reporter="alice", title="Payments down", level=p1)
    await uow.commit()
    await notifier.deliver()
"""

from __future__ import annotations

from datetime import tzinfo

from bot.delivery.notifier import OutboxWriter
from bot.incident import render
from bot.incident.domain import Incident
from bot.incident.triage import suggest_playbook
from bot.oncall.paging import Paging
from bot.ports import Clock, Room, UnitOfWork
from playbooks.loader import Playbooks
from playbooks.schema import SeverityLevel

FIRST_MINUTES = "first minutes"
TRIAGE = "triage"


class Declarer:
    def __init__(self, *, playbooks: Playbooks, outbox: OutboxWriter, clock: Clock, tz: tzinfo,
                 paging: Paging) -> None:
        self._playbooks = playbooks
        self._paging = paging
        self._outbox = outbox
        self._clock = clock
        self._tz = tz

    async def declare_in(self, uow: UnitOfWork, *, room: Room, reporter: str, title: str, level: SeverityLevel,
                         impact: str | None = None, tenants: tuple[str, ...] = (), context: str = "") -> Incident:
        """The incident, its reminders and its room's first messages (card, checklists, suggested playbook) in
        the caller's unit of work; the caller commits, then delivers. `context` helps pick the playbook."""
        scenario = suggest_playbook(self._playbooks.scenarios.values(), f"{title} {impact or ''} {context}")
        checklist = [(FIRST_MINUTES, text) for text in level.first_minutes] + [(TRIAGE, t) for t in level.triage]
        now = self._clock.now()
        incident = Incident.declare(number=await uow.incidents.next_number(), title=title, severity=level.name,
                                    impact=impact, reporter=reporter, now=now, checklist=checklist,
                                    suggested_playbook=scenario.name if scenario else None, platform=room.platform)
        if tenants:
            incident.link_tenants(by=reporter, tenants=list(tenants), now=now)
        await uow.incidents.add(incident)
        await self._outbox.replan(uow, incident)
        await self._paging.start(uow, incident)  # per the severity's escalation policy (playbooks/oncall/)
        platform = room.platform
        await self._outbox.queue(uow, incident, render.incident_card(incident, level, self._tz),
                                 operation="open_room", room=Room(platform, room.channel), platform=platform)
        for section in (FIRST_MINUTES, TRIAGE):
            message = render.checklist_message(incident, section)
            if message is not None:
                await self._outbox.queue(uow, incident, message, platform=platform)
        if scenario is not None:
            await self._outbox.queue(uow, incident, render.playbook_message(scenario, suggested=True),
                                     platform=platform)
        return incident
