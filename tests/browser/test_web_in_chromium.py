"""The web pages in a real browser: Playwright's async API driving Debian's Chromium (`.ci/run` installs it;
WARROOM_CHROMIUM points elsewhere). The server is uvicorn in the test's own event loop, on 127.0.0.1 and a
port the test bound itself, over a real warroom on SQLite. A failing test leaves `failure.png` in its tmp_path."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.http import build_http_app
from adapters.web.app import COOKIE, WebApp
from bot.app.settings import WebSettings
from tests.support import Harness, make_settings, start_harness

CHROMIUM = os.environ.get("WARROOM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or WARROOM_CHROMIUM)")
LIVE_MS = 1000  # a captured message shows on an open page within a second


@dataclass
class Site:
    team: Harness
    base: str
    sock: socket.socket
    web: WebApp
    server: Any
    task: Any

    async def stop(self) -> None:
        await self.web.close()  # live streams end, so uvicorn is not kept waiting on them
        self.server.should_exit = True
        await self.task


def _bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


async def serve(team: Harness, sock: socket.socket) -> Site:
    """uvicorn on a socket already listening: the browser's connections wait in its backlog, no start-up race."""
    import asyncio

    import uvicorn

    web = WebApp(views=team.app.web, sign_in=team.app.sign_in, service=team.service,
                 settings=team.settings.web.model_copy(update={"status_cache_seconds": 0}), live_interval=0.1)
    server = uvicorn.Server(uvicorn.Config(build_http_app(web.routes()), lifespan="off", log_level="warning",
                                           timeout_graceful_shutdown=2))
    host, port = sock.getsockname()
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    return Site(team=team, base=f"http://{host}:{port}", sock=sock, web=web, server=server, task=task)


@pytest.fixture
async def site(tmp_path: Path, clock, database_url) -> AsyncIterator[Site]:
    sock = _bound_socket()
    host, port = sock.getsockname()
    settings = make_settings(tmp_path, database_url=database_url,
                             web=WebSettings(_env_file=None, WARROOM_WEB_BASE_URL=f"http://{host}:{port}"))
    team = await start_harness(settings, clock)
    running = await serve(team, sock)
    yield running
    with contextlib.suppress(Exception):
        await running.stop()
    running.sock.close()
    await team.app.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Any, tmp_path: Path) -> AsyncIterator[Any]:
    context = await browser.new_context(accept_downloads=True)
    tab = await context.new_page()
    tab.problems = []  # console errors (a CSP violation shows up here) and dialogs (an XSS that ran)
    # (a 401/404/410 page is expected here and logs "Failed to load resource": not a problem)
    tab.on("console", lambda message: tab.problems.append(message.text)
           if message.type == "error" and not message.text.startswith("Failed to load resource") else None)

    async def dialog(d: Any) -> None:
        tab.problems.append(f"dialog: {d.message}")
        await d.dismiss()

    tab.on("dialog", dialog)
    yield tab
    await context.close()


async def screenshot_on_failure(page: Any, tmp_path: Path, body: Callable[[], Awaitable[None]]) -> None:
    try:
        await body()
    except BaseException:
        with contextlib.suppress(Exception):
            await page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        raise


async def sign_in(site: Site, page: Any) -> None:
    from playwright.async_api import expect

    reply = await site.team.ok("web")
    link = reply.message.text.rsplit(" ", 1)[1]
    await page.goto(link)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Incidents")).to_be_visible()


async def test_sign_in_through_a_one_time_link(site: Site, page: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def body() -> None:
        reply = await site.team.ok("web")
        link = reply.message.text.rsplit(" ", 1)[1]
        await page.goto(site.base + "/web")
        await expect(page.get_by_role("heading", name="Sign in to warroom")).to_be_visible()
        await page.goto(link)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(site.base + "/web")
        await expect(page.get_by_role("heading", name="Incidents")).to_be_visible()
        cookie = next(c for c in await page.context.cookies() if c["name"] == COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert await page.evaluate("document.cookie") == ""  # script cannot read the session
        await page.goto(link)  # the same link again
        await expect(page.get_by_text("already used")).to_be_visible()
        await page.goto(site.base + "/web")
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
        assert page.problems == []

    await screenshot_on_failure(page, tmp_path, body)


async def test_timeline_updates_live_and_after_a_server_restart(site: Site, page: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def body() -> None:
        await site.team.ok('declare P1 "Payments down"')
        room = await site.team.room(1)
        await sign_in(site, page)
        await page.goto(site.base + "/web/incidents/1")
        live = page.locator("#live-state")
        await expect(live).to_contain_text("Live:")
        await site.team.say("seeing 403s on <callback>", room=room, user="bob")
        await expect(page.locator("#timeline li", has_text="seeing 403s on <callback>")).to_be_visible(
            timeout=LIVE_MS)
        # restart: the server goes away and comes back on the same address; the page reconnects by itself
        await site.stop()
        await expect(live).to_contain_text("reconnecting")
        await site.team.say("said while the server was down", room=room, user="bob")
        site.sock = _bound_socket(int(site.base.rsplit(":", 1)[1]))  # the same address, a new process's socket
        restarted = await serve(site.team, site.sock)
        site.web, site.server, site.task = restarted.web, restarted.server, restarted.task
        await expect(page.locator("#timeline li", has_text="said while the server was down")).to_be_visible()
        await expect(live).to_contain_text("Live:")
        await site.team.say("and after the restart", room=room, user="carol")
        await expect(page.locator("#timeline li", has_text="and after the restart")).to_be_visible(timeout=LIVE_MS)
        assert await page.locator("#timeline li", has_text="seeing 403s").count() == 1  # nothing twice
        assert [p for p in page.problems if "EventSource" not in p and "ERR_" not in p] == [], page.problems

    await screenshot_on_failure(page, tmp_path, body)


async def test_status_page_shows_only_published_text(site: Site, page: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def body() -> None:
        await site.team.ok('declare P1 "Internal: db-7 overloaded by the batch job"')
        room = await site.team.room(1)
        await site.team.say("bob restarted db-7", room=room, user="bob")
        await site.team.ok('public identified "Payments are delayed; we know why." areas=payments', room=room)
        await page.goto(site.base + "/status")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Service status")
        await expect(page.get_by_text("Payments are delayed; we know why.")).to_be_visible()
        text = await page.locator("body").inner_text()
        for internal in ("db-7", "bob", "alice", "batch job", "Internal"):
            assert internal not in text, internal
        assert page.problems == []

    await screenshot_on_failure(page, tmp_path, body)


async def test_an_xss_title_is_rendered_inert(site: Site, page: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    title = "<img src=x onerror=alert(1)><script>window.pwned=1</script>"
    async def body() -> None:
        await site.team.ok(f'declare P1 "{title}"')
        room = await site.team.room(1)
        await site.team.say("<svg onload=alert(2)>", room=room)
        await site.team.ok(f'public "{title}"', room=room)
        await sign_in(site, page)
        for path in ("/web", "/web/incidents/1", "/web/incidents/1/postmortem", "/status"):
            await page.goto(site.base + path)
            await expect(page.locator("main")).to_contain_text("<script>window.pwned=1</script>")
            assert await page.evaluate("typeof window.pwned") == "undefined"
            assert await page.locator("main img, main script").count() == 0
        assert page.problems == [], page.problems

    await screenshot_on_failure(page, tmp_path, body)


async def test_post_mortem_downloads(site: Site, page: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    async def body() -> None:
        await site.team.ok('declare P1 "Payments down"')
        room = await site.team.room(1)
        await site.team.ok('note rootcause "the cert expired"', room=room)
        await sign_in(site, page)
        await page.goto(site.base + "/web/incidents/1")
        await page.get_by_role("link", name="Post-mortem").click()
        await expect(page.get_by_role("heading", name="Root cause")).to_be_visible()
        async with page.expect_download() as waiting:
            await page.get_by_role("link", name="Markdown (.md)").click()
        download = await waiting.value
        assert download.suggested_filename == "inc-1-postmortem.md"
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        text = saved.read_text(encoding="utf-8")
        assert text.startswith("# INC-1 post-mortem") and "the cert expired" in text

    await screenshot_on_failure(page, tmp_path, body)
