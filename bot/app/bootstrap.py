"""The composition root: settings, storage, playbooks, chat adapters, alert intake, the digest and the tick.

Nothing connects at import time. Storage and adapters are imported inside `build()` so that `bot` stays
free of SDK and ORM imports, and a process only pays for the adapters it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.alerts.intake import AlertIntake
from bot.reports.digest import DigestSchedule
from bot.reports.operations import Operations
from bot.ports import ChatAdapter, Clock, Metrics, Room, SystemClock
from bot.delivery.scheduler import ReminderTicker
from bot.incident.service import IncidentService
from bot.app.settings import Settings
from playbooks.loader import PlaybookError, Playbooks, load_playbooks

log = logging.getLogger("warroom")


@dataclass
class Warroom:
    settings: Settings
    service: IncidentService
    playbooks: Playbooks
    ticker: ReminderTicker
    engine: Any
    scheduler_lock: Any
    alerts: AlertIntake | None = None
    operations: Operations | None = None
    metrics: Metrics | None = None
    _takeover: "asyncio.Task[int] | None" = None

    async def tick(self) -> int:
        """The scheduler's heartbeat: post the daily digest if it is due, fire due reminders, drain the outbox."""
        if self.operations is not None:
            try:
                await self.operations.run_due()
            except Exception:  # the digest must never stop reminders; the next tick tries again
                log.exception("daily digest failed; the next tick retries")
        return await self.service.tick()

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
            self.service.outbox.release_claims(own=not self.scheduler_lock.applies))
        self.ticker.start()
        return True

    async def close(self) -> None:
        await self.ticker.stop()
        if self._takeover is not None:
            await asyncio.gather(self._takeover, return_exceptions=True)
        try:  # let a background delivery in flight finish; what is left stays in the outbox for next time
            await asyncio.wait_for(self.service.outbox.wait_idle(), timeout=10)
        except Exception:  # a timeout, or a delivery that failed: nothing is lost either way
            log.warning("closing with outbox deliveries still running; they resume on the next start")
        self.scheduler_lock.release()
        await self.engine.dispose()


def default_instance_id(settings: Settings) -> str:
    """hostname:port: what survives a restart of the same replica (a container keeps its hostname, a
    StatefulSet pod its name; the port tells apart replicas sharing a host) and is unique among live ones."""
    import socket

    return f"{socket.gethostname()}:{settings.http_port}"[:128]


def load_configured_playbooks(settings: Settings) -> Playbooks:
    playbooks = load_playbooks(settings.playbooks)
    playbooks.ladder(settings.ladder)  # fail at start-up on an unknown ladder name
    playbooks.postmortem_template(settings.postmortem_template)
    playbooks.alert_rules_for(settings.alert_rules, playbooks.ladder(settings.ladder))  # levels exist in the ladder
    return playbooks


def alert_room(settings: Settings, chat: Mapping[str, ChatAdapter]) -> Room:
    """Where alerts declare and propose and the digest posts: WARROOM_ALERT_PLATFORM/CHANNEL, else the first
    configured platform's incidents channel (console: WARROOM_INCIDENTS_CHANNEL)."""
    platform = settings.alert_platform or next(iter(chat), "console")
    channel = settings.alert_channel
    if channel is None and platform == "slack" and settings.slack_incidents_channel:
        channel = settings.slack_incidents_channel
    if channel is None and platform == "discord":
        from adapters.discord.settings import DiscordSettings

        discord_channel = DiscordSettings().incidents_channel_id
        channel = str(discord_channel) if discord_channel else None
    return Room(platform, channel or settings.incidents_channel)


async def build(settings: Settings, *, chat: Mapping[str, ChatAdapter], clock: Clock | None = None,
                migrate: bool = True, deliver_inline: bool = True, messenger: Any = None) -> Warroom:
    from storage.engine import SchedulerLock, create_engine
    from storage.migrate import upgrade
    from storage.repository import SqlUnitOfWorkFactory

    playbooks = load_configured_playbooks(settings)
    engine = create_engine(settings.database_url)
    if migrate:
        await upgrade(engine)
    from datetime import timedelta

    from adapters.ops_http import PrometheusMetrics

    clock = clock or SystemClock()
    uow = SqlUnitOfWorkFactory(engine)
    ladder = playbooks.ladder(settings.ladder)
    metrics = PrometheusMetrics()
    service = IncidentService(
        uow=uow, chat=chat, playbooks=playbooks, ladder=ladder,
        clock=clock, tz=settings.tz, postmortem_dir=settings.postmortem_dir,
        postmortem_template=settings.postmortem_template, deliver_inline=deliver_inline, messenger=messenger,
        metrics=metrics,
    )
    service.outbox.lease = timedelta(seconds=settings.outbox_lease_seconds)
    service.outbox.instance = settings.instance_id or default_instance_id(settings)
    if deliver_inline:  # a command returns once its messages went out, however slow (console, tests)
        service.outbox.round_wait = None
    uow.on_outbox_written(service.outbox.queued)  # a drain in progress goes round again for what is new
    room = alert_room(settings, chat)
    service.alerts = AlertIntake(service=service, uow=uow, ladder=ladder, room=room, clock=clock,
                                 rules=playbooks.alert_rules_for(settings.alert_rules, ladder))
    schedule = DigestSchedule(at=settings.digest_at, tz=settings.digest_tz) if settings.digest_at else None
    operations = Operations(service=service, uow=uow, clock=clock, ladder=ladder, room=room, schedule=schedule,
                            tz=settings.digest_tz)
    from bot.operators.roster import parse_operator_list

    try:
        operators = parse_operator_list(settings.whatsapp_operators)
    except ValueError as problem:
        raise PlaybookError(f"WARROOM_WHATSAPP_OPERATORS: {problem}") from None
    for name, phone in operators:
        await service.operators.add(phone=phone, name=name)
    app = Warroom(settings=settings, service=service, playbooks=playbooks, ticker=None,  # type: ignore[arg-type]
                  engine=engine, scheduler_lock=SchedulerLock(settings.database_url), alerts=service.alerts,
                  operations=operations, metrics=metrics)
    # digest, reminders, outbox; woken early for a reminder due before the next beat
    app.ticker = ReminderTicker(app.tick, interval_seconds=settings.tick_seconds,
                                next_due=lambda: app.service.next_reminder_due, clock=clock)
    return app
