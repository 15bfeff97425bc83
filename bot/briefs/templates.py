"""Customer briefs: phone numbers, contacts, and rendering a brief template for an incident. Pure, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from playbooks.schema import BriefTemplate

_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FREE_TEXT_WINDOW = timedelta(hours=24)
DEFAULT_OPT_OUT_WORDS = ("STOP", "UNSUBSCRIBE", "STOP ALL", "OPT OUT", "OPTOUT")
DEFAULT_OPT_IN_WORDS = ("START", "SUBSCRIBE", "UNSTOP")


def normalize_phone(raw: str) -> str:
    """'+254 700-000 001' → '+254700000001'; anything that is not E.164 raises ValueError saying so."""
    compact = re.sub(r"[\s().-]", "", raw or "")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not _E164.match(compact):
        raise ValueError(f"'{raw}' is not a phone number in E.164 form: '+', country code and number, "
                         "8–15 digits in all, e.g. +254700000001")
    return compact


def normalize_tenant(raw: str) -> str:
    tenant = raw.strip().lower()
    if not TENANT.match(tenant):
        raise ValueError(f"'{raw}' is not a tenant name: use lowercase letters, digits, '-' or '_', e.g. acme")
    return tenant


@dataclass(frozen=True)
class Contact:
    id: int
    tenant: str
    name: str
    phone: str
    opted_out_at: datetime | None = None
    last_inbound_at: datetime | None = None
    window_closed_at: datetime | None = None  # the platform refused free text then (until they write again)

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None

    def in_free_text_window(self, now: datetime) -> bool:
        if self.last_inbound_at is None or now - self.last_inbound_at >= FREE_TEXT_WINDOW:
            return False
        return self.window_closed_at is None or self.window_closed_at < self.last_inbound_at

    @property
    def label(self) -> str:
        return f"{self.name} at {self.tenant} ({self.phone})"


@dataclass(frozen=True)
class Brief:
    id: int
    incident_number: int
    template: str
    kind: str
    parameters: dict[str, str]
    text: str
    target: str
    eta_minutes: int | None
    status: str
    created_by: str


@dataclass(frozen=True)
class Recipient:
    id: int
    brief_id: int
    contact_id: int
    tenant: str
    name: str
    phone: str
    status: str
    message_id: str | None = None
    via: str | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} at {self.tenant} ({self.phone})"


def render_brief(template: BriefTemplate, values: dict[str, str]) -> tuple[dict[str, str], str]:
    """The template's parameters filled from `values`, and its free text rendered with them."""
    missing = [name for name in template.parameters if not values.get(name)]
    if missing:
        raise ValueError(f"brief template '{template.name}' needs {', '.join(missing)}")
    parameters = {name: values[name] for name in template.parameters}
    return parameters, template.text.format(**parameters)


def is_opt_out(text: str, words: tuple[str, ...] = DEFAULT_OPT_OUT_WORDS) -> bool:
    return " ".join(text.split()).upper() in words


def is_opt_in(text: str, words: tuple[str, ...] = DEFAULT_OPT_IN_WORDS) -> bool:
    return " ".join(text.split()).upper() in words
