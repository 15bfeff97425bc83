"""`POST /github/webhook`: the repository's `issues` events (closed, reopened), signed with X-Hub-Signature-256.

The signature (HMAC-SHA256 of the raw body with WARROOM_GITHUB_WEBHOOK_SECRET) is checked before anything is
parsed: bad or missing → 401, nothing changes. A `ping`, another event, another repository or an issue that is
no action item's → 202 and nothing changes. `X-GitHub-Delivery` makes a redelivery count once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger("warroom.github")

WEBHOOK_PATH = "/github/webhook"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class IssueStateChanged:
    issue: int
    open: bool
    actor: str
    delivery_id: str | None


OnIssue = Callable[..., Awaitable[bool]]  # IncidentService.issue_changed(issue=, open=, actor=, delivery_id=)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, body), header.strip())


def parse_issue_event(event: str, payload: object, *, repository: str,
                      delivery_id: str | None) -> IssueStateChanged | None:
    """The issue closed or reopened in `repository`, or None for anything else."""
    if event != "issues" or not isinstance(payload, dict) or payload.get("action") not in ("closed", "reopened"):
        return None
    repo = payload.get("repository")
    issue = payload.get("issue")
    if not isinstance(repo, dict) or str(repo.get("full_name", "")).lower() != repository.lower():
        return None
    if not isinstance(issue, dict) or not isinstance(issue.get("number"), int) or issue.get("pull_request"):
        return None
    sender = payload.get("sender")
    actor = str(sender.get("login", "someone")) if isinstance(sender, dict) else "someone"
    return IssueStateChanged(issue=issue["number"], open=payload["action"] == "reopened", actor=actor[:60],
                             delivery_id=f"github:{delivery_id}" if delivery_id else None)


def github_routes(*, secret: SecretStr | str, repository: str, on_issue: OnIssue,
                  path: str = WEBHOOK_PATH) -> list[Route]:
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not key:
        raise ValueError("the webhook secret is required to check GitHub signatures (WARROOM_GITHUB_WEBHOOK_SECRET)")

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return PlainTextResponse(f"payload too large (limit {MAX_BODY_BYTES} bytes)", status_code=413)
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return PlainTextResponse(f"payload too large (limit {MAX_BODY_BYTES} bytes)", status_code=413)
        if not verify_signature(key, raw, request.headers.get(SIGNATURE_HEADER)):
            log.warning("github: webhook refused, %s signature (%d bytes)",
                        "bad" if request.headers.get(SIGNATURE_HEADER) else "missing", len(raw))
            return PlainTextResponse(f"invalid signature: {SIGNATURE_HEADER} must be sha256= HMAC-SHA256 of the "
                                     "body with the webhook secret", status_code=401)
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return PlainTextResponse("bad payload: not JSON", status_code=400)
        change = parse_issue_event(request.headers.get("X-GitHub-Event", ""), payload, repository=repository,
                                   delivery_id=request.headers.get("X-GitHub-Delivery"))
        if change is None:
            return PlainTextResponse("ignored", status_code=202)
        applied = await on_issue(issue=change.issue, open=change.open, actor=change.actor,
                                 delivery_id=change.delivery_id)
        return PlainTextResponse("ok" if applied else "ignored: no action item has this issue",
                                 status_code=200 if applied else 202)

    return [Route(path, receive, methods=["POST"], name="github_webhook")]
