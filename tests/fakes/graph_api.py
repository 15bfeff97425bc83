"""A local fake of Meta's Graph API for WhatsApp Cloud: an aiohttp server on 127.0.0.1 (random port) that the real
httpx client talks to through its base URL. It records every request (failed ones included) and answers like the
real API:

    POST /{version}/{phone_number_id}/messages   → {"messaging_product": "whatsapp",
                                                     "contacts": [{"input": to, "wa_id": to}],
                                                     "messages": [{"id": "wamid.…"}]}
    POST /{version}/{phone_number_id}/media      → {"id": "media-…"}   (multipart: messaging_product, type, file)

Errors have Meta's shape, `{"error": {"message", "type", "code", "error_data": {"messaging_product", "details"},
"fbtrace_id"}}`. A wrong bearer token answers 401 with code 190. Requests the real API would refuse (missing
`messaging_product`, a `to` that is not digits, a template without name or language, a document whose media id
was never uploaded…) answer 400 with code 100, so a client bug shows up as a failing test.

Programmable failures:

    fake.fail_recipient("254700000002", code=131026)               # every message to that number fails
    fake.fail_next(code=130429, status=400, times=2, retry_after=3) # the next 2 requests fail
    fake.hold()  …  fake.release()                                   # requests wait until released (timeouts)

Status webhooks, as Meta sends them (late, out of order, replayed, even before the send's answer):

    fake.webhook_to(http, app_secret="…")        # an httpx client on the app; statuses are POSTed signed
    fake.fail_late(to, code=131047)               # free text to `to` is accepted (200 + wamid) and fails later
    fake.fail_late(to, code=131047, before_answer=True)  # …and the failure is posted before the send's answer
    fake.report(wamid, "delivered")               # queue any status for a message
    await fake.post_statuses(reverse=True, repeat=2)     # post what is queued: out of order, each twice

    fake = await FakeGraphApi(token="EAAG-test").start()
    cloud = WhatsAppCloud(phone_number_id=fake.phone_number_id, access_token="EAAG-test", api_url=fake.url)
    [request] = await fake.wait_requests("messages")
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.recording import Recording

PHONE_NUMBER_ID = "106540352242922"
API_VERSION = "v21.0"
TOKEN = "EAAG-secret-token-7f3a9c"  # the token the fake accepts unless told another

# code → (HTTP status, message, details) as the Graph API words them
ERRORS: dict[int, tuple[int, str, str]] = {
    190: (401, "Error validating access token: Session has expired", "Invalid OAuth access token"),
    100: (400, "(#100) Invalid parameter", "Invalid parameter"),
    4: (400, "(#4) Application request limit reached", "Too many API calls"),
    131009: (400, "(#131009) Parameter value is not valid", "Recipient phone number not valid"),
    131026: (400, "(#131026) Message undeliverable", "Receiver is incapable of receiving this message"),
    131030: (400, "(#131030) Recipient phone number not in allowed list",
             "Recipient phone number not in allowed list: add it to the test numbers"),
    131047: (400, "(#131047) Re-engagement message",
             "Message failed to send because more than 24 hours have passed since the customer last replied "
             "to this number."),
    130429: (400, "(#130429) Rate limit hit", "Cloud API message throughput has been reached."),
    131056: (400, "(#131056) (Business Account, Consumer Account) pair rate limit hit",
             "Too many messages sent from the sender phone number to the same recipient phone number in a short "
             "period of time."),
    131053: (400, "(#131053) Media upload error", "Unable to find the uploaded media"),
    131000: (500, "(#131000) Something went wrong", "Something went wrong"),
    132001: (404, "(#132001) Template name does not exist in the translation",
             "template name does not exist in the language"),
}


@dataclass
class Request:
    """One request the fake received. `authorization_ok` tells whether the bearer token matched (its value is
    not kept). `json` for JSON bodies; `form` and `files` (name → (filename, content type, bytes)) for
    multipart."""

    method: str
    path: str
    endpoint: str  # "messages" | "media" | other last path segment
    headers: dict[str, str]
    authorization_ok: bool
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)
    status: int = 0  # 0 while the fake has not answered yet (held)
    response: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def to(self) -> str | None:
        return self.json.get("to") if isinstance(self.json, dict) else None


@dataclass
class _Failure:
    code: int
    status: int | None
    retry_after: str | None
    message: str | None


class FakeGraphApi(Recording):
    name = "fake Graph API"

    def __init__(self, *, token: str = TOKEN, phone_number_id: str = PHONE_NUMBER_ID,
                 version: str = API_VERSION) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.version = version
        self.requests: list[Request] = []
        self.media: dict[str, tuple[str, str, bytes]] = {}  # media id → (filename, type, bytes)
        self._by_recipient: dict[str, tuple[_Failure, int | None]] = {}  # digits → (failure, remaining or None)
        self._next: deque[_Failure] = deque()
        self._released = asyncio.Event()
        self._released.set()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._changed: asyncio.Condition | None = None
        self.port = 0
        self._late: dict[str, tuple[int, tuple[str, ...], bool]] = {}  # digits → (code, message types, before)
        self.queued_statuses: list[dict[str, Any]] = []  # statuses not posted yet, in the order Meta made them
        self.posted_statuses: list[dict[str, Any]] = []
        self._webhook: Any = None  # an httpx.AsyncClient on the app
        self._app_secret = ""
        self.webhook_path = "/whatsapp/webhook"
        self.now: Callable[[], float] = time.time  # the statuses' `timestamp` (a test sets its own clock)

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> FakeGraphApi:
        app = web.Application(client_max_size=110 * 1024 * 1024)
        app.router.add_route("*", "/{version}/{phone_number_id}/{endpoint}", self._handle)
        self._changed = asyncio.Condition()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        """The API base URL (WHATSAPP_API_URL) for the client."""
        return f"http://127.0.0.1:{self.port}"

    # -- test controls -------------------------------------------------------------------------------

    def fail_recipient(self, to: str, *, code: int, status: int | None = None, times: int | None = None,
                       retry_after: float | str | None = None, message: str | None = None) -> None:
        """Messages to `to` (any format; compared as digits) fail with Meta error `code` (HTTP `status`, by
        default the code's usual status), every time or the next `times` times."""
        self._by_recipient[_digits(to)] = (_Failure(code, status, _header(retry_after), message), times)

    def fail_next(self, *, code: int, status: int | None = None, times: int = 1,
                  retry_after: float | str | None = None, message: str | None = None) -> None:
        """The next `times` requests (any endpoint, any recipient) fail with `code`."""
        for _ in range(times):
            self._next.append(_Failure(code, status, _header(retry_after), message))

    def webhook_to(self, http: Any, *, app_secret: str, path: str = "/whatsapp/webhook") -> None:
        """Post status webhooks through `http` (an httpx.AsyncClient whose base URL is the app), signed with
        `app_secret` as Meta signs them (X-Hub-Signature-256)."""
        self._webhook, self._app_secret, self.webhook_path = http, app_secret, path

    def fail_late(self, to: str, *, code: int = 131047, types: tuple[str, ...] = ("text",),
                  before_answer: bool = False) -> None:
        """Messages of `types` to `to` are accepted (200 and a wamid) and later reported `failed` with `code`
        by status webhook, as Meta does with 131047. `before_answer`: the failure is posted (and handled)
        before the send's answer goes back, so it arrives before the sender could record the message id."""
        self._late[_digits(to)] = (code, types, before_answer)

    def report(self, wamid: str, status: str, *, code: int | None = None, to: str | None = None) -> None:
        """Queue a status webhook for `wamid` (posted by `post_statuses`)."""
        entry: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(self.now())),
                                 "recipient_id": _digits(to) if to else _wamid_number(wamid)}
        if code is not None:
            _, message, details = ERRORS.get(code, (400, f"(#{code}) Error", "Error"))
            entry["errors"] = [{"code": code, "title": message.split(") ", 1)[-1], "message": message,
                                "error_data": {"details": details}}]
        self.queued_statuses.append(entry)

    def status_body(self, *statuses: dict[str, Any]) -> bytes:
        """A `messages` webhook payload carrying `statuses`."""
        return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [
            {"field": "messages", "value": {"messaging_product": "whatsapp",
                                            "metadata": {"phone_number_id": self.phone_number_id},
                                            "statuses": list(statuses)}}]}]}).encode()

    async def post_statuses(self, *, reverse: bool = False, repeat: int = 1) -> list[int]:
        """Post every queued status as its own signed webhook (in reverse order: out of order), each `repeat`
        times in a row (Meta redelivers); returns the HTTP statuses the app answered."""
        statuses, self.queued_statuses = self.queued_statuses, []
        answers = []
        for entry in (reversed(statuses) if reverse else statuses):
            for _ in range(repeat):
                answers.append(await self._post_webhook(self.status_body(entry)))
            self.posted_statuses.append(entry)
        return answers

    async def _post_webhook(self, body: bytes) -> int:
        assert self._webhook is not None, "call fake.webhook_to(http, app_secret=...) first"
        signature = "sha256=" + hmac.new(self._app_secret.encode(), body, hashlib.sha256).hexdigest()
        answer = await self._webhook.post(self.webhook_path, content=body, headers={
            "content-type": "application/json", "X-Hub-Signature-256": signature})
        return answer.status_code

    def hold(self) -> None:
        """Requests wait (after being recorded) until `release()`: lets a test time out a client."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def of(self, endpoint: str, *, ok_only: bool = True) -> list[Request]:
        return [r for r in self.requests if r.endpoint == endpoint and (r.ok or not ok_only)]

    def sent_to(self, to: str) -> list[Request]:
        """Successful messages to `to`."""
        return [r for r in self.of("messages") if r.to == _digits(to)]

    def _recorded(self) -> str:
        return "\n".join(f"  {r.status} {r.method} {r.path} {json.dumps(r.json)[:300]}" for r in self.requests)

    async def wait_requests(self, endpoint: str, *, count: int = 1, ok_only: bool = False,
                            timeout: float = 5.0) -> list[Request]:
        """Wait until at least `count` requests to `endpoint` were recorded (answered or held)."""
        def found(fake: FakeGraphApi) -> list[Request] | None:
            requests = fake.of(endpoint, ok_only=ok_only)
            return requests if len(requests) >= count else None

        return await self.wait_for(found, timeout=timeout)

    # -- plumbing ------------------------------------------------------------------------------------

    async def _record(self, request: Request) -> None:
        self.requests.append(request)
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, http: web.Request) -> web.Response:
        endpoint = http.match_info["endpoint"]
        headers = {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in http.headers.items()}
        record = Request(method=http.method, path=http.path, endpoint=endpoint, headers=headers,
                         authorization_ok=http.headers.get("Authorization") == f"Bearer {self.token}")
        await self._read_body(http, record)
        await self._record(record)
        await self._released.wait()
        status, body, extra = self._answer(http, record)
        record.status, record.response = status, body
        late = self._late.get(record.to or "") if endpoint == "messages" and status == 200 else None
        if late is not None and record.json.get("type", "text") in late[1]:
            self.report(body["messages"][0]["id"], "failed", code=late[0], to=record.to)
            if late[2]:  # Meta's webhook overtakes its own answer
                await self.post_statuses()
        async with self._changed:  # type: ignore[union-attr]
            self._changed.notify_all()
        return web.json_response(body, status=status, headers=extra)

    @staticmethod
    async def _read_body(http: web.Request, record: Request) -> None:
        if http.content_type == "application/json":
            try:
                record.json = await http.json()
            except json.JSONDecodeError:
                record.json = None
        elif http.content_type == "multipart/form-data":
            reader = await http.multipart()
            async for part in reader:
                if part.filename is not None:
                    data = await part.read()
                    record.files[part.name or ""] = (part.filename, part.headers.get("Content-Type", ""),
                                                     bytes(data))
                else:
                    record.form[part.name or ""] = await part.text()

    def _answer(self, http: web.Request, record: Request) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not record.authorization_ok:
            return self._error(_Failure(190, 401, None, None))
        version, phone_number_id = http.match_info["version"], http.match_info["phone_number_id"]
        if version != self.version or phone_number_id != self.phone_number_id or http.method != "POST":
            return self._error(_Failure(100, 400, None, f"Unsupported {http.method} request to {http.path}"))
        if self._next:
            return self._error(self._next.popleft())
        if record.endpoint == "messages":
            return self._message(record)
        if record.endpoint == "media":
            return self._upload(record)
        return self._error(_Failure(100, 400, None, f"Unknown path component: {record.endpoint}"))

    def _message(self, record: Request) -> tuple[int, dict[str, Any], dict[str, str]]:
        body = record.json
        problem = _invalid_message(body, self.media)
        if problem:
            code, details = problem
            return self._error(_Failure(code, None, None, details))
        to = body["to"]
        planned = self._by_recipient.get(to)
        if planned is not None:
            failure, remaining = planned
            if remaining is None or remaining > 0:
                if remaining is not None:
                    self._by_recipient[to] = (failure, remaining - 1)
                return self._error(failure)
        # like Meta's: base64 of a binary blob that holds the number (so it is not greppable in logs)
        blob = f"\x18\x0c{to}\x15\x02\x00\x11\x18\x12{next(self._ids):018X}\x00"
        wamid = "wamid." + base64.b64encode(blob.encode()).decode()
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                     "messages": [{"id": wamid}]}, {}

    def _upload(self, record: Request) -> tuple[int, dict[str, Any], dict[str, str]]:
        if record.form.get("messaging_product") != "whatsapp":
            return self._error(_Failure(100, 400, None, "The parameter messaging_product is required."))
        if "file" not in record.files or not record.files["file"][2]:
            return self._error(_Failure(100, 400, None, "The parameter file is required."))
        if not record.form.get("type"):
            return self._error(_Failure(100, 400, None, "The parameter type is required."))
        media_id = f"media-{next(self._ids)}"
        filename, _, content = record.files["file"]
        self.media[media_id] = (filename, record.form["type"], content)
        return 200, {"id": media_id}, {}

    def _error(self, failure: _Failure) -> tuple[int, dict[str, Any], dict[str, str]]:
        status, message, details = ERRORS.get(failure.code, (400, f"(#{failure.code}) Error", "Error"))
        if failure.message:
            details = failure.message
        body = {"error": {"message": message, "type": "OAuthException", "code": failure.code,
                          "error_data": {"messaging_product": "whatsapp", "details": details},
                          "fbtrace_id": f"AbC{next(self._ids):06d}xYz"}}
        headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
        return failure.status or status, body, headers


def _wamid_number(wamid: str) -> str:
    try:
        found = re.search(r"\d{7,15}", base64.b64decode(wamid.removeprefix("wamid.")).decode(errors="replace"))
    except ValueError:
        found = None
    return found.group() if found else "0"


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def _header(value: float | str | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else f"{value:g}"


def _invalid_message(body: Any, media: dict[str, Any]) -> tuple[int, str] | None:
    """Why (code, details) the real API would refuse this message body, or None."""
    problem = _problem(body, media)
    if problem is None:
        return None
    return (131053, problem) if problem.startswith("Unknown media id") else (100, problem)


def _problem(body: Any, media: dict[str, Any]) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be JSON"
    if body.get("messaging_product") != "whatsapp":
        return "The parameter messaging_product is required."
    to = body.get("to")
    if not isinstance(to, str) or not re.fullmatch(r"[1-9]\d{6,14}", to):
        return f"Invalid parameter 'to': {to!r}"
    kind = body.get("type", "text")
    content = body.get(kind)
    if not isinstance(content, dict):
        return f"The parameter {kind} is required."
    if kind == "text":
        if not isinstance(content.get("body"), str) or not content["body"]:
            return "The parameter text['body'] is required."
    elif kind == "template":
        if not content.get("name") or not isinstance(content.get("language"), dict) \
                or not content["language"].get("code"):
            return "template['name'] and template['language']['code'] are required."
        for component in content.get("components", []):
            for parameter in component.get("parameters", []):
                if parameter.get("type") == "text" and (not parameter.get("text") or re.search(
                        r"[\n\t]| {5,}", parameter["text"])):
                    return "Param text cannot be empty or have new-line/tab characters or more than 4 spaces"
    elif kind == "interactive":
        buttons = content.get("action", {}).get("buttons", [])
        if content.get("type") != "button" or not 1 <= len(buttons) <= 3 or not content.get("body", {}).get("text"):
            return "interactive buttons: type button, body.text and 1-3 buttons are required"
        for button in buttons:
            reply = button.get("reply", {})
            if button.get("type") != "reply" or not reply.get("id") or not 1 <= len(reply.get("title", "")) <= 20:
                return "Button title length invalid or id missing"
    elif kind == "document":
        if content.get("id") not in media and not content.get("link"):
            return f"Unknown media id {content.get('id')!r}"
    else:
        return f"Unsupported message type {kind!r}"
    return None
