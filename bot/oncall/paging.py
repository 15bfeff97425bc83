"""Paging as a use case: start an incident's escalation on declare, take due steps on the tick (page the people
of the level through the outbox), stop everything when someone acknowledges, resolve pages on resolve.

Every page is an outbox row keyed `page:<incident>:<level>:<attempt>:<person>:<pager>`: whoever takes a step
(this process or a replica, before or after a restart), a person is paged once per attempt. The step itself is
saved with a compare-and-set, so only one process takes it at all.

    paging = Paging(plan=plan, ladder=ladder, notifier=notifier, clock=clock, pagers={"pagerduty": pd})
    await paging.start(uow, incident)                 # in declare's unit of work
    await paging.fire_due()                            # the tick
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo

from bot.delivery.notifier import Notifier
from bot.incident.domain import Incident, Status
from bot.oncall.escalation import Escalation, Page, Wait, acknowledge, advance, escalate_now, resolve
from bot.oncall.roster import Person
from bot.oncall.rotation import Override, Rotation, on_call
from bot.ports import (
    Clock,
    Message,
    Outbound,
    PageAction,
    Pager,
    PageRequest,
    PageSeverity,
    UnitOfWork,
    UnitOfWorkFactory,
)
from playbooks.schema import EscalationPolicy, Ladder, OnCallPlan

log = logging.getLogger("warroom.paging")
BATCH = 200
_SEVERITY: dict[int, PageSeverity] = {0: "critical", 1: "critical", 2: "error", 3: "warning"}


class Paging:
    def __init__(self, *, plan: OnCallPlan, ladder: Ladder, notifier: Notifier, clock: Clock, tz: tzinfo,
                 pagers: Mapping[str, Pager], uow: UnitOfWorkFactory) -> None:
        self._plan = plan
        self._ladder = ladder
        self._notify = notifier
        self._clock = clock
        self._tz = tz
        self._pagers = pagers
        self._uow = uow
        # Policies apply when the plan was written for the ladder in use (its severities are that ladder's).
        self._policies = {p.severity: p for p in plan.policies} if plan.ladder == ladder.name else {}
        self.next_due: datetime | None = None

    def policy(self, severity: str) -> EscalationPolicy | None:
        return self._policies.get(severity)

    # -- hooks in the incident's own unit of work ---------------------------------------------------------

    async def start(self, uow: UnitOfWork, incident: Incident) -> None:
        """A declared incident whose severity has a policy starts paging at once (the tick takes the step)."""
        if self.policy(incident.severity) is None:
            return
        now = self._clock.now()
        await uow.escalations.start(incident.number, Escalation.start(severity=incident.severity, now=now), now=now)
        self.next_due = now

    async def follow(self, uow: UnitOfWork, incident: Incident, *, by: str) -> None:
        """After any change: an incident no longer waiting for an answer stops paging; resolved resolves pages."""
        if incident.status is Status.DECLARED:
            return
        record = await uow.escalations.get(incident.number)
        if record is None:
            return
        state: Escalation = record.state
        resolved = incident.status in (Status.RESOLVED, Status.CLOSED)
        if state.state == ("resolved" if resolved else "acknowledged") or state.state == "resolved":
            return
        was_open = state.open
        if not await uow.escalations.save(record, resolve(state) if resolved else acknowledge(state)):
            return  # a concurrent change moved it; that change runs this again
        cancelled = await uow.escalations.cancel_pages(incident.number)
        action: PageAction = "resolve" if resolved else "acknowledge"
        for person, pager, address in record.paged:
            target = self._pagers.get(pager)
            if target is not None and target.capabilities.acknowledge:
                await self._queue_page(uow, incident, person=person, pager=pager, address=address, action=action,
                                       key=f"page-{action}:{incident.number}:{person}:{pager}")
        if was_open and not resolved:
            stopped = f" ({cancelled} queued page(s) withdrawn)" if cancelled else ""
            await self._notify.queue(uow, incident, Message(
                text=f"Paging stopped: {by} answered for {incident.key}{stopped}.", incident_key=incident.key,
                kind="update"))

    async def escalate(self, uow: UnitOfWork, incident: Incident, *, by: str, reason: str | None) -> str:
        """`/incident escalate`: the next level is paged at once. Returns what to say."""
        policy = self.policy(incident.severity)
        if policy is None:
            return (f"No escalation policy for {incident.severity} in playbooks/oncall/{self._plan.name}.yaml; "
                    f"policies cover: {', '.join(self._policies) or 'no severity of this ladder'}.")
        now = self._clock.now()
        record = await uow.escalations.get(incident.number)
        if record is None:
            await uow.escalations.start(incident.number, escalate_now(
                Escalation.start(severity=incident.severity, now=now), policy, now=now), now=now)
        elif not await uow.escalations.save(record, escalate_now(record.state, policy, now=now)):
            return "Someone else changed this incident's escalation just now; run it again if still needed."
        self.next_due = now
        why = f": {reason}" if reason else ""
        return f"{by} escalated {incident.key}{why}."

    async def page_by_hand(self, uow: UnitOfWork, incident: Incident, *, target: str, reason: str, by: str,
                           roles: Sequence[str], key: str) -> str:
        """`/incident page <role|@person> "reason"`: one page now, outside the policy. Raises ValueError naming
        what is valid for an unknown role or person. `key` makes a retried command page once."""
        now = self._clock.now()
        people = {p.name: p for p in await uow.oncall.people()}
        name = target.strip().removeprefix("<").removesuffix(">").lstrip("@!")
        if target.startswith(("@", "<@")) or name.lower() in people:
            person = people.get(name.lower()) or await uow.oncall.person_by_address(name)
            if person is None:
                raise ValueError(f"unknown person {target!r}; people: {', '.join(people) or 'nobody yet'}")
            order = [person.name]
            label = person.name
        else:
            role = name.lower()
            if role not in roles:
                raise ValueError(f"unknown role or person {target!r}; roles: {', '.join(roles)}; people: "
                                 f"{', '.join(people) or 'nobody yet'}")
            rotation = await uow.oncall.rotation(role)
            holder = on_call(role, rotation, await uow.oncall.overrides(ending_after=now), now)
            order = [holder.person] if holder else []
            order += [p for p in (rotation.people if rotation else ()) if p not in order]
            label = role
        for candidate in order:
            routes = self._routes(people[candidate]) if candidate in people else []
            if routes:
                for pager, address in routes:
                    await self._queue_page(uow, incident, person=candidate, pager=pager, address=address,
                                           action="trigger",
                                           key=f"page:{incident.number}:hand:{key}:{candidate}:{pager}")
                record = await uow.escalations.get(incident.number)
                if record is not None:
                    await uow.escalations.save(record, record.state, paged=[(candidate, p, a) for p, a in routes])
                return (f"{by} paged {candidate}" + (f" ({label})" if label != candidate else "")
                        + f" via {', '.join(p for p, _ in routes)}: {reason}")
        return (f"Could not page {label}: nobody there has a contact point a pager here can reach "
                f"(pagers: {', '.join(self._pagers) or 'none configured'}).")

    # -- the tick -------------------------------------------------------------------------------------------

    async def fire_due(self) -> int:
        """Take every escalation step due now; returns how many were taken (by this process)."""
        taken = 0
        async with self._uow() as uow:
            now = self._clock.now()
            due = await uow.escalations.due(now, BATCH)
            incidents = await uow.incidents.get_many([r.incident_number for r in due]) if due else {}
            rotations = {r.role: r for r in await uow.oncall.rotations()} if due else {}
            overrides = await uow.oncall.overrides(ending_after=now) if due else []
            people = {p.name: p for p in await uow.oncall.people()} if due else {}
            for record in due:
                incident = incidents.get(record.incident_number)
                policy = self.policy(record.state.severity) if incident else None
                if incident is None or policy is None:
                    continue
                state, step = advance(record.state, policy, now=now)
                pages, lines = self._whom(incident, step, rotations, overrides, people, now) \
                    if isinstance(step, Page) else ([], [])
                # the step first (compare-and-set): a process that loses it queues nothing
                if not await uow.escalations.save(record, state, paged=[(n, p, a) for n, p, a, _ in pages]):
                    continue
                taken += 1
                for name, pager, address, key in pages:
                    await self._queue_page(uow, incident, person=name, pager=pager, address=address,
                                           action="trigger", key=key)
                if lines:
                    assert isinstance(step, Page)
                    await self._notify.queue(uow, incident, Message(text="\n".join(lines), incident_key=incident.key,
                                                                    kind="escalation"),
                                             dedupe_key=f"paged:{incident.number}:{step.level}:{step.attempt}")
                if isinstance(step, Wait):
                    await self._notify.queue(uow, incident, Message(
                        text=f"Level {step.level + 1} of the {incident.severity} policy pages in business hours only: "
                             f"the page goes out {step.until.astimezone(self._tz):%a %Y-%m-%d %H:%M %Z}.",
                        incident_key=incident.key, kind="escalation"))
            self.next_due = await uow.escalations.next_due()
            await uow.commit()
        if taken:
            await self._notify.deliver()
        return taken

    def _whom(self, incident: Incident, step: Page, rotations: dict[str, Rotation], overrides: list[Override],
              people: dict[str, Person], now: datetime) -> tuple[list[tuple[str, str, str, str]], list[str]]:
        """Whom to page for each role of the level, through which pager, and what to say in the thread. Someone
        no pager here can reach is reported and the next person of the rotation is paged instead."""
        pages: list[tuple[str, str, str, str]] = []
        lines: list[str] = []
        for role in step.roles:
            rotation = rotations.get(role)
            holder = on_call(role, rotation, overrides, now)
            order = [holder.person] if holder else []
            if rotation is not None:
                start = rotation.people.index(order[0]) if order and order[0] in rotation.people else 0
                order += [p for p in rotation.people[start:] + rotation.people[:start] if p not in order]
            reached = False
            for name in order:
                person = people.get(name)
                routes = self._routes(person) if person else []
                if not routes:
                    has = ", ".join(person.contact_points) if person else "nothing"
                    lines.append(f"{name} ({role}) has no working contact point (has: {has}; pagers here: "
                                 f"{', '.join(self._pagers) or 'none'}); paging the next in the rotation.")
                    continue
                pages += [(name, pager, address, f"page:{incident.number}:{step.level}:{step.attempt}:{name}:{pager}")
                          for pager, address in routes]
                lines.append(f"Paged {name} ({role}) via {', '.join(p for p, _ in routes)} — level {step.level + 1}, "
                             f"attempt {step.attempt}.")
                reached = True
                break
            if not reached:
                lines.append(f"Nobody for {role} could be paged: warroom oncall rotation add {role} … and "
                             "warroom oncall person add … --pagerduty <routing key>.")
        return pages, lines

    def _routes(self, person: Person) -> list[tuple[str, str]]:
        """(pager, address) pairs that can reach `person` with the pagers configured here."""
        routes = []
        for channel in self._pagers:
            address = getattr(person, channel, None)
            if address:
                routes.append((channel, address))
        return routes

    async def _queue_page(self, uow: UnitOfWork, incident: Incident, *, person: str, pager: str, address: str,
                          action: PageAction, key: str) -> None:
        rank = next((i for i, name in enumerate(self._ladder.level_names) if name == incident.severity), 0)
        request = PageRequest(action=action, incident_key=incident.key, address=address,
                              summary=f"{incident.key} [{incident.severity}] {incident.title}",
                              severity=_SEVERITY.get(rank, "warning"), person=person)
        await uow.outbox.enqueue(Outbound(
            platform=pager, operation="page", message=Message(text=request.summary, kind="escalation"),
            dedupe_key=key, page={"action": request.action, "incident_key": request.incident_key,
                                  "address": request.address, "summary": request.summary,
                                  "severity": request.severity, "person": person}), self._clock.now())


__all__: Sequence[str] = ("Paging",)
