"""Action items as GitHub issues, on a real warroom and the fake GitHub: `action … --issue` and `action sync` open
one issue per item whatever answer is lost, `action done` closes it, and the signed issues webhook marks the item
done or open again — a bad signature or an unknown issue changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from adapters.github.webhook import github_routes, sign
from bot.ports import ManualClock
from tests.fakes.github_api import FakeGitHub
from tests.integration.test_github_followups import fake, start  # noqa: F401 - the fixture
from tests.support import Harness, make_settings, start_harness

SECRET = "whsec-test-0123"


@pytest.fixture
async def team(tmp_path: Path, database_url: str, clock: ManualClock, fake: FakeGitHub
               ) -> AsyncIterator[Harness]:
    harness, host = await start(tmp_path, database_url, clock, fake)
    yield harness
    await harness.app.close()
    await host.aclose()


async def incident_with_action(team: Harness, action: str = 'action "Alert on disk usage" owner=@bob '
                                                            'due=2026-12-01 --issue'):
    await team.ok('declare P2 "Thumbnails render blank"')
    thread = await team.room(1)
    await team.ok(action, room=thread)
    return thread


def issue_links(team: Harness, thread) -> list[str]:
    return [text for text in team.chat.texts(thread) if "is now issue #" in text]


async def action_done(team: Harness, number: int = 1) -> bool:
    [incident] = await team.service.incidents(open_only=False)
    return incident.actions[number - 1].is_done


async def webhook(team: Harness, payload: dict, *, event: str = "issues", secret: str = SECRET,
                  delivery: str | None = None) -> httpx.Response:
    app = Starlette(routes=github_routes(secret=SECRET, repository="acme/runbooks",
                                         on_issue=team.service.issue_changed))
    body = json.dumps(payload).encode()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warroom") as client:
        return await client.post("/github/webhook", content=body, headers={
            "X-Hub-Signature-256": sign(secret, body), "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or uuid.uuid4().hex, "Content-Type": "application/json"})


def issue_event(action: str, number: int, repository: str = "acme/runbooks") -> dict:
    return {"action": action, "issue": {"number": number, "state": "closed" if action == "closed" else "open"},
            "repository": {"full_name": repository}, "sender": {"login": "octocat"}}


async def test_action_with_issue_opens_one_issue_with_labels_assignee_due_and_link(team: Harness,
                                                                                    fake: FakeGitHub) -> None:
    thread = await incident_with_action(team)
    [issue] = fake.issues
    assert issue["title"] == "[INC-1] Alert on disk usage"
    assert {label["name"] for label in issue["labels"]} == {"incident-follow-up", "warroom-inc-1"}
    assert issue["assignees"] == [{"login": "bob"}]
    assert "Due: 2026-12-01" in issue["body"] and "INC-1" in issue["body"]
    assert issue_links(team, thread) == [f"Action item 1 is now issue #{issue['number']}: {issue['html_url']}"]


@pytest.mark.parametrize("kind", ["lost", "drop"])
async def test_a_lost_answer_still_makes_one_issue(team: Harness, fake: FakeGitHub, kind: str) -> None:
    fake.fail(kind, method="POST", path="/issues")
    thread = await incident_with_action(team)
    team.clock.advance(minutes=30)
    await team.app.outbox.drain()
    await team.ok("action sync", room=thread)  # and asking again does not make another one either
    assert len(fake.issues) == 1, "a retry opened a second issue"
    assert len(issue_links(team, thread)) == 1


async def test_action_sync_opens_issues_for_existing_items_once(team: Harness, fake: FakeGitHub) -> None:
    thread = await incident_with_action(team, 'action "Alert on disk usage"')
    await team.ok('action "Runbook for the resizer" owner=@carol', room=thread)
    await team.ok('action "Already handled"', room=thread)
    await team.ok("action done 3", room=thread)
    assert fake.issues == []
    reply = await team.ok("action sync", room=thread)
    assert reply is not None and "action items 1, 2" in reply.message.text
    again = await team.ok("action sync", room=thread)
    assert again is not None and "has an issue already" in again.message.text
    assert [i["title"] for i in fake.issues] == ["[INC-1] Alert on disk usage", "[INC-1] Runbook for the resizer"]
    carol = fake.issues[1]  # not a login GitHub can assign: unassigned, and the body says so
    assert carol["assignees"] == [] and "could not be assigned" in carol["body"]


async def test_action_done_closes_the_issue(team: Harness, fake: FakeGitHub) -> None:
    thread = await incident_with_action(team)
    await team.ok("action done 1", room=thread)
    assert fake.issues[0]["state"] == "closed"


async def test_closing_and_reopening_the_issue_on_github_marks_the_action(team: Harness, fake: FakeGitHub) -> None:
    thread = await incident_with_action(team)
    number = fake.issues[0]["number"]
    closed = await webhook(team, issue_event("closed", number), delivery="d-1")
    assert closed.status_code == 200 and await action_done(team)
    assert any(f"issue #{number} closed on GitHub by octocat" in t for t in team.chat.texts(thread))
    redelivered = await webhook(team, issue_event("reopened", number), delivery="d-1")  # same delivery id
    assert redelivered.status_code == 202 and await action_done(team)  # seen before: nothing changes
    reopened = await webhook(team, issue_event("reopened", number), delivery="d-2")
    assert reopened.status_code == 200 and not await action_done(team)
    assert any("reopened on GitHub by octocat" in t for t in team.chat.texts(thread))


async def test_bad_signature_unknown_issue_or_other_repository_change_nothing(team: Harness,
                                                                              fake: FakeGitHub) -> None:
    thread = await incident_with_action(team)
    number = fake.issues[0]["number"]
    before = team.chat.texts(thread)
    assert (await webhook(team, issue_event("closed", number), secret="wrong")).status_code == 401
    assert (await webhook(team, issue_event("closed", 999))).status_code == 202
    assert (await webhook(team, issue_event("closed", number, "evil/fork"))).status_code == 202
    assert (await webhook(team, {"zen": "hi"}, event="ping")).status_code == 202
    assert not await action_done(team) and team.chat.texts(thread) == before


async def test_without_github_an_issue_is_refused_and_the_action_not_added(tmp_path: Path, database_url: str,
                                                                           clock: ManualClock) -> None:
    team = await start_harness(make_settings(tmp_path, database_url=database_url), clock)
    try:
        await team.ok('declare P2 "Thumbnails render blank"')
        thread = await team.room(1)
        reply = await team.run('action "Alert on disk usage" --issue', room=thread)
        assert reply is not None and not reply.ok and "WARROOM_GITHUB_REPOSITORY" in reply.message.text
        [incident] = await team.service.incidents(open_only=True)
        assert incident.actions == []
    finally:
        await team.app.close()


async def test_serve_mounts_the_signed_webhook_and_it_reaches_the_action(tmp_path: Path, database_url: str,
                                                                         fake: FakeGitHub) -> None:
    from adapters.github.settings import GitHubSettings
    from bot.app.bootstrap import build_server

    settings = make_settings(tmp_path, database_url=database_url, github=GitHubSettings(
        _env_file=None, token=fake.token, repository=fake.repository, api_url=fake.url, webhook_secret=SECRET))
    server = await build_server(settings, port=0)
    try:
        assert "POST /github/webhook" in server.describe()
        body = json.dumps(issue_event("closed", 42)).encode()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.http_app),
                                     base_url="http://warroom") as client:
            unsigned = await client.post("/github/webhook", content=body, headers={"X-GitHub-Event": "issues"})
            signed = await client.post("/github/webhook", content=body, headers={
                "X-GitHub-Event": "issues", "X-Hub-Signature-256": sign(SECRET, body)})
        assert unsigned.status_code == 401
        assert signed.status_code == 202  # no action item has issue 42
    finally:
        await server.stop()


async def test_a_p3_declared_with_issue_is_logged_as_an_issue_and_nobody_is_paged(team: Harness,
                                                                                   fake: FakeGitHub) -> None:
    reply = await team.ok('declare P3 "Typo on the pricing page" impact="looks sloppy" --issue')
    assert reply is not None and "nobody is paged" in reply.message.text
    [issue] = fake.issues
    assert issue["title"] == "[P3] Typo on the pricing page" and "Impact: looks sloppy" in issue["body"]
    assert await team.service.incidents(open_only=False) == []  # no incident, no room, no reminders
    assert f"Logged as issue #{issue['number']}: {issue['html_url']}" in " ".join(team.chat.texts())


async def test_a_logged_issue_is_opened_once_whatever_answer_is_lost(team: Harness, fake: FakeGitHub) -> None:
    fake.fail("drop", method="POST", path="/issues")
    await team.ok('declare P3 "Typo on the pricing page" --issue')
    team.clock.advance(minutes=30)
    await team.app.outbox.drain()
    assert len(fake.issues) == 1
    assert len([t for t in team.chat.texts() if t.startswith("Logged as issue")]) == 1


async def test_an_urgent_severity_is_not_logged_as_an_issue(team: Harness, fake: FakeGitHub) -> None:
    reply = await team.run('declare P1 "Payments down" --issue')
    assert reply is not None and not reply.ok and "worked as an incident" in reply.message.text
    assert fake.issues == [] and await team.service.incidents(open_only=False) == []
