"""The contract between storage.inline_sqlite and SQLAlchemy's aiosqlite dialect, whose internals it relies on.

When one of these fails, the installed SQLAlchemy is not one inline_sqlite was written for: pin a supported one
(pyproject.toml) or run with WARROOM_SQLITE_DRIVER=aiosqlite until inline_sqlite is updated."""

import inspect
import re
from pathlib import Path

import sqlalchemy as sa

from storage.engine import create_engine
from storage.inline_sqlite import SUPPORTED_SQLALCHEMY, InlineConnection, unsupported_sqlalchemy

FALLBACK = "set WARROOM_SQLITE_DRIVER=aiosqlite"


def test_the_installed_sqlalchemy_is_a_supported_version():
    problem = unsupported_sqlalchemy()
    assert problem is None, problem


def test_the_check_names_the_version_and_the_setting():
    problem = unsupported_sqlalchemy("2.3.0")
    assert problem is not None and "SQLAlchemy 2.3.0" in problem and "WARROOM_SQLITE_DRIVER=aiosqlite" in problem
    first, _ = SUPPORTED_SQLALCHEMY
    assert unsupported_sqlalchemy(f"{first[0]}.{first[1]}.0") is None


def test_pyproject_pins_the_same_range():
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    (first, last) = SUPPORTED_SQLALCHEMY
    pin = f'"sqlalchemy>={first[0]}.{first[1]},<{last[0]}.{last[1]}"'
    assert re.search(re.escape(pin), pyproject, re.IGNORECASE), f"pyproject.toml should pin {pin}"


def test_the_aiosqlite_dialect_internals_inline_sqlite_uses_are_there():
    from sqlalchemy.dialects.sqlite import aiosqlite

    where = f"SQLAlchemy {sa.__version__}: sqlalchemy.dialects.sqlite.aiosqlite"
    adapted = getattr(aiosqlite, "AsyncAdapt_aiosqlite_connection", None)
    assert adapted is not None, f"{where} has no AsyncAdapt_aiosqlite_connection; {FALLBACK}"
    source = inspect.getsource(adapted)
    # What the adapted connection calls on the driver connection, which InlineConnection must provide.
    for used in ("self._connection._connection", "self._connection.stop", "self._connection.create_function",
                 "self._connection.isolation_level"):
        assert used in source, f"{where} no longer uses {used!r}: inline_sqlite's contract changed; {FALLBACK}"
    for name in ("cursor", "commit", "rollback", "close", "stop", "create_function", "isolation_level"):
        assert hasattr(InlineConnection, name), f"InlineConnection lacks {name}"


async def test_an_inline_engine_runs_statements_and_transactions(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}", sqlite_driver="inline")
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            await connection.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            assert isinstance(raw.driver_connection, InlineConnection), (
                f"SQLAlchemy {sa.__version__} did not use the inline connection; {FALLBACK}")
            assert (await connection.execute(sa.text("SELECT sum(x) FROM t"))).scalar() == 3
    finally:
        await engine.dispose()
