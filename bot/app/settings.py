"""warroom's one settings object, read once from the environment and `.env` by the composition root.

    settings = load_settings()            # the process's settings (reads .env in the working directory)
    settings.slack.configured, settings.http.port, settings.operations.digest_at

The root holds what the core needs; each platform's variables live in its sub-model, defined next to its
adapter (`adapters/<platform>/settings.py`, plain pydantic, no SDK), and the HTTP server's and the operations
endpoints' in theirs. Everywhere, an empty variable (`DISCORD_GUILD_ID=` as in .env.example) means "not set".
Every variable is documented in .env.example; a test loads that file through `load_settings`.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Sub-models of the platforms: pure pydantic modules (their packages import nothing on import), so reading
# settings loads no SDK. This is the one place outside adapters/ that imports them at module level.
from adapters.discord.settings import DiscordSettings
from adapters.github.settings import GitHubSettings
from adapters.pagerduty.settings import PagerDutySettings
from adapters.slack.settings import SlackSettings
from adapters.whatsapp.settings import WhatsAppSettings

_CONFIG = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True,
                             populate_by_name=True, env_ignore_empty=True)


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}; use an IANA name such as Africa/Nairobi or UTC") from None
    return value


class HttpSettings(BaseSettings):
    """Where `warroom serve` listens."""

    model_config = _CONFIG

    host: str = Field("127.0.0.1", alias="WARROOM_HTTP_HOST")
    port: int = Field(3000, ge=0, le=65535, alias="WARROOM_HTTP_PORT")


class OperationsSettings(BaseSettings):
    """Alert intake, the deploy-freeze API, /metrics and the daily digest (README "Operations")."""

    model_config = _CONFIG

    alert_token: SecretStr | None = Field(None, alias="WARROOM_ALERT_TOKEN")
    freeze_token: SecretStr | None = Field(None, alias="WARROOM_FREEZE_TOKEN")
    metrics_token: SecretStr | None = Field(None, alias="WARROOM_METRICS_TOKEN")
    alert_rules: str = Field("default", alias="WARROOM_ALERT_RULES")
    alert_platform: str | None = Field(None, alias="WARROOM_ALERT_PLATFORM")
    alert_channel: str | None = Field(None, alias="WARROOM_ALERT_CHANNEL")
    digest_time: str = Field("07:00", alias="WARROOM_DIGEST_TIME")
    digest_timezone: str = Field("Africa/Nairobi", alias="WARROOM_DIGEST_TIMEZONE")

    @field_validator("digest_time")
    @classmethod
    def _digest_time(cls, value: str) -> str:
        value = value.strip().lower()
        if value in ("off", "none", "disabled"):
            return "off"
        try:
            hours, minutes = value.split(":")
            clock = time(int(hours), int(minutes))
        except ValueError:
            raise ValueError(f"expected HH:MM on a 24-hour clock (e.g. 07:00) or off, got {value!r}") from None
        return f"{clock:%H:%M}"

    @field_validator("digest_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _known_timezone(value)

    @property
    def digest_tz(self) -> ZoneInfo:
        return ZoneInfo(self.digest_timezone)

    @property
    def digest_at(self) -> time | None:
        """When the daily digest posts (local to digest_tz), or None when it is off."""
        if self.digest_time == "off":
            return None
        hours, minutes = self.digest_time.split(":")
        return time(int(hours), int(minutes))


class WebSettings(BaseSettings):
    """The team's web pages and the public status page (docs/web.md)."""

    model_config = _CONFIG

    # Where people reach `warroom serve` from a browser; sign-in links are built on it. https → Secure cookies.
    base_url: str = Field("http://127.0.0.1:3000", alias="WARROOM_WEB_BASE_URL")
    session_hours: float = Field(12.0, gt=0, le=24 * 30, alias="WARROOM_WEB_SESSION_HOURS")
    link_minutes: float = Field(10.0, gt=0, le=60, alias="WARROOM_WEB_LINK_MINUTES")
    status_title: str = Field("Service status", alias="WARROOM_WEB_STATUS_TITLE")
    # Areas shown on the status page, comma-separated: "payments,api,dashboard".
    status_components: str = Field("", alias="WARROOM_WEB_STATUS_COMPONENTS")
    status_cache_seconds: float = Field(5.0, ge=0, le=300, alias="WARROOM_WEB_STATUS_CACHE_SECONDS")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or "://" == value[-3:]:
            raise ValueError(f"expected an http:// or https:// address such as https://warroom.example.com, "
                             f"got {value!r}")
        return value

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.strip().lower() for c in self.status_components.split(",") if c.strip()))


class Settings(BaseSettings):
    model_config = _CONFIG

    database_url: str = Field("sqlite:///warroom.db", alias="WARROOM_DATABASE_URL")
    # "inline" (sqlite3 on the event loop, storage.inline_sqlite) or "aiosqlite" (plain aiosqlite, the fallback
    # when the installed SQLAlchemy is outside the versions inline_sqlite supports)
    sqlite_driver: Literal["inline", "aiosqlite"] = Field("inline", alias="WARROOM_SQLITE_DRIVER")
    ladder: str = Field("P0-P3", alias="WARROOM_LADDER")
    playbooks: Path | None = Field(None, alias="WARROOM_PLAYBOOKS")
    timezone: str = Field("UTC", alias="WARROOM_TIMEZONE")
    postmortem_template: str = Field("blameless", alias="WARROOM_POSTMORTEM_TEMPLATE")
    oncall: str = Field("default", alias="WARROOM_ONCALL")  # playbooks/oncall/<name>.yaml
    postmortem_dir: Path = Field(Path("postmortems"), alias="WARROOM_POSTMORTEM_DIR")
    incidents_channel: str = Field("#incidents", alias="WARROOM_INCIDENTS_CHANNEL")
    tick_seconds: float = Field(1.0, gt=0, le=60, alias="WARROOM_TICK_SECONDS")
    # How long a sender owns a message it is delivering. Longer than the slowest send (HTTP timeouts and the
    # SDKs' own retries); after it, another replica may take the message over, checking first for a copy.
    outbox_lease_seconds: float = Field(120.0, ge=1, le=3600, alias="WARROOM_OUTBOX_LEASE_SECONDS")
    # This process's stable name among replicas, stored with its outbox claims so that, restarted, it takes
    # them back at once instead of after the lease. Default: hostname:WARROOM_HTTP_PORT (see .env.example).
    instance_id: str | None = Field(None, max_length=128, alias="WARROOM_INSTANCE_ID")
    incident_mode: Literal["thread", "channel"] = Field("thread", alias="WARROOM_INCIDENT_MODE")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="WARROOM_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", alias="WARROOM_LOG_FORMAT")
    # WhatsApp numbers that may run incidents from their phone: "alice=+254700000001,+254700000002".
    whatsapp_operators: str = Field("", alias="WARROOM_WHATSAPP_OPERATORS")

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(_env_file=None))
    operations: OperationsSettings = Field(
        default_factory=lambda: OperationsSettings(_env_file=None))
    slack: SlackSettings = Field(default_factory=lambda: SlackSettings(_env_file=None))
    discord: DiscordSettings = Field(default_factory=lambda: DiscordSettings(_env_file=None))
    whatsapp: WhatsAppSettings = Field(
        default_factory=lambda: WhatsAppSettings(_env_file=None))
    web: WebSettings = Field(default_factory=lambda: WebSettings(_env_file=None))
    github: GitHubSettings = Field(default_factory=lambda: GitHubSettings(_env_file=None))
    pagerduty: PagerDutySettings = Field(default_factory=lambda: PagerDutySettings(_env_file=None))

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case_insensitive(cls, value: object, info: Any) -> object:
        if not isinstance(value, str):
            return value
        return value.strip().upper() if info.field_name == "log_level" else value.strip().lower()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _known_timezone(value)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_settings(env_file: Path | str | None = ".env") -> Settings:
    """Read every variable once, from the environment and `env_file` (the environment wins), into one frozen
    object. Raises pydantic's ValidationError naming the variable that is wrong."""
    return Settings(
        _env_file=env_file,
        http=HttpSettings(_env_file=env_file),
        operations=OperationsSettings(_env_file=env_file),
        slack=SlackSettings(_env_file=env_file),
        discord=DiscordSettings(_env_file=env_file),
        whatsapp=WhatsAppSettings(_env_file=env_file),
        web=WebSettings(_env_file=env_file),
        github=GitHubSettings(_env_file=env_file),
        pagerduty=PagerDutySettings(_env_file=env_file),
    )
