"""The web pages as Starlette routes, mounted by the composition root on `warroom serve`'s one HTTP app.

    web = WebApp(views=app.web, sign_in=app.sign_in, service=app.service, settings=settings.web)
    routes += web.routes()

Signed in (session cookie from a one-time link): /web, /web/incidents/<n> (+ /events, /postmortem[.md|.json]),
/web/stats. Public: /status, /status/<tenant>, their /feed.atom, /status/summary.json. Every response carries a
CSP that allows only our own files (no inline script or style, nothing from elsewhere).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from adapters.web import html
from adapters.web.live import LiveTimeline
from bot.incident.domain import DomainError
from bot.web.public import summary
from bot.web.signin import HOW_TO_GET_A_LINK, LinkRefused, WebSession
from bot.web.views import IncidentFilter

log = logging.getLogger("warroom.web")

STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
COOKIE = "warroom_session"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a sign-in link's token never leaves in a Referer
    "X-Frame-Options": "DENY",
}
MAX_FORM_BYTES = 4096


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def page(body: str, status: int = 200, **headers: str) -> Response:
    return _secure(HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store", **headers}))


class WebApp:
    def __init__(self, *, views: Any, sign_in: Any, service: Any, settings: Any,
                 live_interval: float = 0.25) -> None:
        self.views = views
        self.sign_in = sign_in
        self.service = service
        self.settings = settings
        self.live = LiveTimeline(views, interval=live_interval)
        self._cache: dict[str, tuple[float, bytes, str]] = {}
        self._cache_locks: dict[str, asyncio.Lock] = {}
        self._static = {p.name: p.read_bytes() for p in STATIC_DIR.iterdir() if p.suffix in STATIC_TYPES}

    def routes(self) -> list[Route]:
        signed_in = self._signed_in
        return [
            Route("/web", signed_in(self.incidents), methods=["GET"]),
            Route("/web/login", self.login_form, methods=["GET"]),
            Route("/web/login", self.login, methods=["POST"]),
            Route("/web/logout", self.logout, methods=["POST"]),
            Route("/web/stats", signed_in(self.stats), methods=["GET"]),
            Route("/web/incidents/{number:int}", signed_in(self.incident), methods=["GET"]),
            Route("/web/incidents/{number:int}/events", signed_in(self.events, page=False), methods=["GET"]),
            Route("/web/incidents/{number:int}/postmortem", signed_in(self.postmortem), methods=["GET"]),
            Route("/web/incidents/{number:int}/postmortem.{fmt:str}", signed_in(self.download, page=False),
                  methods=["GET"]),
            Route("/web/{rest:path}", signed_in(self.unknown), methods=["GET"]),
            Route("/static/web/{name:str}", self.static, methods=["GET"]),
            Route("/status", self.status, methods=["GET"]),
            Route("/status/summary.json", self.status_summary, methods=["GET"]),
            Route("/status/feed.atom", self.status_feed, methods=["GET"]),
            Route("/status/{tenant:str}", self.status, methods=["GET"]),
            Route("/status/{tenant:str}/feed.atom", self.status_feed, methods=["GET"]),
        ]

    async def close(self) -> None:
        await self.live.close()

    # -- sessions ----------------------------------------------------------------------------------------

    def _signed_in(self, handler: Callable[[Request, WebSession], Awaitable[Response]], *, page: bool = True
                   ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            session = await self.sign_in.session(request.cookies.get(COOKIE))
            if session is None:
                if not page:
                    return _secure(Response("sign in first: /incident web in chat\n", status_code=401,
                                            media_type="text/plain"))
                return _page_401()
            return await handler(request, session)
        return guarded

    async def login_form(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        refused = await self.sign_in.check_link(token) if token else LinkRefused("unknown")
        if refused is not None:
            return _refused(refused)
        return page(html.login_page(token=token))

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        if form is None:
            return page(html.message_page(title="Bad request", text="The sign-in form was not readable."), 400)
        outcome = await self.sign_in.redeem(form.get("token", ""))
        if isinstance(outcome, LinkRefused):
            return _refused(outcome)
        response = RedirectResponse("/web", status_code=303)
        response.set_cookie(COOKIE, outcome.token, max_age=int(outcome.expires_in.total_seconds()), httponly=True,
                            samesite="lax", secure=self.settings.secure_cookies, path="/")
        log.info("web sign-in: %s", outcome.name)
        return _secure(response)

    async def logout(self, request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        session = await self.sign_in.session(token)
        form = await _form(request)
        if session is None or form is None or not form.get("csrf") or form.get("csrf") != session.csrf:
            return page(html.message_page(title="Not signed out",
                                          text="This sign-out request did not come from a warroom page "
                                               "(missing or wrong form token)."), 403)
        await self.sign_in.sign_out(token or "")
        response = page(html.message_page(title="Signed out", text="You are signed out of warroom.",
                                          hint=HOW_TO_GET_A_LINK))
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=self.settings.secure_cookies)
        return response

    # -- team pages --------------------------------------------------------------------------------------

    async def incidents(self, request: Request, session: WebSession) -> Response:
        query = request.query_params
        try:
            wanted = IncidentFilter(
                status=query.get("status") or None, severity=query.get("severity") or None,
                platform=query.get("platform") or None,
                since=date.fromisoformat(query["since"]) if query.get("since") else None,
                until=date.fromisoformat(query["until"]) if query.get("until") else None)
        except ValueError:
            return page(html.message_page(title="Bad filter", text="Dates are YYYY-MM-DD, e.g. 2026-11-24.",
                                          user=session.name, csrf=session.csrf), 400)
        rows = await self.views.incidents(wanted)
        every = await self.views.incidents(IncidentFilter())
        platforms = sorted({i.incident.platform for i in every if i.incident.platform})
        return page(html.incidents_page(rows, wanted, severities=self.views.ladder.level_names,
                                        platforms=platforms, tz=self.views.tz, user=session.name,
                                        csrf=session.csrf))

    async def incident(self, request: Request, session: WebSession) -> Response:
        number = request.path_params["number"]
        view = await self.views.incident(number, everything=request.query_params.get("all") == "1")
        if view is None:
            return page(html.not_found_page(f"There is no incident INC-{number}."), 404)
        return page(html.incident_page(view, tz=self.views.tz, user=session.name, csrf=session.csrf))

    async def events(self, request: Request, session: WebSession) -> Response:
        """Server-sent events: each new timeline entry of the incident, as JSON, with its id so a reconnecting
        page (after a restart too) resumes after the last one it showed."""
        number = request.path_params["number"]
        if not await self.views.exists(number):
            return _secure(Response("unknown incident\n", status_code=404, media_type="text/plain"))
        try:
            after = int(request.headers.get("last-event-id") or request.query_params.get("after") or 0)
        except ValueError:
            after = 0
        return _secure(StreamingResponse(self._stream(number, after), media_type="text/event-stream",
                                         headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}))

    async def _stream(self, number: int, after: int) -> AsyncIterator[str]:
        queue = self.live.subscribe(number)
        tz = self.views.tz
        try:
            yield "retry: 1000\n\n"
            sent = after
            for _, event in await self.views.timeline_after(after, [number], 10_000):  # caught up first
                sent = max(sent, event.id or 0)
                yield _sse(event, tz)
            while not self.live.closed.is_set():
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event is None:
                    break
                if (event.id or 0) > sent:
                    sent = event.id or 0
                    yield _sse(event, tz)
        finally:
            self.live.unsubscribe(number, queue)

    async def postmortem(self, request: Request, session: WebSession) -> Response:
        number = request.path_params["number"]
        try:
            document = await self.service.export_postmortem(number, "md")
        except DomainError:
            return page(html.not_found_page(f"There is no incident INC-{number}."), 404)
        return page(html.postmortem_page(number=number, key=f"INC-{number}", document=document, user=session.name,
                                         csrf=session.csrf))

    async def download(self, request: Request, session: WebSession) -> Response:
        number, fmt = request.path_params["number"], request.path_params["fmt"]
        if fmt not in ("md", "json"):
            return page(html.not_found_page("Post-mortems download as .md or .json."), 404)
        try:
            document = await self.service.export_postmortem(number, fmt)
        except DomainError:
            return page(html.not_found_page(f"There is no incident INC-{number}."), 404)
        media = "text/markdown; charset=utf-8" if fmt == "md" else "application/json"
        return _secure(Response(document, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="inc-{number}-postmortem.{fmt}"',
            "Cache-Control": "no-store"}))

    async def stats(self, request: Request, session: WebSession) -> Response:
        raw = request.query_params.get("days", "30")
        if not raw.isdigit() or not 1 <= int(raw) <= 365:
            return page(html.message_page(title="Bad period", text="days is a number from 1 to 365, e.g. ?days=30.",
                                          user=session.name, csrf=session.csrf), 400)
        return page(html.stats_page(await self.views.stats(int(raw)), user=session.name, csrf=session.csrf))

    async def unknown(self, request: Request, session: WebSession) -> Response:
        return page(html.not_found_page("There is no such page."), 404)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        content = self._static.get(name)
        if content is None:
            return page(html.not_found_page("There is no such file."), 404)
        return _secure(Response(content, media_type=STATIC_TYPES[Path(name).suffix],
                                headers={"Cache-Control": "public, max-age=300"}))

    # -- the public status page -------------------------------------------------------------------------

    async def _cached(self, key: str, build: Callable[[], Awaitable[tuple[bytes, str] | None]]
                      ) -> tuple[bytes, str] | None:
        """Status responses are built at most once per WARROOM_WEB_STATUS_CACHE_SECONDS per key: a burst of
        customers opening the page costs one database read."""
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        if len(self._cache_locks) > 10_000:  # tenant names come from URLs: bound the memory
            self._cache_locks.clear()
        lock = self._cache_locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1], hit[2]
            built = await build()
            if built is not None and self.settings.status_cache_seconds > 0:
                if len(self._cache) > 10_000:  # tenant names come from URLs: bound the memory
                    self._cache.clear()
                self._cache[key] = (time.monotonic() + self.settings.status_cache_seconds, *built)
            return built

    async def status(self, request: Request) -> Response:
        tenant = request.path_params.get("tenant")

        async def build() -> tuple[bytes, str] | None:
            view = await self.views.status(tenant)
            if view is None:
                return None
            body = html.status_page(view, title=self.settings.status_title, tz=self.views.tz)
            return body.encode("utf-8"), "text/html; charset=utf-8"

        return await self._status_response(f"page:{tenant}", build, tenant)

    async def status_feed(self, request: Request) -> Response:
        tenant = request.path_params.get("tenant")

        async def build() -> tuple[bytes, str] | None:
            view = await self.views.status(tenant)
            if view is None:
                return None
            return (html.atom_feed(view, title=self.settings.status_title, base_url=self.settings.base_url)
                    .encode("utf-8"), "application/atom+xml; charset=utf-8")

        return await self._status_response(f"feed:{tenant}", build, tenant)

    async def status_summary(self, request: Request) -> Response:
        async def build() -> tuple[bytes, str] | None:
            view = await self.views.status(None)
            return json.dumps(summary(view), ensure_ascii=False).encode("utf-8"), "application/json"

        return await self._status_response("summary", build, None)

    async def _status_response(self, key: str, build: Callable[[], Awaitable[tuple[bytes, str] | None]],
                               tenant: str | None) -> Response:
        if tenant is not None and (len(tenant) > 64 or not tenant.replace("-", "").replace("_", "").isalnum()):
            return page(html.not_found_page("There is no status page for that name."), 404)
        built = await self._cached(key, build)
        if built is None:
            return page(html.not_found_page("There is no status page for that name."), 404)
        max_age = int(self.settings.status_cache_seconds)
        return _secure(Response(built[0], media_type=built[1], headers={"Cache-Control": f"public, max-age={max_age}"}))


def _sse(event: Any, tz: Any) -> str:
    local = event.occurred_at.astimezone(tz)
    data = {"id": event.id, "kind": event.kind.value, "author": event.author, "text": event.text,
            "time": f"{local:%H:%M} {local.tzname()}", "at": event.occurred_at.isoformat(), "pinned": event.pinned,
            "deleted": event.deleted}
    return f"id: {event.id}\nevent: timeline\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _page_401() -> Response:
    return page(html.message_page(title="Sign in to warroom", text="These pages need you to sign in.",
                                  hint=HOW_TO_GET_A_LINK), 401)


def _refused(refused: LinkRefused) -> Response:
    return page(html.message_page(title="This link does not work", text=refused.text, hint=HOW_TO_GET_A_LINK),
                410 if refused.reason in ("used", "expired") else 404)


async def _form(request: Request) -> dict[str, str] | None:
    """A small urlencoded form (no multipart parser needed); None if it is not one."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in fields.items()}
