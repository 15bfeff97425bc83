"""Test support: a real warroom (service + SQLite file + migrations) on the in-memory chat and a manual clock."""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from adapters.memory import MemoryChat
from adapters.slack.settings import SlackSettings
from bot.app.bootstrap import Warroom, build
from bot.app.settings import OperationsSettings, Settings
from bot.incident.service import Context
from bot.ports import Actor, ManualClock, Reply, Room

START = datetime(2026, 11, 24, 6, 50, tzinfo=UTC)  # 09:50 EAT

# WARROOM_TEST_DATABASE=postgres runs the suite on the PostgreSQL at 127.0.0.1:5432 (database `test`, trust auth),
# each test in a database of its own; the default is a SQLite file per test.
BACKEND = os.environ.get("WARROOM_TEST_DATABASE", "sqlite")
POSTGRES_ADMIN_URL = os.environ.get("WARROOM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHANNEL = Room("console", "#incidents")


_migrated_template: str | None = None


async def create_postgres_database(*, migrated: bool = False) -> str:
    """A fresh PostgreSQL database; returns its URL. `migrated`: a copy of a template migrated once per test
    process (CREATE DATABASE … TEMPLATE copies files; running every migration per test was most of the suite's
    time on PostgreSQL), else empty."""
    import asyncpg

    template = await _template() if migrated else None
    name = f"warroom_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await admin.close()
    return _url_of(name)


def _url_of(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def _template() -> str:
    global _migrated_template
    if _migrated_template is None:
        from storage.engine import create_engine
        from storage.migrate import upgrade

        url = await create_postgres_database()
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()  # a template must have no connections when it is copied
        _migrated_template = url.rsplit("/", 1)[1]
    return _migrated_template


async def drop_migrated_template() -> None:
    global _migrated_template
    if _migrated_template is not None:
        await drop_postgres_database(_url_of(_migrated_template))
        _migrated_template = None


async def drop_postgres_database(url: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


def make_settings(tmp_path: Path, *, database_url: str | None = None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url or f"sqlite:///{tmp_path / 'warroom.db'}",
        "ladder": "P1-P3",
        "timezone": "Africa/Nairobi",
        "postmortem_dir": tmp_path / "postmortems",
    }
    operations = {key: overrides.pop(key) for key in list(overrides) if key in OperationsSettings.model_fields}
    slack = {key.removeprefix("slack_"): overrides.pop(key) for key in list(overrides) if key.startswith("slack_")}
    unknown = set(overrides) - set(Settings.model_fields)
    if unknown:  # Settings ignores what it does not know (a .env has every platform's lines): say so here
        raise TypeError(f"make_settings: no such setting {sorted(unknown)}")
    values.update(overrides)
    return Settings(_env_file=None, operations=OperationsSettings(_env_file=None, **operations),
                    slack=SlackSettings(_env_file=None, **slack), **values)


@dataclass
class Harness:
    """One team in #incidents: commands and chat lines go through the real service into a real SQLite file."""

    app: Warroom
    chat: MemoryChat
    clock: ManualClock
    settings: Settings
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def service(self):
        return self.app.service

    async def run(self, text: str, *, user: str = "alice", room: Room = CHANNEL,
                  delivery_id: str | None = None) -> Reply | None:
        ctx = Context(actor=Actor(id=user, name=user), room=room, delivery_id=delivery_id)
        return await self.service.run_command(ctx, text if text.startswith("/") else f"/incident {text}")

    async def ok(self, text: str, **kwargs: object) -> Reply | None:
        reply = await self.run(text, **kwargs)  # type: ignore[arg-type]
        assert reply is None or reply.ok, f"{text!r} failed: {reply.message.text}"
        return reply

    async def say(self, text: str, *, room: Room, user: str = "bob") -> bool:
        return await self.service.capture_message(room=room, actor=Actor(id=user, name=user), text=text,
                                                  message_id=f"msg-{next(self._ids)}")

    async def room(self, number: int) -> Room:
        room = await self.service.room_of(number)
        assert room is not None
        return room

    async def tick(self, **advance: float) -> int:
        if advance:
            self.clock.advance(**advance)
        return await self.service.fire_due_reminders()

    def kinds(self, kind: str) -> list[str]:
        return [s.current.text for s in self.chat.of_kind(kind)]


async def start_harness(settings: Settings, clock: ManualClock, chat: MemoryChat | None = None) -> Harness:
    chat = chat or MemoryChat("console")
    app = await build(settings, chat={"console": chat}, clock=clock)
    return Harness(app=app, chat=chat, clock=clock, settings=settings)


