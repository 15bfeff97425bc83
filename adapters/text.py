"""Plain-text rendering of neutral messages, for terminals (and, later, phone-sized chat)."""

from __future__ import annotations

from bot.ports import Message

_BUTTON_HINT = {"ack": "ack", "update": 'status "…"', "resolve": "resolve", "snooze": "snooze 30m",
                "brief_send": "brief send {value}"}


def to_text(message: Message, *, width: int = 100) -> str:
    lines: list[str] = []
    if message.title:
        lines.append(f"┏ {message.title}")
    for field in message.fields:
        lines.append(f"┃ {field.label + ':':<10} {field.value}")
    if message.text:
        prefix = "┃ " if message.title else ""
        lines += [prefix + line for line in message.text.splitlines()]
    for item in message.checklist:
        lines.append(f"┃ [{'x' if item.done else ' '}] {item.number}. {item.text}")
    if message.buttons:
        lines.append("┃ " + "  ".join(f"[{b.label}: /incident {_BUTTON_HINT[b.action].format(value=b.value)}]"
                                       if b.action in _BUTTON_HINT else f"[{b.label} ({b.value})]"
                                       for b in message.buttons))
    if message.attachment:
        lines.append(f"┃ 📎 {message.attachment.filename} ({len(message.attachment.content):,} bytes)")
    if message.footer:
        lines.append(f"┗ {message.footer}" if message.title else message.footer)
    elif message.title:
        lines.append("┗")
    return "\n".join(lines)
