"""The composition root: settings, storage, playbooks, chat adapters, alert intake, the digest and the tick.

Nothing connects at import time. Storage and adapters are imported inside `build()` so that `bot` stays
free of SDK and ORM imports, and a process only pays for the adapters it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.alerts.intake import AlertIntake
from bot.app.settings import Settings
from bot.briefs.service import BriefService
from bot.delivery.notifier import Notifier, OutboxWriter
from bot.delivery.outbox import OutboxHints, OutboxSender
from bot.delivery.scheduler import ReminderTicker
from bot.followups.service import FollowupService
from bot.followups.values import FollowupConfig
from bot.incident.declare import Declarer
from bot.incident.postmortem import PostmortemCompiler, compile_document
from bot.incident.service import IncidentService
from bot.oncall.paging import Paging
from bot.oncall.roster import Roster
from bot.operators.desk import OperatorDesk
from bot.ports import ChatAdapter, Clock, CodeHost, Metrics, Pager, Room, SystemClock
from bot.reports.digest import DigestSchedule
from bot.reports.operations import Operations
from bot.web.signin import SignIn
from bot.web.views import WebViews
from playbooks.loader import PlaybookError, Playbooks, load_playbooks

log = logging.getLogger("warroom")


@dataclass
class Warroom:
    """The core, built: the use cases, the outbox sender, the tick, and the storage they share."""

    settings: Settings
    service: IncidentService
    operators: OperatorDesk  # WhatsApp's front door (operators' phones, then customers)
    outbox: OutboxSender
    playbooks: Playbooks
    ticker: ReminderTicker
    heartbeat: Callable[[], Awaitable[int]]
    engine: Any
    scheduler_lock: Any
    alerts: AlertIntake
    operations: Operations
    metrics: Metrics
    sign_in: SignIn
    web: WebViews
    followups: FollowupService
    oncall: Roster
    _takeover: asyncio.Task[int] | None = None

    async def tick(self) -> int:
        """One beat of the scheduler now (what the ticker runs on its interval)."""
        return await self.heartbeat()

    def start_scheduler(self) -> bool:
        """Start the reminder tick unless another process already runs it on this SQLite database."""
        if not self.scheduler_lock.acquire():
            log.warning(
                "Another warroom process (pid %s) already runs the reminder scheduler on this SQLite database. "
                "SQLite is the single-process default: this process will not fire reminders. To run several "
                "replicas, set WARROOM_DATABASE_URL to PostgreSQL.", self.scheduler_lock.holder())
            return False
        # SQLite runs one sender: messages left 'sending' belong to a process that is gone. On PostgreSQL only
        # those this instance (WARROOM_INSTANCE_ID) claimed before it restarted are surely orphaned. Either way
        # they are taken over now (each checked for an earlier copy) instead of after their lease.
        self._takeover = asyncio.get_running_loop().create_task(
            self.outbox.release_claims(own=not self.scheduler_lock.applies))
        self.ticker.start()
        return True

    async def close(self) -> None:
        await self.ticker.stop()
        if self._takeover is not None:
            await asyncio.gather(self._takeover, return_exceptions=True)
        try:  # let a background delivery in flight finish; what is left stays in the outbox for next time
            await asyncio.wait_for(self.outbox.wait_idle(), timeout=10)
        except Exception:  # a timeout, or a delivery that failed: nothing is lost either way
            log.warning("closing with outbox deliveries still running; they resume on the next start")
        self.scheduler_lock.release()
        await self.engine.dispose()


def default_instance_id(settings: Settings) -> str:
    """hostname:port: what survives a restart of the same replica (a container keeps its hostname, a
    StatefulSet pod its name; the port tells apart replicas sharing a host) and is unique among live ones."""
    import socket

    return f"{socket.gethostname()}:{settings.http.port}"[:128]


def load_configured_playbooks(settings: Settings) -> Playbooks:
    playbooks = load_playbooks(settings.playbooks)
    playbooks.ladder(settings.ladder)  # fail at start-up on an unknown ladder name
    playbooks.postmortem_template(settings.postmortem_template)
    # the rules' levels exist in the ladder
    playbooks.alert_rules_for(settings.operations.alert_rules, playbooks.ladder(settings.ladder))
    playbooks.oncall_plan(settings.oncall)  # fail at start-up on an unknown on-call plan
    return playbooks


def alert_room(settings: Settings, chat: Mapping[str, ChatAdapter]) -> Room:
    """Where alerts declare and propose and the digest posts: WARROOM_ALERT_PLATFORM/CHANNEL, else the first
    configured platform's incidents channel (console: WARROOM_INCIDENTS_CHANNEL)."""
    operations = settings.operations
    platform = operations.alert_platform or next(iter(chat), "console")
    channel = operations.alert_channel
    if channel is None and platform == "slack" and settings.slack.incidents_channel:
        channel = settings.slack.incidents_channel
    if channel is None and platform == "discord" and settings.discord.incidents_channel_id:
        channel = str(settings.discord.incidents_channel_id)
    return Room(platform, channel or settings.incidents_channel)


async def build(settings: Settings, *, chat: Mapping[str, ChatAdapter], clock: Clock | None = None,
                migrate: bool = True, deliver_inline: bool = True, messenger: Any = None,
                code_host: CodeHost | None = None, pagers: Mapping[str, Pager] | None = None,
                playbooks: Playbooks | None = None) -> Warroom:
    """The core. `code_host`: where post-mortem pull requests go (`build_server` and the console make a GitHub
    one from WARROOM_GITHUB_*; tests hand in one on a fake). `pagers`: who pages people
    (PagerDuty in `build_server`). `playbooks`: already loaded and checked (`build_server` needs them earlier)."""
    from storage.engine import SchedulerLock, open_database
    from storage.unit_of_work import SqlUnitOfWorkFactory

    playbooks = playbooks or load_configured_playbooks(settings)
    engine = await open_database(settings.database_url, migrate=migrate, sqlite_driver=settings.sqlite_driver)
    from adapters.ops_http import PrometheusMetrics

    clock = clock or SystemClock()
    ladder = playbooks.ladder(settings.ladder)
    metrics = PrometheusMetrics()
    hints = OutboxHints()
    # a commit that wrote outbox rows makes a drain in progress go round again for what is new
    uow = SqlUnitOfWorkFactory(engine, on_outbox_written=hints.outbox_written)
    writer = OutboxWriter(clock=clock, ladder=ladder, tz=settings.tz, hints=hints)
    briefs = BriefService(uow=uow, clock=clock, playbooks=playbooks, queue=writer.queue, messenger=messenger)
    compiler = PostmortemCompiler(tz=settings.tz, template=playbooks.postmortem_template(settings.postmortem_template))
    github = settings.github
    followups = FollowupService(
        uow=uow, clock=clock, tz=settings.tz, queue=writer.queue, host=code_host,
        compile_markdown=lambda incident, timeline, deliveries: compile_document(compiler, ladder, incident, timeline,
                                                                               deliveries=deliveries),
        config=FollowupConfig(repository=github.repository or "the repository", postmortem_path=github.postmortem_path,
                              playbook_dir=github.playbook_dir, pr_on_compile=github.pr_on_compile,
                              draft_after=timedelta(minutes=github.draft_after_minutes),
                              assignees=github.assignee_map))
    pagers = pagers or {}
    sender = OutboxSender(uow=uow, chat=chat, clock=clock, customers=briefs, code_host=followups, hints=hints,
                          pagers=pagers,
                          lease=timedelta(seconds=settings.outbox_lease_seconds),
                          instance=settings.instance_id or default_instance_id(settings),
                          # inline: a command returns once its messages went out, however slow (console, tests)
                          round_wait=None if deliver_inline else 1.0)
    notifier = Notifier(uow=uow, clock=clock, ladder=ladder, tz=settings.tz, hints=hints, sender=sender,
                        deliver_inline=deliver_inline)
    plan = playbooks.oncall_plan(settings.oncall)
    paging = Paging(plan=plan, ladder=ladder, notifier=notifier, clock=clock, tz=settings.tz, pagers=pagers, uow=uow)
    declarer = Declarer(playbooks=playbooks, outbox=notifier, clock=clock, tz=settings.tz, paging=paging)
    room = alert_room(settings, chat)
    roster = Roster(uow=uow, clock=clock, plan=plan, tz=settings.tz)
    alerts = AlertIntake(notifier=notifier, declarer=declarer, uow=uow, ladder=ladder, room=room, clock=clock,
                         rules=playbooks.alert_rules_for(settings.operations.alert_rules, ladder))
    web = settings.web
    sign_in = SignIn(uow=uow, clock=clock, base_url=web.base_url, link_ttl=timedelta(minutes=web.link_minutes),
                     session_ttl=timedelta(hours=web.session_hours))
    service = IncidentService(
        uow=uow, chat=chat, playbooks=playbooks, ladder=ladder, clock=clock, tz=settings.tz,
        postmortem_dir=settings.postmortem_dir, compiler=compiler,
        notifier=notifier, declarer=declarer, briefs=briefs, alerts=alerts, metrics=metrics, sign_in=sign_in,
        followups=followups, oncall=roster,
        paging=paging,
    )
    operators_desk = OperatorDesk(service=service, notifier=notifier, uow=uow, clock=clock)
    digest_at, digest_tz = settings.operations.digest_at, settings.operations.digest_tz
    schedule = DigestSchedule(at=digest_at, tz=digest_tz) if digest_at else None
    operations = Operations(notifier=notifier, uow=uow, clock=clock, ladder=ladder, room=room, schedule=schedule,
                            tz=digest_tz)
    from bot.operators.roster import parse_operator_list

    try:
        operators = parse_operator_list(settings.whatsapp_operators)
    except ValueError as problem:
        raise PlaybookError(f"WARROOM_WHATSAPP_OPERATORS: {problem}") from None
    await operators_desk.keep_listed(operators)

    async def heartbeat() -> int:
        """The scheduler's tick: post the daily digest if it is due, fire due reminders, drain the outbox."""
        try:
            await operations.run_due()
        except Exception:  # the digest must never stop reminders; the next tick tries again
            log.exception("daily digest failed; the next tick retries")
        try:
            await paging.fire_due()
        except Exception:  # paging must never stop reminders either
            log.exception("paging round failed; the next tick retries")
        return await service.tick()

    # digest, reminders, outbox; woken early for a reminder due before the next beat
    ticker = ReminderTicker(heartbeat, interval_seconds=settings.tick_seconds,
                            next_due=lambda: min((t for t in (service.next_reminder_due, paging.next_due) if t),
                                                 default=None), clock=clock)
    return Warroom(settings=settings, service=service, operators=operators_desk, outbox=sender,
                   playbooks=playbooks, ticker=ticker, heartbeat=heartbeat, engine=engine,
                   scheduler_lock=SchedulerLock(settings.database_url), alerts=alerts, operations=operations,
                   metrics=metrics, sign_in=sign_in, oncall=roster,
                   followups=followups,
                   web=WebViews(uow=uow, clock=clock, ladder=ladder, tz=settings.tz, components=web.components))


@asynccontextmanager
async def offline(settings: Settings) -> AsyncIterator[Warroom]:
    """The app without chat platforms, for one-shot shell commands; closed on the way out."""
    app = await build(settings, chat={})
    try:
        yield app
    finally:
        await app.close()


@dataclass
class Server:
    """`warroom serve`: every configured platform, the outbox and the reminder tick, and one HTTP app.

    `start()` connects the platforms and starts the tick; `http_app` is what uvicorn serves; `stop()` takes
    everything down in the order that loses nothing (platforms stop taking work, the outbox drains, then the
    database and the HTTP clients close)."""

    app: Warroom
    routes: list[Any]
    http_app: Any
    host: str
    port: int
    platforms: list[str]
    start_steps: list[Callable[[], Awaitable[None]]]  # connect platforms (Socket Mode, Discord's gateway)
    stop_steps: list[Callable[[], Awaitable[None]]]  # stop taking work in (inbound handlers drain)
    close_steps: list[Callable[[], Awaitable[None]]]  # HTTP clients, closed after the outbox stopped sending

    async def start(self) -> None:
        for step in self.start_steps:
            await step()
        self.app.start_scheduler()

    async def stop(self) -> None:
        await self.app.ticker.stop()
        await _each(self.stop_steps)
        await self.app.close()
        await _each(self.close_steps)

    def describe(self) -> str:
        where = "".join(f"{' '.join(sorted(r.methods - {'HEAD'}))} {r.path}, " for r in self.routes)
        return f"serving {where}GET /health on http://{self.host}:{self.port}"


async def build_server(settings: Settings, *, host: str | None = None, port: int | None = None) -> Server:
    """Build `warroom serve` from settings: adapters for each configured platform, the core, the routes."""
    from adapters.http import build_http_app
    from adapters.ops_http import ops_routes

    playbooks = load_configured_playbooks(settings)  # once: the WhatsApp adapter and the core both read them
    chat: dict[str, ChatAdapter] = {}
    start_steps: list[Callable[[], Awaitable[None]]] = []
    stop_steps: list[Callable[[], Awaitable[None]]] = []
    close_last: list[Callable[[], Awaitable[None]]] = []
    slack = None
    if settings.slack.configured:
        from adapters.slack.chat import slack_chat_from_settings

        slack = chat["slack"] = slack_chat_from_settings(settings.slack, incident_mode=settings.incident_mode)
        close_last.append(slack.aclose)  # after the outbox stopped sending
    discord = None
    if settings.discord.configured:
        from adapters.discord.bot import discord_chat_from_settings

        discord = chat["discord"] = discord_chat_from_settings(settings.discord)
    messenger = None
    if settings.whatsapp.configured:
        from adapters.whatsapp.chat import WhatsAppChat
        from adapters.whatsapp.client import WhatsAppCloud

        messenger = WhatsAppCloud.from_settings(settings.whatsapp)
        close_last.append(messenger.aclose)
        # The same number is the operators' room: their nudges fall back to this template outside 24 hours.
        fallback = next((t for t in playbooks.briefs.values() if t.kind == "operator"), None)
        chat["whatsapp"] = WhatsAppChat(messenger, fallback_template=fallback.whatsapp_template if fallback
                                        else "warroom_operator_update",
                                        fallback_language=fallback.language if fallback else "en")
    if not chat:
        log.warning("no chat platform configured (set SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET or "
                    "SLACK_APP_TOKEN, or DISCORD_BOT_TOKEN); serving the HTTP endpoints without chat.")
    # Background delivery: a request is answered once its change is committed; the outbox talks to chat
    # platforms afterwards, so a slow or failing chat API never delays an acknowledgement.
    code_host = github_code_host(settings)
    if code_host is not None:
        close_last.append(code_host.aclose)
    from adapters.pagerduty.events import PagerDutyEvents

    # PagerDuty needs no account-wide credential: each person's routing key is in the roster.
    pagerduty = PagerDutyEvents(url=settings.pagerduty.events_url)
    close_last.append(pagerduty.aclose)
    app = await build(settings, chat=chat, messenger=messenger, deliver_inline=False, code_host=code_host,
                      pagers={"pagerduty": pagerduty}, playbooks=playbooks)
    routes: list[Any] = []
    verify_token, app_secret = settings.whatsapp.verify_token, settings.whatsapp.app_secret
    if settings.whatsapp.webhook_configured and verify_token is not None and app_secret is not None:
        from adapters.whatsapp.routes import whatsapp_routes

        routes += whatsapp_routes(verify_token=verify_token, app_secret=app_secret,
                                  on_event=app.operators.customer_event)
    if slack is not None:
        from adapters.http import slack_routes
        from adapters.slack.app import SlackInbound

        secret = settings.slack.signing_secret
        inbound = SlackInbound(service=app.service, chat=slack,
                               signing_secret=secret.get_secret_value() if secret else None)
        app_token = settings.slack.app_token
        if app_token is not None:
            async def socket_mode(token: str = app_token.get_secret_value()) -> None:
                await inbound.connect_socket_mode(token)
                log.info("Slack connected over Socket Mode.")

            start_steps.append(socket_mode)
        else:
            routes += slack_routes(inbound.app)
        stop_steps.append(inbound.close)
    if settings.github.webhook_secret is not None and settings.github.repository:
        from adapters.github.webhook import github_routes

        routes += github_routes(secret=settings.github.webhook_secret, repository=settings.github.repository,
                                on_issue=app.service.issue_changed)
    if settings.pagerduty.webhook_secret is not None:
        from adapters.pagerduty.webhook import pagerduty_routes

        async def pager_ack(ack: Any) -> None:
            await app.service.pager_acknowledged(incident_key=ack.incident_key, by=ack.by, delivery_id=ack.event_id)

        routes += pagerduty_routes(secret=settings.pagerduty.webhook_secret.get_secret_value(), on_ack=pager_ack)
    routes += ops_routes(app)  # alert intake, /api/freeze, /metrics
    from adapters.web.app import WebApp

    web_app = WebApp(views=app.web, sign_in=app.sign_in, service=app.service, settings=settings.web)
    routes += web_app.routes()  # /web (signed in), /status (public), /static/web
    stop_steps.append(web_app.close)  # live timelines end, so uvicorn's shutdown is not held by open streams
    health_checks: dict[str, Callable[[], str | None]] = {}  # /health answers 503 with the reasons
    if "discord" in chat:
        from adapters.discord.bot import start_discord

        discord_runtimes: list[Any] = []
        discord_log = logging.getLogger("warroom.discord")

        async def discord_up() -> None:
            # "Discord connected." is said on the gateway's READY; a fatal close is said with its fix.
            discord_runtimes.append(await start_discord(app.service, settings.discord, chat=discord,
                                                        announce=discord_log.info))

        def discord_health() -> str | None:
            return discord_runtimes[0].health_problem() if discord_runtimes else None

        health_checks["discord"] = discord_health

        async def discord_down() -> None:
            for runtime in discord_runtimes:
                await runtime.stop()

        start_steps.append(discord_up)
        stop_steps.append(discord_down)
    return Server(app=app, routes=routes, http_app=build_http_app(routes, health_checks=health_checks or None),
                  host=host or settings.http.host,
                  port=settings.http.port if port is None else port, platforms=sorted(chat),
                  start_steps=start_steps, stop_steps=stop_steps, close_steps=close_last)


def github_code_host(settings: Settings) -> Any:
    """GitHub as the code host when WARROOM_GITHUB_TOKEN and WARROOM_GITHUB_REPOSITORY are set, else None."""
    if not settings.github.configured:
        return None
    from adapters.github.client import GitHubCodeHost

    return GitHubCodeHost.from_settings(settings.github)


async def _each(steps: list[Callable[[], Awaitable[None]]]) -> None:
    for step in steps:
        try:
            await step()
        except Exception:  # one part failing to stop must not keep the others (or the database) open
            log.exception("error while stopping")


@dataclass
class Console:
    """`warroom console`: the bot in this terminal, on the embedded default (console chat + SQLite)."""

    app: Warroom
    session: Any  # adapters.console.ConsoleSession
    out: Any  # the terminal (a text stream)
    banner: str
    code_host: Any = None  # GitHub's HTTP client, closed after the outbox stopped sending

    async def play(self, lines: list[str]) -> None:
        from adapters.console import play

        await play(self.session, lines)

    async def run_interactive(self) -> None:
        from adapters.console import stdin_lines

        self.app.start_scheduler()
        self.session.say(self.banner)
        self._prompt()
        async for line in stdin_lines():
            await self.session.handle(line)
            if self.session.finished:
                break
            self._prompt()

    def _prompt(self) -> None:
        self.out.write(self.session.prompt)
        self.out.flush()

    async def stop(self) -> None:
        await self.app.close()
        if self.code_host is not None:
            await self.code_host.aclose()


async def build_console(settings: Settings, *, out: Any, user: str, speed: float, scripted: bool) -> Console:
    """A script runs on a manual clock (its `/wait` lines move time); a person's session on a clock `speed`×
    faster than the wall clock, so nudges show within a minute."""
    from adapters.console import ConsoleChat, ConsoleSession
    from bot.ports import FastClock, ManualClock

    chat = ConsoleChat(out)
    clock: ManualClock | FastClock
    clock = ManualClock(SystemClock().now().replace(microsecond=0)) if scripted else FastClock(speed)
    code_host = github_code_host(settings)
    app = await build(settings, chat={"console": chat}, clock=clock, code_host=code_host)
    session = ConsoleSession(service=app.service, chat=chat, out=out, user=user,
                             channel=settings.incidents_channel, advance=clock.advance)
    faster = f", time runs {speed:g}× faster" if speed != 1 else ""
    return Console(app=app, session=session, out=out, code_host=code_host,
                   banner=f"warroom console — database {settings.database_url}{faster}. "
                          "/help for console commands, /incident help for bot commands.")


async def upgrade_database(settings: Settings) -> None:
    """`warroom db upgrade`: migrations to head (serialised across replicas by an advisory lock)."""
    from storage.engine import open_database

    engine = await open_database(settings.database_url, sqlite_driver=settings.sqlite_driver)
    await engine.dispose()


class OutboxEntry(Protocol):
    """An outbox row as `warroom outbox list` shows it (storage's OutboxEntry)."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def operation(self) -> str: ...
    @property
    def incident_number(self) -> int | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def next_attempt_at(self) -> datetime: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def summary(self) -> str: ...


class _OutboxAdmin(Protocol):
    """What `warroom outbox` does to the outbox beyond sending (storage's SqlOutboxRepository)."""

    async def entries(self, statuses: tuple[str, ...]) -> Sequence[OutboxEntry]: ...
    async def counts(self) -> dict[str, int]: ...
    async def requeue_failed(self, now: datetime, ids: list[int] | None = None) -> int: ...


class _OutboxStore(Protocol):
    @property
    def outbox(self) -> _OutboxAdmin: ...
    async def commit(self) -> None: ...


async def outbox_report(settings: Settings, *, include_delivered: bool) -> tuple[Sequence[OutboxEntry], dict[str, int]]:
    """`warroom outbox list`: the messages not yet delivered (and delivered ones if asked), and counts."""
    statuses = ("pending", "sending", "failed", "delivered") if include_delivered else ("pending", "sending",
                                                                                          "failed")
    async with _outbox_store(settings) as uow:
        return await uow.outbox.entries(statuses), await uow.outbox.counts()


async def requeue_failed(settings: Settings, ids: list[int] | None) -> int:
    """`warroom outbox retry`: failed messages back to pending; a running warroom delivers them."""
    async with _outbox_store(settings) as uow:
        count = await uow.outbox.requeue_failed(SystemClock().now(), ids)
        await uow.commit()
    return count


@asynccontextmanager
async def _outbox_store(settings: Settings) -> AsyncIterator[_OutboxStore]:
    from storage.engine import open_database
    from storage.unit_of_work import SqlUnitOfWorkFactory

    engine = await open_database(settings.database_url, sqlite_driver=settings.sqlite_driver)
    try:
        async with SqlUnitOfWorkFactory(engine)() as uow:
            yield uow
    finally:
        await engine.dispose()
