"""Sandbox homes, and runs of lifecycle scripts and shells as Studio runs them.

JupyterServer, JupyterLab and CodeEditor run their lifecycle script as
``sagemaker-user`` (uid 1000, gid 100); KernelGateway runs it as root. Each
run gets a clean environment (see ``studio_environment``) aimed at a
``LocalStack``, with nothing of the developer's AWS or Git settings.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bootstrap.sandbox.errors import BackgroundWorkTimeoutError, SandboxError
from bootstrap.sandbox.image import find_system_python, studio_image
from bootstrap.sandbox.processes import (
    ProcessInfo,
    find_processes,
    kill_processes,
    wait_for_exit,
)

if TYPE_CHECKING:
    from bootstrap.sandbox.stack import LocalStack

logger = logging.getLogger(__name__)

STUDIO_USER = "sagemaker-user"
STUDIO_UID = 1000
STUDIO_GID = 100
ROOT_USER = "root"

APP_USERS = {
    "JupyterServer": STUDIO_USER,
    "JupyterLab": STUDIO_USER,
    "CodeEditor": STUDIO_USER,
    "KernelGateway": ROOT_USER,
}

# Studio fails an app start whose lifecycle script runs longer than 5 minutes.
LIFECYCLE_TIMEOUT_SECONDS = 300.0
DEFAULT_IDLE_TIMEOUT_SECONDS = 30.0

# Runs as another user need root, and that user needs a Python of its own.
CAN_RUN_AS_STUDIO_USER = os.geteuid() == 0 and find_system_python() is not None
STUDIO_USER_SKIP_REASON = (
    "runs as uid 1000 need root and a system Python with venv that every user "
    "can run (/usr/bin/python3 with python3-venv)"
)

_HOME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_run_numbers = itertools.count(1)


@dataclass
class SandboxHome:
    """The home folder of one Studio user or space, under a stack's root.

    ``session_ids`` contains the session of every run started in this home,
    so that ``wait_idle`` and ``kill_all`` can find the runs' processes.
    """

    stack: LocalStack
    path: Path
    owner: str
    session_ids: set[int] = field(default_factory=set)

    @classmethod
    def create(
        cls, stack: LocalStack, name: str, *, owner: str = STUDIO_USER
    ) -> SandboxHome:
        """Make an empty home, 0755 and owned by uid 1000 for sagemaker-user."""
        if not _HOME_NAME.fullmatch(name):
            raise ValueError(
                f"invalid home name {name!r}: expected up to 64 letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
        _check_user(owner)
        homes = stack.root / "homes"
        homes.mkdir(exist_ok=True)
        homes.chmod(0o755)
        path = homes / name
        path.mkdir()
        path.chmod(0o755)
        if owner == STUDIO_USER and os.geteuid() == 0:
            os.chown(path, STUDIO_UID, STUDIO_GID)
        return cls(stack, path, owner)

    @property
    def name(self) -> str:
        return self.path.name

    def write_file(
        self, relative: str, content: str | bytes, mode: int = 0o644
    ) -> Path:
        """Write a file in the home, creating folders, owned by the home's owner."""
        target = self.path / relative
        if self.path not in target.resolve().parents:
            raise ValueError(
                f"invalid path {relative!r}: expected a path inside the home"
            )
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)
        target.chmod(mode)
        if self.owner == STUDIO_USER and os.geteuid() == 0:
            # The file and every folder between it and the home.
            relative_path = target.relative_to(self.path)
            for part in [relative_path, *relative_path.parents[:-1]]:
                os.chown(self.path / part, STUDIO_UID, STUDIO_GID)
        return target

    def remove(self) -> None:
        """End the home's processes and delete the folder."""
        kill_all(self)
        shutil.rmtree(self.path, ignore_errors=True)


def studio_environment(home: SandboxHome, *, user: str = STUDIO_USER) -> dict[str, str]:
    """Return the environment of a run in ``home``, built from nothing.

    AWS_ENDPOINT_URL sends every other AWS call to moto as well, so a script
    that calls a service the test did not expect still stays on loopback.
    """
    stack = home.stack
    environment = {
        "HOME": str(home.path),
        "USER": user,
        "LOGNAME": user,
        "SHELL": "/bin/bash",
        "PATH": studio_image().path,
        "LANG": "C.UTF-8",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": stack.credentials_url,
        "AWS_ENDPOINT_URL_STS": stack.endpoint_url,
        "AWS_ENDPOINT_URL": stack.endpoint_url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "CODE_COMMIT_ENDPOINT": stack.codecommit_host,
        "GIT_SSL_CAINFO": str(stack.ca_path),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    if stack.authorization_token is not None:
        environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = stack.authorization_token
    return environment


def run_in_home(
    home: SandboxHome,
    command: Sequence[str],
    *,
    user: str = STUDIO_USER,
    env: Mapping[str, str] | None = None,
    timeout: float = LIFECYCLE_TIMEOUT_SECONDS,
    input: str | None = None,
    unset: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``home`` as ``user``, in a new session.

    Output goes to files rather than pipes, so the call returns when the
    command exits even if background processes keep its output open.
    ``env`` entries are added to (or replace) the studio environment, and
    the names in ``unset`` are removed from it. On timeout the run's session
    is killed and TimeoutExpired is raised.
    """
    environment = {**studio_environment(home, user=user), **(env or {})}
    for name in unset:
        environment.pop(name, None)
    with (
        tempfile.TemporaryFile() as stdin,
        tempfile.TemporaryFile() as stdout,
        tempfile.TemporaryFile() as stderr,
    ):
        stdin.write((input or "").encode())
        stdin.seek(0)
        process = subprocess.Popen(
            list(command),
            cwd=home.path,
            env=environment,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            umask=0o022,
            **_identity(user),
        )
        home.session_ids.add(process.pid)
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(home, process)
            raise subprocess.TimeoutExpired(
                list(command), timeout, _read(stdout), _read(stderr)
            ) from None
        return subprocess.CompletedProcess(
            list(command), returncode, _read(stdout), _read(stderr)
        )


def run_lifecycle(
    script_path: Path | str,
    home: SandboxHome,
    *,
    app_type: str,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = LIFECYCLE_TIMEOUT_SECONDS,
    unset: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``bash SCRIPT`` in ``home`` as the user of ``app_type`` runs it.

    The script is copied next to the homes first, so that uid 1000 can read
    it wherever it was written. Background work it starts keeps running: use
    wait_idle() or kill_all().
    """
    if app_type not in APP_USERS:
        raise ValueError(
            f"invalid app type {app_type!r}: expected one of {', '.join(APP_USERS)}"
        )
    user = user or APP_USERS[app_type]
    scripts = home.stack.root / "lifecycle"
    scripts.mkdir(exist_ok=True)
    scripts.chmod(0o755)
    copy = scripts / f"{home.name}-{app_type}-{next(_run_numbers)}.sh"
    shutil.copyfile(script_path, copy)
    copy.chmod(0o644)
    logger.debug("running %s for %s as %s in %s", copy, app_type, user, home.path)
    return run_in_home(
        home, ["bash", str(copy)], user=user, env=env, timeout=timeout, unset=unset
    )


def interactive_shell(
    home: SandboxHome,
    command: str,
    *,
    user: str = STUDIO_USER,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``bash -i -c COMMAND`` on a pseudo-terminal, as a Studio terminal does.

    The shell reads ``~/.bashrc`` and owns the terminal (``setsid --ctty``).
    stdout contains everything written to the terminal, with ``\\r\\n``
    turned into ``\\n``. stderr is empty because the terminal merges both.
    """
    environment = {
        **studio_environment(home, user=user),
        "TERM": "xterm",
        **(env or {}),
    }
    argv = ["setsid", "--ctty", "bash", "-i", "-c", command]
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            argv,
            cwd=home.path,
            env=environment,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            umask=0o022,
            **_identity(user),
        )
        os.close(terminal)
        terminal = -1
        home.session_ids.add(process.pid)
        output, returncode = _read_terminal(controller, process, timeout)
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(controller)
    if returncode is None:
        _kill_session(home, process)
        raise subprocess.TimeoutExpired(argv, timeout, output)
    return subprocess.CompletedProcess(argv, returncode, output, "")


def wait_idle(home: SandboxHome, timeout: float = DEFAULT_IDLE_TIMEOUT_SECONDS) -> None:
    """Wait until no process started from a run in ``home`` is alive."""
    alive = wait_for_exit(home.path, home.session_ids, timeout)
    if alive:
        raise BackgroundWorkTimeoutError(
            f"{len(alive)} processes of {home.path} still alive after {timeout} s: "
            + "; ".join(f"{p.pid} {p.command}" for p in alive)
        )


def kill_all(home: SandboxHome) -> list[ProcessInfo]:
    """End every process of the home's runs, and return those signalled."""
    return kill_processes(home.path, home.session_ids)


def home_processes(home: SandboxHome) -> list[ProcessInfo]:
    """Return the live processes of the home's runs."""
    return find_processes(home.path, home.session_ids)


def _check_user(user: str) -> None:
    if user not in (STUDIO_USER, ROOT_USER):
        raise ValueError(
            f"invalid user {user!r}: expected {STUDIO_USER} or {ROOT_USER}"
        )


def _identity(user: str) -> dict[str, Any]:
    """Return Popen's arguments that run a child as ``user``."""
    _check_user(user)
    if os.geteuid() != 0:
        raise SandboxError(
            f"running as {user} needs root: this process runs as uid {os.geteuid()}"
        )
    if user == ROOT_USER:
        return {}
    return {"user": STUDIO_UID, "group": STUDIO_GID, "extra_groups": []}


def _read(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode(errors="replace")


def _read_terminal(
    controller: int, process: subprocess.Popen[bytes], timeout: float
) -> tuple[str, int | None]:
    """Collect terminal output until the shell exits and the terminal is drained."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while time.monotonic() < deadline:
        readable, _, _ = select.select([controller], [], [], 0.1)
        if readable:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                # EIO: every process holding the terminal has closed it.
                chunk = b""
            if chunk:
                chunks.append(chunk)
                continue
            # No process has the terminal open any more, so the shell is exiting.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            break
        if process.poll() is not None:
            break
    returncode = process.poll()
    text = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return text, returncode


def _kill_session(home: SandboxHome, process: subprocess.Popen[Any]) -> None:
    for info in find_processes(None, {process.pid}):
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGKILL)
    process.wait()
