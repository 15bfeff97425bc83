"""GitHubCodeHost against the fake GitHub REST API: one branch and one pull request per incident however often
it is asked and whatever answer was lost; rate limits become waits, refusals become clear permanent errors, and
the token appears in none of them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.github.client import GitHubCodeHost
from adapters.github.settings import GitHubSettings
from bot.ports import ChangeSet, DeliveryError, FileChange
from tests.fakes.github_api import FakeGitHub

PATH = "docs/runbook/post-mortems/2026-11-24-payments-down.md"


def change(content: str = "# Post-mortem\n", branch: str = "incident/inc-7-payments-down") -> ChangeSet:
    return ChangeSet(branch=branch, files=(FileChange(PATH, content),), commit_message="INC-7 post-mortem",
                     title="Post-mortem INC-7: Payments down", body="body")


@pytest.fixture
async def fake() -> AsyncIterator[FakeGitHub]:
    fake = await FakeGitHub().start()
    yield fake
    await fake.close()


def host_for(fake: FakeGitHub, **overrides: object) -> GitHubCodeHost:
    values = {"token": fake.token, "repository": fake.repository, "api_url": fake.url, **overrides}
    host = GitHubCodeHost.from_settings(GitHubSettings(_env_file=None, **values))
    host._client.timeout = httpx.Timeout(0.5)  # the "slow" fault is a timeout in half a second
    return host


async def test_publish_opens_one_branch_one_file_one_pull_request(fake: FakeGitHub) -> None:
    host = host_for(fake)
    published = await host.publish(change=change())
    assert published.created and published.url == f"https://github.test/{fake.repository}/pull/1"
    assert fake.file("incident/inc-7-payments-down", PATH) == "# Post-mortem\n"
    assert [(p.head, p.base) for p in fake.pulls] == [("incident/inc-7-payments-down", "main")]
    await host.aclose()


async def test_publishing_again_updates_the_same_branch_and_pull_request(fake: FakeGitHub) -> None:
    host = host_for(fake)
    await host.publish(change=change("v1\n"))
    again = await host.publish(change=change("v2\n"))
    same = await host.publish(change=change("v2\n"))
    assert not again.created and again.number == same.number == 1
    assert len(fake.pulls) == 1 and fake.file("incident/inc-7-payments-down", PATH) == "v2\n"
    assert len(fake.commits) == 2  # an unchanged file is not committed again
    await host.aclose()


@pytest.mark.parametrize("kind", ["lost", "drop"])
@pytest.mark.parametrize("step", [("POST", "/git/refs"), ("PUT", "/contents/"), ("POST", "/pulls")])
async def test_a_retry_after_a_lost_answer_finds_the_first_attempt(fake: FakeGitHub, kind: str,
                                                                   step: tuple[str, str]) -> None:
    host = host_for(fake)
    fake.fail(kind, method=step[0], path=step[1])
    with pytest.raises(DeliveryError) as failed:
        await host.publish(change=change())
    assert not failed.value.permanent  # the outbox retries it
    published = await host.publish(change=change())
    assert published.number == 1
    assert len(fake.pulls) == 1, "a retry opened a second pull request"
    assert len(fake.commits) == 1 and [b for b in fake.refs if b != "main"] == ["incident/inc-7-payments-down"]
    await host.aclose()


async def test_two_publishers_at_once_make_one_pull_request(fake: FakeGitHub) -> None:
    import asyncio

    first, second = host_for(fake), host_for(fake)
    results = await asyncio.gather(first.publish(change=change()), second.publish(change=change()),
                                   return_exceptions=True)
    assert len(fake.pulls) == 1
    assert all(not isinstance(r, Exception) or not getattr(r, "permanent", True) for r in results), results
    await first.aclose(), await second.aclose()


async def test_primary_rate_limit_waits_until_the_reset(fake: FakeGitHub) -> None:
    fake.fail("primary_limit")
    with pytest.raises(DeliveryError) as limited:
        await host_for(fake).publish(change=change())
    assert not limited.value.permanent and 100 <= (limited.value.retry_after or 0) <= 121


async def test_secondary_rate_limit_waits_for_retry_after(fake: FakeGitHub) -> None:
    fake.fail("secondary_limit")
    with pytest.raises(DeliveryError) as limited:
        await host_for(fake).publish(change=change())
    assert not limited.value.permanent and limited.value.retry_after == 30


@pytest.mark.parametrize("kind", ["down", "slow"])
async def test_github_down_or_slow_is_retried(fake: FakeGitHub, kind: str) -> None:
    fake.fail(kind)
    with pytest.raises(DeliveryError) as failed:
        await host_for(fake).publish(change=change())
    assert not failed.value.permanent
    assert fake.pulls == [] and fake.commits == []


@pytest.mark.parametrize(("overrides", "says"), [
    ({"token": "github_pat_wrong_987654321"}, "401 Bad credentials"),
    ({"repository": "acme/nope"}, "acme/nope not found"),
    ({"base_branch": "trunk"}, "base branch 'trunk' not found"),
])
async def test_refusals_are_permanent_and_say_why(fake: FakeGitHub, overrides: dict, says: str) -> None:
    with pytest.raises(DeliveryError) as refused:
        await host_for(fake, **overrides).publish(change=change())
    assert refused.value.permanent and says in str(refused.value)
    assert fake.pulls == [] and fake.commits == []


async def test_missing_permissions_are_permanent(fake: FakeGitHub) -> None:
    fake.fail("forbidden")
    with pytest.raises(DeliveryError) as refused:
        await host_for(fake).publish(change=change())
    assert refused.value.permanent and "contents, pull requests" in str(refused.value)


@pytest.mark.parametrize("kind", ["down", "slow", "lost", "drop", "primary_limit", "secondary_limit", "forbidden"])
async def test_the_token_is_in_no_error_and_no_log_line(fake: FakeGitHub, kind: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail(kind)
    with pytest.raises(DeliveryError) as failed:
        await host_for(fake).publish(change=change())
    assert fake.token not in f"{failed.value!s} {failed.value!r}"
    assert fake.token not in caplog.text
