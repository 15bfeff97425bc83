"""Per-recipient delivery of customer briefs (sent / delivered / read / failed), for `/incident show` and the
post-mortem. Pure: values in, text out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from bot.briefs.templates import Brief, Recipient

# WhatsApp's order of progress, then the outcomes that end it.
STATUS_ORDER = ("queued", "sent", "delivered", "read", "failed", "skipped")

Deliveries = Sequence[tuple[Brief, Sequence[Recipient]]]


def counts_text(recipients: Sequence[Recipient]) -> str:
    """'1 read · 1 delivered · 1 failed' — most advanced first, then failures."""
    counts = Counter(r.status for r in recipients)
    order = ("read", "delivered", "sent", "queued", "failed", "skipped")
    known = [f"{counts[s]} {s}" for s in order if counts[s]]
    other = [f"{n} {s}" for s, n in sorted(counts.items()) if s not in STATUS_ORDER]
    return " · ".join(known + other) or "no recipients"


def recipient_outcome(recipient: Recipient) -> str:
    """'read (template)', 'failed: 131026: recipient not a WhatsApp user', 'skipped: opted out'."""
    if recipient.status in ("failed", "skipped") and recipient.error:
        return f"{recipient.status}: {' '.join(recipient.error.split())}"
    return recipient.status + (f" ({recipient.via})" if recipient.via else "")


def delivery_lines(deliveries: Deliveries) -> str:
    """For `/incident show`: a line per brief, then one per recipient."""
    lines = []
    for brief, recipients in deliveries:
        lines.append(f"#{brief.id} {brief.kind} to {brief.target}: {counts_text(recipients)}")
        lines += [f"  {r.label}: {recipient_outcome(r)}" for r in recipients]
    return "\n".join(lines)


def delivery_records(deliveries: Deliveries) -> list[dict[str, Any]]:
    """For the post-mortem's JSON (and its Markdown table)."""
    return [{"brief": brief.id, "kind": brief.kind, "template": brief.template, "target": brief.target,
             "recipients": [{"name": r.name, "tenant": r.tenant, "phone": r.phone, "status": r.status,
                             "via": r.via, "error": r.error} for r in recipients]}
            for brief, recipients in deliveries]


__all__ = ["Deliveries", "counts_text", "delivery_lines", "delivery_records", "recipient_outcome"]
