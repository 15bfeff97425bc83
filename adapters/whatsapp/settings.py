"""WhatsApp Cloud API settings: the `whatsapp` part of warroom's one `Settings` (bot/app/settings.py).

    settings = load_settings().whatsapp
    if settings.configured:
        cloud = WhatsAppCloud.from_settings(settings)
    if settings.webhook_configured:
        routes = whatsapp_routes(verify_token=settings.verify_token, app_secret=settings.app_secret, on_event=...)

Empty variables (``WHATSAPP_ACCESS_TOKEN=`` as in .env.example) count as unset. The access token is also read
from ``WHATSAPP_TOKEN`` (the name used in issue 6); ``WHATSAPP_ACCESS_TOKEN`` wins when both are set.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"


class WhatsAppSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True,
                                      populate_by_name=True, env_ignore_empty=True)

    api_url: str = Field(DEFAULT_API_URL, alias="WHATSAPP_API_URL")
    api_version: str = Field(DEFAULT_API_VERSION, alias="WHATSAPP_API_VERSION", pattern=r"^v\d+\.\d+$")
    phone_number_id: str | None = Field(None, alias="WHATSAPP_PHONE_NUMBER_ID", pattern=r"^\d+$")
    access_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_TOKEN", "access_token"))
    app_secret: SecretStr | None = Field(None, alias="WHATSAPP_APP_SECRET")
    verify_token: SecretStr | None = Field(None, alias="WHATSAPP_VERIFY_TOKEN")

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"WHATSAPP_API_URL must start with https:// (got {value!r})")
        return value.rstrip("/")

    @property
    def configured(self) -> bool:
        """True when messages can be sent: a phone number id and an access token."""
        return bool(self.phone_number_id) and _present(self.access_token)

    @property
    def webhook_configured(self) -> bool:
        """True when the inbound webhook can be served: the app secret (signatures) and the verify token."""
        return _present(self.app_secret) and _present(self.verify_token)


def _present(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())
