"""Settings read once from the environment / `.env` into a frozen object. Every variable is in .env.example."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True,
                                      populate_by_name=True)

    database_url: str = Field("sqlite:///warroom.db", alias="WARROOM_DATABASE_URL")
    ladder: str = Field("P0-P3", alias="WARROOM_LADDER")
    playbooks: Path | None = Field(None, alias="WARROOM_PLAYBOOKS")
    timezone: str = Field("UTC", alias="WARROOM_TIMEZONE")
    postmortem_template: str = Field("blameless", alias="WARROOM_POSTMORTEM_TEMPLATE")
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
    log_level: str = Field("INFO", alias="WARROOM_LOG_LEVEL")

    # WhatsApp numbers that may run incidents from their phone: "alice=+254700000001,+254700000002".
    whatsapp_operators: str = Field("", alias="WARROOM_WHATSAPP_OPERATORS")

    http_host: str = Field("127.0.0.1", alias="WARROOM_HTTP_HOST")
    http_port: int = Field(3000, alias="WARROOM_HTTP_PORT")

    # Operations (issue 8): alert intake, the deploy-freeze API, /metrics, the daily digest.
    alert_token: SecretStr | None = Field(None, alias="WARROOM_ALERT_TOKEN")
    freeze_token: SecretStr | None = Field(None, alias="WARROOM_FREEZE_TOKEN")
    metrics_token: SecretStr | None = Field(None, alias="WARROOM_METRICS_TOKEN")
    alert_rules: str = Field("default", alias="WARROOM_ALERT_RULES")
    alert_platform: str | None = Field(None, alias="WARROOM_ALERT_PLATFORM")
    alert_channel: str | None = Field(None, alias="WARROOM_ALERT_CHANNEL")
    digest_time: str = Field("07:00", alias="WARROOM_DIGEST_TIME")
    digest_timezone: str = Field("Africa/Nairobi", alias="WARROOM_DIGEST_TIMEZONE")

    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    slack_incidents_channel: str | None = Field(None, alias="SLACK_INCIDENTS_CHANNEL")
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")

    @field_validator("alert_token", "freeze_token", "metrics_token", "alert_platform", "alert_channel", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

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

    @field_validator("timezone", "digest_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as Africa/Nairobi or UTC") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

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

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None and (
            self.slack_signing_secret is not None or self.slack_app_token is not None
        )
