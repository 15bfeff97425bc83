"""The one settings object: .env.example loads through it as a newcomer's .env, empty means unset everywhere,
every variable the code reads is documented, and bad values are refused naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings

from bot.app.settings import HttpSettings, OperationsSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"
PLATFORM_VARIABLE = re.compile(r"^(WARROOM|SLACK|DISCORD|WHATSAPP|PAGERDUTY)_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if PLATFORM_VARIABLE.match(name):
            monkeypatch.delenv(name)


def documented() -> set[str]:
    names = set()
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match and PLATFORM_VARIABLE.match(match.group(1)):
            names.add(match.group(1))
    return names


def variables_read(model: type[BaseSettings]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            names |= variables_read(annotation)
            continue
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):
            names |= {choice for choice in alias.choices if isinstance(choice, str) and choice.isupper()}
        elif isinstance(alias, str):
            names.add(alias)
        else:
            raise AssertionError(f"{model.__name__}.{name} is read from no documented variable")
    return names


def test_env_example_as_dot_env_is_nothing_configured() -> None:
    settings = load_settings(EXAMPLE)
    assert not settings.slack.configured
    assert not settings.discord.configured
    assert not settings.whatsapp.configured and not settings.whatsapp.webhook_configured
    assert settings.discord.guild_id is None  # `DISCORD_GUILD_ID=` is unset, not a bad integer
    assert settings.playbooks is None  # `WARROOM_PLAYBOOKS=` is the bundled playbooks, not the current folder
    assert settings.operations.alert_token is None and settings.operations.alert_platform is None
    assert settings.whatsapp_operators == ""
    assert settings.http.port == 3000 and settings.database_url == "sqlite:///warroom.db"


def test_every_variable_the_code_reads_is_in_env_example_and_nothing_else() -> None:
    read = variables_read(Settings)
    assert read - documented() == set(), "read but not documented in .env.example"
    assert documented() - read == set(), "documented in .env.example but read by nothing"


@pytest.mark.parametrize("variable", ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_GUILD_ID",
                                      "WARROOM_PLAYBOOKS", "WARROOM_ALERT_TOKEN", "WHATSAPP_ACCESS_TOKEN",
                                      "WARROOM_HTTP_PORT", "WARROOM_DIGEST_TIME"])
def test_an_empty_variable_in_the_environment_means_unset(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, "")
    assert load_settings(None) == load_settings(None).model_copy()  # loads at all
    monkeypatch.delenv(variable)
    baseline = load_settings(None)
    monkeypatch.setenv(variable, "")
    assert load_settings(None) == baseline


def test_empty_slack_values_do_not_count_as_slack_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "")
    assert not load_settings(None).slack.configured
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    assert load_settings(None).slack.configured


def test_the_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("WARROOM_HTTP_PORT=4000\nDISCORD_GUILD_ID=42\nWARROOM_LADDER=SEV0-SEV3\n", encoding="utf-8")
    monkeypatch.setenv("WARROOM_HTTP_PORT", "5000")
    settings = load_settings(env)
    assert (settings.http.port, settings.discord.guild_id, settings.ladder) == (5000, 42, "SEV0-SEV3")


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("DISCORD_GUILD_ID", "general", "DISCORD_GUILD_ID"),
    ("WARROOM_HTTP_PORT", "http", "WARROOM_HTTP_PORT"),
    ("WARROOM_DIGEST_TIME", "7am", "WARROOM_DIGEST_TIME"),
    ("WARROOM_TIMEZONE", "Mars/Olympus", "WARROOM_TIMEZONE"),
    ("WARROOM_LOG_FORMAT", "xml", "WARROOM_LOG_FORMAT"),
])
def test_a_bad_value_is_refused_naming_the_variable(variable: str, value: str, named: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        load_settings(None)
    assert named in str(refused.value)


def test_settings_are_frozen() -> None:
    settings = load_settings(None)
    with pytest.raises(ValidationError):
        settings.ladder = "S1-S4"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.http.port = 1  # type: ignore[misc]


def test_sub_models_default_to_unconfigured_when_built_directly() -> None:
    settings = Settings(_env_file=None, database_url="sqlite:///x.db")
    assert isinstance(settings.http, HttpSettings) and isinstance(settings.operations, OperationsSettings)
    assert not settings.slack.configured
