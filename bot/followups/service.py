"""Publish an incident's paper trail to the code host, through the outbox.

    await followups.queue_postmortem_pr(uow, incident, by="alice")   # in the compile's transaction
    # … later the OutboxSender calls followups.deliver(item): branch, files, pull request, link in the thread

A code_host row is retried, leased and delivered once like any outbound message. What it does at the host is
safe to repeat (the branch is named after the incident; an open pull request for it is found, not opened
again), so an attempt whose answer was lost, a restart or a second replica never makes a second pull request.
The document is compiled when the row is delivered, from the timeline as it is then, so a retry an hour later
publishes the latest post-mortem rather than a stale one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import tzinfo
from typing import Any, Protocol

from bot.followups.values import FollowupConfig, PostmortemRequest, action_issue, issue_marker, postmortem_request
from bot.incident.domain import Incident, TimelineEvent
from bot.ports import (
    Clock,
    CodeHost,
    DeliveryError,
    IssueDraft,
    JsonObject,
    Message,
    Outbound,
    OutboxItem,
    Room,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger("warroom.followups")
POSTMORTEM_PR = "postmortem_pr"
ACTION_ISSUE = "action_issue"
ISSUE_STATE = "issue_state"
LOG_ISSUE = "log_issue"
_WHAT = {POSTMORTEM_PR: "open the post-mortem pull request", ACTION_ISSUE: "open the issue for action item {item}",
         ISSUE_STATE: "{state} issue #{issue}", LOG_ISSUE: "log {title!r} as an issue"}
_AGAIN = {POSTMORTEM_PR: "run /incident postmortem pr again", ACTION_ISSUE: "run /incident action sync",
          ISSUE_STATE: "change it on GitHub by hand", LOG_ISSUE: "declare it again"}
LOGGED_LABEL = "warroom-logged"


class Queue(Protocol):
    def __call__(self, uow: UnitOfWork, incident: Incident, message: Message, *,
                 dedupe_key: str | None = None) -> Awaitable[None]: ...


class FollowupService:
    """Post-mortem pull requests (and their draft playbooks) on the configured code host."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, tz: tzinfo, queue: Queue,
                 compile_markdown: Callable[[Incident, list[TimelineEvent], Any], str],
                 host: CodeHost | None = None, config: FollowupConfig | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._tz = tz
        self._queue = queue
        self._compile = compile_markdown
        self._host = host
        self.config = config

    @property
    def pull_requests(self) -> bool:
        """A code host that opens pull requests is configured."""
        return self._host is not None and self.config is not None and self._host.capabilities.pull_requests

    @property
    def pr_on_compile(self) -> bool:
        return self.pull_requests and self.config is not None and self.config.pr_on_compile

    @property
    def issues(self) -> bool:
        """A code host that has issues is configured (action items can become issues)."""
        return self._host is not None and self.config is not None and self._host.capabilities.issues

    async def queue_postmortem_pr(self, uow: UnitOfWork, incident: Incident, *, by: str) -> None:
        """Open or update the incident's post-mortem pull request once this transaction commits."""
        await self._enqueue(uow, incident, {"job": POSTMORTEM_PR, "incident": incident.number, "by": by},
                            f"post-mortem pull request for {incident.key}")

    async def queue_action_issue(self, uow: UnitOfWork, incident: Incident, *, item: int) -> None:
        """Open action item `item` as an issue once this transaction commits (nothing if it has one by then)."""
        await self._enqueue(uow, incident, {"job": ACTION_ISSUE, "incident": incident.number, "item": item},
                            f"issue for {incident.key} action {item}")

    async def queue_issue_state(self, uow: UnitOfWork, incident: Incident, *, issue: int, open: bool) -> None:
        await self._enqueue(uow, incident, {"job": ISSUE_STATE, "incident": incident.number, "issue": issue,
                                            "open": open}, f"issue #{issue} {'reopened' if open else 'closed'}")

    async def queue_logged_issue(self, uow: UnitOfWork, *, room: Room, title: str, impact: str | None,
                                 severity: str, by: str) -> None:
        """A backlog problem logged as an issue (no incident); its link is posted in `room`."""
        marker = uuid.uuid4().hex
        await uow.outbox.enqueue(Outbound(
            platform="github", operation="code_host", dedupe_key=f"code_host:{LOG_ISSUE}:{marker}",
            message=Message(text=f"log {severity} {title!r} as an issue"),
            work={"job": LOG_ISSUE, "room": [room.platform, room.channel, room.thread], "title": title,
                  "impact": impact, "severity": severity, "by": by, "marker": marker}), self._clock.now())

    async def _enqueue(self, uow: UnitOfWork, incident: Incident, work: JsonObject, summary: str) -> None:
        await uow.outbox.enqueue(Outbound(
            platform="github", operation="code_host", work=work,
            dedupe_key=f"code_host:{work['job']}:{incident.number}:{uuid.uuid4().hex}",
            message=Message(text=summary, incident_key=incident.key)), self._clock.now())

    # -- the outbox's side --------------------------------------------------------------------------------

    async def deliver(self, item: OutboxItem) -> str:
        """Do a code_host row's job; returns what to record as its platform id (the pull request's URL)."""
        work = item.outbound.work or {}
        job = work.get("job")
        if job not in _WHAT or self._host is None or self.config is None:
            raise DeliveryError(f"no code host can do {job!r}", permanent=True)
        if job == ACTION_ISSUE:
            return await self._open_issue(item, int(work["incident"]), int(work["item"]))
        if job == LOG_ISSUE:
            return await self._log_issue(item, work)
        if job == ISSUE_STATE:
            await self._host.set_issue_state(number=int(work["issue"]), open=bool(work["open"]))
            return f"#{work['issue']}"
        number = int(work["incident"])
        request = await self.postmortem_request(number)
        published = await self._host.publish(change=request.change)
        files = f"`{request.postmortem_path}`" + (
            f" and a draft scenario playbook `{request.playbook_path}`" if request.playbook_path else "")
        verb = "opened" if published.created else "updated"
        where = published.url or f"branch {published.branch} of {self.config.repository}"
        text = f"Post-mortem pull request {verb}: {where} ({files})."
        async with self._uow() as uow:
            incident = await uow.incidents.get(number)
            assert incident is not None
            incident.record_followup(now=self._clock.now(), text=f"post-mortem pull request: {where}")
            await uow.incidents.save(incident)
            await self._queue(uow, incident, Message(text=text, incident_key=incident.key, kind="update"),
                              dedupe_key=f"{item.outbound.dedupe_key}>done")
            await uow.commit()
        return published.url or published.branch

    async def postmortem_request(self, number: int) -> PostmortemRequest:
        """What INC-`number`'s post-mortem change contains now: branch, post-mortem file, draft playbook."""
        assert self.config is not None
        async with self._uow() as uow:
            incident = await uow.incidents.get(number)
            if incident is None:
                raise DeliveryError(f"INC-{number} does not exist", permanent=True)
            timeline = await uow.incidents.timeline(number)
            deliveries = await uow.customers.brief_deliveries(number)
        return postmortem_request(incident=incident, timeline=timeline,
                                  document=self._compile(incident, timeline, deliveries),
                                  config=self.config, tz=self._tz, now=self._clock.now())

    async def _open_issue(self, item: OutboxItem, number: int, action: int) -> str:
        assert self._host is not None and self.config is not None
        async with self._uow() as uow:
            incident = await uow.incidents.get(number)
        if incident is None or not 1 <= action <= len(incident.actions):
            raise DeliveryError(f"INC-{number} has no action item {action}", permanent=True)
        linked = incident.action(action)
        if linked.issue is not None and linked.issue_url is not None:
            return linked.issue_url  # opened by an earlier job (action sync after --issue)
        draft = action_issue(incident, action, config=self.config, link=None)
        issue = await self._host.open_issue(issue=draft, marker=issue_marker(incident, action))
        async with self._uow() as uow:
            incident = await uow.incidents.get(number)
            assert incident is not None
            if incident.action(action).issue is None:
                incident.link_action_issue(number=action, issue=issue.number, url=issue.url, now=self._clock.now())
                await uow.incidents.save(incident)
                await self._queue(uow, incident, Message(
                    text=f"Action item {action} is now issue #{issue.number}: {issue.url}",
                    incident_key=incident.key, kind="update"), dedupe_key=f"{item.outbound.dedupe_key}>done")
            await uow.commit()
        return issue.url

    async def _log_issue(self, item: OutboxItem, work: JsonObject) -> str:
        assert self._host is not None
        impact = f"\n\nImpact: {work['impact']}" if work.get("impact") else ""
        draft = IssueDraft(title=f"[{work['severity']}] {work['title']}"[:250],
                           body=f"Logged from chat by {work['by']} as a {work['severity']}: {work['title']}{impact}",
                           labels=(f"severity-{str(work['severity']).lower()}", LOGGED_LABEL))
        issue = await self._host.open_issue(issue=draft, marker=f"warroom:logged/{work['marker']}")
        await self._say_in(work, f"Logged as issue #{issue.number}: {issue.url} ({work['severity']}: "
                                 f"{work['title']}). Nobody was paged.", f"{item.outbound.dedupe_key}>done")
        return issue.url

    async def _say_in(self, work: JsonObject, text: str, dedupe_key: str) -> None:
        platform, channel, thread = work["room"]
        async with self._uow() as uow:
            await uow.outbox.enqueue(Outbound(platform=platform, operation="post", dedupe_key=dedupe_key,
                                              room=Room(platform, channel, thread),
                                              message=Message(text=text, kind="reply")), self._clock.now())
            await uow.commit()

    async def give_up(self, item: OutboxItem, reason: str) -> None:
        """Say in the incident's thread what could not be done and why; nothing about the incident changes."""
        work = item.outbound.work or {}
        if work.get("job") == LOG_ISSUE:
            repository = self.config.repository if self.config else "the code host"
            await self._say_in(work, f"Could not log {work.get('title')!r} as an issue in {repository}: {reason}. "
                                     "Declare it again once that is fixed.", f"{item.outbound.dedupe_key}>failed")
            return
        number = work.get("incident")
        if number is None:
            return
        repository = self.config.repository if self.config else "the code host"
        async with self._uow() as uow:
            incident = await uow.incidents.get(int(number))
            if incident is None:
                return
            job = str(work.get("job"))
            what = _WHAT.get(job, "do that").format(item=work.get("item"), issue=work.get("issue"),
                                                    state="reopen" if work.get("open") else "close")
            await self._queue(uow, incident, Message(
                text=(f"Could not {what} for {incident.key} in {repository}: {reason}. The incident is "
                      f"unaffected; fix that and {_AGAIN.get(job, 'try again')}."),
                incident_key=incident.key, kind="error"),
                dedupe_key=f"{item.outbound.dedupe_key}>failed")
            await uow.commit()
