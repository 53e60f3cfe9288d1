"""App starts while Studio and AWS misbehave, in the local sandbox.

Each test breaks one thing, starts the app, and checks what the start left.
The foreground exits 0 and runs no clone or fetch itself. The user's files
are intact, and the repository folder is absent, unchanged or a complete
clone. The sync log gives the reason in one line without a secret, and the
next start clones once the fault is gone.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fault_support import (
    PROFILE,
    SYNC_SECONDS,
    USER_FILES,
    GitRecorder,
    assert_no_secret,
    assert_recovers,
    assert_user_files_intact,
    clone_state,
    failure_lines,
    free_loopback_port,
    leftovers,
    render,
    run_user,
    seed_user_files,
    start,
    status_of,
    sync_log,
    tools_without,
)

from bootstrap.sandbox.helper_wheel import build_helper_wheels
from bootstrap.sandbox.image import studio_image
from bootstrap.sandbox.processes import find_processes
from bootstrap.sandbox.runner import (
    CAN_RUN_AS_STUDIO_USER,
    STUDIO_GID,
    STUDIO_UID,
    STUDIO_USER_SKIP_REASON,
    SandboxHome,
    kill_all,
    wait_idle,
)
from bootstrap.sandbox.stack import LocalStack

_names = itertools.count(1)

needs_studio_user = pytest.mark.skipif(
    not CAN_RUN_AS_STUDIO_USER, reason=STUDIO_USER_SKIP_REASON
)


@pytest.fixture
def repository(local_stack: LocalStack, repo_role: str) -> str:
    """A fresh repository in account A with one commit, readable by the A role."""
    name = f"fault-{next(_names)}"
    local_stack.codecommit.create_repository(name, allowed_role_arns=[repo_role])
    local_stack.codecommit.commit(name, {"README.md": f"# {name}\n"}, "Initial commit")
    return name


@pytest.fixture
def recorder(local_stack: LocalStack) -> GitRecorder:
    return GitRecorder.create(local_stack)


def assert_quiet_foreground(
    result: subprocess.CompletedProcess[str],
    home: SandboxHome,
    recorder: GitRecorder | None,
) -> None:
    """The start returned 0 and left every clone and fetch to the background."""
    assert result.returncode == 0, result.stdout + result.stderr
    if recorder is not None:
        assert recorder.network_calls_in(home.session_ids) == []


def assert_one_reason(home: SandboxHome, repository: str, reason: str) -> None:
    """The sync log has one failure line for the repository, matching ``reason``."""
    lines = failure_lines(home, repository)
    assert len(lines) == 1, sync_log(home)
    assert re.search(reason, lines[0]), lines[0]


# --- one fault during a first start ----------------------------------------------


@dataclass
class Fault:
    """A fault to inject before a start and to clear before the next one.

    ``env`` returns environment entries of the faulty start, and
    ``recovery_env`` those of the next start. ``reason`` is a regular
    expression that the failure line of the sync log must match. ``limits``
    replaces sync constants for faults where one attempt lasts seconds.
    """

    reason: str
    limits: dict[str, int] = field(default_factory=dict)
    inject: Callable[[LocalStack, str], None] = lambda stack, repository: None
    clear: Callable[[LocalStack, str], None] = lambda stack, repository: None
    env: Callable[[LocalStack, GitRecorder], dict[str, str]] = field(
        default=lambda stack, recorder: {"PATH": recorder.path()}
    )
    recovery_env: Callable[[LocalStack, GitRecorder], dict[str, str]] = field(
        default=lambda stack, recorder: {"PATH": recorder.path()}
    )


def _credentials(fault: str | None) -> Callable[[LocalStack, str], None]:
    def apply(stack: LocalStack, repository: str) -> None:
        stack.credentials.fault = fault

    return apply


def _codecommit(fault: str | None) -> Callable[[LocalStack, str], None]:
    def apply(stack: LocalStack, repository: str) -> None:
        stack.codecommit.set_fault(repository, fault)

    return apply


def _stall_briefly(stack: LocalStack, repository: str) -> None:
    # The endpoint sends the pack header, waits 1 s, and closes the connection.
    stack.codecommit.stall_seconds = 1.0
    stack.codecommit.set_fault(repository, "stall")


def _unstall(stack: LocalStack, repository: str) -> None:
    stack.codecommit.set_fault(repository, None)
    stack.codecommit.stall_seconds = 300.0


def _slow_credentials(seconds: float) -> Callable[[LocalStack, str], None]:
    def apply(stack: LocalStack, repository: str) -> None:
        stack.credentials.slow_seconds = seconds
        stack.credentials.fault = "slow"

    return apply


def _fast_credentials(stack: LocalStack, repository: str) -> None:
    stack.credentials.fault = None
    stack.credentials.slow_seconds = 5.0


HELPER_TOOLS = ["git-remote-codecommit", "python*", "pip*"]


def _without_git(stack: LocalStack, recorder: GitRecorder) -> dict[str, str]:
    return {"PATH": tools_without(stack, ["git*"], kept=["git-remote-codecommit"])}


def _without_python(stack: LocalStack, recorder: GitRecorder) -> dict[str, str]:
    return {"PATH": recorder.path(tools_without(stack, HELPER_TOOLS))}


def _python_without_pip(stack: LocalStack, recorder: GitRecorder) -> dict[str, str]:
    folder = stack.root / "python-without-pip"
    if not folder.exists():
        subprocess.run(
            ["/usr/bin/python3", "-m", "venv", "--without-pip", str(folder)],
            check=True,
        )
    path = f"{folder / 'bin'}:{tools_without(stack, HELPER_TOOLS)}"
    return {"PATH": recorder.path(path)}


def _python_with_local_index(
    stack: LocalStack, recorder: GitRecorder
) -> dict[str, str]:
    """Return an environment whose python3 has pip and botocore, and whose pip
    installs git-remote-codecommit from a local folder of wheels."""
    folder = stack.root / "python-with-pip"
    if not folder.exists():
        folder.mkdir(mode=0o755)
        python = folder / "python3"
        # A wrapper, not a symlink: a venv is found from the path it runs as.
        python.write_text(f'#!/bin/sh\nexec {studio_image().bin / "python3"} "$@"\n')
        python.chmod(0o755)
    path = f"{folder}:{tools_without(stack, HELPER_TOOLS)}"
    return {
        "PATH": recorder.path(path),
        "PIP_FIND_LINKS": str(build_helper_wheels(stack.root)),
    }


def _closed_port(stack: LocalStack, recorder: GitRecorder) -> dict[str, str]:
    return {
        "PATH": recorder.path(),
        "CODE_COMMIT_ENDPOINT": f"127.0.0.1:{free_loopback_port()}",
    }


# botocore 1.43 tries the container endpoint 3 times, 1 s apart, with a 2 s
# timeout, so each sync attempt against a broken endpoint lasts 3 to 8 s.
# These faults and the stalls run with fewer attempts, so that each test
# takes about 10 s. The other faults run with the rendered 3 attempts.
FEWER_ATTEMPTS = {"SB_ATTEMPTS": 2}

FAULTS = {
    "credentials down": Fault(
        reason=r"CredentialRetrievalError: .*Connection was closed",
        inject=_credentials("down"),
        limits=FEWER_ATTEMPTS,
        clear=_credentials(None),
    ),
    "credentials slow": Fault(
        reason=r"CredentialRetrievalError: .*(timed out|Read timeout)",
        inject=_slow_credentials(5.0),
        limits={"SB_ATTEMPTS": 1},
        clear=_fast_credentials,
    ),
    "credentials malformed": Fault(
        reason=r"CredentialRetrievalError: .*JSON",
        inject=_credentials("malformed"),
        limits=FEWER_ATTEMPTS,
        clear=_credentials(None),
    ),
    "credentials 403": Fault(
        reason=r"CredentialRetrievalError: .*403",
        inject=_credentials("403"),
        limits=FEWER_ATTEMPTS,
        clear=_credentials(None),
    ),
    "codecommit 403": Fault(
        reason=r"clone failed: .*returned error: 403",
        inject=_codecommit("403"),
        clear=_codecommit(None),
    ),
    "codecommit 500": Fault(
        reason=r"clone failed: .*returned error: 500",
        inject=_codecommit("500"),
        clear=_codecommit(None),
    ),
    # git reports a connection reset after the credentials were sent as an
    # authentication failure.
    "codecommit reset": Fault(
        reason=r"clone failed: fatal: ",
        inject=_codecommit("reset"),
        clear=_codecommit(None),
    ),
    "codecommit stall mid-pack": Fault(
        reason=r"clone failed: (error|fatal): .*(bytes of body|early EOF|index-pack)",
        inject=_stall_briefly,
        limits=FEWER_ATTEMPTS,
        clear=_unstall,
    ),
    "endpoint port closed": Fault(
        reason=r"clone failed: .*(Couldn't connect|refused)",
        env=_closed_port,
    ),
    "git missing": Fault(reason=r"git not found", env=_without_git),
    "python missing": Fault(
        reason=r"python3 is missing",
        env=_without_python,
        recovery_env=_python_with_local_index,
    ),
    "pip missing": Fault(
        reason=r"python3 has no pip",
        env=_python_without_pip,
        recovery_env=_python_with_local_index,
    ),
}


@pytest.mark.parametrize("name", list(FAULTS), ids=list(FAULTS))
def test_fault_during_first_start(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
    name: str,
) -> None:
    fault = FAULTS[name]
    seed_user_files(sandbox_home)
    script = render(tmp_path, repository, repo_role, limits=fault.limits)
    fault.inject(local_stack, repository)
    try:
        result = start(
            script, sandbox_home, env=fault.env(local_stack, recorder), wait=False
        )
        wait_idle(sandbox_home, timeout=SYNC_SECONDS)
    finally:
        fault.clear(local_stack, repository)

    assert_quiet_foreground(result, sandbox_home, recorder)
    assert_user_files_intact(sandbox_home)
    assert clone_state(sandbox_home, repository) is None
    assert leftovers(sandbox_home) == []
    assert_one_reason(sandbox_home, repository, fault.reason)
    assert status_of(sandbox_home).startswith("state=failed\n")
    assert_no_secret(local_stack, sandbox_home, result)

    recovery_env = fault.recovery_env(local_stack, recorder)
    assert_recovers(script, sandbox_home, local_stack, repository, env=recovery_env)


def test_slow_credentials_within_timeout(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
) -> None:
    # botocore waits 2 s for the container endpoint (botocore 1.43).
    script = render(tmp_path, repository, repo_role)
    _slow_credentials(1.0)(local_stack, repository)
    try:
        result = start(script, sandbox_home, env={"PATH": recorder.path()})
    finally:
        _fast_credentials(local_stack, repository)
    assert_quiet_foreground(result, sandbox_home, recorder)
    assert clone_state(sandbox_home, repository) == local_stack.codecommit.head(
        repository
    )


# --- a clone that stalls, or a sync that dies ------------------------------------


def test_stalled_clone_times_out(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
) -> None:
    # The endpoint keeps the pack open. The clone timeout is 2 s here so that
    # the test ends in seconds, and the script is otherwise as rendered.
    seed_user_files(sandbox_home)
    script = render(
        tmp_path,
        repository,
        repo_role,
        limits={"SB_CLONE_TIMEOUT": 2, **FEWER_ATTEMPTS},
    )
    local_stack.codecommit.set_fault(repository, "stall")
    try:
        result = start(script, sandbox_home, env={"PATH": recorder.path()})
    finally:
        local_stack.codecommit.set_fault(repository, None)

    assert_quiet_foreground(result, sandbox_home, recorder)
    assert_user_files_intact(sandbox_home)
    assert clone_state(sandbox_home, repository) is None
    assert leftovers(sandbox_home) == []
    assert_one_reason(sandbox_home, repository, r"clone failed: timed out after 2s")
    assert_no_secret(local_stack, sandbox_home, result)
    assert_recovers(
        script, sandbox_home, local_stack, repository, env={"PATH": recorder.path()}
    )


def _kill_home(home: SandboxHome) -> None:
    """Send SIGKILL to every process of the home, as a stopped container does."""
    for process in find_processes(home.path, home.session_ids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    wait_idle(home, timeout=10)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize(
    "next_host", ["same host", "new host"], ids=["same-host", "new-host"]
)
def test_sync_killed_mid_pack(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
    next_host: str,
) -> None:
    """The app stops while a clone receives its pack, and the next start clones.

    Studio starts each app in a new container, so the next start may run on
    another host name with the lock of the killed sync still in the home.
    """
    seed_user_files(sandbox_home)
    script = render(tmp_path, repository, repo_role)
    env = {"PATH": recorder.path(), "HOSTNAME": "app-1"}
    partial = sandbox_home.path / f".{repository}.studio-bootstrap-clone"
    local_stack.codecommit.set_fault(repository, "stall")
    try:
        result = start(script, sandbox_home, env=env, wait=False)
        _wait_for(
            lambda: any(partial.glob(".git/objects/pack/tmp_pack_*")),
            "the pack to start arriving",
        )
        _kill_home(sandbox_home)
    finally:
        local_stack.codecommit.set_fault(repository, None)

    assert_quiet_foreground(result, sandbox_home, recorder)
    assert_user_files_intact(sandbox_home)
    assert clone_state(sandbox_home, repository) is None
    assert (
        sandbox_home.path / ".studio-bootstrap" / "locks" / f"{PROFILE}.lock"
    ).is_dir()

    hostname = "app-1" if next_host == "same host" else "app-2"
    assert_recovers(
        script,
        sandbox_home,
        local_stack,
        repository,
        env={"PATH": recorder.path(), "HOSTNAME": hostname},
    )
    assert_user_files_intact(sandbox_home)


# --- locks -----------------------------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _start_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[19])


def _owner(host: str, pid: int, started: float, ticks: int | None = None) -> str:
    line = f"host={host} pid={pid} started={int(started)}"
    return line + (f" ticks={ticks}" if ticks is not None else "") + "\n"


def _write_lock(home: SandboxHome, owner: str | None, age_seconds: float = 0) -> Path:
    """Write the repository's lock folder, with an owner file unless None."""
    lock = home.path / ".studio-bootstrap" / "locks" / f"{PROFILE}.lock"
    # write_file creates the folders owned by the home's owner.
    home.write_file(f".studio-bootstrap/locks/{PROFILE}.lock/owner", owner or "")
    if owner is None:
        (lock / "owner").unlink()
    if age_seconds:
        stamp = time.time() - age_seconds
        os.utime(lock, (stamp, stamp))
    return lock


HOST = socket.gethostname()

# Locks that a sync which no longer runs left behind: each start must take
# them over and clone.
STALE_LOCKS: dict[str, Callable[[], tuple[str | None, float]]] = {
    "dead process": lambda: (_owner(HOST, _dead_pid(), time.time()), 0),
    "other host, old": lambda: (_owner("other", 4242, time.time() - 7200), 0),
    "no owner file, old folder": lambda: (None, 600),
    "garbage owner, old folder": lambda: ("\x00\xff$(touch CANARY)`id`\n" * 3, 600),
    "command in the owner": lambda: ("host=$(touch CANARY) pid=1 started=1\n", 600),
    "huge pid": lambda: (_owner(HOST, 10**20, time.time()), 0),
    "reused pid": lambda: (_owner(HOST, 1, time.time(), ticks=_start_ticks(1) + 1), 0),
}


@pytest.mark.parametrize("case", list(STALE_LOCKS), ids=list(STALE_LOCKS))
def test_stale_lock_is_taken_over(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
    case: str,
) -> None:
    seed_user_files(sandbox_home)
    owner, age = STALE_LOCKS[case]()
    _write_lock(sandbox_home, owner, age)
    script = render(tmp_path, repository, repo_role)
    result = start(script, sandbox_home, env={"PATH": recorder.path()})

    assert_quiet_foreground(result, sandbox_home, recorder)
    assert_user_files_intact(sandbox_home)
    assert clone_state(sandbox_home, repository) == local_stack.codecommit.head(
        repository
    ), sync_log(sandbox_home)
    assert "removing stale lock" in sync_log(sandbox_home)
    assert list((sandbox_home.path / ".studio-bootstrap" / "locks").iterdir()) == []
    assert list(sandbox_home.path.rglob("CANARY")) == []


@contextlib.contextmanager
def _live_process(user: str) -> Iterator[int]:
    """Run ``sleep`` as root or as uid 1000 and yield its process id."""
    extra = {} if user == "root" else {"user": STUDIO_UID, "group": STUDIO_GID}
    process = subprocess.Popen(["sleep", "120"], **extra)  # type: ignore[call-overload]
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


# Who holds the lock, and whether its owner file has the start time in ticks,
# which locks written before that field existed lack.
LIVE_HOLDERS = {
    "same user": (False, True),
    "other user": (True, True),
    "other user, owner without ticks": (True, False),
}


@pytest.mark.parametrize("holder", list(LIVE_HOLDERS), ids=list(LIVE_HOLDERS))
def test_live_lock_is_respected(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
    holder: str,
) -> None:
    """A lock of a running process stays, and the start after it ends clones.

    Studio Classic runs KernelGateway apps as root on the home that uid 1000
    uses, so a sync of the other user may hold the lock.
    """
    other_user, with_ticks = LIVE_HOLDERS[holder]
    user = run_user()
    if other_user:
        if not CAN_RUN_AS_STUDIO_USER:
            pytest.skip(STUDIO_USER_SKIP_REASON)
        holder_user = "root" if user != "root" else "sagemaker-user"
    else:
        holder_user = user
    seed_user_files(sandbox_home)
    script = render(tmp_path, repository, repo_role)
    with _live_process(holder_user) as pid:
        ticks = _start_ticks(pid) if with_ticks else None
        lock = _write_lock(sandbox_home, _owner(HOST, pid, time.time(), ticks))
        result = start(script, sandbox_home, env={"PATH": recorder.path()})

        assert_quiet_foreground(result, sandbox_home, recorder)
        assert clone_state(sandbox_home, repository) is None
        assert lock.is_dir()
        assert re.search(
            rf"{PROFILE}: skipped: host={re.escape(HOST)} pid={pid} ",
            sync_log(sandbox_home),
        ), sync_log(sandbox_home)
    assert_user_files_intact(sandbox_home)
    assert_recovers(
        script, sandbox_home, local_stack, repository, env={"PATH": recorder.path()}
    )


# --- many starts at once ---------------------------------------------------------


def test_ten_simultaneous_starts(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
) -> None:
    """Ten starts at one moment on one home, with a dead sync's lock in it."""
    seed_user_files(sandbox_home)
    _write_lock(sandbox_home, _owner(HOST, _dead_pid(), time.time()))
    script = render(tmp_path, repository, repo_role)
    barrier = threading.Barrier(10)
    results: list[subprocess.CompletedProcess[str]] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        result = start(script, sandbox_home, env={"PATH": recorder.path()}, wait=False)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_idle(sandbox_home, timeout=SYNC_SECONDS)

    assert len(results) == 10
    for result in results:
        assert_quiet_foreground(result, sandbox_home, recorder)
    assert_user_files_intact(sandbox_home)
    home = sandbox_home.path
    assert (home / ".aws" / "config").read_text().count("managed block: do not") == 1
    assert (home / ".gitconfig").read_text().count("[include]") == 1
    assert (home / ".bashrc").read_text().count("# studio-bootstrap") == 1
    assert clone_state(sandbox_home, repository) == local_stack.codecommit.head(
        repository
    )
    assert leftovers(sandbox_home) == []
    assert list((home / ".studio-bootstrap" / "locks").iterdir()) == []
    log = sync_log(sandbox_home)
    assert log.count(f"{repository}: cloned into ~/{repository}") == 1, log
    assert failure_lines(sandbox_home, repository) == []
    assert_no_secret(local_stack, sandbox_home, *results)


# --- the home itself -------------------------------------------------------------


def _can_mount_tmpfs() -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder],
            capture_output=True,
            check=False,
        )
        if mounted.returncode != 0:
            return False
        subprocess.run(["umount", folder], check=True)
    return True


CAN_MOUNT_TMPFS = _can_mount_tmpfs()
TMPFS_SKIP_REASON = "needs root and a working 'mount -t tmpfs'"


@contextlib.contextmanager
def tmpfs_home(home: SandboxHome, size: str) -> Iterator[None]:
    """Mount a tmpfs of ``size`` on the home, owned as the home was."""
    owner = home.path.stat()
    options = f"size={size},mode=0755,uid={owner.st_uid},gid={owner.st_gid}"
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(home.path)], check=True
    )
    try:
        yield
    finally:
        kill_all(home)
        subprocess.run(["umount", str(home.path)], check=True)


def _remount(home: SandboxHome, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(home.path)], check=True)


@needs_studio_user
def test_home_not_writable(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
) -> None:
    """A home that uid 1000 cannot write: each failed step is logged."""
    seed_user_files(sandbox_home)
    os.chown(sandbox_home.path, 0, 0)
    script = render(tmp_path, repository, repo_role)
    try:
        result = start(script, sandbox_home, env={"PATH": recorder.path()})
    finally:
        os.chown(sandbox_home.path, STUDIO_UID, STUDIO_GID)

    assert_quiet_foreground(result, sandbox_home, recorder)
    assert_user_files_intact(sandbox_home)
    assert clone_state(sandbox_home, repository) is None
    assert leftovers(sandbox_home) == []
    assert "step failed: start the background sync" in result.stdout
    assert_no_secret(local_stack, sandbox_home, result)
    assert_recovers(
        script, sandbox_home, local_stack, repository, env={"PATH": recorder.path()}
    )


@pytest.mark.skipif(not CAN_MOUNT_TMPFS, reason=TMPFS_SKIP_REASON)
def test_home_read_only(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
) -> None:
    """A home on a read-only file system, which even root cannot write."""
    script = render(tmp_path, repository, repo_role)
    with tmpfs_home(sandbox_home, "16m"):
        seed_user_files(sandbox_home)
        _remount(sandbox_home, "ro")
        result = start(script, sandbox_home, env={"PATH": recorder.path()})

        assert_quiet_foreground(result, sandbox_home, recorder)
        assert_user_files_intact(sandbox_home)
        assert (sandbox_home.path / ".aws" / "config").read_text() == USER_FILES[
            ".aws/config"
        ]
        assert clone_state(sandbox_home, repository) is None
        assert "step failed: start the background sync" in result.stdout

        _remount(sandbox_home, "rw")
        assert_recovers(
            script, sandbox_home, local_stack, repository, env={"PATH": recorder.path()}
        )


def _big_repository(stack: LocalStack, role: str, megabytes: int) -> str:
    """Create a repository whose pack is about ``megabytes`` MiB."""
    name = f"big-{next(_names)}"
    stack.codecommit.create_repository(name, allowed_role_arns=[role])
    noise = random.Random(name).randbytes(megabytes * 1024 * 1024)
    stack.codecommit.commit(name, {"README.md": "big\n", "model.bin": noise}, "Big")
    return name


def _ulimit_wrapper(stack: LocalStack, script: Path, blocks: int) -> Path:
    """Write a script that runs ``script`` with a file size limit.

    SIGXFSZ stays ignored in every child, so a write past the limit fails with
    EFBIG as a write to a full disk fails with ENOSPC. Both files go where
    uid 1000 can read them.
    """
    folder = stack.root / f"ulimit-{next(_names)}"
    folder.mkdir(mode=0o755)
    inner = folder / script.name
    shutil.copyfile(script, inner)
    inner.chmod(0o644)
    wrapper = folder / "wrapper.sh"
    wrapper.write_text(f"trap '' XFSZ\nulimit -f {blocks}\nexec bash {inner}\n")
    wrapper.chmod(0o644)
    return wrapper


@pytest.mark.parametrize("limit", ["tmpfs", "ulimit"])
def test_disk_full_during_clone(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
    limit: str,
) -> None:
    """Room for the foreground but not for the pack: no half clone stays."""
    if limit == "tmpfs" and not CAN_MOUNT_TMPFS:
        pytest.skip(TMPFS_SKIP_REASON)
    repository = _big_repository(local_stack, repo_role, 4)
    script = render(tmp_path, repository, repo_role)
    env = {"PATH": recorder.path()}
    with contextlib.ExitStack() as stack:
        if limit == "tmpfs":
            stack.enter_context(tmpfs_home(sandbox_home, "2m"))
            faulty = script
        else:
            faulty = _ulimit_wrapper(local_stack, script, blocks=1024)
        seed_user_files(sandbox_home)
        result = start(faulty, sandbox_home, env=env)

        assert_quiet_foreground(result, sandbox_home, recorder)
        assert_user_files_intact(sandbox_home)
        assert clone_state(sandbox_home, repository) is None
        assert leftovers(sandbox_home) == []
        assert_one_reason(
            sandbox_home,
            repository,
            r"clone failed: fatal: write error: (No space left|File too large)",
        )
        assert_no_secret(local_stack, sandbox_home, result)

        if limit == "tmpfs":
            _remount(sandbox_home, "size=64m")
        assert_recovers(script, sandbox_home, local_stack, repository, env=env)


@pytest.mark.skipif(not CAN_MOUNT_TMPFS, reason=TMPFS_SKIP_REASON)
def test_disk_full_before_start(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
) -> None:
    """No byte free: the foreground writes nothing half and exits 0."""
    script = render(tmp_path, repository, repo_role)
    env = {"PATH": recorder.path()}
    with tmpfs_home(sandbox_home, "1m"):
        seed_user_files(sandbox_home)
        # A .bashrc and ~/.aws/config larger than a page, so that their
        # copies cannot fit in what is left.
        bashrc = USER_FILES[".bashrc"] + "# history\n" * 2000
        sandbox_home.write_file(".bashrc", bashrc)
        filler = sandbox_home.path / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as handle:
            while True:
                handle.write(b"\0" * 65536)
        config_before = (sandbox_home.path / ".aws" / "config").read_bytes()
        result = start(script, sandbox_home, env=env)

        assert_quiet_foreground(result, sandbox_home, recorder)
        assert (sandbox_home.path / ".aws" / "config").read_bytes() == config_before
        assert (sandbox_home.path / ".bashrc").read_text() == bashrc
        assert_user_files_intact(sandbox_home)
        assert clone_state(sandbox_home, repository) is None
        assert leftovers(sandbox_home) == []
        assert "does not parse" not in result.stdout
        assert re.search(
            r"~/.aws/config was left unchanged: .*No space left", result.stdout
        ), result.stdout

        filler.unlink()
        assert_recovers(script, sandbox_home, local_stack, repository, env=env)


# --- hostile contents of the home ------------------------------------------------


def test_clone_folder_symlink_is_not_followed(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
) -> None:
    """A symlink where the temporary clone goes: its target survives."""
    seed_user_files(sandbox_home)
    partial = sandbox_home.path / f".{repository}.studio-bootstrap-clone"
    partial.symlink_to(sandbox_home.path / "notebooks")
    script = render(tmp_path, repository, repo_role)
    result = start(script, sandbox_home, env={"PATH": recorder.path()})

    assert_quiet_foreground(result, sandbox_home, recorder)
    assert_user_files_intact(sandbox_home)
    assert clone_state(sandbox_home, repository) == local_stack.codecommit.head(
        repository
    )
    assert leftovers(sandbox_home) == []


BAD_HOMES: dict[str, Callable[[SandboxHome], Path]] = {
    ".bashrc is a folder": lambda home: home.write_file(".bashrc/keep", "x\n"),
    ".gitconfig is a folder": lambda home: home.write_file(".gitconfig/keep", "x\n"),
    ".aws/config is a folder": lambda home: home.write_file(".aws/config/keep", "x\n"),
    "locks is a file": lambda home: home.write_file(".studio-bootstrap/locks", "x\n"),
    "status is a file": lambda home: home.write_file(".studio-bootstrap/status", "x\n"),
    "sync.log is a folder": lambda home: home.write_file(
        ".studio-bootstrap/sync.log/keep", "x\n"
    ),
}


def _files(home: SandboxHome) -> dict[str, bytes]:
    return {
        str(path.relative_to(home.path)): path.read_bytes()
        for path in home.path.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


@pytest.mark.parametrize("case", list(BAD_HOMES), ids=list(BAD_HOMES))
def test_hostile_home_contents(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    recorder: GitRecorder,
    tmp_path: Path,
    case: str,
) -> None:
    """A path the script writes is taken by something else: the start exits 0,
    leaves that thing as it was, and logs the step that failed."""
    BAD_HOMES[case](sandbox_home)
    before = _files(sandbox_home)
    script = render(tmp_path, repository, repo_role)
    result = start(script, sandbox_home, env={"PATH": recorder.path()})

    assert_quiet_foreground(result, sandbox_home, recorder)
    after = _files(sandbox_home)
    assert {name: after.get(name) for name in before} == before
    state = clone_state(sandbox_home, repository)
    assert state in (None, local_stack.codecommit.head(repository))
    assert leftovers(sandbox_home) == []
    assert "step failed: " in result.stdout, result.stdout


def test_home_unset(tmp_path: Path, repo_role: str) -> None:
    script = render(tmp_path, "example-repo", repo_role)
    result = subprocess.run(
        [
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
            "AWS_EC2_METADATA_DISABLED=true",
            "bash",
            str(script),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "HOME (unset) is not a folder" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [script.name]
