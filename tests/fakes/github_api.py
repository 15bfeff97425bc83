"""A local fake of GitHub's REST API (the part warroom uses): an aiohttp server on 127.0.0.1 (random port) that
the real httpx client reaches through WARROOM_GITHUB_API_URL. State lives in plain attributes a test reads:

    GET  /repos/{o}/{r}/git/ref/heads/{branch}     → {"ref", "object": {"sha"}}            404 unknown branch
    POST /repos/{o}/{r}/git/refs                   → 201                                   422 "Reference already
                                                                                           exists"
    GET  /repos/{o}/{r}/contents/{path}?ref=B      → {"path", "sha", "content" (base64)}   404
    PUT  /repos/{o}/{r}/contents/{path}            → 200/201 {"content": {"sha"}}          409 stale sha, 422 no sha
                                                                                           for an existing file
    GET  /repos/{o}/{r}/pulls?head=o:B&state=open  → [pull]
    POST /repos/{o}/{r}/pulls                      → 201 pull                              422 "A pull request already
                                                                                           exists", 422 unknown head
    PATCH /repos/{o}/{r}/pulls/{n}                 → 200 pull

A wrong bearer token answers 401 "Bad credentials"; another repository 404 "Not Found".

Programmable failures, for the next matching request(s):

    fake.fail("down")                 503, nothing done
    fake.fail("slow")                 no answer until the client times out, nothing done
    fake.fail("lost", method="POST", path="/pulls")    the write is done, then 500 (the answer is lost)
    fake.fail("drop", method="POST", path="/pulls")    the write is done, then the connection is dropped
    fake.fail("primary_limit")        403, x-ratelimit-remaining: 0, x-ratelimit-reset: now + 120
    fake.fail("secondary_limit")      403 with retry-after: 30
    fake.fail("forbidden")            403 "Resource not accessible by personal access token"
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.recording import Recording


@dataclass
class _Fault:
    kind: str
    method: str | None
    path: str | None
    times: int


@dataclass
class Pull:
    number: int
    head: str
    base: str
    title: str
    body: str
    state: str = "open"
    html_url: str = ""

    def json(self, owner: str) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "title": self.title, "body": self.body,
                "html_url": self.html_url, "head": {"ref": self.head, "label": f"{owner}:{self.head}"},
                "base": {"ref": self.base}}


@dataclass
class FakeGitHub(Recording):
    owner: str = "acme"
    name: str = "runbooks"
    token: str = "github_pat_test_0123456789"
    base: str = "main"
    refs: dict[str, str] = field(default_factory=dict)  # branch → commit sha
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (branch, path) → content
    commits: list[tuple[str, str, str]] = field(default_factory=list)  # (branch, path, message)
    pulls: list[Pull] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    collaborators: set[str] = field(default_factory=lambda: {"bob", "alice"})  # assignable logins
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    faults: list[_Fault] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self.refs.setdefault(self.base, _sha("base"))
        self._counter = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._changed = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def repository(self) -> str:
        return f"{self.owner}/{self.name}"

    def fail(self, kind: str, *, method: str | None = None, path: str | None = None, times: int = 1) -> None:
        self.faults.append(_Fault(kind, method, path, times))

    def file(self, branch: str, path: str) -> str | None:
        content = self.files.get((branch, path))
        return content.decode("utf-8") if content is not None else None

    def _recorded(self) -> str:
        return "\n".join(f"{m} {p} → {s}" for m, p, s in self.requests)

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> FakeGitHub:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- requests ------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        fault = self._take_fault(request.method, path)
        body = await request.json() if request.can_read_body else {}
        if fault is not None and fault.kind in ("down", "slow", "primary_limit", "secondary_limit", "forbidden"):
            return await self._refuse(request, fault.kind)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._answer(request, 401, {"message": "Bad credentials"})
        prefix = f"/repos/{self.owner}/{self.name}/"
        if path == prefix.rstrip("/") and request.method == "GET":
            return self._answer(request, 200, {"full_name": self.repository, "default_branch": self.base})
        if not path.startswith(prefix):
            return self._answer(request, 404, {"message": "Not Found"})
        status, data = self._route(request.method, path[len(prefix):], request.query, body)
        if fault is not None and fault.kind == "lost" and status < 300:
            return self._answer(request, 500, {"message": "Server Error"})
        if fault is not None and fault.kind == "drop" and status < 300:
            self.requests.append((request.method, path, 0))
            assert request.transport is not None
            request.transport.close()  # the write happened; the client never hears about it
            raise ConnectionResetError("dropped")
        return self._answer(request, status, data)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self.faults:
            if (fault.method is None or fault.method == method) and (fault.path is None or fault.path in path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    async def _refuse(self, request: web.Request, kind: str) -> web.StreamResponse:
        if kind == "slow":
            try:  # until the client gave up, or the fake closes
                await asyncio.wait_for(self._closing.wait(), 30)
            except TimeoutError:
                pass
        if kind == "down":
            return self._answer(request, 503, {"message": "Service Unavailable"})
        if kind == "primary_limit":
            return self._answer(request, 403, {"message": "API rate limit exceeded"}, headers={
                "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 120)})
        if kind == "secondary_limit":
            return self._answer(request, 403, {"message": "You have exceeded a secondary rate limit."},
                                headers={"retry-after": "30"})
        return self._answer(request, 403, {"message": "Resource not accessible by personal access token"})

    def _answer(self, request: web.Request, status: int, data: Any,
                headers: dict[str, str] | None = None) -> web.Response:
        self.requests.append((request.method, request.path, status))
        if self._changed is not None:
            asyncio.get_running_loop().create_task(self._notify())
        return web.json_response(data, status=status, headers=headers)

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def _route(self, method: str, path: str, query: Any, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and path.startswith("git/ref/heads/"):
            branch = path.removeprefix("git/ref/heads/")
            if branch not in self.refs:
                return 404, {"message": "Not Found"}
            return 200, {"ref": f"refs/heads/{branch}", "object": {"sha": self.refs[branch], "type": "commit"}}
        if method == "POST" and path == "git/refs":
            branch = str(body.get("ref", "")).removeprefix("refs/heads/")
            if branch in self.refs:
                return 422, {"message": "Reference already exists"}
            if body.get("sha") not in self.refs.values():
                return 422, {"message": "Object does not exist"}
            self.refs[branch] = body["sha"]
            return 201, {"ref": f"refs/heads/{branch}", "object": {"sha": body["sha"]}}
        if path == "issues" or path.startswith("issues/"):
            return self._issues(method, path, query, body)
        if path.startswith("contents/"):
            return self._contents(method, path.removeprefix("contents/"), query, body)
        if path == "pulls" and method == "GET":
            head = query.get("head", "")
            return 200, [p.json(self.owner) for p in self.pulls
                         if f"{self.owner}:{p.head}" == head and p.state == query.get("state", "open")]
        if path == "pulls" and method == "POST":
            head = body.get("head", "")
            if head not in self.refs:
                return 422, {"message": "Validation Failed", "errors": [{"field": "head", "code": "invalid"}]}
            if any(p.head == head and p.state == "open" for p in self.pulls):
                return 422, {"message": "Validation Failed",
                             "errors": [{"message": f"A pull request already exists for {self.owner}:{head}."}]}
            number = next(self._counter)
            pull = Pull(number, head, body.get("base", self.base), body.get("title", ""), body.get("body", ""),
                        html_url=f"https://github.test/{self.repository}/pull/{number}")
            self.pulls.append(pull)
            return 201, pull.json(self.owner)
        if path.startswith("pulls/") and method == "PATCH":
            pull = next((p for p in self.pulls if str(p.number) == path.removeprefix("pulls/")), None)
            if pull is None:
                return 404, {"message": "Not Found"}
            pull.title, pull.body = body.get("title", pull.title), body.get("body", pull.body)
            return 200, pull.json(self.owner)
        return 404, {"message": "Not Found"}

    def _issues(self, method: str, path: str, query: Any, body: dict[str, Any]) -> tuple[int, Any]:
        if path == "issues" and method == "GET":
            wanted = {label for label in query.get("labels", "").split(",") if label}
            state = query.get("state", "open")
            return 200, [i for i in self.issues if wanted <= {label["name"] for label in i["labels"]}
                         and (state == "all" or i["state"] == state)]
        if path == "issues" and method == "POST":
            if not body.get("title"):
                return 422, {"message": "Validation Failed", "errors": [{"field": "title", "code": "missing"}]}
            if any(login not in self.collaborators for login in body.get("assignees", [])):
                return 422, {"message": "Validation Failed",
                             "errors": [{"field": "assignees", "code": "invalid", "value": body["assignees"]}]}
            number = next(self._counter)
            issue = {"number": number, "title": body["title"], "body": body.get("body", ""), "state": "open",
                     "labels": [{"name": name} for name in body.get("labels", [])],
                     "assignees": [{"login": login} for login in body.get("assignees", [])],
                     "html_url": f"https://github.test/{self.repository}/issues/{number}"}
            self.issues.append(issue)
            return 201, issue
        if method == "PATCH":
            issue = next((i for i in self.issues if str(i["number"]) == path.removeprefix("issues/")), None)
            if issue is None:
                return 404, {"message": "Not Found"}
            issue["state"] = body.get("state", issue["state"])
            return 200, issue
        return 404, {"message": "Not Found"}

    def _contents(self, method: str, path: str, query: Any, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET":
            branch = query.get("ref", self.base)
            content = self.files.get((branch, path))
            if content is None:
                return 404, {"message": "Not Found"}
            encoded = base64.encodebytes(content).decode("ascii")  # GitHub wraps base64 at 60 columns
            return 200, {"path": path, "sha": _blob_sha(content), "content": encoded, "encoding": "base64"}
        if method == "PUT":
            branch = body.get("branch", self.base)
            if branch not in self.refs:
                return 404, {"message": f"Branch {branch} not found"}
            current = self.files.get((branch, path))
            if current is not None and "sha" not in body:
                return 422, {"message": "Invalid request.\n\n\"sha\" wasn't supplied."}
            if current is not None and body["sha"] != _blob_sha(current):
                return 409, {"message": f"{path} does not match {body['sha']}"}
            content = base64.b64decode(body["content"])
            self.files[(branch, path)] = content
            self.commits.append((branch, path, body.get("message", "")))
            self.refs[branch] = _sha(f"{branch}{len(self.commits)}")
            return (201 if current is None else 200), {"content": {"path": path, "sha": _blob_sha(content)}}
        return 404, {"message": "Not Found"}


def _sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


def _blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
