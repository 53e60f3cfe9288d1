"""The sync of a clone the user has worked in, in the local sandbox.

Each test clones with a first start, puts the clone in a state a user or
upstream may leave it in, changes upstream, and starts again. The sync must
fetch, move the branch only by a fast-forward that loses nothing, and
otherwise leave the branch, the work tree and every commit as they were,
with the reason in the sync log.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import pytest
from fault_support import (
    GitRecorder,
    failure_lines,
    render,
    run_git,
    run_user,
    start,
    sync_log,
)

from bootstrap.sandbox.codecommit import COMMIT_IDENTITY
from bootstrap.sandbox.runner import SandboxHome, run_in_home
from bootstrap.sandbox.stack import LocalStack

_names = itertools.count(1)
IDENTITY = ["-c", "user.name=Ada", "-c", "user.email=ada@example.com"]
# git allows remote helpers such as git-remote-codecommit in submodule
# commands only when protocol.<name>.allow is "always".
ALLOW_CODECOMMIT = ["-c", "protocol.codecommit.allow=always"]


class Upstream:
    """A work tree of a repository of the local endpoint, pushed over file://.

    Its commits and pushes are those of another user of the repository.
    """

    def __init__(self, stack: LocalStack, repository: str, folder: Path) -> None:
        self.path = folder / f"upstream-{repository}"
        self.environment = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(folder),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            **COMMIT_IDENTITY,
        }
        bare = stack.codecommit.path(repository)
        subprocess.run(
            ["git", "clone", "--quiet", f"file://{bare}", str(self.path)],
            env=self.environment,
            check=True,
            capture_output=True,
        )

    def git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=self.environment,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def commit(self, files: dict[str, str], message: str) -> str:
        """Commit files on the current branch, push it, and return the commit."""
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            self.git("add", "--force", "--", name)
        self.git("commit", "--quiet", "-m", message)
        self.git("push", "--quiet", "origin", "HEAD")
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repository(local_stack: LocalStack, repo_role: str) -> str:
    name = f"state-{next(_names)}"
    local_stack.codecommit.create_repository(name, allowed_role_arns=[repo_role])
    local_stack.codecommit.commit(
        name,
        {"README.md": f"# {name}\n", ".gitignore": "*.ckpt\noutputs/\n"},
        "Initial commit",
    )
    return name


@pytest.fixture
def upstream(local_stack: LocalStack, repository: str, tmp_path: Path) -> Upstream:
    return Upstream(local_stack, repository, tmp_path)


@pytest.fixture
def script(tmp_path: Path, repository: str, repo_role: str) -> Path:
    return render(tmp_path, repository, repo_role)


@pytest.fixture
def recorder(local_stack: LocalStack) -> GitRecorder:
    return GitRecorder.create(local_stack)


@pytest.fixture
def clone(
    sandbox_home: SandboxHome, script: Path, recorder: GitRecorder, repository: str
) -> Path:
    """The repository cloned by a first start."""
    result = start(script, sandbox_home, env={"PATH": recorder.path()})
    assert result.returncode == 0
    folder = sandbox_home.path / repository
    assert (folder / "README.md").exists(), sync_log(sandbox_home)
    return folder


def in_clone(home: SandboxHome, folder: Path, *args: str, check: bool = True) -> str:
    return run_git(home, "-C", str(folder), *args, check=check)


def user_commit(
    home: SandboxHome, folder: Path, files: dict[str, str], message: str
) -> str:
    """Commit files in the clone as the user; return the commit."""
    relative = folder.relative_to(home.path)
    for name, content in files.items():
        home.write_file(f"{relative}/{name}", content)
        in_clone(home, folder, "add", "--", name)
    in_clone(home, folder, *IDENTITY, "commit", "--quiet", "-m", message)
    return in_clone(home, folder, "rev-parse", "HEAD")


def sync_again(
    home: SandboxHome, script: Path, recorder: GitRecorder
) -> subprocess.CompletedProcess[str]:
    result = start(script, home, env={"PATH": recorder.path()})
    assert result.returncode == 0, result.stdout + result.stderr
    assert recorder.network_calls_in(home.session_ids) == []
    return result


def assert_kept(home: SandboxHome, folder: Path, commit: str) -> None:
    """The commit is still reachable from HEAD or from a local branch."""
    on_head = run_in_home(
        home,
        ["git", "-C", str(folder), "merge-base", "--is-ancestor", commit, "HEAD"],
        user=run_user(),
    )
    branches = in_clone(
        home, folder, "for-each-ref", f"--contains={commit}", "refs/heads"
    )
    assert on_head.returncode == 0 or branches, f"commit {commit} is unreachable"


def assert_fetched(
    home: SandboxHome, folder: Path, stack: LocalStack, repository: str
) -> None:
    fetched = in_clone(home, folder, "rev-parse", "refs/remotes/origin/main")
    assert fetched == stack.codecommit.head(repository)


def last_outcome(home: SandboxHome, repository: str) -> str:
    lines = [
        line
        for line in sync_log(home).splitlines()
        if f"studio-bootstrap: {repository}: " in line and ": attempt " not in line
    ]
    assert lines, sync_log(home)
    return lines[-1]


# --- branch and HEAD ---------------------------------------------------------------


def test_detached_head_left_alone(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    upstream: Upstream,
    script: Path,
    recorder: GitRecorder,
    clone: Path,
) -> None:
    in_clone(sandbox_home, clone, "checkout", "--quiet", "--detach")
    detached = user_commit(sandbox_home, clone, {"probe.py": "x = 1\n"}, "Probe")
    upstream.commit({"NEWS.md": "news\n"}, "News")

    sync_again(sandbox_home, script, recorder)
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == detached
    assert (
        in_clone(sandbox_home, clone, "symbolic-ref", "-q", "HEAD", check=False) == ""
    )
    assert_fetched(sandbox_home, clone, local_stack, repository)
    assert "not fast-forwarded: HEAD is detached" in last_outcome(
        sandbox_home, repository
    )


def test_diverged_branch_keeps_both(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    upstream: Upstream,
    script: Path,
    recorder: GitRecorder,
    clone: Path,
) -> None:
    mine = user_commit(sandbox_home, clone, {"mine.md": "mine\n"}, "Mine")
    theirs = upstream.commit({"theirs.md": "theirs\n"}, "Theirs")

    sync_again(sandbox_home, script, recorder)
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == mine
    assert_kept(sandbox_home, clone, mine)
    assert in_clone(sandbox_home, clone, "rev-parse", "origin/main") == theirs
    assert "main has diverged from upstream" in last_outcome(sandbox_home, repository)


def test_local_commits_ahead_kept(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    script: Path,
    recorder: GitRecorder,
    clone: Path,
) -> None:
    mine = user_commit(sandbox_home, clone, {"mine.md": "mine\n"}, "Mine")
    sync_again(sandbox_home, script, recorder)
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == mine
    assert "local commits ahead of upstream" in last_outcome(sandbox_home, repository)


@pytest.mark.parametrize("how", ["rebase", "merge"])
def test_operation_in_progress_left_alone(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    upstream: Upstream,
    script: Path,
    recorder: GitRecorder,
    clone: Path,
    how: str,
) -> None:
    """A pull that stopped on a conflict: the sync fetches and touches nothing."""
    mine = user_commit(sandbox_home, clone, {"README.md": "mine\n"}, "Mine")
    upstream.commit({"README.md": "theirs\n"}, "Theirs")
    option = "--rebase" if how == "rebase" else "--no-rebase"
    pulled = run_git(
        sandbox_home,
        "-C",
        str(clone),
        *IDENTITY,
        "pull",
        "--quiet",
        option,
        check=False,
    )
    git_dir = clone / ".git"
    marker = git_dir / ("rebase-merge" if how == "rebase" else "MERGE_HEAD")
    assert marker.exists(), f"the pull did not stop on a conflict: {pulled}"
    head = in_clone(sandbox_home, clone, "rev-parse", "HEAD")
    conflicted = (clone / "README.md").read_text()
    upstream.commit({"LATER.md": "later\n"}, "Later")

    sync_again(sandbox_home, script, recorder)
    assert marker.exists()
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == head
    assert (clone / "README.md").read_text() == conflicted
    assert_kept(sandbox_home, clone, mine)
    assert_fetched(sandbox_home, clone, local_stack, repository)
    assert "not fast-forwarded: a merge, rebase" in last_outcome(
        sandbox_home, repository
    )


# --- files in the work tree --------------------------------------------------------


def test_untracked_and_ignored_files_survive_fast_forward(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    upstream: Upstream,
    script: Path,
    recorder: GitRecorder,
    clone: Path,
) -> None:
    """Upstream adds files elsewhere: the branch moves and every user file stays."""
    relative = clone.relative_to(sandbox_home.path)
    sandbox_home.write_file(f"{relative}/scratch.py", "print('draft')\n")
    sandbox_home.write_file(f"{relative}/model.ckpt", "weights\n")
    sandbox_home.write_file(f"{relative}/outputs/run1.txt", "0.93\n")
    new = upstream.commit({"src/train.py": "pass\n", "outputs/README": "x\n"}, "Add")

    sync_again(sandbox_home, script, recorder)
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == new
    assert (clone / "scratch.py").read_text() == "print('draft')\n"
    assert (clone / "model.ckpt").read_text() == "weights\n"
    assert (clone / "outputs" / "run1.txt").read_text() == "0.93\n"
    assert "fast-forwarded main" in last_outcome(sandbox_home, repository)


# Paths upstream adds on top of what the user has, as (user file, upstream file).
IN_THE_WAY = {
    "untracked file": ("notes.txt", "notes.txt"),
    "ignored file": ("model.ckpt", "model.ckpt"),
    "ignored folder": ("outputs/run1.txt", "outputs"),
    "ignored file as a folder": ("model.ckpt", "model.ckpt/config.json"),
}


@pytest.mark.parametrize("case", list(IN_THE_WAY), ids=list(IN_THE_WAY))
def test_file_in_the_way_blocks_fast_forward(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    upstream: Upstream,
    script: Path,
    recorder: GitRecorder,
    clone: Path,
    case: str,
) -> None:
    """Upstream adds a path where the user has an untracked or ignored file.

    git's fast-forward refuses to overwrite an untracked file but replaces an
    ignored one without a word, so the sync must check before it merges.
    """
    mine, theirs = IN_THE_WAY[case]
    relative = clone.relative_to(sandbox_home.path)
    sandbox_home.write_file(f"{relative}/{mine}", "precious\n")
    head = in_clone(sandbox_home, clone, "rev-parse", "HEAD")
    upstream.commit({theirs: "from upstream\n"}, "Add a file where the user has one")

    sync_again(sandbox_home, script, recorder)
    assert (clone / mine).read_text() == "precious\n"
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == head
    assert_fetched(sandbox_home, clone, local_stack, repository)
    outcome = last_outcome(sandbox_home, repository)
    assert "not fast-forwarded: upstream of main adds " in outcome, outcome
    assert theirs.split("/")[0] in outcome


def test_uncommitted_changes_block_fast_forward(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    upstream: Upstream,
    script: Path,
    recorder: GitRecorder,
    clone: Path,
) -> None:
    relative = clone.relative_to(sandbox_home.path)
    sandbox_home.write_file(f"{relative}/README.md", "edited\n")
    sandbox_home.write_file(f"{relative}/staged.md", "staged\n")
    in_clone(sandbox_home, clone, "add", "staged.md")
    head = in_clone(sandbox_home, clone, "rev-parse", "HEAD")
    upstream.commit({"NEWS.md": "news\n"}, "News")

    sync_again(sandbox_home, script, recorder)
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == head
    assert (clone / "README.md").read_text() == "edited\n"
    assert (
        in_clone(sandbox_home, clone, "diff", "--cached", "--name-only") == "staged.md"
    )
    assert "uncommitted changes" in last_outcome(sandbox_home, repository)


# --- upstream rewrites ---------------------------------------------------------------


def test_branch_deleted_upstream(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    upstream: Upstream,
    script: Path,
    recorder: GitRecorder,
    clone: Path,
) -> None:
    upstream.git("push", "--quiet", "origin", "HEAD:refs/heads/feature")
    in_clone(sandbox_home, clone, "fetch", "--quiet")
    in_clone(sandbox_home, clone, "checkout", "--quiet", "feature")
    mine = user_commit(sandbox_home, clone, {"feature.md": "wip\n"}, "Feature work")
    upstream.git("push", "--quiet", "origin", ":refs/heads/feature")
    upstream.commit({"NEWS.md": "news\n"}, "News")

    sync_again(sandbox_home, script, recorder)
    assert in_clone(sandbox_home, clone, "symbolic-ref", "--short", "HEAD") == "feature"
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == mine
    assert_fetched(sandbox_home, clone, local_stack, repository)
    assert (
        in_clone(sandbox_home, clone, "branch", "--list", "--remotes", "origin/feature")
        == ""
    )
    assert "feature has no upstream branch" in last_outcome(sandbox_home, repository)


@pytest.mark.parametrize("rewrite", ["new history", "reset back"])
def test_upstream_force_push(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    upstream: Upstream,
    script: Path,
    recorder: GitRecorder,
    clone: Path,
    rewrite: str,
) -> None:
    """Upstream rewrites main under a clean clone: the clone keeps its commits."""
    kept = upstream.commit({"step.md": "1\n"}, "Step 1")
    in_clone(sandbox_home, clone, "pull", "--quiet", "--ff-only")
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == kept
    if rewrite == "new history":
        upstream.git("checkout", "--quiet", "--orphan", "rewritten")
        upstream.commit({"README.md": "rewritten\n"}, "Rewritten")
    else:
        upstream.git("reset", "--quiet", "--hard", "HEAD~1")
    upstream.git("push", "--quiet", "--force", "origin", "HEAD:refs/heads/main")

    sync_again(sandbox_home, script, recorder)
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == kept
    assert_kept(sandbox_home, clone, kept)
    assert_fetched(sandbox_home, clone, local_stack, repository)
    outcome = last_outcome(sandbox_home, repository)
    assert "rewritten upstream (force-pushed)" in outcome, outcome


# --- other clone shapes ------------------------------------------------------------


def test_shallow_clone_fast_forwards(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    upstream: Upstream,
    script: Path,
    recorder: GitRecorder,
    clone: Path,
) -> None:
    upstream.commit({"a.md": "a\n"}, "A")
    url = in_clone(sandbox_home, clone, "config", "--get", "remote.origin.url")
    subprocess.run(["rm", "-rf", str(clone)], check=True)
    run_git(sandbox_home, "clone", "--quiet", "--depth", "1", url, repository)
    assert (clone / ".git" / "shallow").exists()
    new = upstream.commit({"b.md": "b\n"}, "B")

    sync_again(sandbox_home, script, recorder)
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == new
    assert (clone / ".git" / "shallow").exists()
    assert "fast-forwarded main" in last_outcome(sandbox_home, repository)


def test_submodule_changes_survive(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    upstream: Upstream,
    script: Path,
    recorder: GitRecorder,
    tmp_path: Path,
) -> None:
    library = f"{repository}-lib"
    local_stack.codecommit.create_repository(library, allowed_role_arns=[repo_role])
    library_head = local_stack.codecommit.commit(
        library, {"code.py": "VALUE = 1\n"}, "Library"
    )
    upstream.commit(
        {
            ".gitmodules": f'[submodule "lib"]\n\tpath = lib\n'
            f"\turl = codecommit::eu-west-1://repo-account@{library}\n"
        },
        "Declare the submodule",
    )
    upstream.git("update-index", "--add", "--cacheinfo", f"160000,{library_head},lib")
    upstream.git("commit", "--quiet", "-m", "Add the submodule")
    upstream.git("push", "--quiet", "origin", "HEAD")

    result = start(script, sandbox_home, env={"PATH": recorder.path()})
    assert result.returncode == 0
    clone = sandbox_home.path / repository
    run_git(
        sandbox_home,
        "-C",
        str(clone),
        *ALLOW_CODECOMMIT,
        "submodule",
        "--quiet",
        "update",
        "--init",
    )
    sandbox_home.write_file(f"{repository}/lib/code.py", "VALUE = 2  # mine\n")
    head = in_clone(sandbox_home, clone, "rev-parse", "HEAD")
    upstream.commit({"NEWS.md": "news\n"}, "News")

    sync_again(sandbox_home, script, recorder)
    assert (clone / "lib" / "code.py").read_text() == "VALUE = 2  # mine\n"
    assert in_clone(sandbox_home, clone, "rev-parse", "HEAD") == head
    assert_fetched(sandbox_home, clone, local_stack, repository)
    assert "uncommitted changes" in last_outcome(sandbox_home, repository)
    assert failure_lines(sandbox_home, repository) == []
