"""The composition root: settings, storage, playbooks, chat adapters and the reminder tick, wired once.

Nothing connects at import time. Storage and adapters are imported inside `build()` so that `bot` stays
free of SDK and ORM imports, and a process only pays for the adapters it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.ports import ChatAdapter, Clock, SystemClock
from bot.scheduler import ReminderTicker
from bot.service import IncidentService
from bot.settings import Settings
from playbooks.loader import Playbooks, load_playbooks

log = logging.getLogger("warroom")


@dataclass
class Warroom:
    settings: Settings
    service: IncidentService
    playbooks: Playbooks
    ticker: ReminderTicker
    engine: Any
    scheduler_lock: Any
    _takeover: "asyncio.Task[int] | None" = None

    def start_scheduler(self) -> bool:
        """Start the reminder tick unless another process already runs it on this SQLite database."""
        if not self.scheduler_lock.acquire():
            log.warning(
                "Another warroom process (pid %s) already runs the reminder scheduler on this SQLite database. "
                "SQLite is the single-process default: this process will not fire reminders. To run several "
                "replicas, set WARROOM_DATABASE_URL to PostgreSQL.", self.scheduler_lock.holder())
            return False
        if self.scheduler_lock.applies:
            # SQLite runs one sender: messages left 'sending' belong to a process that is gone, so they are
            # taken over now (each checked for an earlier copy) instead of after their lease.
            self._takeover = asyncio.get_running_loop().create_task(self.service.outbox.release_claims())
        self.ticker.start()
        return True

    async def close(self) -> None:
        self.ticker.shutdown()
        try:  # let a background delivery in flight finish; what is left stays in the outbox for next time
            await asyncio.wait_for(self.service.outbox.wait_idle(), timeout=10)
        except Exception:  # a timeout, or a delivery that failed: nothing is lost either way
            log.warning("closing with outbox deliveries still running; they resume on the next start")
        self.scheduler_lock.release()
        await self.engine.dispose()


def load_configured_playbooks(settings: Settings) -> Playbooks:
    playbooks = load_playbooks(settings.playbooks)
    playbooks.ladder(settings.ladder)  # fail at start-up on an unknown ladder name
    playbooks.postmortem_template(settings.postmortem_template)
    return playbooks


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

    service = IncidentService(
        uow=SqlUnitOfWorkFactory(engine), chat=chat, playbooks=playbooks, ladder=playbooks.ladder(settings.ladder),
        clock=clock or SystemClock(), tz=settings.tz, postmortem_dir=settings.postmortem_dir,
        postmortem_template=settings.postmortem_template, deliver_inline=deliver_inline, messenger=messenger,
    )
    service.outbox.lease = timedelta(seconds=settings.outbox_lease_seconds)
    ticker = ReminderTicker(service.tick, interval_seconds=settings.tick_seconds)
    return Warroom(settings=settings, service=service, playbooks=playbooks, ticker=ticker, engine=engine,
                   scheduler_lock=SchedulerLock(settings.database_url))
