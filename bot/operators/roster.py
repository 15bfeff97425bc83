"""Operators: WhatsApp numbers allowed to run incidents from their phone, and what they are working on."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.briefs.templates import normalize_phone

# What an operator's message must start with to be a command: "/incident …", "incident …" or "inc …".
COMMAND_PREFIX = re.compile(r"^\s*(?:/incident|incident|inc)\b[\s:]*", re.IGNORECASE)


@dataclass(frozen=True)
class Operator:
    phone: str
    name: str
    current_incident: int | None = None
    from_environment: bool = False  # listed in WARROOM_WHATSAPP_OPERATORS: the list, not the CLI, manages it


def parse_operator_list(value: str) -> list[tuple[str, str]]:
    """'alice=+254700000001, +254700000002' → [('alice', '+254700000001'), ('+254700000002', '+254700000002')].
    A bad number raises ValueError naming it."""
    entries = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        name, _, phone = part.rpartition("=")
        phone = normalize_phone(phone)
        entries.append((name.strip() or phone, phone))
    return entries


def command_text(message: str) -> str | None:
    """The `/incident …` command an operator's message carries, or None for a plain timeline message."""
    match = COMMAND_PREFIX.match(message)
    if match is None:
        return None
    return "/incident " + message[match.end():].strip()
