"""LocalClone and `warroom postmortem INC-n --git PATH`: the post-mortem lands as one commit on the incident's
branch of a real git clone, the working tree and checked-out branch untouched; a bad repository, branch or path
outside the repository is one clear line and nothing changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adapters.git.clone import LocalClone
from bot.ports import ChangeSet, DeliveryError, FileChange
from tests.processes import child_env

BRANCH = "incident/inc-7-payments-down"
PATH = "docs/runbook/post-mortems/2026-11-24-payments-down.md"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "runbooks"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("runbooks\n")
    git(repo, "add", "README.md")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    (repo / "wip.txt").write_text("uncommitted work\n")  # someone's work in progress
    return repo


def change(content: str = "# Post-mortem\n", *files: FileChange, branch: str = BRANCH) -> ChangeSet:
    return ChangeSet(branch=branch, files=(FileChange(PATH, content), *files), commit_message="INC-7 post-mortem",
                     title="Post-mortem INC-7", body="body")


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref")


async def test_the_post_mortem_is_one_commit_on_the_incident_branch(repo: Path) -> None:
    published = await LocalClone(repo).publish(change=change(
        "# Post-mortem\n", FileChange("playbooks/scenarios/payments-down.yaml", "name: payments-down\n")))
    assert published.created and published.url is None
    assert git(repo, "show", f"{BRANCH}:{PATH}") == "# Post-mortem"
    assert git(repo, "show", f"{BRANCH}:README.md") == "runbooks"  # branched from HEAD
    assert git(repo, "rev-list", "--count", f"main..{BRANCH}") == "1"
    assert git(repo, "branch", "--show-current") == "main"  # nothing checked out, nothing staged
    assert git(repo, "status", "--porcelain") == "?? wip.txt"


async def test_publishing_again_commits_only_what_changed(repo: Path) -> None:
    clone = LocalClone(repo)
    await clone.publish(change=change("v1\n"))
    await clone.publish(change=change("v1\n"))
    assert git(repo, "rev-list", "--count", f"main..{BRANCH}") == "1"
    await clone.publish(change=change("v2\n"))
    assert git(repo, "rev-list", "--count", f"main..{BRANCH}") == "2"
    assert git(repo, "show", f"{BRANCH}:{PATH}") == "v2"


@pytest.mark.parametrize(("where", "bad", "says"), [
    ("path", "../outside.md", "outside the repository"),
    ("path", "/etc/passwd", "outside the repository"),
    ("branch", "bad..branch", "not a valid branch name"),
    ("branch", "-rf", "not a valid branch name"),
])
async def test_bad_branch_or_path_changes_nothing(repo: Path, where: str, bad: str, says: str) -> None:
    before = refs(repo)
    bad_change = change(branch=bad) if where == "branch" else ChangeSet(
        branch=BRANCH, files=(FileChange(PATH, "x"), FileChange(bad, "x")), commit_message="m", title="t", body="b")
    with pytest.raises(DeliveryError, match=says) as refused:
        await LocalClone(repo).publish(change=bad_change)
    assert refused.value.permanent and refs(repo) == before


async def test_a_symlink_out_of_the_clone_is_outside_it(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (repo / "docs").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DeliveryError, match="outside the repository"):
        await LocalClone(repo).publish(change=change())


async def test_not_a_repository_or_no_commits_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="not a git repository"):
        await LocalClone(tmp_path).publish(change=change())
    with pytest.raises(DeliveryError, match="not a folder"):
        await LocalClone(tmp_path / "missing").publish(change=change())
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(DeliveryError, match="no commits"):
        await LocalClone(empty).publish(change=change())


def _cli(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = child_env(WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}", WARROOM_LADDER="P1-P3",
                    WARROOM_TIMEZONE="UTC", WARROOM_POSTMORTEM_DIR=str(tmp_path / "pm"))
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], cwd=tmp_path, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_cli_commits_the_post_mortem_and_the_draft_playbook(tmp_path: Path, repo: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_text('/incident declare P2 "Thumbnails render blank"\n/incident resolve "purged the CDN"\n')
    assert _cli(tmp_path, "console", "--script", str(script)).returncode == 0
    result = _cli(tmp_path, "postmortem", "INC-1", "--git", str(repo))
    assert result.returncode == 0, result.stderr
    branch = "incident/inc-1-thumbnails-render-blank"
    assert result.stdout.startswith(f"INC-1 post-mortem is on branch {branch} in {repo}")
    files = git(repo, "ls-tree", "-r", "--name-only", branch).splitlines()
    assert "playbooks/scenarios/thumbnails-render-blank.yaml" in files
    assert any(f.startswith("docs/runbook/post-mortems/") and f.endswith("-thumbnails-render-blank.md")
               for f in files)
    before = refs(repo)
    bad = _cli(tmp_path, "postmortem", "INC-1", "--git", str(repo), "--branch", "no..pe")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "warroom: nothing committed: 'no..pe' is not a valid branch name"
    missing = _cli(tmp_path, "postmortem", "INC-1", "--git", str(tmp_path / "nope"))
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert refs(repo) == before
