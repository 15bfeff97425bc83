"""`WhatsAppCloud`: the core's `CustomerMessenger` port on the WhatsApp Cloud API (Meta's Graph API), over httpx.

    cloud = WhatsAppCloud(phone_number_id="106540352242922", access_token="EAAG…")
    wamid = await cloud.send_template(to="+254700000001", template="incident_investigating", language="en",
                                      parameters=("payments", "30"))
    wamid = await cloud.send_text(to="+254700000001", text="Payments are back.")   # inside the 24 h window only
    await cloud.aclose()

Every send is `POST {api_url}/{api_version}/{phone_number_id}/messages` with a bearer token; the answer's
`messages[0].id` (a "wamid.…") is returned. Any failure raises `WhatsAppDeliveryError`, a `bot.ports.DeliveryError`
carrying Meta's error `code`:

    131047 (outside the 24-hour window)            permanent, code=131047: send an approved template instead
    130429, 131056, 131048, 4, 80007, HTTP 429     retry_after = the Retry-After header, else a default (5 s)
    131026, 131030, 131021, 100/131009 on `to`     permanent: invalid or unreachable recipient
    190 / HTTP 401 (bad or expired token)          permanent
    any other 4xx                                  permanent (the same request cannot succeed)
    5xx, 1, 2, 131000, 131016, 133004              transient (permanent=False)
    timeouts, refused or dropped connections       transient (permanent=False)

A timeout after the request was written is ambiguous (Meta may have accepted it); it is reported as transient,
so a caller that retries may, rarely, send twice. This client does not retry by itself: the caller owns the
retry policy (backoff, per-recipient accounting). Note that Meta also reports some of these codes (131047,
131026, …) asynchronously, as a `failed` status webhook for a message this client got a wamid for: see
`adapters.whatsapp.webhook.parse_webhook` (`CustomerMessageStatus.error_code`).

The access token is never logged and never appears in exception messages or reprs; phone numbers are logged
masked (`+…0001`).

Beyond the port, for the operator chat (issue 9): `send_buttons` (interactive reply buttons, at most 3) and
`send_document` (media upload, then a document message).
"""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import SecretStr

from bot.ports import DeliveryError

if TYPE_CHECKING:
    from adapters.whatsapp.settings import WhatsAppSettings

log = logging.getLogger("warroom.whatsapp")

PLATFORM = "whatsapp"
DEFAULT_API_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
DEFAULT_UPLOAD_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
DEFAULT_RETRY_AFTER = 5.0

# Meta's error codes (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)
OUTSIDE_WINDOW = 131047
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
INVALID_RECIPIENT_CODES = frozenset({131021, 131026, 131030})
PARAMETER_CODES = frozenset({100, 131008, 131009})  # invalid parameter: a recipient error when it names the phone
AUTH_CODES = frozenset({0, 10, 190})
TRANSIENT_CODES = frozenset({1, 2, 131000, 131016, 133004})

MAX_TEXT = 4096
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_INTERACTIVE_BODY = 1024
MAX_CAPTION = 1024
MAX_DOCUMENT_BYTES = 100 * 1024 * 1024
# Document MIME types the Cloud API accepts; other text/* files (Markdown, CSV…) are uploaded as text/plain.
DOCUMENT_TYPES = frozenset({
    "text/plain", "application/pdf", "application/msword", "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
})

_PHONE_NOISE = re.compile(r"[\s\-().]")
_WHATSAPP_NUMBER = re.compile(r"^[1-9]\d{6,14}$")  # E.164 without the "+": country code + number, ≤ 15 digits
_TEMPLATE_PARAMETER_SPACE = re.compile(r"\s+")

Reason = Literal["outside_window", "rate_limited", "invalid_recipient", "auth", "bad_request", "unavailable",
                 "unexpected_response"]


class WhatsAppDeliveryError(DeliveryError):
    """A `DeliveryError` with what the Graph API said: `reason` (a coarse class of `code`), the HTTP status and
    Meta's `details` text. `str(error)` is a sentence fit for the incident thread; it never holds the token."""

    def __init__(self, message: str, *, reason: Reason, retry_after: float | None = None, permanent: bool = False,
                 code: int | None = None, http_status: int | None = None, details: str | None = None) -> None:
        super().__init__(message, retry_after=retry_after, permanent=permanent, code=code,
                         window_closed=reason == "outside_window")
        self.reason = reason
        self.http_status = http_status
        self.details = details


@dataclass(frozen=True)
class _GraphError:
    status: int
    code: int | None
    message: str
    details: str | None
    retry_after: float | None


def whatsapp_number(phone: str) -> str:
    """'+254 700-000-001' → '254700000001' (what the Cloud API's `to` wants). Raises ValueError otherwise."""
    digits = _PHONE_NOISE.sub("", phone or "").removeprefix("+")
    if not _WHATSAPP_NUMBER.match(digits):
        raise ValueError(f"not a phone number in international format: {mask(phone)!r}")
    return digits


def mask(phone: str) -> str:
    """A phone number for logs: '+254700000001' → '+…0001'."""
    digits = re.sub(r"\D", "", phone or "")
    return f"+…{digits[-4:]}" if len(digits) > 4 else "+…"


class WhatsAppCloud:
    """The WhatsApp Cloud API for one business phone number. Implements `bot.ports.CustomerMessenger`.

    Owns an `httpx.AsyncClient` unless one is passed in (`http=`); `aclose()` (or `async with`) closes it.
    """

    platform = PLATFORM

    def __init__(self, *, phone_number_id: str, access_token: str | SecretStr, api_url: str = DEFAULT_API_URL,
                 api_version: str = DEFAULT_API_VERSION, timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
                 upload_timeout: float | httpx.Timeout = DEFAULT_UPLOAD_TIMEOUT,
                 default_retry_after: float = DEFAULT_RETRY_AFTER, http: httpx.AsyncClient | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not phone_number_id or not str(phone_number_id).isdigit():
            raise ValueError("phone_number_id must be the numeric WhatsApp phone number id")
        token = access_token if isinstance(access_token, SecretStr) else SecretStr(access_token or "")
        if not token.get_secret_value().strip():
            raise ValueError("an access token is required (WHATSAPP_ACCESS_TOKEN)")
        self._token = token
        self.phone_number_id = str(phone_number_id)
        self.api_version = api_version
        self.base_url = f"{api_url.rstrip('/')}/{api_version}/{self.phone_number_id}"
        self.default_retry_after = default_retry_after
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._upload_timeout = (upload_timeout if isinstance(upload_timeout, httpx.Timeout)
                                else httpx.Timeout(upload_timeout))
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=self._timeout, transport=transport,
                                               limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                                               headers={"User-Agent": "warroom-whatsapp"})

    @classmethod
    def from_settings(cls, settings: WhatsAppSettings, **options: Any) -> WhatsAppCloud:
        """The client for `WhatsAppSettings` (raises ValueError when `settings.configured` is false)."""
        if not settings.configured:
            raise ValueError("WhatsApp is not configured: set WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_ACCESS_TOKEN")
        return cls(phone_number_id=settings.phone_number_id or "", access_token=settings.access_token or "",
                   api_url=settings.api_url, api_version=settings.api_version, **options)

    def __repr__(self) -> str:
        return f"WhatsAppCloud(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> WhatsAppCloud:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- CustomerMessenger ---------------------------------------------------------------------------------

    async def send_template(self, *, to: str, template: str, language: str, parameters: Sequence[str]) -> str:
        """An approved template message; `parameters` fill the body's {{1}}, {{2}}… in order. Newlines, tabs and
        runs of spaces in a parameter are collapsed to one space (the API rejects them in parameters)."""
        template_body: dict[str, Any] = {"name": template, "language": {"code": language}}
        if parameters:
            template_body["components"] = [{
                "type": "body",
                "parameters": [{"type": "text", "text": _template_parameter(p)} for p in parameters],
            }]
        return await self._send(to, "template", template_body, what=f"template {template}")

    async def send_text(self, *, to: str, text: str) -> str:
        """Free-form text: only delivered inside the 24-hour window after the customer last wrote to us
        (outside it: code 131047, synchronously or as a `failed` status webhook)."""
        if not text.strip():
            raise self._local_error("the text is empty")
        if len(text) > MAX_TEXT:
            raise self._local_error(f"the text has {len(text)} characters; WhatsApp allows {MAX_TEXT}")
        return await self._send(to, "text", {"body": text, "preview_url": False}, what="text")

    # -- for the operator chat (issue 9) -----------------------------------------------------------------

    async def send_buttons(self, *, to: str, text: str, buttons: Sequence[tuple[str, str]],
                           header: str | None = None, footer: str | None = None) -> str:
        """An interactive message with up to 3 reply buttons, given as (id, title) pairs. A press comes back as
        `CustomerMessageReceived(button_payload=id, text=title)`. Raises ValueError when the buttons or text
        break WhatsApp's limits (1-3 buttons, unique ids ≤ 256 chars, titles ≤ 20 chars, body ≤ 1024)."""
        _check_buttons(buttons)
        if not text.strip() or len(text) > MAX_INTERACTIVE_BODY:
            raise ValueError(f"the text of a buttons message must be 1-{MAX_INTERACTIVE_BODY} characters "
                             f"(got {len(text)})")
        interactive: dict[str, Any] = {
            "type": "button",
            "body": {"text": text},
            "action": {"buttons": [{"type": "reply", "reply": {"id": bid, "title": title}}
                                   for bid, title in buttons]},
        }
        if header:
            interactive["header"] = {"type": "text", "text": header[:60]}
        if footer:
            interactive["footer"] = {"text": footer[:60]}
        return await self._send(to, "interactive", interactive, what="buttons")

    async def upload_media(self, *, filename: str, content: bytes, mime_type: str) -> str:
        """`POST /{version}/{phone_number_id}/media` (multipart); returns the media id."""
        response = await self._request(
            "POST", "/media", what=f"upload {filename}", timeout=self._upload_timeout,
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, content, mime_type)})
        media_id = response.get("id") if isinstance(response, dict) else None
        if not isinstance(media_id, str) or not media_id:
            raise WhatsAppDeliveryError("WhatsApp accepted the upload but returned no media id",
                                        reason="unexpected_response", permanent=True)
        return media_id

    async def send_document(self, *, to: str, filename: str, content: bytes, caption: str | None = None,
                            mime_type: str | None = None) -> str:
        """Uploads `content` then sends it as a document message named `filename`. Markdown and other text
        files go up as text/plain (the types WhatsApp accepts are in DOCUMENT_TYPES)."""
        if not content:
            raise ValueError("the document is empty")
        if len(content) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"the document is {len(content)} bytes; WhatsApp allows {MAX_DOCUMENT_BYTES}")
        number = self._number(to)  # before uploading: an invalid recipient costs no upload
        media_id = await self.upload_media(filename=filename, content=content,
                                           mime_type=document_type(filename, mime_type))
        document: dict[str, Any] = {"id": media_id, "filename": filename}
        if caption:
            document["caption"] = caption[:MAX_CAPTION]
        return await self._send(number, "document", document, what=f"document {filename}")

    # -- plumbing ----------------------------------------------------------------------------------------

    def _number(self, to: str) -> str:
        try:
            return whatsapp_number(to)
        except ValueError as error:
            raise WhatsAppDeliveryError(f"invalid recipient: {error}", reason="invalid_recipient",
                                        permanent=True) from None

    @staticmethod
    def _local_error(message: str) -> WhatsAppDeliveryError:
        return WhatsAppDeliveryError(message, reason="bad_request", permanent=True)

    async def _send(self, to: str, kind: str, body: Mapping[str, Any], *, what: str) -> str:
        number = self._number(to)
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": number, "type": kind,
                   kind: body}
        response = await self._request("POST", "/messages", what=f"{what} to {mask(number)}", json=payload)
        try:
            message_id = response["messages"][0]["id"]
            if not isinstance(message_id, str) or not message_id:
                raise TypeError
        except (KeyError, IndexError, TypeError):
            # Meta said 200: it may have accepted the message, so retrying could send it twice.
            raise WhatsAppDeliveryError(f"WhatsApp accepted the {what} but returned no message id",
                                        reason="unexpected_response", permanent=True) from None
        log.info("whatsapp: sent %s to %s (%s)", what, mask(number), message_id)
        return message_id

    async def _request(self, method: str, path: str, *, what: str, timeout: httpx.Timeout | None = None,
                       **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            response = await self._http.request(method, self.base_url + path, headers=headers,
                                                timeout=timeout or self._timeout, **kwargs)
        except httpx.TimeoutException as error:
            log.warning("whatsapp: %s timed out (%s)", what, type(error).__name__)
            raise WhatsAppDeliveryError(f"WhatsApp did not answer in time ({type(error).__name__}) for {what}",
                                        reason="unavailable", permanent=False) from None
        except httpx.TransportError as error:
            log.warning("whatsapp: %s failed to connect (%s)", what, type(error).__name__)
            raise WhatsAppDeliveryError(f"could not reach WhatsApp ({type(error).__name__}) for {what}",
                                        reason="unavailable", permanent=False) from None
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise WhatsAppDeliveryError(f"WhatsApp answered {response.status_code} with a body that is not "
                                            f"JSON for {what}", reason="unexpected_response",
                                            permanent=True) from None
        failure = self._classify(_graph_error(response, self.default_retry_after), what)
        log.warning("whatsapp: %s", failure)
        raise failure

    def _classify(self, graph: _GraphError, what: str) -> WhatsAppDeliveryError:
        code, status = graph.code, graph.status
        said = f"WhatsApp error {code if code is not None else status}: {graph.message}"
        if graph.details and graph.details not in graph.message:
            said += f" ({graph.details})"
        common = {"code": code, "http_status": status, "details": graph.details}

        def error(reason: Reason, hint: str, *, permanent: bool, retry_after: float | None = None
                  ) -> WhatsAppDeliveryError:
            return WhatsAppDeliveryError(f"{what}: {hint}. {said}", reason=reason, permanent=permanent,
                                         retry_after=retry_after, **common)  # type: ignore[arg-type]

        if code == OUTSIDE_WINDOW:
            return error("outside_window", "outside the 24-hour customer service window, send an approved "
                         "template instead", permanent=True)
        if code in RATE_LIMIT_CODES or (status == 429 and code not in AUTH_CODES):
            wait = graph.retry_after if graph.retry_after is not None else self.default_retry_after
            return error("rate_limited", f"rate limited, retry in {wait:g} s", permanent=False, retry_after=wait)
        if code in AUTH_CODES or status in (401, 403):
            return error("auth", "the access token was refused (invalid, expired or lacking permission)",
                         permanent=True)
        if code in INVALID_RECIPIENT_CODES or (code in PARAMETER_CODES and _names_the_phone(graph)):
            return error("invalid_recipient", "invalid or unreachable recipient", permanent=True)
        if status >= 500 or code in TRANSIENT_CODES:
            return error("unavailable", "WhatsApp is unavailable, try again later", permanent=False)
        return error("bad_request", "WhatsApp refused the request", permanent=True)


def _graph_error(response: httpx.Response, default_retry_after: float) -> _GraphError:
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        pass
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = error.get("code")
    details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
    message = str(error.get("message") or response.reason_phrase or f"HTTP {response.status_code}")
    return _GraphError(status=response.status_code, code=code if isinstance(code, int) else None,
                       message=message, details=str(details) if details else None,
                       retry_after=_retry_after(response.headers.get("Retry-After")))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _names_the_phone(graph: _GraphError) -> bool:
    text = f"{graph.message} {graph.details or ''}".lower()
    return any(word in text for word in ("phone", "recipient", "wa_id", "whatsapp id", "'to'", '"to"'))


def _template_parameter(value: str) -> str:
    return _TEMPLATE_PARAMETER_SPACE.sub(" ", str(value)).strip()


def _check_buttons(buttons: Sequence[tuple[str, str]]) -> None:
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        raise ValueError(f"WhatsApp reply buttons: 1 to {MAX_BUTTONS} per message (got {len(buttons)})")
    ids = [bid for bid, _ in buttons]
    if len(set(ids)) != len(ids):
        raise ValueError(f"WhatsApp reply buttons need unique ids (got {ids})")
    for bid, title in buttons:
        if not bid or len(bid) > MAX_BUTTON_ID:
            raise ValueError(f"WhatsApp reply button id must be 1-{MAX_BUTTON_ID} characters (got {bid!r})")
        if not title.strip() or len(title) > MAX_BUTTON_TITLE:
            raise ValueError(f"WhatsApp reply button title must be 1-{MAX_BUTTON_TITLE} characters "
                             f"(got {title!r})")


def document_type(filename: str, mime_type: str | None = None) -> str:
    """The MIME type to upload a document as: the given or guessed type when WhatsApp accepts it, text/plain for
    other text (Markdown, CSV, logs), else the guess (WhatsApp will refuse it with a clear error)."""
    guessed = mime_type or mimetypes.guess_type(filename)[0] or ""
    if guessed in DOCUMENT_TYPES:
        return guessed
    if guessed.startswith("text/") or filename.lower().endswith((".md", ".markdown", ".log", ".csv", ".txt")):
        return "text/plain"
    return guessed or "application/octet-stream"
