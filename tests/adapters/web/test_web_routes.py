"""The web pages through their real routes (httpx on the ASGI app, a real warroom on SQLite, a manual clock):
every page, every access rule, every place user text lands is escaped, the status page shows only what was
published, and bad input gets one clear answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from adapters.http import build_http_app
from adapters.web import markdown
from adapters.web.app import COOKIE, CSP, WebApp
from bot.app.settings import WebSettings
from bot.ports import Actor
from tests.support import Harness, make_settings, start_harness

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SIGNED_IN_PAGES = ["/web", "/web/incidents/1", "/web/incidents/1/postmortem", "/web/stats", "/web/nothing-here"]


@pytest.fixture
async def web(team: Harness) -> AsyncIterator[tuple[Harness, WebApp, httpx.AsyncClient]]:
    app = WebApp(views=team.app.web, sign_in=team.app.sign_in, service=team.service,
                 settings=team.settings.web.model_copy(update={"status_cache_seconds": 0}), live_interval=0.05)
    transport = httpx.ASGITransport(app=build_http_app(app.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:3000") as client:
        yield team, app, client
    await app.close()


async def link_for(team: Harness, user: str = "alice") -> str:
    reply = await team.ok("web", user=user)
    assert reply is not None and reply.private
    return reply.message.text.rsplit(" ", 1)[1]


async def sign_in(team: Harness, client: httpx.AsyncClient, user: str = "alice") -> None:
    token = (await link_for(team, user)).split("token=", 1)[1]
    response = await client.post("/web/login", data={"token": token})
    assert response.status_code == 303 and response.headers["location"] == "/web"


async def test_every_team_page_needs_a_session(web) -> None:
    team, _, client = web
    await team.ok('declare P1 "Payments down"')
    for path in SIGNED_IN_PAGES:
        response = await client.get(path)
        assert response.status_code == 401, path
        assert "/incident web" in response.text and "warroom web login" in response.text
    assert (await client.get("/web/incidents/1/events")).status_code == 401
    assert (await client.get("/web/incidents/1/postmortem.md")).status_code == 401
    client.cookies.set(COOKIE, "made-up")
    assert (await client.get("/web")).status_code == 401


async def test_a_link_signs_in_once_with_a_strict_cookie(web) -> None:
    team, _, client = web
    link = await link_for(team)
    assert link.startswith("http://127.0.0.1:3000/web/login?token=")
    token = link.split("token=", 1)[1]
    form = await client.get("/web/login", params={"token": token})  # a link preview (GET) does not use it up
    assert form.status_code == 200 and 'id="sign-in"' in form.text
    signed = await client.post("/web/login", data={"token": token})
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert (await client.get("/web")).status_code == 200
    client.cookies.clear()
    again = await client.post("/web/login", data={"token": token})
    assert again.status_code == 410 and "already used" in again.text and "/incident web" in again.text
    assert (await client.get("/web/login", params={"token": token})).status_code == 410
    assert (await client.get("/web/login", params={"token": "nonsense"})).status_code == 404


async def test_a_link_expires_after_ten_minutes_and_a_session_after_its_hours(web) -> None:
    team, _, client = web
    token = (await link_for(team)).split("token=", 1)[1]
    team.clock.advance(minutes=10, seconds=1)
    refused = await client.post("/web/login", data={"token": token})
    assert refused.status_code == 410 and "expired" in refused.text and "Get a new link" in refused.text
    await sign_in(team, client)
    assert (await client.get("/web")).status_code == 200
    team.clock.advance(hours=12, seconds=1)
    assert (await client.get("/web")).status_code == 401


async def test_the_session_cookie_is_secure_behind_https(tmp_path: Path, clock, database_url) -> None:
    settings = make_settings(tmp_path, database_url=database_url,
                             web=WebSettings(_env_file=None, WARROOM_WEB_BASE_URL="https://ops.example.com/"))
    team = await start_harness(settings, clock)
    try:
        app = WebApp(views=team.app.web, sign_in=team.app.sign_in, service=team.service, settings=settings.web)
        link = await link_for(team)
        assert link.startswith("https://ops.example.com/web/login?token=")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_http_app(app.routes())),
                                     base_url="https://ops.example.com") as client:
            signed = await client.post("/web/login", data={"token": link.split("token=", 1)[1]})
        assert "Secure" in signed.headers["set-cookie"]
    finally:
        await team.app.close()


async def test_a_retried_web_command_issues_one_link(web) -> None:
    team, _, _ = web
    first = await team.run("web", delivery_id="slack-evt-1")
    assert first is not None and "token=" in first.message.text
    assert await team.run("web", delivery_id="slack-evt-1") is None


async def test_sign_out_needs_the_form_token(web) -> None:
    team, _, client = web
    await sign_in(team, client)
    page = (await client.get("/web")).text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert (await client.post("/web/logout", data={})).status_code == 403
    assert (await client.post("/web/logout", data={"csrf": "guess"})).status_code == 403
    assert (await client.get("/web")).status_code == 200  # still signed in
    out = await client.post("/web/logout", data={"csrf": csrf})
    assert out.status_code == 200 and "signed out" in out.text
    client.cookies.set(COOKIE, out.request.headers["cookie"].split("=", 1)[1])
    assert (await client.get("/web")).status_code == 401


async def test_every_page_escapes_user_text_and_carries_the_csp(web) -> None:
    team, _, client = web
    await team.ok(f'declare P1 "{XSS.replace(chr(34), chr(39))}" impact="<b>bold</b>"')
    room = await team.room(1)
    await team.say(XSS, room=room, user="<i>mallory</i>")
    await team.ok(f'note rootcause "{XSS.replace(chr(34), chr(39))}"', room=room)
    await team.ok('action "<svg onload=alert(1)>" owner=@<b>x</b>', room=room)
    await team.ok(f'public "{XSS.replace(chr(34), chr(39))}"', room=room)
    await sign_in(team, client, user="<u>eve</u>")
    for path in [*SIGNED_IN_PAGES[:-1], "/status", "/status/feed.atom"]:
        response = await client.get(path)
        assert response.status_code == 200, path
        body = response.text
        assert "<script>alert" not in body and "<img src=x" not in body and "<svg onload" not in body, path
        assert "<i>mallory" not in body and "<u>eve" not in body and "<b>bold" not in body, path
        assert response.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    incident = (await client.get("/web/incidents/1")).text
    assert "&lt;script&gt;alert(&quot;x&quot;)" in incident or "&lt;script&gt;alert(&#x27;x&#x27;)" in incident
    assert "<script" not in incident.replace('<script src="/static/web/web.js" defer></script>', "")


async def test_the_incident_page_shows_card_roles_timeline_revisions_briefs_and_chart(web) -> None:
    team, _, client = web
    await team.ok('declare P1 "Payments down" impact="checkout"')
    room = await team.room(1)
    await team.ok("ack", room=room, user="bob")
    await team.ok("role ic @alice", room=room)
    await team.ok("check 1", room=room)
    await team.ok('status "callbacks failing"', room=room)
    await team.ok('action "Alert on unrouted callbacks" owner=@bob', room=room)
    for ref, text in (("m1", "edited later"), ("m2", "will be deleted"), ("m3", "pin me")):
        await team.service.capture_message(room=room, actor=Actor("bob", "bob"), text=text, message_id=ref)
    await team.service.revise_message(room=room, message_id="m1", text="edited now")
    await team.service.revise_message(room=room, message_id="m2", deleted=True)
    await team.service.revise_message(room=room, message_id="m3", pinned=True)
    await sign_in(team, client)
    page = (await client.get("/web/incidents/1")).text
    for expected in ("INC-1: Payments down", "incident commander: alice", "Checklist (1/", "edited now",
                     "<del>(message deleted)</del>", 'class="badge">pinned', 'class="badge">deleted',
                     "callbacks failing", "Alert on unrouted callbacks", "Reminders due", "status update due",
                     '<svg class="chart"', "Timeline chart", 'data-last="', "web.js"):
        assert expected in page, expected
    assert "will be deleted" not in page  # a deleted message's words never survive


async def test_the_incident_page_shows_each_brief_recipients_delivery_state(web) -> None:
    team, _, client = web
    await team.service.briefs.add_contact(tenant="acme", name="Jane Doe", phone="+254700000001")
    await team.ok('declare P1 "Payments down" tenant=acme')
    room = await team.room(1)
    await team.ok("brief all-affected area=payments", room=room)
    await sign_in(team, client)
    page = (await client.get("/web/incidents/1")).text
    assert "Brief #1 to" in page and "Jane Doe" in page and "+254700000001" in page
    assert 'class="state-' in page


async def test_unknown_incident_and_tenant_are_404_pages(web) -> None:
    team, _, client = web
    await sign_in(team, client)
    for path in ("/web/incidents/99", "/web/incidents/99/postmortem", "/web/incidents/99/postmortem.md",
                 "/web/incidents/1/postmortem.pdf", "/status/nobody", "/status/%3Cx%3E", "/web/nothing"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "<h1>Not found</h1>" in response.text, path


async def test_incidents_list_filters_by_status_severity_platform_and_date(web) -> None:
    team, _, client = web
    await team.ok('declare P1 "Payments down"')
    await team.ok('declare P3 "Slow dashboard"')
    await team.ok("resolve INC-2")
    await sign_in(team, client)
    everything = (await client.get("/web")).text
    assert "Payments down" in everything and "Slow dashboard" in everything
    only_open = (await client.get("/web", params={"status": "open"})).text
    assert "Payments down" in only_open and "Slow dashboard" not in only_open
    p3 = (await client.get("/web", params={"severity": "P3"})).text
    assert "Slow dashboard" in p3 and "Payments down" not in p3
    assert "Payments down" in (await client.get("/web", params={"platform": "console"})).text
    assert "No incidents match" in (await client.get("/web", params={"platform": "slack"})).text
    assert "No incidents match" in (await client.get("/web", params={"since": "2027-01-01"})).text
    bad = await client.get("/web", params={"since": "yesterday"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text


async def test_post_mortem_renders_as_html_without_raw_html_and_downloads(web) -> None:
    team, _, client = web
    await team.ok('declare P1 "Payments <b>down</b>"')
    room = await team.room(1)
    await team.ok('note rootcause "cert <em>expired</em>"', room=room)
    await sign_in(team, client)
    page = (await client.get("/web/incidents/1/postmortem")).text
    assert "<h2>INC-1 post-mortem</h2>" in page and "<strong>Severity:</strong>" in page
    assert "cert &lt;em&gt;expired&lt;/em&gt;" in page and "<b>down</b>" not in page
    md = await client.get("/web/incidents/1/postmortem.md")
    assert md.headers["content-disposition"] == 'attachment; filename="inc-1-postmortem.md"'
    assert md.text.startswith("# INC-1 post-mortem")
    document = json.loads((await client.get("/web/incidents/1/postmortem.json")).text)
    assert document["root_cause"] == ["cert <em>expired</em>"]


async def test_stats_page_draws_charts_and_refuses_a_bad_period(web) -> None:
    team, _, client = web
    await team.ok('declare P1 "Payments down"')
    team.clock.advance(minutes=5)
    await team.ok("ack INC-1")
    await sign_in(team, client)
    page = (await client.get("/web/stats", params={"days": "7"})).text
    assert "Median time to acknowledge" in page and page.count("<svg") >= 4 and "5 min" in page
    bad = await client.get("/web/stats", params={"days": "forever"})
    assert bad.status_code == 400 and "1 to 365" in bad.text


async def test_status_page_shows_only_published_text(web) -> None:
    team, _, client = web
    await team.ok('declare P1 "Internal: bob broke the db" impact="secret impact"')
    room = await team.room(1)
    await team.say("rolling back db-7 now", room=room, user="bob")
    await team.ok('note "internal note"', room=room)
    await team.ok('status "internal status"', room=room)
    await team.ok('declare P2 "Never published"')
    before = (await client.get("/status")).text
    assert "All systems operational" in before and "INC-1" not in before
    await team.ok('public identified "Card payments are failing; we found the cause." areas=payments', room=room)
    page = (await client.get("/status")).text
    assert "Card payments are failing; we found the cause." in page and "Identified" in page
    for internal in ("bob", "db-7", "internal", "secret", "Never published", "alice", "INC-2"):
        assert internal not in page, internal
    summary = (await client.get("/status/summary.json")).json()
    assert summary["status"] == "incident" and summary["incidents"][0]["status"] == "identified"
    assert "bob" not in json.dumps(summary)
    feed = await client.get("/status/feed.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    assert "Card payments are failing" in feed.text and "bob" not in feed.text
    await team.ok('public resolved "Fixed."', room=room)
    after = (await client.get("/status")).text
    assert "All systems operational" in after and "Past 90 days" in after and "Fixed." in after
    team.clock.advance(days=91)
    assert "Fixed." not in (await client.get("/status")).text


async def test_public_updates_keep_their_state_and_can_publish_a_brief(web) -> None:
    team, _, client = web
    await team.service.briefs.add_contact(tenant="acme", name="Jane", phone="+254700000001")
    await team.ok('declare P1 "Payments down" tenant=acme')
    room = await team.room(1)
    await team.ok('public "Looking into payments."', room=room)
    await team.ok('public monitoring "Fix deployed."', room=room)
    await team.ok('public "Still watching."', room=room)
    await team.ok("brief all-affected area=payments", room=room)
    await team.ok("public brief 1", room=room)
    wrong = await team.run("public brief 7", room=room)
    assert wrong is not None and not wrong.ok and "No brief #7" in wrong.message.text
    page = (await client.get("/status/acme")).text
    assert page.count("Monitoring") >= 2 and "Investigating" in page and "payments" in page
    assert "Jane" not in page
    announced = [t for t in team.kinds("update") if "published to the status page" in t]
    assert len(announced) == 4
    await team.run('public "once"', room=room, delivery_id="d-1")
    await team.run('public "once"', room=room, delivery_id="d-1")  # the platform's retry
    assert sum("once" in t for t in team.kinds("update")) == 1
    assert (await client.get("/status/globex")).status_code == 404


async def test_tenant_status_page_lists_only_that_tenants_incidents(web) -> None:
    team, _, client = web
    await team.service.briefs.add_contact(tenant="acme", name="Jane", phone="+254700000001")
    await team.service.briefs.add_contact(tenant="globex", name="Hank", phone="+254700000002")
    await team.ok('declare P1 "A" tenant=acme')
    await team.ok('declare P1 "G" tenant=globex')
    await team.ok('public INC-1 "acme text"')
    await team.ok('public INC-2 "globex text"')
    acme = (await client.get("/status/acme")).text
    assert "acme text" in acme and "globex text" not in acme
    everyone = (await client.get("/status")).text
    assert "acme text" in everyone and "globex text" in everyone


async def test_live_timeline_streams_a_captured_message_within_a_second(web) -> None:
    team, app, _ = web
    await team.ok('declare P1 "Payments down"')
    room = await team.room(1)
    page = await team.app.web.incident(1)
    stream = app._stream(1, page.last_event_id)
    assert (await anext(stream)).startswith("retry:")
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # let the stream subscribe before the message is captured
    await team.say("<b>seeing 403s</b>", room=room, user="bob")
    chunk = await asyncio.wait_for(waiting, timeout=1.0)
    assert chunk.startswith("id: ") and "event: timeline" in chunk
    data = json.loads(chunk.split("data: ", 1)[1])
    assert data["text"] == "<b>seeing 403s</b>" and data["author"] == "bob" and data["kind"] == "message"
    await stream.aclose()
    assert app.live.watchers == 0


async def test_a_reconnecting_page_gets_what_it_missed(web) -> None:
    team, app, _ = web
    await team.ok('declare P1 "Payments down"')
    room = await team.room(1)
    last = (await team.app.web.incident(1)).last_event_id
    await team.say("while you were away", room=room)
    stream = app._stream(1, last)  # what EventSource sends as Last-Event-ID after a restart
    await anext(stream)
    missed = await asyncio.wait_for(anext(stream), timeout=1.0)
    assert "while you were away" in missed
    await stream.aclose()


async def test_static_files_are_ours_and_nothing_loads_from_elsewhere(web) -> None:
    _, _, client = web
    js = await client.get("/static/web/web.js")
    css = await client.get("/static/web/web.css")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in js.text and "textContent" in js.text
    assert "@import" not in css.text and "url(" not in css.text and "http" not in css.text
    assert (await client.get("/static/web/../app.py")).status_code == 404
    page = (await client.get("/status")).text
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


def test_markdown_renders_structure_and_escapes_raw_html() -> None:
    html = markdown.render("# T\n\n**Severity:** P1 <script>x</script>\n\n- a _b_\n- `<c>`\n\n| x | y |\n|---|---|\n"
                           "| <i>1</i> | 2 |\n\n> quote")
    assert "<h2>T</h2>" in html and "<strong>Severity:</strong>" in html and "&lt;script&gt;" in html
    assert "<ul><li>a <em>b</em></li><li><code>&lt;c&gt;</code></li></ul>" in html
    assert "<td>&lt;i&gt;1&lt;/i&gt;</td>" in html and "<blockquote>" in html and "<script>" not in html


async def test_sign_in_links_are_stored_as_digests(web) -> None:
    team, _, _ = web
    token = (await link_for(team)).split("token=", 1)[1]
    import sqlalchemy as sa

    async with team.app.engine.connect() as connection:
        stored = [row[0] for row in await connection.execute(sa.text("SELECT digest FROM web_token"))]
    assert stored and token not in stored and all(len(d) == 64 for d in stored)
    assert timedelta(minutes=10) == team.app.sign_in.link_ttl


async def test_a_long_timeline_shows_the_newest_entries_and_every_pinned_one(web, monkeypatch) -> None:
    import bot.web.views

    monkeypatch.setattr(bot.web.views, "TIMELINE_SHOWN", 3)
    team, _, client = web
    await team.ok('declare P1 "Payments down"')
    room = await team.room(1)
    for n in range(6):
        team.clock.advance(minutes=1)
        await team.service.capture_message(room=room, actor=Actor("bob", "bob"), text=f"line {n}", message_id=f"l{n}")
    await team.service.revise_message(room=room, message_id="l0", pinned=True)
    await sign_in(team, client)
    page = (await client.get("/web/incidents/1")).text
    assert "line 5" in page and "line 3" in page and "line 2" not in page and "line 1" not in page
    assert "line 0" in page and "Show all 7" in page  # pinned, though old
    everything = (await client.get("/web/incidents/1", params={"all": "1"})).text
    assert all(f"line {n}" in everything for n in range(6)) and "Show all" not in everything


async def test_the_incident_page_links_its_pull_request_and_issues_and_nothing_else(web) -> None:
    team, _, client = web
    await team.ok('declare P1 "Payments down"')
    async with team.app.service._uow() as uow:  # what the GitHub follow-up records, via the aggregate
        incident = await uow.incidents.get(1)
        assert incident is not None
        incident.record_followup(now=team.clock.now(),
                                 text="post-mortem pull request: https://github.com/acme/runbooks/pull/7")
        incident.record_followup(now=team.clock.now(), text='<script>x</script> javascript:alert(1) "quoted"')
        await uow.incidents.save(incident)
        await uow.commit()
    await sign_in(team, client)
    page = (await client.get("/web/incidents/1")).text
    assert ('<a href="https://github.com/acme/runbooks/pull/7" rel="noopener noreferrer">'
            "https://github.com/acme/runbooks/pull/7</a>") in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
