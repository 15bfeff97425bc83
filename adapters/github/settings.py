"""GitHub settings: the `github` part of warroom's one `Settings` (bot/app/settings.py). See docs/github.md.

    WARROOM_GITHUB_TOKEN            a fine-grained token (or GitHub App installation token): contents, pull
                                    requests and issues, read and write, on one repository
    WARROOM_GITHUB_REPOSITORY       owner/name of the repository post-mortems go to
    WARROOM_GITHUB_BASE_BRANCH      the branch pull requests target (default main)
    WARROOM_GITHUB_API_URL          REST base; change only for GitHub Enterprise, a proxy or a test fake
    WARROOM_GITHUB_WEBHOOK_SECRET   checks X-Hub-Signature-256 on POST /github/webhook
    WARROOM_GITHUB_POSTMORTEM_PATH  where the post-mortem goes in the repository ({date}, {slug}, {number})
    WARROOM_GITHUB_PLAYBOOK_DIR     where a drafted scenario playbook goes in the repository
    WARROOM_GITHUB_PR_ON_COMPILE    open or update the pull request on every compile, not only `postmortem pr`
    WARROOM_GITHUB_DRAFT_AFTER_MINUTES  draft a scenario playbook when diagnosis took longer than this
    WARROOM_GITHUB_ASSIGNEES        chat name → GitHub login for action items' owners

Variables are prefixed WARROOM_ so that the GITHUB_TOKEN of a GitHub Actions runner is never picked up by accident.
Plain pydantic, no HTTP client: reading settings imports nothing else.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_POSTMORTEM_PATH = "docs/runbook/post-mortems/{date}-{slug}.md"
_OWNER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_NAME_CHARS = _OWNER_CHARS | frozenset("._")


def safe_relative_path(value: str, what: str) -> str:
    """A path inside the repository: relative, no `..`, no backslashes. Raises ValueError naming `what`."""
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith("/") or "\\" in value or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{what} must be a relative path inside the repository (no leading /, no ..), "
                         f"got {value!r}")
    return value


class GitHubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True,
                                      populate_by_name=True, env_ignore_empty=True)

    token: SecretStr | None = Field(None, alias="WARROOM_GITHUB_TOKEN")
    repository: str | None = Field(None, alias="WARROOM_GITHUB_REPOSITORY")
    base_branch: str = Field("main", alias="WARROOM_GITHUB_BASE_BRANCH")
    api_url: str = Field(DEFAULT_API_URL, alias="WARROOM_GITHUB_API_URL")
    webhook_secret: SecretStr | None = Field(None, alias="WARROOM_GITHUB_WEBHOOK_SECRET")
    postmortem_path: str = Field(DEFAULT_POSTMORTEM_PATH, alias="WARROOM_GITHUB_POSTMORTEM_PATH")
    playbook_dir: str = Field("playbooks/scenarios", alias="WARROOM_GITHUB_PLAYBOOK_DIR")
    pr_on_compile: bool = Field(False, alias="WARROOM_GITHUB_PR_ON_COMPILE")
    draft_after_minutes: int = Field(10, ge=0, le=100_000, alias="WARROOM_GITHUB_DRAFT_AFTER_MINUTES")
    # Chat name → GitHub login for action items' owners: "bob=bob-gh,alice=alice-w". Unlisted: the name itself.
    assignees: str = Field("", alias="WARROOM_GITHUB_ASSIGNEES")

    @field_validator("assignees")
    @classmethod
    def _assignees(cls, value: str) -> str:
        for pair in filter(None, (part.strip() for part in value.split(","))):
            chat, _, login = pair.partition("=")
            if not chat.strip().lstrip("@") or not login.strip():
                raise ValueError(f"expected chat=login pairs separated by commas, got {pair!r}")
        return value

    @property
    def assignee_map(self) -> tuple[tuple[str, str], ...]:
        pairs = (part.strip().partition("=") for part in self.assignees.split(",") if part.strip())
        return tuple((chat.strip().lstrip("@"), login.strip()) for chat, _, login in pairs)

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        owner, _, name = (value or "").partition("/")
        if value is not None and not (0 < len(owner) <= 39 and set(owner) <= _OWNER_CHARS and 0 < len(name) <= 100
                                      and set(name) <= _NAME_CHARS and name not in (".", "..")):
            raise ValueError(f"expected owner/name (e.g. acme/runbooks), got {value!r}")
        return value

    @field_validator("postmortem_path")
    @classmethod
    def _postmortem_path(cls, value: str) -> str:
        safe_relative_path(value, "WARROOM_GITHUB_POSTMORTEM_PATH")
        if "{slug}" not in value and "{number}" not in value:
            raise ValueError("WARROOM_GITHUB_POSTMORTEM_PATH needs {slug} or {number} so incidents get their own "
                             f"file, got {value!r}")
        try:
            value.format(date="d", slug="s", number=1)
        except (KeyError, IndexError, ValueError):
            raise ValueError("WARROOM_GITHUB_POSTMORTEM_PATH may use only {date}, {slug} and {number}, "
                             f"got {value!r}") from None
        return value

    @field_validator("playbook_dir")
    @classmethod
    def _playbook_dir(cls, value: str) -> str:
        return safe_relative_path(value.rstrip("/"), "WARROOM_GITHUB_PLAYBOOK_DIR")

    @property
    def configured(self) -> bool:
        """A token and a repository: pull requests and issues can be opened."""
        return self.token is not None and self.repository is not None

    @property
    def owner(self) -> str:
        return (self.repository or "/").split("/", 1)[0]

    @property
    def name(self) -> str:
        return (self.repository or "/").split("/", 1)[1]
