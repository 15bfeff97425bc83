"""SQLite for SQLAlchemy's asyncio engine without a thread hop per call.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a worker thread and wakes the event loop
when it is done: four round trips per statement, each costing far more CPU than the statement itself on a
local file (profiled: ~100 calls per declare, two thirds of its CPU). This module gives SQLAlchemy's aiosqlite
dialect a connection with the same async interface that runs sqlite3 directly on the event loop thread, so a
statement is a plain function call.

What blocking the loop costs, and why it is bounded: a statement here touches a local file and takes
microseconds; commits do not fsync (WAL with synchronous=NORMAL); every transaction starts with BEGIN
IMMEDIATE, the one place SQLite waits for another process's write lock, and that wait is not SQLite's busy
handler (which would block the loop) but an asyncio sleep between non-blocking attempts, up to the same
busy timeout as before. Within one process the engine keeps one connection, so transactions queue in asyncio.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

LOCKED_MESSAGES = ("database is locked", "database table is locked", "database is busy")

# The SQLAlchemy versions whose aiosqlite dialect this module is written against: [first, last) as (major, minor).
# It uses internals of `sqlalchemy.dialects.sqlite.aiosqlite` (the adapted connection checks `_connection`, calls
# `stop()` and `create_function`), so pyproject.toml pins the same range and
# tests/unit/test_inline_sqlite_contract.py fails on any other version. Outside it, WARROOM_SQLITE_DRIVER=aiosqlite.
SUPPORTED_SQLALCHEMY = ((2, 1), (2, 2))


def unsupported_sqlalchemy(version: str | None = None) -> str | None:
    """Why the installed (or given) SQLAlchemy is not one this module supports, or None when it is."""
    if version is None:
        import sqlalchemy

        version = sqlalchemy.__version__
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        major_minor = ()
    first, last = SUPPORTED_SQLALCHEMY
    if len(major_minor) == 2 and first <= major_minor < last:
        return None
    return (f"SQLAlchemy {version} is outside the versions storage.inline_sqlite supports "
            f"(>={first[0]}.{first[1]},<{last[0]}.{last[1]}): set WARROOM_SQLITE_DRIVER=aiosqlite, or install a "
            "supported SQLAlchemy")


def _locked(error: sqlite3.OperationalError) -> bool:
    return any(text in str(error).lower() for text in LOCKED_MESSAGES)


class InlineCursor:
    """An aiosqlite-shaped cursor whose coroutines finish without suspending (except to wait for a lock)."""

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self._cursor = connection.raw.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        await self._connection.when_unlocked(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> InlineCursor:
        await self._connection.when_unlocked(lambda: self._cursor.executemany(sql, parameters))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None


class _CursorOpener:
    """What aiosqlite's `Connection.cursor()` returns: awaited (via __aenter__) into a cursor."""

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection

    async def __aenter__(self) -> InlineCursor:
        return InlineCursor(self._connection)

    def __await__(self) -> Generator[Any, None, InlineCursor]:
        return self.__aenter__().__await__()


class InlineConnection:
    """The part of aiosqlite's Connection that SQLAlchemy's aiosqlite dialect uses, on the loop thread.
    Open with `isolation_level=None` (the caller controls transactions, as storage.engine does)."""

    def __init__(self, raw: sqlite3.Connection, *, lock_timeout: float) -> None:
        self.raw = raw
        self._lock_timeout = lock_timeout
        self._connection = raw  # the dialect checks this attribute to know the connection is open

    @property
    def isolation_level(self) -> str | None:
        return self.raw.isolation_level

    async def when_unlocked(self, call: Callable[[], Any]) -> Any:
        """Run `call`; while another process holds SQLite's write lock, retry after short asyncio sleeps
        (the event loop keeps serving) until the lock timeout."""
        deadline = None
        delay = 0.001
        while True:
            try:
                return call()
            except sqlite3.OperationalError as error:
                if not _locked(error):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self._lock_timeout
                if now >= deadline:
                    raise
                await asyncio.sleep(min(delay, deadline - now))
                delay = min(delay * 2, 0.05)

    def cursor(self) -> _CursorOpener:
        return _CursorOpener(self)

    async def commit(self) -> None:
        await self.when_unlocked(self.raw.commit)

    async def rollback(self) -> None:
        self.raw.rollback()

    async def close(self) -> None:
        self.raw.close()
        self._connection = None  # type: ignore[assignment]

    def stop(self) -> None:
        self.raw.close()
        self._connection = None  # type: ignore[assignment]

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.raw.create_function(*args, **kwargs)


def inline_connector(database: str, *, lock_timeout: float) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine("sqlite+aiosqlite://…")`."""

    async def connect() -> InlineConnection:
        # timeout=0: SQLite's own busy handler would sleep on the event loop thread; `when_unlocked` waits instead.
        raw = sqlite3.connect(database, timeout=0, isolation_level=None, check_same_thread=False,
                              detect_types=0)
        return InlineConnection(raw, lock_timeout=lock_timeout)

    return connect


__all__ = ["InlineConnection", "inline_connector"]
