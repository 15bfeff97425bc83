"""`/incident postmortem pr` end to end on a real warroom (SQLite, in-memory chat) and the fake GitHub: the pull
request goes through the outbox, so GitHub down, slow, rate-limited or refusing never blocks the incident, a
retry never opens a second pull request, and what cannot be done is said in the thread with the reason."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from adapters.github.client import GitHubCodeHost
from adapters.github.settings import GitHubSettings
from adapters.memory import MemoryChat
from bot.app.bootstrap import build
from bot.ports import ManualClock
from playbooks.schema import Scenario
from tests.fakes.github_api import FakeGitHub
from tests.support import Harness, make_settings

BRANCH = "incident/inc-1-thumbnails-render-blank"
PATH = "docs/runbook/post-mortems/2026-11-24-thumbnails-render-blank.md"
DRAFT = "playbooks/scenarios/thumbnails-render-blank.yaml"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGitHub]:
    fake = await FakeGitHub().start()
    yield fake
    await fake.close()


async def start(tmp_path: Path, database_url: str, clock: ManualClock, fake: FakeGitHub,
                **github: object) -> tuple[Harness, GitHubCodeHost]:
    values = {"token": fake.token, "repository": fake.repository, "api_url": fake.url, **github}
    settings = make_settings(tmp_path, database_url=database_url, github=GitHubSettings(_env_file=None, **values))
    host = GitHubCodeHost.from_settings(settings.github)
    chat = MemoryChat("console")
    app = await build(settings, chat={"console": chat}, clock=clock, code_host=host)
    return Harness(app=app, chat=chat, clock=clock, settings=settings), host


@pytest.fixture
async def team(tmp_path: Path, database_url: str, clock: ManualClock, fake: FakeGitHub) -> AsyncIterator[Harness]:
    harness, host = await start(tmp_path, database_url, clock, fake)
    yield harness
    await harness.app.close()
    await host.aclose()


async def work_an_incident(team: Harness):
    team.clock.advance(minutes=10)
    await team.ok('declare P2 "Thumbnails render blank" impact="listing pages show grey boxes"')
    thread = await team.room(1)
    await team.ok('status "CDN returns 200 with empty bodies for resized images"', room=thread)
    team.clock.advance(minutes=25)
    await team.ok("mitigate", room=thread)
    await team.ok('note rootcause "Resizer ran out of disk and wrote empty files"', room=thread)
    await team.ok('action "Alert on resizer disk usage" owner=@bob', room=thread)
    await team.ok('resolve "purged the CDN, resized again"', room=thread)
    return thread


def links(team: Harness, thread) -> list[str]:
    return [text for text in team.chat.texts(thread) if text.startswith("Post-mortem pull request")]


async def retry_later(team: Harness, minutes: float = 30) -> None:
    team.clock.advance(minutes=minutes)
    await team.app.outbox.drain()


async def test_postmortem_pr_opens_a_pull_request_and_posts_its_link(team: Harness, fake: FakeGitHub) -> None:
    thread = await work_an_incident(team)
    reply = await team.ok("postmortem pr", room=thread)
    assert reply is not None and "pull request is being opened" in reply.message.text
    [pull] = fake.pulls
    assert (pull.head, pull.base) == (BRANCH, "main") and "INC-1" in pull.title
    assert "Resizer ran out of disk" in fake.file(BRANCH, PATH)
    assert links(team, thread) == [f"Post-mortem pull request opened: {pull.html_url} (`{PATH}` and a draft "
                                   f"scenario playbook `{DRAFT}`)."]
    [incident] = await team.service.incidents(open_only=False)
    async with team.app.service._uow() as uow:  # the link is in the incident's timeline, not in its post-mortem
        timeline = [e.text for e in await uow.incidents.timeline(incident.number)]
    assert f"post-mortem pull request: {pull.html_url}" in timeline
    assert pull.html_url not in fake.file(BRANCH, PATH)
    # the same bytes as the post-mortem compiled in chat or exported from the shell
    assert fake.file(BRANCH, PATH) == await team.service.export_postmortem(1, "md")


async def test_compiling_again_updates_the_same_branch_and_pull_request(team: Harness, fake: FakeGitHub) -> None:
    thread = await work_an_incident(team)
    await team.ok("postmortem pr", room=thread)
    await team.ok('note wentwell "Rollback took two minutes"', room=thread)
    await team.ok("postmortem pr", room=thread)
    assert len(fake.pulls) == 1 and [b for b in fake.refs if b != "main"] == [BRANCH]
    assert "Rollback took two minutes" in fake.file(BRANCH, PATH)
    assert [text.split(":", 1)[0] for text in links(team, thread)] == ["Post-mortem pull request opened",
                                                                      "Post-mortem pull request updated"]


async def test_the_drafted_playbook_is_valid_and_marked_draft(team: Harness, fake: FakeGitHub) -> None:
    thread = await work_an_incident(team)
    await team.ok("postmortem pr", room=thread)
    text = fake.file(BRANCH, DRAFT)
    assert text is not None and text.startswith("# DRAFT")
    scenario = Scenario.model_validate(yaml.safe_load(text))
    assert scenario.title.startswith("DRAFT from INC-1")
    assert "Impact: listing pages show grey boxes" in scenario.symptoms
    assert scenario.prevention == ("Alert on resizer disk usage",)
    assert "Resizer ran out of disk and wrote empty files" in scenario.diagnosis


async def test_no_draft_when_a_scenario_matched_and_diagnosis_was_quick(team: Harness, fake: FakeGitHub) -> None:
    await team.ok('declare P2 "Payment callbacks not arriving"')
    thread = await team.room(1)
    assert (await team.service.incidents(open_only=True))[0].suggested_playbook is not None
    await team.ok("mitigate", room=thread)
    await team.ok("postmortem pr", room=thread)
    branch = next(b for b in fake.refs if b != "main")
    assert [path for (b, path) in fake.files if b == branch] == [
        "docs/runbook/post-mortems/2026-11-24-payment-callbacks-not-arriving.md"]


async def test_github_down_never_blocks_the_incident_and_the_pr_comes_later(team: Harness,
                                                                            fake: FakeGitHub) -> None:
    thread = await work_an_incident(team)
    fake.fail("down", times=3)
    await team.ok("postmortem pr", room=thread)
    await team.ok('status "all thumbnails back"', room=thread)  # the incident goes on while GitHub is down
    assert any("all thumbnails back" in text for text in team.chat.texts(thread))
    assert fake.pulls == [] and links(team, thread) == []
    for _ in range(3):
        await retry_later(team)
    assert len(fake.pulls) == 1 and len(links(team, thread)) == 1


async def test_primary_rate_limit_waits_for_the_reset(team: Harness, fake: FakeGitHub) -> None:
    thread = await work_an_incident(team)
    fake.fail("primary_limit")  # resets in 120 s
    await team.ok("postmortem pr", room=thread)
    await retry_later(team, minutes=1)
    assert fake.pulls == []  # not hammered before the reset
    await retry_later(team, minutes=2)
    assert len(fake.pulls) == 1 and len(links(team, thread)) == 1


@pytest.mark.parametrize(("method", "path"), [("POST", "/pulls"), ("PUT", "/contents/"), ("POST", "/git/refs")])
@pytest.mark.parametrize("kind", ["lost", "drop"])
async def test_a_lost_answer_makes_one_pull_request_and_one_link(team: Harness, fake: FakeGitHub, kind: str,
                                                                 method: str, path: str) -> None:
    thread = await work_an_incident(team)
    fake.fail(kind, method=method, path=path)
    await team.ok("postmortem pr", room=thread)
    await retry_later(team)
    await retry_later(team)
    assert len(fake.pulls) == 1, "a retry opened a second pull request"
    assert len(links(team, thread)) == 1


async def test_two_compiles_waiting_for_github_make_one_pull_request(team: Harness, fake: FakeGitHub) -> None:
    thread = await work_an_incident(team)
    fake.fail("down", times=2)
    await team.ok("postmortem pr", room=thread)
    await team.ok("postmortem pr", room=thread)
    await retry_later(team)  # both jobs go in one round, side by side
    assert len(fake.pulls) == 1 and len(links(team, thread)) == 2


async def test_a_refusal_is_said_in_the_thread_and_the_token_is_nowhere(
        tmp_path: Path, database_url: str, clock: ManualClock, fake: FakeGitHub,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "github_pat_wrong_0000111122223333"
    team, host = await start(tmp_path, database_url, clock, fake, token=secret)
    try:
        thread = await work_an_incident(team)
        await team.ok("postmortem pr", room=thread)
        [said] = [text for text in team.chat.texts(thread) if text.startswith("Could not open")]
        assert "401 Bad credentials" in said and "acme/runbooks" in said
        await team.ok("close", room=thread)  # the incident flow is untouched
        assert fake.pulls == []
        everything = " ".join(team.chat.texts()) + caplog.text
        assert secret not in everything
    finally:
        await team.app.close()
        await host.aclose()


async def test_pr_on_compile_opens_the_pull_request_on_every_compile(
        tmp_path: Path, database_url: str, clock: ManualClock, fake: FakeGitHub) -> None:
    team, host = await start(tmp_path, database_url, clock, fake, pr_on_compile=True)
    try:
        thread = await work_an_incident(team)
        await team.ok("postmortem", room=thread)
        assert len(fake.pulls) == 1
        await team.ok("postmortem json", room=thread)  # the pull request carries Markdown only
        assert len(links(team, thread)) == 1
    finally:
        await team.app.close()
        await host.aclose()


async def test_without_github_postmortem_pr_says_how_to_set_it_up(tmp_path: Path, database_url: str,
                                                                  clock: ManualClock) -> None:
    from tests.support import start_harness

    team = await start_harness(make_settings(tmp_path, database_url=database_url), clock)
    try:
        await team.ok('declare P2 "Thumbnails render blank"')
        thread = await team.room(1)
        reply = await team.run("postmortem pr", room=thread)
        assert reply is not None and not reply.ok and "WARROOM_GITHUB_REPOSITORY" in reply.message.text
        assert not (tmp_path / "postmortems").exists()  # nothing compiled, nothing written
        await team.ok("postmortem", room=thread)  # the plain compile still works
    finally:
        await team.app.close()


async def test_console_from_declare_to_a_ready_pull_request(tmp_path: Path, fake: FakeGitHub) -> None:
    """The console adapter, built from settings like `warroom console` (WARROOM_GITHUB_API_URL on the fake)."""
    from io import StringIO

    from bot.app.bootstrap import build_console

    settings = make_settings(tmp_path, github=GitHubSettings(
        _env_file=None, token=fake.token, repository=fake.repository, api_url=fake.url))
    out = StringIO()
    console = await build_console(settings, out=out, user="alice", speed=1, scripted=True)
    try:
        await console.play([
            '/incident declare P2 "Thumbnails render blank" impact="listing pages show grey boxes"',
            '/incident status "CDN serves empty bodies for resized images"',
            "/wait 25m",
            "/incident mitigate",
            '/incident note rootcause "Resizer ran out of disk"',
            '/incident action "Alert on resizer disk usage" owner=@bob',
            '/incident resolve "purged the CDN"',
            "/incident postmortem pr",
        ])
    finally:
        await console.stop()
    text = out.getvalue()
    [pull] = fake.pulls
    assert f"Post-mortem pull request opened: {pull.html_url}" in text
    assert pull.state == "open" and pull.base == "main" and pull.head == BRANCH
    [(postmortem, document)] = [(path, content.decode()) for (branch, path), content in fake.files.items()
                                if path.startswith("docs/runbook/post-mortems/")]
    assert postmortem.endswith("-thumbnails-render-blank.md") and "Resizer ran out of disk" in document
    assert Scenario.model_validate(yaml.safe_load(fake.file(BRANCH, DRAFT) or "")).prevention == (
        "Alert on resizer disk usage",)
    assert fake.token not in text
