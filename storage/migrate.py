"""Run Alembic migrations programmatically (start-up and `warroom db upgrade`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x57A7_500D  # an arbitrary, fixed advisory-lock key for "warroom is migrating"
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]+)?=\s*(.+?)\s*$", re.MULTILINE)


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def script_heads() -> set[str] | None:
    """The head revisions of the migration scripts, read from their `revision`/`down_revision` lines without
    importing Alembic (which, with Mako and Pygments, costs a server ~0.1 s and ~10 MB at every start).
    None when a script does not say plainly, so the caller lets Alembic decide."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(script.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else list(down or ()))
    return (revisions - parents) or None


async def at_heads(engine: AsyncEngine) -> bool:
    """True when the database's alembic_version rows are exactly the scripts' heads (nothing to migrate)."""
    heads = script_heads()
    if heads is None:
        return False
    async with engine.connect() as connection:
        def versions(sync: sa.Connection) -> set[str] | None:
            if not sa.inspect(sync).has_table("alembic_version"):
                return None
            return {row[0] for row in sync.execute(sa.text("SELECT version_num FROM alembic_version"))}

        return await connection.run_sync(versions) == heads


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    """Migrate the database behind `engine` to `revision` inside one connection. A database already at the
    scripts' head is recognised without loading Alembic, so a restart does not pay for it."""
    if revision in ("head", "heads") and await at_heads(engine):
        return

    def _upgrade(connection: sa.Connection) -> None:
        from alembic import command

        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas start together: one migrates, the others wait here and then find the schema at head.
            await connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        await connection.run_sync(_upgrade)
