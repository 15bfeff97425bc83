"""`LocalClone`: the CodeHost port on a local git clone, through the git CLI (asyncio subprocesses).

The commit is made with git's plumbing on a private index (hash-object, update-index, write-tree, commit-tree,
update-ref), so the clone's working tree, its index and the branch checked out are never touched: the team's
uncommitted work is safe, and the branch appears with one new commit. Everything is checked before anything is
written (a git repository with a commit, a valid branch name, paths inside the repository); the branch moves
last, in one compare-and-swap `update-ref`, so a failure leaves the clone as it was. Publishing the same files
again makes no commit.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path, PurePosixPath

from bot.ports import ChangeSet, CodeHostCapabilities, DeliveryError, Published

_ZERO = "0" * 40


class LocalClone:
    capabilities = CodeHostCapabilities(pull_requests=False, issues=False)

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)

    async def publish(self, *, change: ChangeSet) -> Published:
        top = await self._toplevel()
        branch = change.branch
        if (await _git(top, "check-ref-format", "--branch", branch, check=False))[0] != 0:
            raise DeliveryError(f"{branch!r} is not a valid branch name", permanent=True)
        for file in change.files:
            _inside(top, file.path)
        code, tip, _ = await _git(top, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}",
                                  check=False)
        existing = tip.strip() if code == 0 else ""
        parent = existing
        if not parent:
            code, head, _ = await _git(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
            if code != 0:
                raise DeliveryError(f"{top} has no commits yet to branch from", permanent=True)
            parent = head.strip()
        with tempfile.TemporaryDirectory(prefix="warroom-git-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            await _git(top, "read-tree", parent, env=env)
            for file in change.files:
                blob = (await _git(top, "hash-object", "-w", "--stdin", data=file.content.encode("utf-8")))[1]
                await _git(top, "update-index", "--add", "--cacheinfo", f"100644,{blob.strip()},{file.path}", env=env)
            tree = (await _git(top, "write-tree", env=env))[1].strip()
        if existing and tree == (await _git(top, "rev-parse", f"{existing}^{{tree}}"))[1].strip():
            return Published(branch=branch)  # the branch has exactly these files already
        identity = {"GIT_AUTHOR_NAME": "warroom", "GIT_AUTHOR_EMAIL": "warroom@localhost",
                    "GIT_COMMITTER_NAME": "warroom", "GIT_COMMITTER_EMAIL": "warroom@localhost"}
        commit = (await _git(top, "commit-tree", tree, "-p", parent, "-m", f"{change.commit_message}\n\n{change.body}",
                             env=identity))[1].strip()
        # Compare-and-swap: the branch moves only if nobody moved it meanwhile (or it still does not exist).
        await _git(top, "update-ref", f"refs/heads/{branch}", commit, existing or _ZERO)
        return Published(branch=branch, number=None, url=None, created=not existing)

    async def _toplevel(self) -> Path:
        if not self._path.is_dir():
            raise DeliveryError(f"{self._path} is not a folder", permanent=True)
        code, out, _ = await _git(self._path, "rev-parse", "--show-toplevel", check=False)
        if code != 0:
            raise DeliveryError(f"{self._path} is not a git repository (git init, or clone one)", permanent=True)
        return Path(out.strip())


def _inside(top: Path, path: str) -> None:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts \
            or not (top / path).resolve().is_relative_to(top.resolve()):  # a symlink out of the clone, too
        raise DeliveryError(f"{path!r} is outside the repository {top}", permanent=True)


async def _git(cwd: Path, *args: str, env: dict[str, str] | None = None, data: bytes | None = None,
               check: bool = True) -> tuple[int, str, str]:
    try:
        process = await asyncio.create_subprocess_exec(
            "git", *args, cwd=cwd, env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
            stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        raise DeliveryError("git is not installed (no `git` on PATH)", permanent=True) from None
    out, err = await process.communicate(data)
    code = process.returncode or 0
    if check and code != 0:
        first = (err.decode("utf-8", "replace").strip().splitlines() or ["failed"])[0]
        raise DeliveryError(f"git {args[0]}: {first}", permanent=True)
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
