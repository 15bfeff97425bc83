"""WARROOM_GITHUB_*: bad values are refused at start-up naming the variable; paths stay inside the repository."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.github.settings import GitHubSettings


def test_nothing_set_is_not_configured() -> None:
    settings = GitHubSettings(_env_file=None)
    assert not settings.configured and settings.postmortem_path == "docs/runbook/post-mortems/{date}-{slug}.md"


def test_token_and_repository_configure_it_and_the_token_stays_secret() -> None:
    settings = GitHubSettings(_env_file=None, token="github_pat_abc123", repository="acme/run-books.x")
    assert settings.configured and (settings.owner, settings.name) == ("acme", "run-books.x")
    assert "github_pat_abc123" not in repr(settings) and "github_pat_abc123" not in str(settings.model_dump())


@pytest.mark.parametrize("value", ["acme", "acme/", "/runbooks", "acme/run books", "acme/..", "a/b/c"])
def test_a_repository_that_is_not_owner_slash_name_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="WARROOM_GITHUB_REPOSITORY"):
        GitHubSettings(_env_file=None, WARROOM_GITHUB_REPOSITORY=value)


@pytest.mark.parametrize("value", ["../outside/{slug}.md", "/etc/{slug}.md", "docs/../../{slug}.md",
                                   "docs\\{slug}.md", "docs/post-mortem.md", "docs/{title}.md"])
def test_a_postmortem_path_outside_the_repository_or_without_the_incident_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="WARROOM_GITHUB_POSTMORTEM_PATH"):
        GitHubSettings(_env_file=None, WARROOM_GITHUB_POSTMORTEM_PATH=value)


@pytest.mark.parametrize("value", ["..", "/playbooks", "playbooks/../.."])
def test_a_playbook_folder_outside_the_repository_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="WARROOM_GITHUB_PLAYBOOK_DIR"):
        GitHubSettings(_env_file=None, WARROOM_GITHUB_PLAYBOOK_DIR=value)
