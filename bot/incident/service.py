"""Use cases: run `/incident` commands, capture thread messages, fire due reminders, compile post-mortems.

Each use case is one unit of work: load the Incident, let the aggregate change it, save it together with
its new timeline events and re-planned reminders, commit — and only then talk to chat. Platform failures
after the commit are logged with the incident id and never undo recorded state.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol

from bot.briefs.report import Deliveries, delivery_lines
from bot.briefs.service import BriefService
from bot.delivery.batching import GroupCommit
from bot.delivery.notifier import Notifier
from bot.followups.service import FollowupService
from bot.incident import commands as cmd
from bot.incident import render
from bot.incident.declare import Declarer
from bot.incident.domain import (
    NOTE_TAGS,
    DomainError,
    EventKind,
    Incident,
    MessageRevision,
    Role,
    Status,
    TimelineEvent,
    chat_message,
    format_duration,
)
from bot.incident.key import key_of
from bot.incident.postmortem import PostmortemCompiler, compile_document, postmortem_filename
from bot.incident.reminders import escalation_target, plan
from bot.oncall.paging import Paging
from bot.oncall.render import board_message, saved_text
from bot.oncall.roster import Roster, RosterError
from bot.ports import (
    Actor,
    Attachment,
    ChatAdapter,
    Clock,
    CustomerMessageReceived,
    CustomerMessageStatus,
    Field,
    Message,
    Metrics,
    NoMetrics,
    Outbound,
    Reply,
    Room,
    UnitOfWork,
    UnitOfWorkFactory,
)
from bot.reports.stats import compute_stats, render_stats
from playbooks.loader import Playbooks
from playbooks.schema import Ladder, SeverityLevel

log = logging.getLogger("warroom.service")


FIRST_MINUTES = "first minutes"
NO_ISSUES = ("No GitHub repository is configured, so action items cannot become issues: set "
             "WARROOM_GITHUB_REPOSITORY and WARROOM_GITHUB_TOKEN (docs/github.md).")
TRIAGE = "triage"
REMINDER_BATCH = 500


@dataclass(frozen=True)
class Context:
    """Who ran a command, where, and the platform's delivery id (a retry with the same id is ignored)."""

    actor: Actor
    room: Room
    delivery_id: str | None = None
    default_incident: int | None = None  # where the room names no incident (a WhatsApp operator's current one)

    @property
    def origin(self) -> tuple[str, str]:
        """Where the person reads the reply (platform, address): their own mirror copy is not sent there."""
        return (self.room.platform, self.room.channel)


def _error(text: str) -> Reply:
    return Reply(Message(text=text, kind="error"), ok=False)


def _info(text: str, **extra: Any) -> Reply:
    return Reply(Message(text=text, kind="reply", **extra))


@dataclass(frozen=True)
class _Said:
    """A human message waiting for its batch (see `capture_message`)."""

    room: Room
    author: str
    text: str
    message_id: str
    delivery_id: str | None
    at: datetime | None = None  # when the platform says it was written


class SignInLinks(Protocol):
    """The web pages' one-time links (bot.web.signin.SignIn), as `/incident web` uses them."""

    async def issue_link(self, *, name: str) -> str: ...


class AlertProposals(Protocol):
    """Alert intake as the incident service sees it: a proposed alert's Declare button pressed."""

    async def declare_proposal(self, ctx: Context, value: str) -> Reply | None: ...


@dataclass
class _Change:
    """What a command did: what to announce in the incident's room and whether the card changed."""

    announce: Message | None = None
    card_changed: bool = True
    reply: Reply | None = None
    # code host work to queue in the same transaction (open an action item's issue, close it)
    followups: tuple[Callable[[UnitOfWork, Incident], Awaitable[None]], ...] = ()


class IncidentService:
    """The incident use cases. Everything it needs is handed in by the composition root (bot/app/bootstrap.py)."""

    def __init__(self, *, uow: UnitOfWorkFactory, chat: Mapping[str, ChatAdapter], playbooks: Playbooks,
                 ladder: Ladder, clock: Clock, tz: tzinfo, postmortem_dir: Path, notifier: Notifier,
                 declarer: Declarer, briefs: BriefService, oncall: Roster, paging: Paging,
                 compiler: PostmortemCompiler, alerts: AlertProposals | None = None,
                 metrics: Metrics | None = None, sign_in: SignInLinks | None = None,
                 followups: FollowupService | None = None) -> None:
        self._uow = uow
        self._chat = chat
        self._playbooks = playbooks
        self.ladder = ladder
        self._clock = clock
        self._tz = tz
        self._postmortem_dir = postmortem_dir
        self._compiler = compiler  # shared with the pull-request follow-ups: one template, one compiler
        self._notify = notifier
        self._declarer = declarer
        self.briefs = briefs
        self.oncall = oncall
        self.paging = paging
        # Alert intake: its Declare buttons come back through press_button.
        self._alerts = alerts
        self.metrics: Metrics = metrics or NoMetrics()
        self._sign_in = sign_in
        # The code host (GitHub): post-mortem pull requests; None when no repository is configured.
        self._followups = followups
        # Chat messages are most of the traffic: those that arrive together are written in one transaction, and
        # under load a batch waits up to 5 ms for more (a person's message is none the worse for it).
        self._said: GroupCommit[_Said, bool] = GroupCommit(self._capture_batch, delay=0.005)
        # When the next pending reminder is due, as the last reminder round saw it (the ticker wakes for it).
        self.next_reminder_due: datetime | None = None
        self._handlers: dict[type, Callable[[Context, Any], Awaitable[Reply | None]]] = {
            cmd.Declare: self._declare,
            cmd.ListIncidents: self._list,
            cmd.ShowIncident: self._show,
            cmd.Help: self._help,
            cmd.ShowPlaybook: self._playbook,
            cmd.CompilePostmortem: self._postmortem,
            cmd.LinkTenants: self._affects,
            cmd.Follow: self._follow,
            cmd.Unfollow: self._follow,
            cmd.UseIncident: self._use,
            cmd.PrepareBrief: self._prepare_brief,
            cmd.SendBrief: self._send_brief,
            cmd.Stats: self._stats,
            cmd.PublishUpdate: self._publish,
            cmd.WebSignIn: self._web_link,
            cmd.SyncActions: self._sync_actions,
            cmd.ShowOnCall: self._show_oncall,
            cmd.OverrideOnCall: self._override_oncall,
            cmd.PageByHand: self._page_by_hand,
            cmd.Escalate: self._escalate,
        }
        self._changes: dict[type, Callable[[Context, Incident, Any, datetime], _Change]] = {
            cmd.Acknowledge: self._ack, cmd.PostStatus: self._status, cmd.ChangeSeverity: self._severity,
            cmd.AssignRole: self._role, cmd.AddNote: self._note, cmd.TickChecklist: self._check,
            cmd.Snooze: self._snooze, cmd.SetFreeze: self._freeze, cmd.AddAction: self._action,
            cmd.CompleteAction: self._action_done, cmd.Mitigate: self._mitigate, cmd.Resolve: self._resolve,
            cmd.Close: self._close, cmd.Reopen: self._reopen,
        }

    # -- entry points -------------------------------------------------------------------------------

    def parse(self, text: str) -> cmd.Command | cmd.UsageError:
        """`/incident …` text as a typed command, or what was wrong with it (severities of this ladder)."""
        return cmd.parse(text, severities=self.ladder.level_names)

    async def run_command(self, ctx: Context, text: str) -> Reply | None:
        """Run `/incident …` text. Returns the reply for the person who ran it (None for a duplicate)."""
        parsed = self.parse(text)
        if isinstance(parsed, cmd.UsageError):
            return _error(str(parsed))
        return await self.execute(ctx, parsed)

    async def concerned_incident(self, ctx: Context, command: cmd.Command) -> int | None:
        """The incident a command is about, the way commands find it: the one it names, else the room's, else
        the person's current one; None if that incident does not exist."""
        async with self._uow() as uow:
            number = getattr(command, "incident", None)
            if number is None:
                incident = await uow.incidents.get_by_room(ctx.room)
                if incident is not None:
                    return incident.number
                number = ctx.default_incident
            return number if number is not None and await uow.incidents.get(number) is not None else None

    async def execute(self, ctx: Context, command: cmd.Command) -> Reply | None:
        handler = self._handlers.get(type(command))
        started = time.perf_counter()
        ok = False
        try:
            if handler is not None:
                reply = await handler(ctx, command)
            else:
                reply = await self._mutate(ctx, command, self._changes[type(command)])
            ok = reply is None or reply.ok
            return reply
        except DomainError as problem:
            return _error(str(problem))
        finally:
            self.metrics.command_finished(command=type(command).__name__, seconds=time.perf_counter() - started,
                                          ok=ok)

    async def press_button(self, ctx: Context, *, action: str, value: str) -> Reply | None:
        """Card and nudge buttons: Acknowledge, Resolve, Snooze, Send brief (Post update opens a form in the
        adapter)."""
        if action == "brief_send":
            if not value.isdigit():
                return _error(f"Unknown brief {value!r}.")
            return await self.execute(ctx, cmd.SendBrief(brief_id=int(value)))
        if action == "declare":
            if self._alerts is None:
                return _error("Alert intake is not set up here, so there is nothing to declare from this button.")
            return await self._alerts.declare_proposal(ctx, value)
        parsed = cmd.parse(f"show {value}")
        number = parsed.incident if isinstance(parsed, cmd.ShowIncident) else None
        commands = {"ack": cmd.Acknowledge(incident=number), "resolve": cmd.Resolve(incident=number),
                    "snooze": cmd.Snooze(incident=number, duration=timedelta(minutes=30))}
        if number is None or action not in commands:
            return _error(f"Unknown button {action!r} for {value!r}.")
        return await self.execute(ctx, commands[action])

    async def pager_acknowledged(self, *, incident_key: str, by: str, delivery_id: str) -> Reply | None:
        """A pager (PagerDuty's webhook) says someone acknowledged the page for `incident_key` (INC-7): the
        incident is acknowledged by them, which stops every other page. A redelivery (same id) is ignored."""
        parsed = cmd.parse(f"show {incident_key}")
        number = parsed.incident if isinstance(parsed, cmd.ShowIncident) else None
        if number is None:
            return _error(f"Not a warroom incident key: {incident_key!r}.")
        ctx = Context(actor=Actor(id=f"pager:{by}", name=by), room=Room("pager", "webhook"),
                      delivery_id=f"pager:{delivery_id}" if delivery_id else None)
        return await self.execute(ctx, cmd.Acknowledge(incident=number))

    async def capture_message(self, *, room: Room, actor: Actor, text: str, message_id: str,
                              delivery_id: str | None = None, at: datetime | None = None) -> bool:
        """A human message in a room; recorded in the timeline when the room is an incident's. True if kept.
        `at`: the platform's own time for it (the timeline's time; arrival time without it). Returns once the
        message is committed (with the others that arrived at the same time), with any edit, delete or pin of
        it that arrived first already applied."""
        return await self._said.submit(_Said(room, actor.name, text, message_id, delivery_id, at))

    async def _capture_batch(self, batch: Sequence[_Said]) -> list[bool]:
        async with self._uow() as uow:
            now = self._clock.now()
            # Rooms first: chatter outside incident rooms is most traffic and leaves no delivery row behind.
            homes = await uow.incidents.numbers_by_room({said.room for said in batch})
            fresh = await uow.deliveries.first_times(
                {said.delivery_id for said in batch if said.delivery_id and said.room in homes}, now)
            kept: list[bool] = []
            events: list[tuple[int, TimelineEvent]] = []
            for said in batch:
                number = homes.get(said.room)
                keep = number is not None and (said.delivery_id is None or said.delivery_id in fresh)
                if keep and said.delivery_id:
                    fresh.discard(said.delivery_id)  # the same delivery twice in one batch is kept once
                if keep and number is not None:
                    events.append((number, chat_message(by=said.author, text=said.text, now=now,
                                                        message_ref=said.message_id, at=said.at)))
                kept.append(keep)
            await uow.incidents.append_timeline(events)
            await uow.commit()
        if events:
            # Revisions that came first were held (see `revise_message`); looked for only after the messages are
            # committed, so that of a capture and a revision racing (here or on another replica) at least one
            # sees the other's commit.
            await self._apply_held_revisions({(number, event.message_ref) for number, event in events
                                              if event.message_ref})
        return kept

    async def _apply_held_revisions(self, messages: set[tuple[int, str]]) -> None:
        async with self._uow() as uow:
            if await uow.incidents.apply_held_revisions(messages):
                await uow.commit()

    async def revise_message(self, *, room: Room, message_id: str, text: str | None = None, deleted: bool = False,
                             pinned: bool = False, delivery_id: str | None = None) -> bool:
        """An edit, delete or pin of a message in an incident's room updates (or blanks and marks deleted, or
        pins) its timeline entry. Platforms deliver these out of order (a replay after a reconnect, concurrent
        webhooks): one that arrives before its message is captured is held and applied by the capture, so any
        order ends in the same timeline (`MessageRevision`). False when the room is no incident's, or a repeat."""
        revision = MessageRevision(text=text, deleted=deleted, pinned=pinned)
        async with self._uow() as uow:
            number = (await uow.incidents.numbers_by_room([room])).get(room)
            if number is None or not await self._notify.first_delivery(uow, delivery_id):
                return False
            applied = await uow.incidents.revise_message(number, message_id, revision)
            if not applied:
                await uow.incidents.hold_revision(number, message_id, revision, self._clock.now())
            await uow.commit()
        if not applied:
            # The message may have been committed since we looked (the capture's own look for held revisions
            # may have run before ours was committed): look once more, now that ours is.
            await self._apply_held_revisions({(number, message_id)})
        return True

    async def fire_due_reminders(self) -> int:
        """Fire every reminder due now; returns how many fired. Safe to call from several processes."""
        fired = 0
        while True:
            batch = await self._fire_batch()
            fired += batch
            if batch < REMINDER_BATCH:
                return fired

    async def tick(self) -> int:
        """The scheduler's heartbeat: fire due reminders, apply delivery statuses that came before their send
        was recorded, then retry whatever the outbox still holds. Delivering in the background (a server), the
        tick only wakes the outbox's own drain task: a slow chat API never makes a tick overrun (and skip)."""
        fired = await self.fire_due_reminders()
        try:
            await self.apply_early_statuses()
        except Exception:
            log.exception("applying early delivery statuses failed; the next tick retries")
        await self._notify.deliver()
        return fired

    async def apply_early_statuses(self) -> int:
        """Statuses (WhatsApp webhooks) kept because their send was not recorded yet, now that it is."""
        async with self._uow() as uow:
            events = await uow.customers.take_early_statuses()
            for event in events:
                await self._apply_status(uow, event)
            await uow.commit()
        return len(events)

    async def _apply_status(self, uow: UnitOfWork, event: CustomerMessageStatus) -> None:
        incident, message = await self.briefs.status(uow, event)
        if incident is None and event.status == "failed" and event.window_closed:
            await self._resend_as_template(uow, event)
        if incident is not None:
            await uow.incidents.save(incident)
            if message is not None:
                await self._notify.queue(uow, incident, message)

    async def incidents(self, *, open_only: bool) -> list[Incident]:
        async with self._uow() as uow:
            return await uow.incidents.list(open_only=open_only)

    async def room_of(self, number: int) -> Room | None:
        """Where INC-n lives in chat, or None if it has no room (unknown incident, or room not opened)."""
        async with self._uow() as uow:
            incident = await uow.incidents.get(number)
        return self._room_of(incident) if incident else None

    async def export_postmortem(self, number: int, fmt: str = "md") -> str:
        """The post-mortem text without recording anything (for `warroom postmortem` in scripts)."""
        async with self._uow() as uow:
            incident = await uow.incidents.get(number)
            if incident is None:
                raise DomainError(await self._unknown_incident(uow, number))
            timeline = await uow.incidents.timeline(number)
            deliveries = await uow.customers.brief_deliveries(number)
        return self._compile(incident, timeline, fmt, deliveries)

    def level(self, name: str) -> SeverityLevel:
        level = self.ladder.level(name)
        if level is None:
            raise DomainError(f"Unknown severity '{name}'. This workspace uses {', '.join(self.ladder.level_names)}.")
        return level

    # -- declare ------------------------------------------------------------------------------------

    async def _declare(self, ctx: Context, command: cmd.Declare) -> Reply | None:
        level = self.level(command.severity or self.ladder.default)
        if command.issue:
            return await self._log_as_issue(ctx, command, level)
        if command.tenants:
            async with self._uow() as uow:
                await self.briefs.known_tenants(uow, command.tenants)
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            incident = await self._declarer.declare_in(uow, room=ctx.room, reporter=ctx.actor.name, title=command.title,
                                             level=level, impact=command.impact, tenants=command.tenants)
            await uow.commit()
        await self._notify.deliver()
        if ctx.room.platform not in self._chat:
            text = f"Declared {incident.key}; no chat adapter for {ctx.room.platform!r} to open its room."
        else:
            text = f"Declared {incident.key} ({level.name}): {incident.title}. Work it in its thread."
        return Reply(Message(text=text, kind="reply"), incident=incident.number)

    async def _log_as_issue(self, ctx: Context, command: cmd.Declare, level: SeverityLevel) -> Reply | None:
        """000 "Log it": a backlog severity becomes an issue on the code host; no incident, no room, no pages."""
        followups = self._followups
        if followups is None or not followups.issues:
            return _error(NO_ISSUES)
        if level.update_cadence is not None:  # a severity someone is nudged to update is worked, not logged
            return _error(f"{level.name} ({level.label}) is worked as an incident, not logged: --issue is for "
                          f"severities without an update cadence (P3: \"log it\").")
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            await followups.queue_logged_issue(uow, room=ctx.room, title=command.title, impact=command.impact,
                                               severity=level.name, by=ctx.actor.name)
            await uow.commit()
        await self._notify.deliver()
        return _info(f"Logging {level.name} \"{command.title}\" as an issue; nobody is paged. The link follows here.")

    # -- state changes ------------------------------------------------------------------------------

    async def _mutate(self, ctx: Context, command: cmd.Command,
                      change: Callable[[Context, Incident, Any, datetime], _Change]) -> Reply | None:
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            incident = await self._incident_for(uow, ctx, command)
            now = self._clock.now()
            outcome = change(ctx, incident, command, now)
            await uow.incidents.save(incident)
            await self._notify.replan(uow, incident)
            await self.paging.follow(uow, incident, by=ctx.actor.name)  # answered: pages stop; resolved: resolve
            if outcome.announce is not None:
                await self._notify.queue(uow, incident, outcome.announce, originator=ctx.origin)
            if outcome.card_changed:
                await self._notify.queue_card(uow, incident)
            for queue in outcome.followups:
                await queue(uow, incident)
            await uow.commit()
        await self._notify.deliver()
        if outcome.reply is not None:
            return outcome.reply
        if self._is_home(incident, ctx) or outcome.announce is None:
            return None
        return _info(f"Done — posted in {incident.key}'s thread: {outcome.announce.text or outcome.announce.title}")

    def _ack(self, ctx: Context, incident: Incident, command: cmd.Acknowledge, now: datetime) -> _Change:
        elapsed = incident.acknowledge(by=ctx.actor.name, now=now)
        level = self.level(incident.severity)
        verdict = ""
        if level.response_target is not None:
            met = "met" if elapsed <= level.response_target else "missed"
            verdict = f" — response target {render.target_text(level.response_target)}: {met}"
        return _Change(Message(text=f"{ctx.actor.name} acknowledged {incident.key} after "
                                    f"{format_duration(elapsed)}{verdict}.", kind="update"))

    def _status(self, ctx: Context, incident: Incident, command: cmd.PostStatus, now: datetime) -> _Change:
        incident.post_status(by=ctx.actor.name, text=command.text, now=now)
        level = self.level(incident.severity)
        next_due = f" Next update due by {render.clock(now + level.update_cadence, self._tz)}." \
            if level.update_cadence and incident.status.is_open else ""
        return _Change(Message(text=f"Status update from {ctx.actor.name}: {command.text.rstrip('.')}.{next_due}",
                               incident_key=incident.key, kind="update", mentions_from=ctx.room.platform),
                       card_changed=False)

    def _severity(self, ctx: Context, incident: Incident, command: cmd.ChangeSeverity, now: datetime) -> _Change:
        level = self.level(command.level)
        previous = incident.change_severity(by=ctx.actor.name, to=level.name, now=now)
        cadence = (f"updates every {format_duration(level.update_cadence)}" if level.update_cadence
                   else "no update nudges")
        return _Change(Message(
            text=(f"Severity {previous} → {level.name} ({level.label}) by {ctx.actor.name}. Targets now: respond "
                  f"{render.target_text(level.response_target)}, resolve "
                  f"{render.target_text(level.resolution_target)}; {cadence}."),
            incident_key=incident.key, kind="update"))

    def _role(self, ctx: Context, incident: Incident, command: cmd.AssignRole, now: datetime) -> _Change:
        role = Role(command.role)
        previous = incident.assign_role(by=ctx.actor.name, role=role, user=command.user, now=now)
        was = f" (was {previous})" if previous and previous != command.user else ""
        return _Change(Message(text=f"{command.user} is now {role.title}{was}.", incident_key=incident.key,
                               kind="update", mentions_from=ctx.room.platform))

    def _note(self, ctx: Context, incident: Incident, command: cmd.AddNote, now: datetime) -> _Change:
        kind = NOTE_TAGS[command.tag] if command.tag else EventKind.NOTE
        occurred = None
        if command.at is not None:
            local_now = now.astimezone(self._tz)
            occurred = datetime.combine(local_now.date(), command.at, tzinfo=self._tz)
            if occurred > local_now:  # "--at 23:50" typed just after midnight means yesterday
                occurred -= timedelta(days=1)
        incident.add_note(by=ctx.actor.name, text=command.text, now=now, kind=kind, occurred_at=occurred)
        label = {"rootcause": "root cause", "contributing": "contributing factor", "wentwell": "what went well"}
        tag = f" ({label[command.tag]})" if command.tag else ""
        when = f" at {render.clock(occurred, self._tz)}" if occurred else ""
        return _Change(Message(text=f"Noted{tag}{when} by {ctx.actor.name}: {command.text}", incident_key=incident.key,
                               kind="update", mentions_from=ctx.room.platform), card_changed=False)

    def _check(self, ctx: Context, incident: Incident, command: cmd.TickChecklist, now: datetime) -> _Change:
        item = incident.tick_checklist(by=ctx.actor.name, number=command.item, now=now)
        done = sum(1 for i in incident.checklist if i.checked_at)
        return _Change(Message(text=f"✓ {item.number}. {item.text} — {ctx.actor.name}, "
                                    f"{render.clock(now, self._tz)} ({done}/{len(incident.checklist)} done)",
                               incident_key=incident.key, kind="update"), card_changed=False)

    def _snooze(self, ctx: Context, incident: Incident, command: cmd.Snooze, now: datetime) -> _Change:
        level = self.level(incident.severity)
        if level.update_cadence is None:
            raise DomainError(f"{incident.key} ({level.name}) has no update nudges to snooze.")
        incident.snooze(by=ctx.actor.name, until=now + command.duration, now=now)
        next_nudge = plan(incident, level, self.ladder, self._tz)[0].due_at
        return _Change(Message(text=f"{ctx.actor.name} snoozed update nudges: next one at "
                                    f"{render.clock(next_nudge, self._tz)}.", incident_key=incident.key,
                               kind="update"), card_changed=False)

    def _freeze(self, ctx: Context, incident: Incident, command: cmd.SetFreeze, now: datetime) -> _Change:
        incident.set_freeze(by=ctx.actor.name, on=command.on, now=now)
        text = (f"Deploy freeze ON for {incident.key} by {ctx.actor.name}: no deploys to the affected environment "
                f"until it is lifted (/incident freeze off)." if command.on
                else f"Deploy freeze lifted for {incident.key} by {ctx.actor.name}.")
        return _Change(Message(text=text, incident_key=incident.key, kind="update"))

    def _action(self, ctx: Context, incident: Incident, command: cmd.AddAction, now: datetime) -> _Change:
        followups = self._followups
        if command.issue and (followups is None or not followups.issues):
            raise DomainError(NO_ISSUES)
        item = incident.add_action(by=ctx.actor.name, text=command.text, owner=command.owner, due=command.due, now=now)
        details = "".join((f", owner {item.owner}" if item.owner else "", f", due {item.due}" if item.due else ""))
        issue = "; opening it as an issue" if command.issue else ""
        queued = (lambda uow, incident: followups.queue_action_issue(uow, incident, item=item.number),) \
            if command.issue and followups is not None else ()
        return _Change(Message(text=f"Action item {item.number} added{details}: {item.text}{issue}",
                               incident_key=incident.key, kind="update"), card_changed=False, followups=queued)

    def _action_done(self, ctx: Context, incident: Incident, command: cmd.CompleteAction, now: datetime) -> _Change:
        item = incident.complete_action(by=ctx.actor.name, number=command.item, now=now)
        followups = self._followups
        issue = item.issue
        queued = (lambda uow, incident: followups.queue_issue_state(uow, incident, issue=issue, open=False),) \
            if issue is not None and followups is not None and followups.issues else ()
        closing = f"; closing issue #{issue}" if queued else ""
        return _Change(Message(text=f"Action item {item.number} done ({ctx.actor.name}): {item.text}{closing}",
                               incident_key=incident.key, kind="update"), card_changed=False, followups=queued)

    async def _sync_actions(self, ctx: Context, command: cmd.SyncActions) -> Reply | None:
        followups = self._followups
        if followups is None or not followups.issues:
            return _error(NO_ISSUES)
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            incident = await self._incident_for(uow, ctx, command)
            missing = [item.number for item in incident.actions if item.issue is None and not item.is_done]
            for number in missing:
                await followups.queue_action_issue(uow, incident, item=number)
            await uow.commit()
        await self._notify.deliver()
        if not missing:
            return _info(f"Every open action item of {incident.key} has an issue already.")
        return _info(f"Opening issues for {incident.key}'s action items {', '.join(map(str, missing))}; the links "
                     "follow in the thread.")

    async def issue_changed(self, *, issue: int, open: bool, actor: str, delivery_id: str | None = None) -> bool:
        """The code host says an issue was closed or reopened (a signed webhook): its action item follows.
        False when the issue is no action item's, or the delivery was seen before; nothing changes then."""
        async with self._uow() as uow:
            number = await uow.incidents.number_of_issue(issue)
            incident = await uow.incidents.get(number) if number is not None else None
            item = incident.action_of_issue(issue) if incident is not None else None
            if incident is None or item is None or not await self._notify.first_delivery(uow, delivery_id):
                return False
            now = self._clock.now()
            if open and item.is_done:
                incident.reopen_action(by=actor, number=item.number, now=now)
                text = f"Action item {item.number} reopened on GitHub by {actor} (#{issue}): {item.text}"
            elif not open and not item.is_done:
                incident.complete_action(by=actor, number=item.number, now=now)
                text = f"Action item {item.number} done — issue #{issue} closed on GitHub by {actor}: {item.text}"
            else:
                await uow.commit()  # already so (our own close coming back): only the delivery id is kept
                return True
            await uow.incidents.save(incident)
            await self._notify.replan(uow, incident)
            await self._notify.queue(uow, incident, Message(text=text, incident_key=incident.key, kind="update"))
            await uow.commit()
        await self._notify.deliver()
        return True

    def _mitigate(self, ctx: Context, incident: Incident, command: cmd.Mitigate, now: datetime) -> _Change:
        incident.mitigate(by=ctx.actor.name, now=now)
        return _Change(Message(text=f"{incident.key} mitigated by {ctx.actor.name}: impact stopped. "
                                    f"Resolve once the fix is verified.", incident_key=incident.key, kind="update"))

    def _resolve(self, ctx: Context, incident: Incident, command: cmd.Resolve, now: datetime) -> _Change:
        incident.resolve(by=ctx.actor.name, summary=command.summary, now=now)
        level = self.level(incident.severity)
        took = now - incident.declared_at
        verdict = ""
        if level.resolution_target is not None:
            verdict = f" (resolution target {format_duration(level.resolution_target)}: " \
                      f"{'met' if took <= level.resolution_target else 'missed'})"
        due = f" Post-mortem due within {format_duration(level.postmortem_due)}: /incident postmortem." \
            if level.postmortem_due else " Compile a post-mortem with /incident postmortem if it helps."
        summary = f" Summary: {command.summary}." if command.summary else ""
        return _Change(Message(text=f"{incident.key} resolved by {ctx.actor.name} after {format_duration(took)}"
                                    f"{verdict}.{summary}{due}", incident_key=incident.key, kind="update"))

    def _close(self, ctx: Context, incident: Incident, command: cmd.Close, now: datetime) -> _Change:
        incident.close(by=ctx.actor.name, now=now)
        return _Change(Message(text=f"{incident.key} closed by {ctx.actor.name}.", incident_key=incident.key,
                               kind="update"))

    def _reopen(self, ctx: Context, incident: Incident, command: cmd.Reopen, now: datetime) -> _Change:
        incident.reopen(by=ctx.actor.name, now=now)
        return _Change(Message(text=f"{incident.key} reopened by {ctx.actor.name}; reminders resume.",
                               incident_key=incident.key, kind="update"))

    # -- following from phones (WhatsApp operators) -------------------------------------------------------

    async def _follow(self, ctx: Context, command: cmd.Follow | cmd.Unfollow) -> Reply | None:
        chat = self._chat.get(ctx.room.platform)
        if chat is None or chat.capabilities.threads:
            return _error("Follow an incident from WhatsApp; here, its thread is where its updates are.")
        async with self._uow() as uow:
            incident = await self._incident_for(uow, ctx, command)
            number, platform, address = incident.number, ctx.room.platform, ctx.room.channel
            if isinstance(command, cmd.Follow):
                changed = await uow.operators.follow(number=number, platform=platform, address=address,
                                                     now=self._clock.now())
                text = (f"Following {incident.key}: its updates come to this phone." if changed
                        else f"You already follow {incident.key}.")
            else:
                changed = await uow.operators.unfollow(number=number, platform=platform, address=address)
                text = f"No longer following {incident.key}." if changed else f"You were not following {incident.key}."
            level = self.level(incident.severity)
            await uow.commit()
        if isinstance(command, cmd.Unfollow):
            return _info(text, incident_key=incident.key)
        summary = render.incident_summary(incident, level, self._clock.now(), self._tz)
        return Reply(replace(summary, text=text, kind="reply"))

    async def _use(self, ctx: Context, command: cmd.UseIncident) -> Reply:
        async with self._uow() as uow:
            incident = await self._incident_for(uow, ctx, command)
        summary = render.incident_summary(incident, self.level(incident.severity), self._clock.now(), self._tz)
        return Reply(replace(summary, text=f"Now working on {incident.key}: your messages go to its timeline.",
                             kind="reply"))

    async def operator_message(self, ctx: Context, *, text: str, message_id: str,
                               at: datetime | None = None) -> Reply | None:
        """A plain (non-command) message from an operator's phone: into their current incident's timeline,
        and on to its room and its other followers."""
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            if ctx.default_incident is None:
                return _info("You are not working on an incident yet. Declare one (inc declare P1 \"…\"), or "
                             "pick one: inc use INC-7 (inc list shows them).")
            incident = await uow.incidents.get(ctx.default_incident)
            if incident is None:
                return _error(await self._unknown_incident(uow, ctx.default_incident))
            incident.capture_message(by=ctx.actor.name, text=text, now=self._clock.now(), message_ref=message_id,
                                     at=at)
            await uow.incidents.save(incident)
            room = self._room_of(incident)
            own_chat = room is not None and (room.platform, room.channel) == (ctx.room.platform, ctx.room.channel)
            await self._notify.queue(uow, incident, Message(text=f"💬 {ctx.actor.name} (WhatsApp): {text}",
                                                     incident_key=incident.key, kind="info"),
                                     to_room=not own_chat, originator=ctx.origin)
            await uow.commit()
        await self._notify.deliver()
        return None

    # -- customer briefs ------------------------------------------------------------------------------

    async def _affects(self, ctx: Context, command: cmd.LinkTenants) -> Reply | None:
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            incident = await self._incident_for(uow, ctx, command)
            tenants = await self.briefs.known_tenants(uow, command.tenants)
            added = incident.link_tenants(by=ctx.actor.name, tenants=tenants, now=self._clock.now())
            await uow.incidents.save(incident)
            announce = Message(text=f"{incident.key} affects {', '.join(incident.tenants)} (added {', '.join(added)} "
                                    f"by {ctx.actor.name}). Brief them: /incident brief all-affected",
                               incident_key=incident.key, kind="update")
            await self._notify.queue(uow, incident, announce, originator=ctx.origin)
            await uow.commit()
        await self._notify.deliver()
        return self._confirmation(incident, ctx, announce)

    async def _prepare_brief(self, ctx: Context, command: cmd.PrepareBrief) -> Reply | None:
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            incident = await self._incident_for(uow, ctx, command)
            statuses = [e.text for e in await uow.incidents.timeline(incident.number)
                        if e.kind is EventKind.STATUS_UPDATE]
            level = self.ladder.level(incident.severity)
            brief = await self.briefs.prepare(uow, incident=incident, command=command, by=ctx.actor.name,
                                              last_status=statuses[-1] if statuses else None,
                                              cadence=level.update_cadence if level else None)
            preview = await self.briefs.preview(uow, brief, incident)
            await uow.commit()
        if command.send:
            return await self.execute(ctx, cmd.SendBrief(incident=incident.number, brief_id=brief.id))
        return preview

    async def _send_brief(self, ctx: Context, command: cmd.SendBrief) -> Reply | None:
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            brief = await uow.customers.brief(command.brief_id)
            if brief is None:
                raise DomainError(f"No brief #{command.brief_id}; prepare one with /incident brief <tenant>.")
            incident = await uow.incidents.get(brief.incident_number)
            assert incident is not None
            announce = await self.briefs.send(uow, brief=brief, incident=incident, by=ctx.actor.name)
            await uow.incidents.save(incident)
            await self._notify.replan(uow, incident)
            await self._notify.queue(uow, incident, announce, originator=ctx.origin)
            await uow.commit()
        await self._notify.deliver()
        return self._confirmation(incident, ctx, announce)

    async def customer_event(self, event: CustomerMessageReceived | CustomerMessageStatus) -> None:
        """A WhatsApp webhook event: a customer's message (window, STOP/START, reply into the thread) or a
        delivery status of a brief. Each event is processed once, however often WhatsApp retries it."""
        key = (f"wa:{event.message_id}" if isinstance(event, CustomerMessageReceived)
               else f"wa-status:{event.message_id}:{event.status}")
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, key):
                return
            if isinstance(event, CustomerMessageReceived):
                incident, message = await self.briefs.received(uow, event)
                if incident is not None:
                    await uow.incidents.save(incident)
                    if message is not None:
                        await self._notify.queue(uow, incident, message)
            else:
                await self._apply_status(uow, event)
            await uow.commit()
        await self._notify.deliver()

    async def _resend_as_template(self, uow: UnitOfWork, event: CustomerMessageStatus) -> None:
        """Meta often refuses free text outside the 24-hour window only later, in a `failed` status: a message
        to an operator's phone then goes again as the approved operator template."""
        sent = await uow.outbox.find_sent(platform="whatsapp", platform_message_id=event.message_id)
        template = next((t for t in self._playbooks.briefs.values() if t.kind == "operator"), None)
        if sent is None or sent.room is None or template is None:
            return
        key = sent.message.incident_key or sent.room.thread or "warroom"
        text = " ".join((sent.message.title or "", sent.message.text)).strip() or key
        await uow.outbox.enqueue(Outbound(
            platform="whatsapp", operation="customer_message", message=sent.message,
            dedupe_key=f"{sent.dedupe_key}>template", customer={
                "phone": sent.room.channel, "via": "template", "template": template.whatsapp_template,
                "language": template.language, "parameters": [key, " ".join(text.split())[:900]], "text": text}),
            self._clock.now())

    async def _publish(self, ctx: Context, command: cmd.PublishUpdate) -> Reply | None:
        """Text for the public status page, written on purpose (or a brief's customer-facing text)."""
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            incident = await self._incident_for(uow, ctx, command)
            text = command.text
            if command.brief_id is not None:
                brief = await uow.customers.brief(command.brief_id)
                if brief is None or brief.incident_number != incident.number:
                    raise DomainError(f"No brief #{command.brief_id} in {incident.key}; its briefs are in the "
                                      f"thread (/incident brief … shows their ids).")
                text = brief.text
            assert text is not None
            state = command.state or await uow.web.last_public_state(incident.number) or "investigating"
            now = self._clock.now()
            incident.publish(by=ctx.actor.name, state=state, text=text, now=now)
            await uow.web.publish(incident_number=incident.number, state=state, text=text, areas=command.areas,
                                  now=now)
            await uow.incidents.save(incident)
            areas = f" (areas: {', '.join(command.areas)})" if command.areas else ""
            announce = Message(text=f"{ctx.actor.name} published to the status page — {state}{areas}: {text}",
                               incident_key=incident.key, kind="update")
            await self._notify.queue(uow, incident, announce, originator=ctx.origin)
            await uow.commit()
        await self._notify.deliver()
        return self._confirmation(incident, ctx, announce)

    async def _web_link(self, ctx: Context, command: cmd.WebSignIn) -> Reply | None:
        if self._sign_in is None:
            return _error("The web pages are not set up in this process; run `warroom serve`.")
        async with self._uow() as uow:
            first = await self._notify.first_delivery(uow, ctx.delivery_id)
            await uow.commit()
        if not first:
            return None
        link = await self._sign_in.issue_link(name=ctx.actor.name)
        return Reply(Message(text=f"Your sign-in link for the web pages (works once, for 10 minutes): {link}",
                             kind="reply"), private=True)

    def _confirmation(self, incident: Incident, ctx: Context, announce: Message) -> Reply | None:
        if self._is_home(incident, ctx):
            return None
        return _info(f"Done — posted in {incident.key}'s thread: {announce.text}")

    # -- reads and documents ------------------------------------------------------------------------

    async def _list(self, ctx: Context, command: cmd.ListIncidents) -> Reply:
        incidents = await self.incidents(open_only=True)
        return Reply(render.incident_list(incidents, self._clock.now(), self._tz))

    async def _show(self, ctx: Context, command: cmd.ShowIncident) -> Reply:
        async with self._uow() as uow:
            incident = await self._incident_for(uow, ctx, command)
            deliveries = await uow.customers.brief_deliveries(incident.number)
        summary = render.incident_summary(incident, self.level(incident.severity), self._clock.now(), self._tz)
        if deliveries:  # per-recipient delivery of customer briefs: sent / delivered / read / failed
            summary = replace(summary, fields=summary.fields + (Field("Customer briefs", delivery_lines(deliveries)),))
        return Reply(summary)

    async def _help(self, ctx: Context, command: cmd.Help) -> Reply:
        return _info(cmd.help_text(command.topic))

    async def _stats(self, ctx: Context, command: cmd.Stats) -> Reply:
        now = self._clock.now()
        since = now - command.period
        async with self._uow() as uow:
            incidents = await uow.reports.declared_since(since)
            changes = await uow.reports.severity_changes([i.number for i in incidents])
        report = compute_stats(incidents, self.ladder, now=now, since=since, timelines=changes)
        return Reply(render_stats(report, self._tz, period=command.period))

    async def _show_oncall(self, ctx: Context, command: cmd.ShowOnCall) -> Reply:
        board = await self.oncall.board()
        return Reply(board_message(board, show=self.oncall.show, plan=self.oncall.plan.name))

    async def _override_oncall(self, ctx: Context, command: cmd.OverrideOnCall) -> Reply:
        try:
            saved = await self.oncall.add_override(role=command.role, person=command.person, starts=command.starts,
                                                   ends=command.ends, by=ctx.actor.name)
        except RosterError as problem:
            return _error(str(problem))
        return _info(saved_text(saved, show=self.oncall.show))

    async def _page_by_hand(self, ctx: Context, command: cmd.PageByHand) -> Reply | None:
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            incident = await self._incident_for(uow, ctx, command)
            try:
                said = await self.paging.page_by_hand(uow, incident, target=command.target, reason=command.reason,
                                                      by=ctx.actor.name, roles=self.oncall.roles,
                                                      key=ctx.delivery_id or uuid.uuid4().hex)
            except ValueError as problem:
                return _error(str(problem))
            announce = Message(text=said, incident_key=incident.key, kind="escalation")
            await self._notify.queue(uow, incident, announce, originator=ctx.origin)
            await uow.commit()
        await self._notify.deliver()
        return self._confirmation(incident, ctx, announce)

    async def _escalate(self, ctx: Context, command: cmd.Escalate) -> Reply | None:
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            incident = await self._incident_for(uow, ctx, command)
            said = await self.paging.escalate(uow, incident, by=ctx.actor.name, reason=command.reason)
            announce = Message(text=said, incident_key=incident.key, kind="escalation")
            await self._notify.queue(uow, incident, announce, originator=ctx.origin)
            await uow.commit()
        await self.paging.fire_due()  # the next level now, not at the next tick
        await self._notify.deliver()
        return self._confirmation(incident, ctx, announce)

    async def _playbook(self, ctx: Context, command: cmd.ShowPlaybook) -> Reply | None:
        async with self._uow() as uow:
            incident = await self._incident_if_any(uow, ctx, command)
            suggested = incident.suggested_playbook if incident else None
            if command.playbook is None:
                return Reply(render.playbook_list(list(self._playbooks.scenarios.values()), suggested))
            scenario = self._playbooks.scenarios.get(command.playbook)
            if scenario is None:
                return _error(f"No playbook named '{command.playbook}'. Playbooks: "
                              f"{', '.join(sorted(self._playbooks.scenarios))}.")
            if incident is None:
                return Reply(render.playbook_message(scenario))
            incident.note_playbook(by=ctx.actor.name, name=scenario.name, now=self._clock.now())
            await uow.incidents.save(incident)
            await self._notify.queue(uow, incident, render.playbook_message(scenario), originator=ctx.origin)
            await uow.commit()
        await self._notify.deliver()
        return None if self._is_home(incident, ctx) else _info(f"Posted {scenario.name} in {incident.key}'s thread.")

    async def _postmortem(self, ctx: Context, command: cmd.CompilePostmortem) -> Reply | None:
        followups = self._followups
        if command.pull_request and (followups is None or not followups.pull_requests):
            return _error("No GitHub repository is configured, so there is no pull request to open: set "
                          "WARROOM_GITHUB_REPOSITORY and WARROOM_GITHUB_TOKEN (docs/github.md), or commit the "
                          "post-mortem to a clone with `warroom postmortem INC-n --git PATH`.")
        open_pr = followups is not None and (command.pull_request or (command.format == "md"
                                                                      and followups.pr_on_compile))
        async with self._uow() as uow:
            if not await self._notify.first_delivery(uow, ctx.delivery_id):
                return None
            incident = await self._incident_for(uow, ctx, command)
            timeline = await uow.incidents.timeline(incident.number)
            deliveries = await uow.customers.brief_deliveries(incident.number)
            document = self._compile(incident, timeline, command.format, deliveries)
            path = self._postmortem_dir / postmortem_filename(incident, self._tz, command.format)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(document, encoding="utf-8")
            incident.record_postmortem(by=ctx.actor.name, now=self._clock.now(), path=str(path))
            await uow.incidents.save(incident)
            await self._notify.replan(uow, incident)
            mime = "text/markdown" if command.format == "md" else "application/json"
            await self._notify.queue(uow, incident, Message(
                title=f"Post-mortem for {incident.key}: {incident.title}",
                text=f"Written to {path}. Sections still empty say _to be written_; add notes and run it again.",
                attachment=Attachment(filename=path.name, content=document.encode("utf-8"), mime_type=mime,
                                      title=f"{incident.key} post-mortem"),
                incident_key=incident.key, kind="postmortem"), originator=ctx.origin)
            if open_pr and followups is not None:
                await followups.queue_postmortem_pr(uow, incident, by=ctx.actor.name)
            await uow.commit()
        await self._notify.deliver()
        pr = " Its pull request is being opened or updated; the link follows in the thread." if open_pr else ""
        return _info(f"Post-mortem for {incident.key} written to {path}.{pr}")

    def _compile(self, incident: Incident, timeline: list[TimelineEvent], fmt: str,
                 deliveries: Deliveries = ()) -> str:
        return compile_document(self._compiler, self.ladder, incident, timeline, fmt, deliveries)

    # -- reminders ----------------------------------------------------------------------------------

    async def _fire_batch(self) -> int:
        async with self._uow() as uow:
            now = self._clock.now()
            due = await uow.reminders.claim_due(now, REMINDER_BATCH)
            loaded = await uow.incidents.get_many([reminder.incident_number for reminder in due]) if due else {}
            touched: dict[int, Incident] = {}
            for reminder in due:
                incident = loaded.get(reminder.incident_number)
                if incident is None:
                    continue
                touched[incident.number] = incident
                message = self._apply_reminder(incident, reminder.kind, reminder.subject, now)
                if message is not None:
                    await self._notify.queue(uow, incident, message, dedupe_key=f"reminder:{reminder.id}")
            for incident in touched.values():
                await uow.incidents.save(incident)
                await self._notify.replan(uow, incident)
            if len(due) < REMINDER_BATCH:
                self.next_reminder_due = await uow.reminders.next_due()
            await uow.commit()
        if due:
            await self._notify.deliver()
        return len(due)

    def _apply_reminder(self, incident: Incident, kind: str, subject: int, now: datetime) -> Message | None:
        level = self.ladder.level(incident.severity)
        if level is None:
            return None
        # Fire only what the incident's current state still calls for (a status update may have landed
        # between planning and firing); the plan is the single definition of "due".
        still_due = {(p.kind, p.subject) for p in plan(incident, level, self.ladder, self._tz) if p.due_at <= now}
        if (kind, subject) not in still_due:
            return None
        if kind == "update_nudge":
            since = now - max(t for t in (incident.last_update_at, incident.declared_at) if t)
            message = render.nudge(incident, level, since)
            incident.record_nudge(now=now, text=message.text)
        elif kind == "ack_escalation":
            message = render.ack_escalation(incident, level, escalation_target(self.ladder, subject))
            incident.record_escalation(now=now, text=message.text, resolution=False)
        elif kind == "resolution_escalation":
            step = max(1, incident.escalations_sent)
            message = render.resolution_escalation(incident, level, escalation_target(self.ladder, step))
            incident.record_escalation(now=now, text=message.text, resolution=True)
        elif kind == "postmortem_due":
            message = render.postmortem_due(incident, level.postmortem_due or timedelta())
            incident.record_postmortem_reminder(now=now, text=message.text)
        elif kind == "customer_update_due":
            message = Message(text=(f"{incident.key}: customers were promised an update by now. Send one: "
                                    f"/incident brief all-affected update"), incident_key=incident.key, kind="reminder")
            incident.record_customer_update_due(now=now, text=message.text)
        elif kind == "action_overdue":
            message = render.action_overdue(incident, subject)
            incident.record_action_overdue(number=subject, now=now, text=message.text)
        else:
            log.warning("unknown reminder kind %r for %s", kind, incident.key)
            return None
        return message

    # -- helpers ------------------------------------------------------------------------------------

    async def _incident_for(self, uow: UnitOfWork, ctx: Context, command: cmd.Command) -> Incident:
        incident = await self._incident_if_any(uow, ctx, command)
        if incident is None:
            name = getattr(command, "name", "command")
            usage = cmd.USAGE.get(_COMMAND_WORDS.get(type(command), ""), "")
            raise DomainError(f"This needs an incident: run it inside an incident's thread, or name one, e.g. "
                              f"/incident {usage.split(' ', 1)[0] or name} INC-7 "
                              f"{usage.split(' ', 1)[1] if ' ' in usage else ''}".rstrip())
        return incident

    async def _incident_if_any(self, uow: UnitOfWork, ctx: Context, command: cmd.Command) -> Incident | None:
        """The incident the command names, else the room's, else the context's default; an unknown number is an
        error, no incident at all is None."""
        number = command.incident
        incident = None
        if number is None:
            incident = await uow.incidents.get_by_room(ctx.room)
            number = ctx.default_incident if incident is None else None
        if number is not None:
            incident = await uow.incidents.get(number)
            if incident is None:
                raise DomainError(await self._unknown_incident(uow, number))
        return incident

    async def _unknown_incident(self, uow: UnitOfWork, number: int) -> str:
        open_keys = [i.key for i in await uow.incidents.list(open_only=True)]
        return f"Unknown incident {key_of(number)}. Open incidents: {', '.join(open_keys) or 'none'}."

    def _is_home(self, incident: Incident, ctx: Context) -> bool:
        """Was the command given where its announcement goes anyway? Then no separate confirmation. On a
        platform without threads (WhatsApp) the incident's room is the person's own chat."""
        room = self._room_of(incident)
        if room == ctx.room:
            return True
        chat = self._chat.get(ctx.room.platform)
        return (room is not None and chat is not None and not chat.capabilities.threads
                and (room.platform, room.channel) == (ctx.room.platform, ctx.room.channel))

    def _room_of(self, incident: Incident) -> Room | None:
        if incident.platform is None or incident.channel is None:
            return None
        return Room(incident.platform, incident.channel, incident.thread)


_COMMAND_WORDS = {
    cmd.Acknowledge: "ack", cmd.PostStatus: "status", cmd.ChangeSeverity: "sev", cmd.AssignRole: "role",
    cmd.AddNote: "note", cmd.TickChecklist: "check", cmd.Snooze: "snooze", cmd.SetFreeze: "freeze",
    cmd.AddAction: "action", cmd.CompleteAction: "action", cmd.SyncActions: "action", cmd.Mitigate: "mitigate",
    cmd.Resolve: "resolve",
    cmd.Close: "close", cmd.Reopen: "reopen", cmd.CompilePostmortem: "postmortem", cmd.ShowIncident: "show",
    cmd.ShowPlaybook: "playbook",
}

__all__ = ["Context", "IncidentService", "Status"]
