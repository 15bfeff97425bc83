"""The WhatsApp webhook, as pure functions: signature check and payload → neutral events.

    if not verify_signature(app_secret, raw_body, request.headers.get("X-Hub-Signature-256")):
        ...  # 401
    for event in parse_webhook(json.loads(raw_body)):
        ...  # CustomerMessageReceived | CustomerMessageStatus

Payload (Meta's `messages` webhook field)::

    {"object": "whatsapp_business_account",
     "entry": [{"id": "<WABA id>", "changes": [{"field": "messages", "value": {
         "messaging_product": "whatsapp", "metadata": {...},
         "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
         "messages": [{"from": "16505551234", "id": "wamid…", "timestamp": "1749416383", "type": "text",
                       "text": {"body": "Hi"}}],
         "statuses": [{"id": "wamid…", "status": "failed", "timestamp": "…", "recipient_id": "16505551234",
                       "errors": [{"code": 131047, "title": "Re-engagement message", …}]}]}}]}]}

Inbound message types: `text` (text.body), `button` (a template's quick reply: button.text, button.payload),
`interactive` (button_reply / list_reply: title, id → `button_payload`); media keep their caption as text; any
other type becomes a message with text "" (it still opens the 24-hour window). Changes of other fields
(template status, account updates…) carry no messages or statuses and yield nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from bot.ports import CustomerMessageReceived, CustomerMessageStatus

OUTSIDE_WINDOW = 131047  # Meta: free text outside the 24-hour customer-care window (also in client.py)

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE_PREFIX = "sha256="
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MEDIA_TYPES = ("image", "video", "document", "audio", "sticker")

WebhookEvent = CustomerMessageReceived | CustomerMessageStatus


def sign(app_secret: str | bytes | SecretStr, raw_body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `raw_body`: 'sha256=<hex HMAC-SHA256>'."""
    return _SIGNATURE_PREFIX + hmac.new(_key(app_secret), raw_body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: str | bytes | SecretStr, raw_body: bytes, header: str | None) -> bool:
    """True when `header` is 'sha256=' + the HMAC-SHA256 of the exact raw body with the app secret (compared in
    constant time). A missing or malformed header, or an empty secret, is False."""
    key = _key(app_secret)
    if not key or not header:
        return False
    header = header.strip()
    if not header.lower().startswith(_SIGNATURE_PREFIX):
        return False
    given = header[len(_SIGNATURE_PREFIX):].lower()
    if not _HEX64.match(given):
        return False
    expected = hmac.new(key, raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def parse_webhook(payload: Any) -> list[WebhookEvent]:
    """Every inbound message and status in a webhook payload, in payload order. Raises ValueError (naming the
    offending path) when the payload is not a WhatsApp Business Account webhook or a message/status lacks its
    id, sender or timestamp."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"WhatsApp webhook: expected a JSON object, got {type(payload).__name__}")
    if payload.get("object") != "whatsapp_business_account":
        raise ValueError(f"WhatsApp webhook: object is {payload.get('object')!r}, "
                         "expected 'whatsapp_business_account'")
    events: list[WebhookEvent] = []
    for e, entry in _items(payload, "entry", "", required=True):
        for c, change in _items(entry, "changes", f"entry[{e}]", required=True):
            where = f"entry[{e}].changes[{c}]"
            value = change.get("value")
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ValueError(f"WhatsApp webhook: {where}.value is not an object")
            names = _profile_names(value, f"{where}.value")
            for m, message in _items(value, "messages", f"{where}.value"):
                events.append(_message(message, names, f"{where}.value.messages[{m}]"))
            for s, status in _items(value, "statuses", f"{where}.value"):
                events.append(_status(status, f"{where}.value.statuses[{s}]"))
    return events


def e164(number: Any, where: str = "phone") -> str:
    """'16505551234' (a WhatsApp id) → '+16505551234'."""
    digits = re.sub(r"[\s\-().+]", "", str(number)) if isinstance(number, (str, int)) else ""
    if not re.fullmatch(r"[1-9]\d{6,14}", digits):
        raise ValueError(f"WhatsApp webhook: {where} is not a phone number: {number!r}")
    return "+" + digits


# -- internals ------------------------------------------------------------------------------------------------


def _key(app_secret: str | bytes | SecretStr) -> bytes:
    if isinstance(app_secret, SecretStr):
        app_secret = app_secret.get_secret_value()
    return app_secret.encode("utf-8") if isinstance(app_secret, str) else bytes(app_secret or b"")


def _items(parent: Mapping[str, Any], key: str, where: str, *, required: bool = False
           ) -> Iterator[tuple[int, Mapping[str, Any]]]:
    path = f"{where}.{key}" if where else key
    value = parent.get(key)
    if value is None:
        if required:
            raise ValueError(f"WhatsApp webhook: {path} is missing")
        return
    if not isinstance(value, list):
        raise ValueError(f"WhatsApp webhook: {path} is not a list")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ValueError(f"WhatsApp webhook: {path}[{index}] is not an object")
        yield index, item


def _profile_names(value: Mapping[str, Any], where: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for _, contact in _items(value, "contacts", where):
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, Mapping) else None
        wa_id = contact.get("wa_id")
        if isinstance(name, str) and name.strip() and isinstance(wa_id, (str, int)):
            names[re.sub(r"\D", "", str(wa_id))] = name.strip()
    return names


def _required(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
        raise ValueError(f"WhatsApp webhook: {where}.{key} is missing")
    return str(value)


def _timestamp(item: Mapping[str, Any], where: str) -> datetime:
    raw = _required(item, "timestamp", where)
    try:
        return datetime.fromtimestamp(int(raw), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"WhatsApp webhook: {where}.timestamp is not a Unix time: {raw!r}") from None


def _message(message: Mapping[str, Any], names: dict[str, str], where: str) -> CustomerMessageReceived:
    phone = e164(_required(message, "from", where), f"{where}.from")
    kind = message.get("type")
    text, payload = _content(message, kind)
    digits = phone[1:]
    profile_name = names.get(digits) or (next(iter(names.values())) if len(names) == 1 else None)
    return CustomerMessageReceived(phone=phone, text=text, message_id=_required(message, "id", where),
                                   at=_timestamp(message, where), profile_name=profile_name, button_payload=payload)


def _content(message: Mapping[str, Any], kind: Any) -> tuple[str, str | None]:
    body = message.get(kind) if isinstance(kind, str) else None
    body = body if isinstance(body, Mapping) else {}
    if kind == "text":
        return _text(body.get("body")), None
    if kind == "button":  # a quick-reply button of a template
        return _text(body.get("text")), _text(body.get("payload")) or None
    if kind == "interactive":
        reply = body.get(body.get("type")) if isinstance(body.get("type"), str) else None
        if isinstance(reply, Mapping):  # button_reply / list_reply: {"id", "title"}
            return _text(reply.get("title")), _text(reply.get("id")) or None
        return "", None
    if kind in _MEDIA_TYPES:
        return _text(body.get("caption")), None
    return "", None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _status(status: Mapping[str, Any], where: str) -> CustomerMessageStatus:
    recipient = status.get("recipient_id")
    phone = None
    if recipient not in (None, ""):
        try:
            phone = e164(recipient, f"{where}.recipient_id")
        except ValueError:
            phone = None  # a group or business-scoped id: not a phone number
    code: int | None = None
    title: str | None = None
    errors = status.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        first = errors[0]
        raw_code = first.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
        if code is None and isinstance(raw_code, str) and raw_code.isdigit():
            code = int(raw_code)
        title = _text(first.get("title")) or _text(first.get("message")) or None
        details = first.get("error_data", {}).get("details") if isinstance(first.get("error_data"), Mapping) else None
        if title and isinstance(details, str) and details and details not in title:
            title = f"{title}: {details}"
    return CustomerMessageStatus(message_id=_required(status, "id", where),
                                 status=_required(status, "status", where).lower(),
                                 at=_timestamp(status, where), phone=phone, error_code=code, error_title=title,
                                 window_closed=code == OUTSIDE_WINDOW)
