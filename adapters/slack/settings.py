"""Slack settings: the `slack` part of warroom's one `Settings` (bot/app/settings.py).

    SLACK_BOT_TOKEN          xoxb-… (OAuth & Permissions)
    SLACK_SIGNING_SECRET     checks every request on /slack/events (Basic Information → App Credentials)
    SLACK_APP_TOKEN          xapp-…, for Socket Mode instead of a public URL
    SLACK_INCIDENTS_CHANNEL  the channel id (or name) of #incidents
    SLACK_API_URL            the Web API base; change only for a proxy or a test fake

Plain pydantic, no SDK: reading settings never imports slack-sdk.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "https://slack.com/api/"


class SlackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True,
                                      populate_by_name=True, env_ignore_empty=True)

    bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")
    incidents_channel: str | None = Field(None, alias="SLACK_INCIDENTS_CHANNEL")
    api_url: str = Field(DEFAULT_API_URL, alias="SLACK_API_URL")

    @property
    def configured(self) -> bool:
        """A bot token, and a way in: the signing secret (HTTP events) or an app token (Socket Mode)."""
        return self.bot_token is not None and (self.signing_secret is not None or self.app_token is not None)
