"""Engines from a database URL: SQLite (WAL, busy timeout) by default, PostgreSQL via asyncpg."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from storage.inline_sqlite import inline_connector

SQLITE_BUSY_TIMEOUT_MS = 5000

SqliteDriver = Literal["inline", "aiosqlite"]
"""How SQLite files are opened (WARROOM_SQLITE_DRIVER): "inline" runs sqlite3 on the event loop thread
(storage.inline_sqlite, which relies on SQLAlchemy internals of the supported versions); "aiosqlite" is plain
aiosqlite (a worker thread per connection), the fallback for an SQLAlchemy that inline_sqlite does not support."""
SQLITE_DRIVERS: tuple[SqliteDriver, ...] = ("inline", "aiosqlite")


def async_url(url: str) -> str:
    """Accept the URLs people write (sqlite:///x.db, postgresql://…) and pick the async driver."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}
    backend = parsed.drivername.split("+")[0]
    if backend not in driver:
        raise ValueError(f"Unsupported database URL scheme {parsed.drivername!r}; use sqlite:///file.db or "
                         "postgresql://user@host/db")
    return parsed.set(drivername=driver[backend]).render_as_string(hide_password=False)


def create_engine(url: str, *, sqlite_driver: SqliteDriver = "inline") -> AsyncEngine:
    """`sqlite_driver` applies to SQLite files only (see `SqliteDriver`)."""
    if sqlite_driver not in SQLITE_DRIVERS:
        raise ValueError(f"Unknown SQLite driver {sqlite_driver!r}: WARROOM_SQLITE_DRIVER is one of "
                         f"{', '.join(SQLITE_DRIVERS)}")
    url = async_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            # SQLite has one writer, and every transaction here takes the write lock (BEGIN IMMEDIATE below). Two
            # connections in one process would queue in SQLite's busy handler, which polls with sleeps of up to
            # 100 ms; one pooled connection makes them queue in asyncio instead, first come first served, woken
            # the moment the previous transaction ends. Waiting longer than the busy timeout fails as SQLite did.
            pool: dict[str, Any] = {"poolclass": AsyncAdaptedQueuePool, "pool_size": 1, "max_overflow": 0,
                          "pool_timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            if sqlite_driver == "inline":
                # sqlite3 on the event loop thread instead of aiosqlite's worker thread (see
                # storage.inline_sqlite: the thread hops were most of the CPU of every command).
                pool["async_creator"] = inline_connector(str(Path(database).expanduser()),
                                                         lock_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
                busy_timeout_ms = 0  # waiting for another process's lock happens in asyncio (inline_sqlite)
            else:
                pool["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
                busy_timeout_ms = SQLITE_BUSY_TIMEOUT_MS
        else:
            pool = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
            busy_timeout_ms = SQLITE_BUSY_TIMEOUT_MS
        engine = create_async_engine(url, **pool)

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:  # a DBAPI connection: untyped
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            # The sqlite3 driver opens transactions lazily and its SAVEPOINTs are broken: a SAVEPOINT before the
            # first write starts SQLite's own transaction and RELEASE commits it, so "record the delivery id,
            # then the message" committed the first half on its own. Take transaction control back (as
            # SQLAlchemy's SQLite docs advise) and begin every unit of work explicitly.
            if dbapi_connection.isolation_level is not None:  # inline connections are opened that way
                dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection: sa.Connection) -> None:
            # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead of one
            # failing at once when it upgrades a read lock ("database is locked").
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_pre_ping=True)


class SchedulerLock:
    """On SQLite only one process may run the reminder scheduler: SQLite has no SKIP LOCKED and is meant as the
    single-process embedded default. An OS file lock beside the database says who runs it and is released by
    the kernel when that process dies (even kill -9), so there is no stale lease to clean up."""

    def __init__(self, url: str) -> None:
        parsed = make_url(async_url(url))
        self.applies = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
        self.path = Path(f"{parsed.database}.scheduler.lock") if self.applies else None
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        """True when this process may run the scheduler (always on PostgreSQL)."""
        if not self.applies or self.path is None:
            return True
        import fcntl
        import os

        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown" if self.path else "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class DatabaseUnavailable(ValueError):
    """The database could not be opened or migrated: one line for the person starting warroom."""


async def open_database(url: str, *, migrate: bool = True, sqlite_driver: SqliteDriver = "inline") -> AsyncEngine:
    """An engine on `url`, migrated to head: the one way the composition root opens storage. A database that
    cannot be reached (refused, unknown host, wrong credentials, no such database) is one clear line, not a
    driver traceback; the password never appears in it."""
    from sqlalchemy.exc import DBAPIError

    from storage.migrate import upgrade

    where = make_url(url).render_as_string(hide_password=True)
    try:
        engine = create_engine(url, sqlite_driver=sqlite_driver)
    except OSError as problem:  # the SQLite file's folder cannot be made
        raise DatabaseUnavailable(f"cannot open the database {where}: {problem.strerror or problem}") from None
    if not migrate:
        return engine
    try:
        await upgrade(engine)
    except (OSError, DBAPIError) as problem:
        await engine.dispose()
        reason = getattr(problem, "orig", None) or problem
        raise DatabaseUnavailable(f"cannot open the database {where}: {str(reason).splitlines()[0]}") from None
    return engine
