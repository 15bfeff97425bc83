"""Discord settings, read once from the environment / `.env` into a frozen object.

They live here rather than in `bot/app/settings.py` so the core knows nothing about Discord:

    DISCORD_BOT_TOKEN              the bot token (Developer Portal → Bot → Reset Token)
    DISCORD_GUILD_ID               the server the `/incident` commands are synced to (instantly); unset: global sync
    DISCORD_INCIDENTS_CHANNEL_ID   where incident cards are posted and threads opened; unset: where declared
    DISCORD_API_URL                the REST base (a proxy, or a test fake); default https://discord.com/api/v10
    DISCORD_GATEWAY_URL            the gateway (WebSocket) URL; default wss://gateway.discord.gg/ (discord.py's)
    DISCORD_PROXY                  an HTTP proxy for REST and the gateway, e.g. http://proxy.internal:3128
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg/"


class DiscordSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True,
                                      populate_by_name=True, env_ignore_empty=True)

    bot_token: SecretStr | None = Field(None, alias="DISCORD_BOT_TOKEN")
    guild_id: int | None = Field(None, alias="DISCORD_GUILD_ID")
    incidents_channel_id: int | None = Field(None, alias="DISCORD_INCIDENTS_CHANNEL_ID")
    api_url: str = Field(DEFAULT_API_URL, alias="DISCORD_API_URL")
    gateway_url: str = Field(DEFAULT_GATEWAY_URL, alias="DISCORD_GATEWAY_URL")
    proxy: str | None = Field(None, alias="DISCORD_PROXY")

    @field_validator("proxy", mode="before")
    @classmethod
    def _no_empty_proxy(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def configured(self) -> bool:
        """True when a bot token is set: `warroom run` starts the Discord adapter."""
        return self.bot_token is not None and bool(self.bot_token.get_secret_value().strip())

    @property
    def route_base(self) -> str:
        return self.api_url.rstrip("/")
