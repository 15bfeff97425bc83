"""`GitHubCodeHost`: the CodeHost port over GitHub's REST API (httpx).

Each step is safe to repeat, which is how a retry discovers what a first attempt (whose answer was lost) did:
creating a branch that exists answers 422 "Reference already exists"; writing a file needs its current blob
`sha` (409/422 on a stale one: read it again); a pull request for the branch is looked up before one is opened
(422 "A pull request already exists" when another attempt got there first).

Failures become `DeliveryError`: rate limits carry `retry_after` (primary: `x-ratelimit-remaining: 0` until
`x-ratelimit-reset`; secondary: 403/429 with `retry-after`); 401, 404 and other refusals are permanent. The token
is only ever in the Authorization header: no message or log line carries it.
"""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote

import httpx

from adapters.github.settings import GitHubSettings
from bot.ports import (
    ChangeSet,
    CodeHostCapabilities,
    DeliveryError,
    IssueDraft,
    IssueRef,
    Published,
)

TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class GitHubCodeHost:
    capabilities = CodeHostCapabilities(pull_requests=True, issues=True)

    def __init__(self, *, client: httpx.AsyncClient, owner: str, name: str, base_branch: str = "main",
                 now: Any = time.time) -> None:
        self._client = client
        self._repo = f"/repos/{owner}/{name}"
        self.repository = f"{owner}/{name}"
        self._owner = owner
        self._base = base_branch
        self._now = now

    @classmethod
    def from_settings(cls, settings: GitHubSettings, *, transport: httpx.AsyncBaseTransport | None = None
                      ) -> GitHubCodeHost:
        assert settings.token is not None and settings.repository is not None
        client = httpx.AsyncClient(
            base_url=settings.api_url.rstrip("/"), timeout=TIMEOUT, transport=transport,
            headers={"Authorization": f"Bearer {settings.token.get_secret_value()}",
                     "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                     "User-Agent": "warroom"})
        return cls(client=client, owner=settings.owner, name=settings.name, base_branch=settings.base_branch)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- the port -------------------------------------------------------------------------------------------

    async def publish(self, *, change: ChangeSet) -> Published:
        await self._ensure_branch(change.branch)
        for file in change.files:
            await self._put_file(change.branch, file.path, file.content, change.commit_message)
        existing = await self._open_pull(change.branch)
        if existing is not None:
            await self._call("PATCH", f"{self._repo}/pulls/{existing['number']}",
                             json={"title": change.title, "body": change.body})
            return Published(branch=change.branch, url=existing["html_url"], number=existing["number"])
        response = await self._call("POST", f"{self._repo}/pulls", allow=(422,), json={
            "title": change.title, "body": change.body, "head": change.branch, "base": self._base})
        if response.status_code == 422:  # another attempt opened it between our look-up and now
            existing = await self._open_pull(change.branch)
            if existing is None:
                raise DeliveryError(f"GitHub refused the pull request: {_message(response)}", permanent=True)
            return Published(branch=change.branch, url=existing["html_url"], number=existing["number"])
        data = response.json()
        return Published(branch=change.branch, url=data["html_url"], number=data["number"], created=True)

    async def open_issue(self, *, issue: IssueDraft, marker: str) -> IssueRef:
        tag = f"<!-- {marker} -->"
        # The issue list (not search, which lags behind writes) by the incident's label: an issue an earlier
        # attempt opened, whose answer was lost, is found here instead of being opened twice.
        listed = await self._call("GET", f"{self._repo}/issues", params={
            "labels": issue.labels[-1] if issue.labels else "", "state": "all", "per_page": 100})
        for found in listed.json():
            if tag in (found.get("body") or ""):
                return IssueRef(number=found["number"], url=found["html_url"])
        body: dict[str, Any] = {"title": issue.title, "body": f"{issue.body}\n\n{tag}", "labels": list(issue.labels)}
        if issue.assignee:
            body["assignees"] = [issue.assignee]
        response = await self._call("POST", f"{self._repo}/issues", allow=(422,), json=body)
        if response.status_code == 422 and issue.assignee:  # the owner is no GitHub login with access: unassigned
            body.pop("assignees")
            body["body"] = f"{issue.body}\n\n(Owner {issue.assignee} could not be assigned on GitHub.)\n\n{tag}"
            response = await self._call("POST", f"{self._repo}/issues", allow=(422,), json=body)
        if response.status_code == 422:
            raise DeliveryError(f"GitHub refused the issue: {_message(response)}", permanent=True)
        data = response.json()
        return IssueRef(number=data["number"], url=data["html_url"])

    async def set_issue_state(self, *, number: int, open: bool) -> None:
        await self._call("PATCH", f"{self._repo}/issues/{number}", json={"state": "open" if open else "closed"})

    # -- steps -------------------------------------------------------------------------------------------

    async def _ensure_branch(self, branch: str) -> None:
        base = await self._call("GET", f"{self._repo}/git/ref/heads/{quote(self._base)}", allow=(404,))
        if base.status_code == 404:
            await self._call("GET", self._repo)  # an unknown repository says so (404) rather than "no branch"
            raise DeliveryError(f"base branch {self._base!r} not found in {self.repository} "
                                "(WARROOM_GITHUB_BASE_BRANCH)", permanent=True)
        sha = base.json()["object"]["sha"]
        created = await self._call("POST", f"{self._repo}/git/refs", allow=(422,),
                                   json={"ref": f"refs/heads/{branch}", "sha": sha})
        if created.status_code == 422 and "already exists" not in _message(created).lower():
            raise DeliveryError(f"GitHub refused branch {branch!r}: {_message(created)}", permanent=True)

    async def _put_file(self, branch: str, path: str, content: str, message: str) -> None:
        encoded = base64.b64encode(content.encode("utf-8")).decode("ascii")
        for _ in range(3):  # a stale sha means someone (an earlier attempt) wrote it meanwhile: read it again
            current = await self._call("GET", f"{self._repo}/contents/{quote(path)}", allow=(404,),
                                       params={"ref": branch})
            body: dict[str, Any] = {"message": message, "content": encoded, "branch": branch}
            if current.status_code != 404:
                existing = current.json()
                if existing.get("content") is not None and \
                        base64.b64decode(existing["content"]).decode("utf-8", "replace") == content:
                    return  # already there: no empty commit
                body["sha"] = existing["sha"]
            response = await self._call("PUT", f"{self._repo}/contents/{quote(path)}", allow=(409, 422),
                                        json=body)
            if response.status_code not in (409, 422):
                return
        raise DeliveryError(f"{path} kept changing on {branch} while it was written; trying again later")

    async def _open_pull(self, branch: str) -> dict[str, Any] | None:
        response = await self._call("GET", f"{self._repo}/pulls",
                                    params={"head": f"{self._owner}:{branch}", "state": "open"})
        pulls = response.json()
        return pulls[0] if pulls else None

    async def _call(self, method: str, url: str, *, allow: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise DeliveryError("GitHub did not answer in time") from None
        except httpx.TransportError as problem:
            raise DeliveryError(f"GitHub could not be reached ({type(problem).__name__})") from None
        status = response.status_code
        if status < 300 or status in allow:
            return response
        if status == 401:
            raise DeliveryError("GitHub refused the token (401 Bad credentials): check WARROOM_GITHUB_TOKEN",
                                permanent=True)
        retry_after = self._retry_after(response)
        if retry_after is not None:
            raise DeliveryError(f"GitHub rate limit ({status}); retrying in {int(retry_after)} s",
                                retry_after=retry_after, code=status)
        if status == 404:
            raise DeliveryError(f"{self.repository} not found, or the token cannot see it (404): check "
                                "WARROOM_GITHUB_REPOSITORY and the token's repository access", permanent=True)
        if status == 403:
            raise DeliveryError(f"GitHub refused ({status}: {_message(response)}): the token needs contents, pull "
                                "requests and issues (read and write) on the repository", permanent=True)
        if status >= 500:
            raise DeliveryError(f"GitHub failed ({status}); retrying", code=status)
        raise DeliveryError(f"GitHub refused {method} ({status}: {_message(response)})", permanent=True, code=status)

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds to wait for a primary or secondary rate limit, None when the answer is not a rate limit."""
        headers = response.headers
        if response.status_code in (403, 429) and headers.get("retry-after", "").strip().isdigit():
            return float(headers["retry-after"])
        if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
            wait: float = max(1.0, float(headers["x-ratelimit-reset"]) - self._now())
            return wait
        if response.status_code == 429:
            return 60.0  # a secondary limit without a Retry-After: GitHub asks for at least a minute
        return None


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase
    message = str(data.get("message", "")) if isinstance(data, dict) else ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list):
        details = [str(e.get("message", "")) for e in errors if isinstance(e, dict) and e.get("message")]
        message = "; ".join([message, *details]).strip("; ")
    return message[:300] or response.reason_phrase
