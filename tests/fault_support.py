"""Helpers of the fault and clone-state tests: render, start, and check a home.

Every check here reads what a start left behind: the exit status, the user's
files, the repository folder, the sync log and the status file.
"""

from __future__ import annotations

import itertools
import re
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from bootstrap.config import parse_config
from bootstrap.render import pack, render_all
from bootstrap.sandbox.image import SYSTEM_PATH, studio_image
from bootstrap.sandbox.runner import (
    CAN_RUN_AS_STUDIO_USER,
    SandboxHome,
    run_in_home,
    run_lifecycle,
    wait_idle,
)
from bootstrap.sandbox.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bootstrap.example.toml"
PROFILE = "repo-account"
APP_TYPE = "JupyterLab"
SYNC_SECONDS = 90
BEGIN = "# >>> studio-bootstrap managed block: do not edit >>>"
END = "# <<< studio-bootstrap managed block <<<"
SYSTEM_GIT = shutil.which("git", path=SYSTEM_PATH) or "/usr/bin/git"

# pip never reaches an index in these tests, even if a test leaves it on PATH.
NO_INDEX = {"PIP_NO_INDEX": "1", "PIP_INDEX_URL": "http://127.0.0.1:9/simple"}

# Files a user has in the home before the start. Config files gain a managed
# part, and every other file must come out byte for byte.
USER_FILES = {
    ".aws/config": "[default]\nregion = us-east-1\n\n"
    "[profile mine]\nregion = eu-west-2\n",
    ".gitconfig": "[user]\n\tname = Ada\n\temail = ada@example.com\n"
    "[credential]\n\thelper = cache --timeout=3600\n",
    ".bashrc": "export EDITOR=vim\nalias ll='ls -l'\n",
    ".ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n",
    "notebooks/analysis.ipynb": '{"cells": [], "nbformat": 4}\n',
    "data/results.csv": "run,score\n1,0.93\n",
}

_numbers = itertools.count(1)


def run_user() -> str:
    """Return the user JupyterLab runs as, or root when the runner cannot switch."""
    return "sagemaker-user" if CAN_RUN_AS_STUDIO_USER else "root"


# --- rendering -------------------------------------------------------------------


def render(
    folder: Path,
    repository: str,
    role: str,
    *,
    limits: Mapping[str, int] | None = None,
    **changes: Any,
) -> Path:
    """Render the JupyterLab script of the example config for one repository.

    ``limits`` replaces sync constants (``SB_CLONE_TIMEOUT`` and the like) in
    the source before it is packed as the product packs it, for the tests
    that need a timeout to expire within seconds.
    """
    with EXAMPLE.open("rb") as handle:
        data = tomllib.load(handle)
    data["repositories"][0].update(name=repository, path=repository, role=role)
    data["repositories"][0].update(changes)
    scripts = render_all(parse_config(data))
    script = next(s for s in scripts if s.app_type == APP_TYPE)
    text = script.text
    if limits:
        source = script.source
        for name, value in limits.items():
            source, count = re.subn(
                rf"^{name}=\d+$", f"{name}={value}", source, flags=re.MULTILINE
            )
            assert count == 1, f"{name} not found in the rendered source"
        text = pack(source, strict=False)
    path = folder / f"{next(_numbers)}-{script.filename}"
    path.write_text(text)
    return path


# --- git calls -------------------------------------------------------------------


@dataclass(frozen=True)
class GitCall:
    """One git command run during a start: its session id and arguments."""

    session_id: int
    arguments: str


@dataclass(frozen=True)
class GitRecorder:
    """A folder with a ``git`` that records each call, then runs the real git."""

    folder: Path
    log: Path

    @classmethod
    def create(cls, stack: LocalStack) -> GitRecorder:
        folder = stack.root / f"git-recorder-{next(_numbers)}"
        folder.mkdir()
        folder.chmod(0o755)
        log = folder / "calls"
        log.touch()
        log.chmod(0o666)
        wrapper = folder / "git"
        # Field 6 of /proc/PID/stat is the session id. The command name in
        # field 2 is "(git)", which has no space, so cut counts right.
        wrapper.write_text(
            "#!/bin/sh\n"
            f"sid=$(cut -d ' ' -f 6 /proc/$$/stat)\n"
            f'printf \'%s %s\\n\' "$sid" "$*" >>{log}\n'
            f'exec {SYSTEM_GIT} "$@"\n'
        )
        wrapper.chmod(0o755)
        return cls(folder, log)

    def calls(self) -> list[GitCall]:
        found = []
        for line in self.log.read_text().splitlines():
            session, _, arguments = line.partition(" ")
            found.append(GitCall(int(session), arguments))
        return found

    def network_calls_in(self, session_ids: set[int]) -> list[str]:
        """Return the clone and fetch calls made in the given sessions."""
        return [
            call.arguments
            for call in self.calls()
            if call.session_id in session_ids
            and re.search(r"(^| )(clone|fetch|remote-https?)( |$)", call.arguments)
        ]

    def path(self, base: str | None = None) -> str:
        return f"{self.folder}:{base or studio_image().path}"


# --- starting --------------------------------------------------------------------


def start(
    script: Path,
    home: SandboxHome,
    *,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    wait: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the script as an app start does, then let its sync finish."""
    result = run_lifecycle(
        script,
        home,
        app_type=APP_TYPE,
        user=user or run_user(),
        env={**NO_INDEX, **(env or {})},
    )
    if wait:
        wait_idle(home, timeout=SYNC_SECONDS)
    return result


def run_git(home: SandboxHome, *args: str, check: bool = True) -> str:
    """Run git in the home as the user, with the studio environment."""
    result = run_in_home(home, ["git", *args], user=run_user(), env=NO_INDEX)
    if check:
        assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def free_loopback_port() -> int:
    """Return a port on 127.0.0.1 where nothing listens once this returns."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tools_without(
    stack: LocalStack, excluded: Sequence[str], kept: Sequence[str] = ()
) -> str:
    """Return a PATH with every command of the studio PATH but those excluded.

    ``excluded`` contains command names. A name ending in ``*`` excludes every
    command that starts with the rest, except the names in ``kept``.
    """
    folder = stack.root / f"tools-{next(_numbers)}"
    folder.mkdir()
    folder.chmod(0o755)
    for directory in studio_image().path.split(":"):
        source = Path(directory)
        if not source.is_dir():
            continue
        for entry in sorted(source.iterdir()):
            name = entry.name
            if _matches(name, excluded) and name not in kept:
                continue
            if (folder / name).exists():
                continue
            if entry.is_file() and entry.stat().st_mode & 0o111:
                (folder / name).symlink_to(entry.resolve())
    return str(folder)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("*") and name.startswith(pattern[:-1]):
            return True
        if name == pattern:
            return True
    return False


# --- the home --------------------------------------------------------------------


def seed_user_files(home: SandboxHome) -> None:
    for relative, content in USER_FILES.items():
        mode = 0o600 if relative.startswith(".ssh/") else 0o644
        home.write_file(relative, content, mode)


def without_block(text: str) -> str:
    """Return a config file's text without the managed block."""
    kept, inside = [], False
    for line in text.splitlines(keepends=True):
        plain = line.rstrip("\r\n")
        if plain == BEGIN:
            inside = True
        elif plain == END:
            inside = False
        elif not inside:
            kept.append(line)
    return "".join(kept)


def assert_user_files_intact(home: SandboxHome) -> None:
    for relative, content in USER_FILES.items():
        path = home.path / relative
        assert path.is_file(), f"{relative} is gone"
        text = path.read_text()
        if relative == ".aws/config":
            assert without_block(text) == content, relative
        elif relative in (".gitconfig", ".bashrc"):
            assert text.startswith(content), relative
        else:
            assert text == content, relative


def leftovers(home: SandboxHome) -> list[str]:
    """Return temporary clone folders and temporary files left in the home."""
    found = []
    for path in home.path.rglob("*"):
        name = path.name
        temporary_clone = "studio-bootstrap-clone" in name
        temporary_file = ".studio-bootstrap." in name or (
            ".tmp." in name and ".studio-bootstrap" in path.parts
        )
        if temporary_clone or temporary_file:
            found.append(str(path.relative_to(home.path)))
    return found


def clone_state(home: SandboxHome, repository: str) -> str | None:
    """Return the HEAD of a complete, clean clone, or None if it is absent.

    A folder that is neither absent nor a clean clone that passes fsck fails
    the calling test.
    """
    folder = home.path / repository
    if not folder.exists() and not folder.is_symlink():
        return None
    head = run_git(home, "-C", str(folder), "rev-parse", "--verify", "HEAD")
    assert run_git(home, "-C", str(folder), "status", "--porcelain") == ""
    fsck = run_in_home(
        home, ["git", "-C", str(folder), "fsck", "--full"], user=run_user()
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    return head


def sync_log(home: SandboxHome) -> str:
    path = home.path / ".studio-bootstrap" / "sync.log"
    return path.read_text(errors="replace") if path.exists() else ""


def status_of(home: SandboxHome) -> str:
    path = home.path / ".studio-bootstrap" / "status" / PROFILE
    return path.read_text() if path.exists() else ""


def failure_lines(home: SandboxHome, repository: str) -> list[str]:
    """Return the sync log's summary lines of failed syncs of a repository."""
    marker = f"studio-bootstrap: {repository}: failed: "
    return [line for line in sync_log(home).splitlines() if marker in line]


def secrets_of(stack: LocalStack) -> list[str]:
    """Return every secret key and session token moto has issued, and the
    container authorization token."""
    from moto.sts.models import sts_backends

    found = []
    for account in sts_backends.values():
        for backend in account.values():
            for role in backend.assumed_roles:
                found += [role.secret_access_key, role.session_token]
    if stack.authorization_token:
        found.append(stack.authorization_token)
    return [secret for secret in found if secret]


# A CodeCommit Git password: a time stamp and a SigV4 signature.
_SIGNATURE = re.compile(r"\d{8}T\d{6}Z[0-9a-f]{64}|[0-9a-f]{64}")


def assert_no_secret(
    stack: LocalStack, home: SandboxHome, *results: subprocess.CompletedProcess[str]
) -> None:
    texts = [sync_log(home), status_of(home)]
    texts += [r.stdout + r.stderr for r in results]
    everything = "\n".join(texts)
    for secret in secrets_of(stack):
        assert secret not in everything
    assert not _SIGNATURE.search(everything)


def assert_recovers(
    script: Path, home: SandboxHome, stack: LocalStack, repository: str, **kwargs: Any
) -> None:
    """Start again with the fault gone: the repository is cloned or current."""
    result = start(script, home, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert clone_state(home, repository) == stack.codecommit.head(repository), sync_log(
        home
    )
    assert status_of(home).startswith("state=ok\n"), sync_log(home)
    assert leftovers(home) == []
