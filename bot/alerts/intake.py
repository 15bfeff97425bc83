"""Alert intake: monitoring alerts become incidents, timeline entries or Declare proposals.

One alert group (an Alertmanager group, or one generic alert) is one incident:

- a firing group with no open incident is declared (rule action `declare`), proposed with a Declare button in
  the incidents channel (`propose`), or only counted (`ignore`, or no rule matched);
- a group whose incident is open gets a timeline entry and a thread post for each alert that is new, fires
  again or resolves; a repeat of an unchanged alert (Alertmanager re-sends every repeat_interval) is not news;
- when every alert of a group has resolved, the incident is resolved only if the rule said `auto_resolve`;
- a group whose incident was resolved or closed and fires again gets a new incident.

Each group is handled in one unit of work. The group's unique key and a compare-and-set on its incident make
two concurrent deliveries of the same alert declare once: the later transaction fails with ConcurrentChange,
is rolled back (its incident number with it) and retried, and then finds the incident the first one declared.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.alerts.rules import (
    Alert,
    AlertBatch,
    Decision,
    alert_line,
    decide,
    summary_lines,
)
from bot.delivery.notifier import Notifier
from bot.incident.declare import Declarer
from bot.incident.domain import Incident
from bot.ports import (
    AlertGroupRecord,
    Button,
    Clock,
    ConcurrentChange,
    Field,
    Message,
    Outbound,
    Reply,
    Room,
    UnitOfWork,
    UnitOfWorkFactory,
)
from playbooks.schema import AlertRules, Ladder

if TYPE_CHECKING:
    from bot.incident.service import Context

log = logging.getLogger("warroom.alerts")

ATTEMPTS = 5
_PROPOSAL = re.compile(r"^alert-([0-9]{1,12})$")


@dataclass
class IntakeResult:
    """What one request did, for the HTTP answer."""

    received: int = 0
    declared: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    proposed: int = 0
    ignored: int = 0
    resolved: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"received": self.received, "declared": self.declared, "updated": sorted(set(self.updated)),
                "proposed": self.proposed, "ignored": self.ignored, "resolved": self.resolved}


class AlertIntake:
    def __init__(self, *, notifier: Notifier, declarer: Declarer, uow: UnitOfWorkFactory, rules: AlertRules,
                 ladder: Ladder, room: Room, clock: Clock) -> None:
        self._notify = notifier
        self._declarer = declarer
        self._uow = uow
        self.rules = rules
        self._ladder = ladder
        self.room = room  # where alerts declare and propose (the incidents channel)
        self._clock = clock

    async def receive(self, batches: Sequence[AlertBatch]) -> IntakeResult:
        result = IntakeResult()
        for batch in batches:
            result.received += len(batch.alerts)
            decision = decide(batch, self.rules, self._ladder)
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    await self._receive(batch, decision, result)
                    break
                except ConcurrentChange as lost:
                    # Another request handled this group first; start over and build on what it stored.
                    log.info("alert group %s: %s (attempt %d); retrying", batch.key[:40], lost, attempt)
                    if attempt == ATTEMPTS:
                        raise
        await self._notify.deliver()
        return result

    # -- one group --------------------------------------------------------------------------------------

    async def _receive(self, batch: AlertBatch, decision: Decision, result: IntakeResult) -> None:
        local = IntakeResult()
        async with self._uow() as uow:
            now = self._clock.now()
            group = await uow.alerts.group(batch.key)
            incident = None
            if group is not None and group.incident_number is not None:
                incident = await uow.incidents.get(group.incident_number)
            if group is not None and incident is not None and incident.status.is_open:
                await self._update_incident(uow, batch, group, incident, local)
            elif batch.status == "resolved":
                await self._note_resolved(uow, batch, group, incident, local)
            elif group is not None and not await self._news(uow, group, batch):
                # Alertmanager re-sends a group every repeat_interval: alerts already known to be firing are not
                # news, even when their incident was resolved by hand meanwhile (no second incident for them).
                await self._record_alerts(uow, group.id, batch, now)
                await uow.alerts.update_group(group.id, expected_incident=group.incident_number, now=now,
                                              status="firing")
                local.ignored += 1
            elif decision.action == "declare":
                await self._declare(uow, batch, decision, group, incident, local)
            elif decision.action == "propose":
                await self._propose(uow, batch, decision, group, incident, local)
            else:  # an ignore rule, or no rule matched
                await self._link(uow, batch, group, None, state="ignored",
                                 rule=decision.rule.name if decision.rule else None, severity=None,
                                 auto_resolve=False, title=decision.title)
                local.ignored += 1
            await uow.commit()
        # Counted only once the transaction is in: a retried attempt does not count twice.
        result.declared += local.declared
        result.updated += local.updated
        result.proposed += local.proposed
        result.ignored += local.ignored
        result.resolved += local.resolved

    async def _update_incident(self, uow: UnitOfWork, batch: AlertBatch, group: AlertGroupRecord,
                               incident: Incident, result: IntakeResult) -> None:
        now = self._clock.now()
        known = await uow.alerts.alerts(group.id)
        changes: list[tuple[str, Alert]] = []
        for alert in batch.alerts:
            before = known.get(alert.fingerprint)
            if alert.status == "firing" and before is None:
                changes.append(("firing", alert))
            elif alert.status == "firing" and before is not None and before.status == "resolved":
                changes.append(("firing again", alert))
            elif alert.status == "resolved" and (before is None or before.status == "firing"):
                changes.append(("resolved", alert))
            await uow.alerts.record_alert(group.id, fingerprint=alert.fingerprint, status=alert.status,
                                          title=alert.title, labels=dict(alert.labels), now=now)
        states = {**{fp: a.status for fp, a in known.items()}, **{a.fingerprint: a.status for a in batch.alerts}}
        status = "firing" if "firing" in states.values() else "resolved"
        await uow.alerts.update_group(group.id, expected_incident=incident.number, now=now, status=status)
        if not changes:
            return  # a repeat notification of alerts we already know: not news
        for change, alert in changes:
            incident.record_alert(source=batch.source, text=f"alert {change}: {alert_line(alert)}", now=now)
        result.updated.append(incident.key)
        auto = status == "resolved" and group.auto_resolve and incident.status.is_open
        if auto:
            incident.resolve(by=batch.source, summary="all alerts resolved", now=now)
            result.resolved.append(incident.key)
        await uow.incidents.save(incident)
        await self._notify.replan(uow, incident)
        lines = "\n".join(f"• {change}: {alert_line(alert)}" for change, alert in changes[:10])
        if len(changes) > 10:
            lines += f"\n• … and {len(changes) - 10} more"
        tail = ""
        if auto:
            tail = (f"\n{incident.key} resolved automatically: every alert resolved (rule {group.rule} has "
                    f"auto_resolve). Reopen it with /incident reopen if the problem is not gone.")
        elif status == "resolved":
            tail = f"\nEvery alert has resolved; resolve {incident.key} once the fix is verified: /incident resolve"
        await self._notify.queue(uow, incident, Message(
            title=f"Alerts from {batch.source}", text=lines + tail, incident_key=incident.key, kind="alert"))
        if auto:
            await self._notify.queue_card(uow, incident)

    async def _declare(self, uow: UnitOfWork, batch: AlertBatch, decision: Decision, group: AlertGroupRecord | None,
                       previous: Incident | None, result: IntakeResult) -> Incident:
        assert decision.level is not None
        now = self._clock.now()
        firing = [a for a in batch.alerts if a.status == "firing"]
        context = " ".join(a.description or "" for a in firing[:5])
        incident = await self._declarer.declare_in(uow, room=self.room, reporter=batch.source, title=decision.title,
                                                  level=decision.level, context=context)
        rule = decision.rule.name if decision.rule else None
        await self._link(uow, batch, group, incident, state="declared", rule=rule, severity=decision.level.name,
                         auto_resolve=bool(decision.rule and decision.rule.auto_resolve), title=decision.title)
        for alert in batch.alerts:
            what = f"alert firing (rule {rule} → {decision.level.name})" if alert.status == "firing" \
                else "alert resolved"
            incident.record_alert(source=batch.source, text=f"{what}: {alert_line(alert)}", now=now)
        await uow.incidents.save(incident)
        if previous is not None:
            previous.record_alert(source=batch.source, now=now,
                                  text=f"alerts fired again after {previous.key} was {previous.status}; "
                                       f"declared {incident.key}")
            await uow.incidents.save(previous)
        await self._notify.queue(uow, incident, Message(
            title=f"Declared from {len(firing)} firing alert{'s' if len(firing) != 1 else ''} ({batch.source})",
            text=summary_lines(firing) + (f"\nSource: {firing[0].url}" if firing and firing[0].url else ""),
            footer=f"Rule {rule}: {decision.action} at {decision.level.name}"
                   + (", resolves itself when the alerts do" if decision.rule and decision.rule.auto_resolve else ""),
            incident_key=incident.key, kind="alert"))
        result.declared.append(incident.key)
        return incident

    async def _propose(self, uow: UnitOfWork, batch: AlertBatch, decision: Decision, group: AlertGroupRecord | None,
                       previous: Incident | None, result: IntakeResult) -> None:
        assert decision.level is not None
        now = self._clock.now()
        rule = decision.rule.name if decision.rule else None
        if group is not None and group.state == "proposed" and group.status == "firing":
            await self._record_alerts(uow, group.id, batch, now)
            await uow.alerts.update_group(group.id, expected_incident=None, now=now, status="firing",
                                          severity=decision.level.name, title=decision.title, rule=rule)
            return  # the Declare button posted for it is still there
        group = await self._link(uow, batch, group, None, state="proposed", rule=rule, severity=decision.level.name,
                                 auto_resolve=bool(decision.rule and decision.rule.auto_resolve),
                                 title=decision.title, proposed=True)
        firing = [a for a in batch.alerts if a.status == "firing"]
        again = f" ({previous.key} was {previous.status})" if previous is not None else ""
        message = Message(
            title=f"Alert: {decision.title}",
            text=(f"{len(firing)} alert{'s' if len(firing) != 1 else ''} firing from {batch.source}{again}. "
                  f"Rule {rule} suggests declaring a {decision.level.name} ({decision.level.label}) incident:\n"
                  + summary_lines(firing)),
            fields=(Field("Suggested severity", f"{decision.level.name} — {decision.level.label}"),),
            buttons=(Button("declare", f"Declare {decision.level.name}", f"alert-{group.id}", "primary"),),
            footer="Not an incident? Ignore this; it is noted when the alert resolves.",
            kind="alert")
        await self._post_in_channel(uow, message, key=f"alert-proposal:{group.id}:{uuid.uuid4().hex[:8]}")
        result.proposed += 1

    async def _note_resolved(self, uow: UnitOfWork, batch: AlertBatch, group: AlertGroupRecord | None,
                             incident: Incident | None, result: IntakeResult) -> None:
        """Resolved alerts of a group with no open incident: noted in its (resolved or closed) incident's
        timeline, or in the channel when a Declare proposal is still waiting."""
        now = self._clock.now()
        if group is None:
            result.ignored += 1  # resolved alerts we never saw firing: nothing to note
            return
        known = await uow.alerts.alerts(group.id)
        newly = [a for a in batch.alerts if a.status == "resolved" and known.get(a.fingerprint) is not None
                 and known[a.fingerprint].status == "firing"]
        await self._record_alerts(uow, group.id, batch, now)
        states = {**{fp: a.status for fp, a in known.items()}, **{a.fingerprint: a.status for a in batch.alerts}}
        status = "firing" if "firing" in states.values() else "resolved"
        await uow.alerts.update_group(group.id, expected_incident=group.incident_number, now=now, status=status)
        if incident is not None and newly:
            for alert in newly:
                incident.record_alert(source=batch.source, text=f"alert resolved: {alert_line(alert)}", now=now)
            await uow.incidents.save(incident)
            result.updated.append(incident.key)
        elif group.state == "proposed" and group.status == "firing" and status == "resolved":
            await self._post_in_channel(uow, Message(
                text=f"Resolved before anyone declared: {group.title} ({batch.source}). No need to press Declare.",
                kind="alert"), key=f"alert-resolved:{group.id}:{uuid.uuid4().hex[:8]}")
            result.ignored += 1
        else:
            result.ignored += 1

    async def _news(self, uow: UnitOfWork, group: AlertGroupRecord, batch: AlertBatch) -> bool:
        """Whether a firing batch holds an alert that is new to the group or fires again after resolving."""
        known = await uow.alerts.alerts(group.id)
        return any(a.status == "firing" and (known.get(a.fingerprint) is None
                                             or known[a.fingerprint].status == "resolved") for a in batch.alerts)

    # -- the Declare button -------------------------------------------------------------------------------

    async def declare_proposal(self, ctx: Context, value: str) -> Reply | None:
        match = _PROPOSAL.match(value)
        if match is None:
            return Reply(Message(text=f"Unknown alert {value!r}.", kind="error"), ok=False)
        group_id = int(match.group(1))
        for attempt in range(1, ATTEMPTS + 1):
            try:
                reply = await self._declare_proposal(ctx, group_id)
                break
            except ConcurrentChange:
                if attempt == ATTEMPTS:
                    raise
        await self._notify.deliver()
        return reply

    async def _declare_proposal(self, ctx: Context, group_id: int) -> Reply | None:
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            group = await uow.alerts.group_by_id(group_id)
            if group is None:
                return Reply(Message(text=f"No alert alert-{group_id} on record.", kind="error"), ok=False)
            previous = await uow.incidents.get(group.incident_number) if group.incident_number else None
            if previous is not None and previous.status.is_open:
                return Reply(Message(text=f"Already declared: {previous.key} ({previous.title}).", kind="reply"))
            level = self._ladder.level(group.severity or "") or self._ladder.level(self._ladder.default)
            assert level is not None
            now = self._clock.now()
            known = await uow.alerts.alerts(group.id)
            incident = await self._declarer.declare_in(
                uow, room=Room(ctx.room.platform, ctx.room.channel), reporter=ctx.actor.name, title=group.title,
                level=level)
            await uow.alerts.update_group(group.id, expected_incident=group.incident_number, now=now,
                                          state="declared", incident_number=incident.number)
            firing = [record for record in known.values() if record.status == "firing"]
            incident.record_alert(source=group.source, now=now,
                                  text=f"declared by {ctx.actor.name} from the alert proposal (rule {group.rule}); "
                                       f"{len(firing)} of {len(known)} alert(s) firing: "
                                       + "; ".join(r.title for r in firing[:10]))
            await uow.incidents.save(incident)
            await uow.commit()
        return Reply(Message(text=f"Declared {incident.key} ({level.name}): {incident.title}. Work it in its thread.",
                             kind="reply"))

    # -- helpers ----------------------------------------------------------------------------------------

    async def _link(self, uow: UnitOfWork, batch: AlertBatch, group: AlertGroupRecord | None,
                    incident: Incident | None, *, state: str, rule: str | None, severity: str | None,
                    auto_resolve: bool, title: str, proposed: bool = False) -> AlertGroupRecord:
        """Point the group at `incident` (None: no incident) and record its alerts afresh."""
        now = self._clock.now()
        number = incident.number if incident is not None else None
        if group is None:
            group = await uow.alerts.add_group(key=batch.key, source=batch.source, state=state, status=batch.status,
                                               title=title, incident_number=number, rule=rule, severity=severity,
                                               auto_resolve=auto_resolve, labels=dict(batch.common_labels), now=now)
        else:
            values: dict[str, object] = dict(state=state, status=batch.status, title=title, rule=rule,
                                             severity=severity, auto_resolve=auto_resolve,
                                             labels=dict(batch.common_labels), incident_number=number)
            if proposed:
                values["proposed_at"] = now
            await uow.alerts.update_group(group.id, expected_incident=group.incident_number, now=now, **values)
            # The alerts now belong to a new incident (or proposal): what the old one saw is not its history.
            await uow.alerts.forget_alerts(group.id)
        await self._record_alerts(uow, group.id, batch, now)
        return group

    async def _record_alerts(self, uow: UnitOfWork, group_id: int, batch: AlertBatch, now: datetime) -> None:
        for alert in batch.alerts:
            await uow.alerts.record_alert(group_id, fingerprint=alert.fingerprint, status=alert.status,
                                          title=alert.title, labels=dict(alert.labels), now=now)

    async def _post_in_channel(self, uow: UnitOfWork, message: Message, *, key: str) -> None:
        await uow.outbox.enqueue(Outbound(platform=self.room.platform, operation="post", message=message,
                                          dedupe_key=key, room=self.room), self._clock.now())


__all__ = ["AlertIntake", "IntakeResult"]
