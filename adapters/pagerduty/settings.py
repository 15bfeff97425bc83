"""PagerDuty settings: the `pagerduty` part of warroom's one `Settings` (bot/app/settings.py).

    PAGERDUTY_EVENTS_URL       the Events API v2 endpoint; change only for a proxy or a test fake
    PAGERDUTY_WEBHOOK_SECRET   the signing secret of the v3 webhook subscription (acknowledgements come back)

Routing (integration) keys are per person, in the database (`warroom oncall person add alice --pagerduty …`).
Plain pydantic, no HTTP client: reading settings never imports httpx.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class PagerDutySettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True,
                                      populate_by_name=True, env_ignore_empty=True)

    events_url: str = Field(DEFAULT_EVENTS_URL, alias="PAGERDUTY_EVENTS_URL")
    webhook_secret: SecretStr | None = Field(None, alias="PAGERDUTY_WEBHOOK_SECRET")
