"""`WhatsAppSettings`: WHATSAPP_* from the environment / .env, empty means unset, `configured` properties, and
.env.example documenting every variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.whatsapp.client import WhatsAppCloud
from adapters.whatsapp.settings import WhatsAppSettings

ROOT = Path(__file__).resolve().parents[3]
VARIABLES = ("WHATSAPP_API_URL", "WHATSAPP_API_VERSION", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_ACCESS_TOKEN",
             "WHATSAPP_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_meta_and_nothing_is_configured() -> None:
    settings = WhatsAppSettings(_env_file=None)  # type: ignore[call-arg]

    assert (settings.api_url, settings.api_version) == ("https://graph.facebook.com", "v21.0")
    assert not settings.configured and not settings.webhook_configured


def test_everything_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "106540352242922")
    monkeypatch.setenv("WHATSAPP_ACCESS_TOKEN", "EAAG-env-token")
    monkeypatch.setenv("WHATSAPP_APP_SECRET", "app-secret")
    monkeypatch.setenv("WHATSAPP_VERIFY_TOKEN", "verify-me")
    monkeypatch.setenv("WHATSAPP_API_URL", "http://127.0.0.1:9999/")
    monkeypatch.setenv("WHATSAPP_API_VERSION", "v22.0")

    settings = WhatsAppSettings(_env_file=None)  # type: ignore[call-arg]

    assert settings.configured and settings.webhook_configured
    assert settings.api_url == "http://127.0.0.1:9999"
    assert "EAAG-env-token" not in repr(settings) and "app-secret" not in str(settings)
    cloud = WhatsAppCloud.from_settings(settings)
    assert cloud.base_url == "http://127.0.0.1:9999/v22.0/106540352242922"
    assert "EAAG-env-token" not in repr(cloud)


def test_whatsapp_token_is_another_name_for_the_access_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "106540352242922")
    monkeypatch.setenv("WHATSAPP_TOKEN", "EAAG-issue-name")

    settings = WhatsAppSettings(_env_file=None)  # type: ignore[call-arg]

    assert settings.configured
    assert settings.access_token is not None and settings.access_token.get_secret_value() == "EAAG-issue-name"


def test_the_env_example_documents_every_variable_and_configures_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^(WHATSAPP_[A-Z_]+)=", example, flags=re.MULTILINE))
    aliases = {f.alias or "" for f in WhatsAppSettings.model_fields.values()} | {"WHATSAPP_ACCESS_TOKEN"}

    assert documented == aliases - {""}
    monkeypatch.chdir(ROOT)
    settings = WhatsAppSettings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert not settings.configured and not settings.webhook_configured  # empty values count as unset


@pytest.mark.parametrize(("name", "value"), [("WHATSAPP_API_VERSION", "21"), ("WHATSAPP_PHONE_NUMBER_ID", "+254"),
                                             ("WHATSAPP_API_URL", "graph.facebook.com")])
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name):
        WhatsAppSettings(_env_file=None)  # type: ignore[call-arg]


def test_a_client_needs_configured_settings() -> None:
    with pytest.raises(ValueError, match="WHATSAPP_PHONE_NUMBER_ID"):
        WhatsAppCloud.from_settings(WhatsAppSettings(_env_file=None))  # type: ignore[call-arg]
