"""Architecture: `bot/` is the core and imports no chat SDK, HTTP client, ORM, driver, adapter or storage module.

Only the composition root (`bot/app/bootstrap.py`, `bot/app/cli.py`) may reach adapters and storage, and only
from inside
functions, so importing any `bot` module never drags infrastructure in. Adapters talk to chat platforms and hold no
persistence. The check reads the source with `ast` (nothing is imported), so it also sees imports in functions,
under `if TYPE_CHECKING:`, in `try:` blocks and through `importlib.import_module("…")`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
ADAPTERS = ROOT / "adapters"

FORBIDDEN_IN_BOT = frozenset({
    "slack_bolt", "slack_sdk", "discord", "httpx", "aiohttp", "sqlmodel", "sqlalchemy", "asyncpg", "aiosqlite",
    "starlette", "uvicorn", "adapters", "storage", "prometheus_client",
})
APP = BOT / "app"
SETTINGS = APP / "settings.py"
PLATFORM_SETTINGS = re.compile(r"adapters\.\w+\.settings")
COMPOSITION_ROOTS = frozenset({"bootstrap.py", "cli.py"})
PERSISTENCE = frozenset({"sqlmodel", "sqlalchemy", "storage", "asyncpg", "aiosqlite", "alembic"})


@dataclass(frozen=True)
class ImportSite:
    path: str
    line: int
    module: str  # fully qualified, e.g. "slack_sdk.web"
    in_function: bool

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    def __str__(self) -> str:
        where = "inside a function" if self.in_function else "at module level"
        return f"{self.path}:{self.line} imports {self.module} ({where})"


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, path: str, package: str) -> None:
        self.path = path
        self.package = package  # e.g. "bot" for bot/incident/commands.py, for relative imports
        self.depth = 0  # > 0 inside a function or lambda body; class bodies run at import time, so they do not count
        self.sites: list[ImportSite] = []

    def _add(self, node: ast.AST, module: str) -> None:
        self.sites.append(ImportSite(self.path, getattr(node, "lineno", 0), module, self.depth > 0))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        # Decorators and default values are evaluated where the function is defined, not when it runs.
        for outer in [*getattr(node, "decorator_list", []), *node.args.defaults,
                      *[d for d in node.args.kw_defaults if d is not None]]:
            self.visit(outer)
        self.depth += 1
        body = node.body if isinstance(node.body, list) else [node.body]
        for statement in body:
            self.visit(statement)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0:
            self._add(node, node.module or "")
            return
        base = self.package.split(".")
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        if node.module:
            self._add(node, ".".join([*base, node.module]) if base else node.module)
        else:  # from . import x, y
            for alias in node.names:
                self._add(node, ".".join([*base, alias.name]) if base else alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            self._add(node, node.args[0].value)
        self.generic_visit(node)


def imports_in(source: str, path: str = "<string>", package: str = "bot") -> list[ImportSite]:
    collector = _ImportCollector(path, package)
    collector.visit(ast.parse(source, filename=path))
    return collector.sites


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def scan(folder: Path) -> dict[Path, list[ImportSite]]:
    found = {}
    for path in python_files(folder):
        relative = path.relative_to(ROOT)
        package = ".".join(relative.parent.parts)
        found[path] = imports_in(path.read_text(encoding="utf-8"), relative.as_posix(), package)
    return found


def violations(sites: list[ImportSite], forbidden: frozenset[str]) -> list[ImportSite]:
    return [site for site in sites if site.top in forbidden]


def report(bad: list[ImportSite]) -> str:
    return "forbidden imports:\n" + "\n".join(f"  {site}" for site in bad)


# ------------------------------------------------------------------------------------------------- the rule itself


def test_bot_core_modules_import_no_sdk_http_orm_adapters_or_storage() -> None:
    bad = [site
           for path, sites in scan(BOT).items() if path.parent != APP or path.name not in COMPOSITION_ROOTS
           for site in violations(sites, FORBIDDEN_IN_BOT)
           if not (path == SETTINGS and PLATFORM_SETTINGS.fullmatch(site.module))]
    assert not bad, report(bad)


def test_the_settings_module_imports_only_the_platforms_settings_models() -> None:
    """The one settings object composes each platform's sub-model, defined beside its adapter in plain pydantic;
    nothing else of an adapter (no SDK) comes in with it."""
    sites = imports_in(SETTINGS.read_text(encoding="utf-8"), SETTINGS.relative_to(ROOT).as_posix(), "bot.app")
    platform = [site.module for site in sites if site.top == "adapters"]
    assert platform and all(PLATFORM_SETTINGS.fullmatch(module) for module in platform), platform
    for module in platform:
        source = (ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        package = ROOT / module.rsplit(".", 1)[0].replace(".", "/") / "__init__.py"
        tops = {site.top for site in imports_in(source, module) + imports_in(package.read_text(encoding="utf-8"))}
        assert tops <= {"__future__", "pydantic", "pydantic_settings"}, (module, tops)


@pytest.mark.parametrize("name", sorted(COMPOSITION_ROOTS))
def test_composition_root_imports_infrastructure_only_inside_functions(name: str) -> None:
    path = APP / name
    assert path.is_file(), f"composition root {path} is missing"
    sites = imports_in(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    bad = [site for site in violations(sites, FORBIDDEN_IN_BOT) if not site.in_function]
    assert not bad, report(bad)


def test_adapters_hold_no_persistence() -> None:
    scanned = scan(ADAPTERS)
    assert scanned, f"no adapter modules found under {ADAPTERS}"
    bad = [site for sites in scanned.values() for site in violations(sites, PERSISTENCE)]
    assert not bad, report(bad)


def test_the_scan_sees_the_whole_bot_package() -> None:
    scanned = scan(BOT)
    names = {path.relative_to(BOT).as_posix() for path in scanned}
    assert len(names) >= 10, f"only {len(names)} modules found under {BOT}: {sorted(names)}"
    assert {"incident/commands.py", "incident/service.py", "ports.py", "incident/domain.py",
            *(f"app/{name}" for name in COMPOSITION_ROOTS)} <= names
    assert sum(len(sites) for sites in scanned.values()) >= 30, "suspiciously few imports: is the scanner broken?"


# ------------------------------------------------------------------------------- the check cannot pass vacuously


@pytest.mark.parametrize(("source", "module", "line", "in_function"), [
    ("import slack_sdk\n", "slack_sdk", 1, False),
    ("import os\nfrom slack_sdk.web.async_client import AsyncWebClient\n", "slack_sdk.web.async_client", 2, False),
    ("import slack_bolt.app as app\n", "slack_bolt.app", 1, False),
    ("def build():\n    import sqlmodel\n", "sqlmodel", 2, True),
    ("async def build():\n    from storage.engine import create_engine\n", "storage.engine", 2, True),
    ("class Repo:\n    import httpx\n", "httpx", 2, False),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sqlalchemy import Engine\n", "sqlalchemy", 3,
     False),
    ("try:\n    import uvicorn\nexcept ImportError:\n    uvicorn = None\n", "uvicorn", 2, False),
    ("import importlib\nchat = importlib.import_module('discord')\n", "discord", 2, False),
    ("def f():\n    return __import__('aiohttp')\n", "aiohttp", 2, True),
    ("from .. import adapters\n", "adapters", 1, False),
    ("from ..storage import tables\n", "storage", 1, False),
    ("f = lambda: __import__('asyncpg')\n", "asyncpg", 1, True),
    ("def outer():\n    def inner():\n        import starlette\n", "starlette", 3, True),
])
def test_the_check_detects_a_forbidden_import(source: str, module: str, line: int, in_function: bool) -> None:
    bad = violations(imports_in(source, "bot/fake.py", package="bot"), FORBIDDEN_IN_BOT)
    assert len(bad) == 1, bad
    assert bad[0].top == module.split(".")[0]
    assert (bad[0].line, bad[0].in_function) == (line, in_function)


def test_the_failure_message_names_file_line_and_module() -> None:
    bad = violations(imports_in("import re\n\nfrom slack_sdk import WebClient\n", "bot/fake.py"), FORBIDDEN_IN_BOT)
    message = report(bad)
    assert "bot/fake.py:3 imports slack_sdk (at module level)" in message


@pytest.mark.parametrize("source", [
    "import re\nfrom bot.ports import Clock\nfrom bot import commands\n",
    "import slack_sdk_stub\nimport storage_helpers\nfrom discordant import x\n",  # prefixes are not the package
    "from . import commands\nfrom .ports import Clock\n",  # relative imports inside bot stay inside bot
    "x = 'import slack_sdk'\n# import sqlmodel\n",
])
def test_the_check_accepts_allowed_imports(source: str) -> None:
    assert violations(imports_in(source, "bot/fake.py", package="bot"), FORBIDDEN_IN_BOT) == []


def test_the_composition_root_check_tells_module_level_from_function_level() -> None:
    source = "from storage.engine import create_engine\n\ndef build():\n    from adapters.console import Console\n"
    sites = violations(imports_in(source, "bot/app/bootstrap.py"), FORBIDDEN_IN_BOT)
    assert [(site.top, site.in_function) for site in sites] == [("storage", False), ("adapters", True)]


def test_a_decorator_or_default_value_runs_at_import_time() -> None:
    source = "def f(client=__import__('httpx')):\n    pass\n"
    (site,) = violations(imports_in(source), FORBIDDEN_IN_BOT)
    assert not site.in_function
