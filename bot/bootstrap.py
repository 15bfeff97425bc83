"""The composition root: settings, storage, playbooks, chat adapters and the reminder tick, wired once.

Nothing connects at import time. Storage and adapters are imported inside `build()` so that `bot` stays
free of SDK and ORM imports, and a process only pays for the adapters it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.ports import ChatAdapter, Clock, SystemClock
from bot.scheduler import ReminderTicker
from bot.service import IncidentService
from bot.settings import Settings
from playbooks.loader import Playbooks, load_playbooks


@dataclass
class Warroom:
    settings: Settings
    service: IncidentService
    playbooks: Playbooks
    ticker: ReminderTicker
    engine: Any

    async def close(self) -> None:
        self.ticker.shutdown()
        await self.engine.dispose()


def load_configured_playbooks(settings: Settings) -> Playbooks:
    playbooks = load_playbooks(settings.playbooks)
    playbooks.ladder(settings.ladder)  # fail at start-up on an unknown ladder name
    playbooks.postmortem_template(settings.postmortem_template)
    return playbooks


async def build(settings: Settings, *, chat: Mapping[str, ChatAdapter], clock: Clock | None = None,
                migrate: bool = True, deliver_inline: bool = True) -> Warroom:
    from storage.engine import create_engine
    from storage.migrate import upgrade
    from storage.repository import SqlUnitOfWorkFactory

    playbooks = load_configured_playbooks(settings)
    engine = create_engine(settings.database_url)
    if migrate:
        await upgrade(engine)
    service = IncidentService(
        uow=SqlUnitOfWorkFactory(engine), chat=chat, playbooks=playbooks, ladder=playbooks.ladder(settings.ladder),
        clock=clock or SystemClock(), tz=settings.tz, postmortem_dir=settings.postmortem_dir,
        postmortem_template=settings.postmortem_template, deliver_inline=deliver_inline,
    )
    ticker = ReminderTicker(service.tick, interval_seconds=settings.tick_seconds)
    return Warroom(settings=settings, service=service, playbooks=playbooks, ticker=ticker, engine=engine)
