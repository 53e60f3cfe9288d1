"""App starts, syncs and terminal shells in sandbox homes, ours against the baseline.

Each app start runs a lifecycle script with ``run_lifecycle`` as Studio runs
it (JupyterLab, uid 1000) in a new, empty home. The app-start delay is the
time until the script exits. The repository is ready when the sync writes
``state=ok`` to its status file, which is polled every few milliseconds.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.baseline import baseline_script
from bench.cache import remove_helper
from bench.configs import single_repository
from bench.repositories import CachedRepository
from bench.timing import Samples, timed
from bootstrap.config import Repository
from bootstrap.render import RenderedScript, render_script
from bootstrap.sandbox.image import SYSTEM_PATH, studio_image
from bootstrap.sandbox.runner import (
    CAN_RUN_AS_STUDIO_USER,
    ROOT_USER,
    STUDIO_USER,
    SandboxHome,
    interactive_shell,
    run_in_home,
    run_lifecycle,
    wait_idle,
)
from bootstrap.sandbox.stack import LocalStack

logger = logging.getLogger(__name__)

APP_TYPE = "JupyterLab"
# uid 1000 when this process may switch to it, else root for every run.
RUN_USER = STUDIO_USER if CAN_RUN_AS_STUDIO_USER else ROOT_USER
LIFECYCLE_USER = None if CAN_RUN_AS_STUDIO_USER else ROOT_USER
STATUS_POLL_SECONDS = 0.005
READY_TIMEOUT_SECONDS = 300.0
HOOK_LINE_MARK = "# studio-bootstrap"
INSTALL_MESSAGE = "installing git-remote-codecommit"
# Plain git runs with the profile in ~/.aws/config and no global Git config,
# so no credential helper: git-remote-codecommit signs the URL itself.
PLAIN_GIT = {"GIT_CONFIG_GLOBAL": os.devnull}

_home_numbers = itertools.count(1)


class BenchError(RuntimeError):
    """Raised when a benchmarked run fails, so its timing would mean nothing."""


@dataclass
class Bench:
    """The stack, the role that may read every repository, and the bench files."""

    stack: LocalStack
    role_arn: str
    wheelhouse: Path
    container: Path

    @property
    def folder(self) -> Path:
        path = self.stack.root / "bench"
        path.mkdir(exist_ok=True)
        path.chmod(0o755)
        return path

    def new_home(self, label: str) -> SandboxHome:
        return SandboxHome.create(self.stack, f"{label}-{next(_home_numbers)}")

    def repository(self, name: str) -> Repository:
        return single_repository(name, self.role_arn).repositories[0]

    def ours(self, name: str) -> tuple[Path, RenderedScript]:
        """Write our JupyterLab script for one repository; return its path."""
        script = render_script(single_repository(name, self.role_arn), APP_TYPE)
        path = self.folder / f"ours-{name}.sh"
        path.write_text(script.text)
        return path, script

    def baseline(self, name: str) -> Path:
        path = self.folder / f"baseline-{name}.sh"
        path.write_text(baseline_script(self.repository(name), self.wheelhouse))
        return path

    def baseline_environment(self) -> dict[str, str]:
        """Return the studio image's PATH behind the baseline's Python, no pip config.

        The image provides ``aws`` for the credential helper that the
        baseline writes to ~/.gitconfig, as Studio images do.
        """
        return {
            "PATH": f"{self.container / 'bin'}:{studio_image().path}",
            "PIP_CONFIG_FILE": os.devnull,
        }

    def self_install_environment(self) -> dict[str, str]:
        """PATH without the studio image, so that the sync installs the helper.

        pip reads only the bench's wheelhouse, like a VPC-only domain with
        wheels staged for it.
        """
        return {
            "PATH": SYSTEM_PATH,
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(self.wheelhouse),
        }


# --- first start -------------------------------------------------------------


@dataclass
class FirstStart:
    """First app starts on one repository size, ours against the baseline."""

    repository: CachedRepository
    ours_foreground: Samples = field(default_factory=Samples)
    ours_ready: Samples = field(default_factory=Samples)
    plain_clone: Samples = field(default_factory=Samples)
    baseline: Samples = field(default_factory=Samples)


def measure_first_starts(
    bench: Bench, repository: CachedRepository, runs: int
) -> FirstStart:
    """Run ours, a plain clone and the baseline, interleaved, ``runs`` times."""
    ours, _ = bench.ours(repository.name)
    baseline = bench.baseline(repository.name)
    result = FirstStart(repository)
    for index in range(runs):
        if index % 2:
            result.baseline.add(_baseline_start(bench, baseline, repository))
        home = bench.new_home(f"first-{repository.size_mib}")
        try:
            foreground, ready = _our_start(
                home, ours, bench.repository(repository.name)
            )
            result.ours_foreground.add(foreground)
            result.ours_ready.add(ready)
            result.plain_clone.add(
                _plain_clone(home, bench.repository(repository.name))
            )
        finally:
            _remove(home)
        if not index % 2:
            result.baseline.add(_baseline_start(bench, baseline, repository))
        logger.info(
            "%s run %d: ours %.3f s (ready %.3f s), plain clone %.3f s, "
            "baseline %.3f s",
            repository.label,
            index + 1,
            result.ours_foreground.values[-1],
            result.ours_ready.values[-1],
            result.plain_clone.values[-1],
            result.baseline.values[-1],
        )
    return result


def _our_start(
    home: SandboxHome, script: Path, repository: Repository
) -> tuple[float, float]:
    """Start the app with our script; return the foreground and ready times."""
    start = time.perf_counter()
    result = run_lifecycle(script, home, app_type=APP_TYPE, user=LIFECYCLE_USER)
    foreground = time.perf_counter() - start
    if result.returncode != 0:
        raise BenchError(f"our script exited {result.returncode}: {result.stdout}")
    state = wait_for_status(home, repository.profile)
    ready = time.perf_counter() - start
    wait_idle(home, timeout=READY_TIMEOUT_SECONDS)
    if state != "ok":
        raise BenchError(f"the sync ended in state {state}: {sync_log(home)}")
    return foreground, ready


def wait_for_status(home: SandboxHome, profile: str) -> str:
    """Poll the sync's status file until it reads ok or failed; return the state."""
    status = home.path / ".studio-bootstrap" / "status" / profile
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            first_line = status.read_text().partition("\n")[0]
        except FileNotFoundError:
            first_line = ""
        if first_line in ("state=ok", "state=failed"):
            return first_line.removeprefix("state=")
        time.sleep(STATUS_POLL_SECONDS)
    raise BenchError(f"no outcome in {status} after {READY_TIMEOUT_SECONDS} s")


def _plain_clone(home: SandboxHome, repository: Repository) -> float:
    """Clone again with plain git, through the same helper and profile."""
    shutil.rmtree(home.path / repository.path)
    command = ["git", "clone", repository.codecommit_url, repository.path]
    elapsed, result = timed(
        lambda: run_in_home(home, command, user=RUN_USER, env=PLAIN_GIT)
    )
    if result.returncode != 0:
        raise BenchError(f"plain git clone failed: {result.stderr}")
    return elapsed


def _baseline_start(bench: Bench, script: Path, repository: CachedRepository) -> float:
    """Start a new container with the baseline script; return the app-start delay."""
    remove_helper(bench.container)
    home = bench.new_home(f"baseline-{repository.size_mib}")
    try:
        elapsed, result = timed(
            lambda: run_lifecycle(
                script,
                home,
                app_type=APP_TYPE,
                user=LIFECYCLE_USER,
                env=bench.baseline_environment(),
            )
        )
        if result.returncode != 0:
            raise BenchError(
                f"the baseline script exited {result.returncode}: {result.stderr}"
            )
        if not (home.path / repository.name / ".git").is_dir():
            raise BenchError("the baseline script left no clone")
        return elapsed
    finally:
        _remove(home)


def _remove(home: SandboxHome) -> None:
    """Delete a home and write its dirty pages out before the next timed run."""
    home.remove()
    os.sync()


def measure_changed_script(
    bench: Bench,
    repository: CachedRepository,
    text: str,
    runs: int,
    warm_runs: int,
) -> tuple[Samples, Samples]:
    """Time first starts with another script text, then warm syncs after the last.

    Return the ready times and the warm sync times (empty without warm runs).
    """
    path = bench.folder / f"changed-{repository.name}.sh"
    path.write_text(text)
    config = bench.repository(repository.name)
    ready = Samples()
    sync = Samples()
    for index in range(runs):
        home = bench.new_home(f"changed-{repository.size_mib}")
        try:
            ready.add(_our_start(home, path, config)[1])
            if index == runs - 1:
                _warm_syncs(home, warm_runs, sync)
        finally:
            _remove(home)
    logger.info("%s with the change: ready %s", repository.label, ready.values)
    return ready, sync


def _warm_syncs(home: SandboxHome, runs: int, samples: Samples) -> None:
    command = ["bash", str(home.path / ".studio-bootstrap" / "sync.sh")]
    for _ in range(runs):
        elapsed, run = timed(lambda: run_in_home(home, command, user=RUN_USER))
        if run.returncode != 0 or "up to date on main" not in run.stdout:
            raise BenchError(f"the warm sync failed: {run.stdout}{run.stderr}")
        samples.add(elapsed)


def measure_harness_floor(bench: Bench, runs: int) -> Samples:
    """Time a script that only exits, to show what the harness itself costs."""
    script = bench.folder / "exit.sh"
    script.write_text("#!/bin/bash\nexit 0\n")
    samples = Samples()
    home = bench.new_home("floor")
    try:
        for _ in range(runs):
            elapsed, _ = timed(
                lambda: run_lifecycle(
                    script, home, app_type=APP_TYPE, user=LIFECYCLE_USER
                )
            )
            samples.add(elapsed)
    finally:
        home.remove()
    return samples


def sync_log(home: SandboxHome) -> str:
    path = home.path / ".studio-bootstrap" / "sync.log"
    return path.read_text() if path.exists() else ""


# --- warm start --------------------------------------------------------------


@dataclass
class WarmStart:
    """Syncs of a present, current repository against a plain ``git fetch``."""

    helper: str
    sync: Samples = field(default_factory=Samples)
    fetch: Samples = field(default_factory=Samples)
    installs: int = 0
    lib_unchanged: bool | None = None
    home: SandboxHome | None = None


def measure_warm_starts(
    bench: Bench, repository: CachedRepository, runs: int, *, self_install: bool
) -> WarmStart:
    """Clone once, then time the sync and ``git fetch`` alternately.

    With ``self_install`` the studio image is not on PATH, so the first sync
    installs the helper under ~/.studio-bootstrap/lib and later syncs must
    reuse it. The home is kept in the result for the terminal hook.
    """
    helper = "installed by the first sync" if self_install else "on PATH"
    result = WarmStart(helper)
    environment = bench.self_install_environment() if self_install else {}
    script, _ = bench.ours(repository.name)
    config = bench.repository(repository.name)
    home = bench.new_home(f"warm-{'installed' if self_install else 'image'}")
    result.home = home

    first = run_lifecycle(
        script, home, app_type=APP_TYPE, user=LIFECYCLE_USER, env=environment
    )
    state = wait_for_status(home, config.profile)
    wait_idle(home, timeout=READY_TIMEOUT_SECONDS)
    if first.returncode != 0 or state != "ok":
        raise BenchError(f"the first start failed: {first.stdout}{sync_log(home)}")
    lib = home.path / ".studio-bootstrap" / "lib" / "git-remote-codecommit"
    lib_before = _identity(lib)

    sync = ["bash", str(home.path / ".studio-bootstrap" / "sync.sh")]
    fetch = ["git", "-C", config.path, "fetch", "origin"]
    fetch_environment = {**environment, **PLAIN_GIT}
    if self_install:
        bin_folder = home.path / ".studio-bootstrap" / "bin"
        fetch_environment["PATH"] = f"{bin_folder}:{SYSTEM_PATH}"
    outputs = []
    for index in range(runs):
        order = [("sync", sync, environment), ("fetch", fetch, fetch_environment)]
        if index % 2:
            order.reverse()
        for kind, command, env in order:
            start = time.perf_counter()
            run = run_in_home(home, command, user=RUN_USER, env=env)
            elapsed = time.perf_counter() - start
            if run.returncode != 0:
                raise BenchError(f"warm {kind} failed: {run.stdout}{run.stderr}")
            if kind == "sync":
                if "up to date on main" not in run.stdout:
                    raise BenchError(
                        f"the warm sync did not find main current: {run.stdout}"
                    )
                outputs.append(run.stdout)
                result.sync.add(elapsed)
            else:
                result.fetch.add(elapsed)
    everything = sync_log(home) + "".join(outputs)
    result.installs = everything.count(INSTALL_MESSAGE)
    if self_install:
        result.lib_unchanged = lib_before is not None and lib_before == _identity(lib)
    return result


def _identity(path: Path) -> tuple[int, int] | None:
    """Return the inode and change time of a folder, which a reinstall replaces."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_ctime_ns


# --- terminal hook -----------------------------------------------------------


@dataclass
class HookCost:
    """Interactive shell starts with the hook in ~/.bashrc and without it."""

    with_hook: Samples = field(default_factory=Samples)
    without_hook: Samples = field(default_factory=Samples)
    source_seconds: float = 0.0
    loop_count: int = 0


HOOK_LOOP = r"""
hook=$HOME/.studio-bootstrap/hook.sh
start=$EPOCHREALTIME
for ((i = 0; i < {count}; i++)); do . "$hook"; done
end=$EPOCHREALTIME
printf '%s\n' "$start" "$end"
"""


def measure_hook(home: SandboxHome, runs: int, loop_count: int) -> HookCost:
    """Time ``bash -i -c true`` on a terminal, with and without the hook line.

    The home has a current clone and an ok status, so the hook takes its
    quiet path. The two ~/.bashrc versions alternate from one run to the next.
    """
    bashrc = home.path / ".bashrc"
    with_hook = bashrc.read_text()
    without_hook = "".join(
        line
        for line in with_hook.splitlines(keepends=True)
        if not line.rstrip().endswith(HOOK_LINE_MARK)
    )
    if with_hook == without_hook:
        raise BenchError("~/.bashrc has no terminal hook line")
    result = HookCost(loop_count=loop_count)
    try:
        for index in range(2 * runs):
            hooked = index % 2 == 0
            home.write_file(".bashrc", with_hook if hooked else without_hook)
            elapsed, shell = timed(
                lambda: interactive_shell(home, "true", user=RUN_USER)
            )
            if shell.returncode != 0 or "studio-bootstrap" in shell.stdout:
                raise BenchError(f"the shell did not start quietly: {shell.stdout}")
            (result.with_hook if hooked else result.without_hook).add(elapsed)
    finally:
        home.write_file(".bashrc", with_hook)
    result.source_seconds = _hook_loop(home, loop_count)
    return result


def _hook_loop(home: SandboxHome, count: int) -> float:
    """Source hook.sh ``count`` times in one interactive shell; return seconds each."""
    command = ["bash", "--norc", "-i", "-c", HOOK_LOOP.format(count=count)]
    run = run_in_home(home, command, user=RUN_USER)
    lines = run.stdout.split()
    if run.returncode != 0 or len(lines) != 2:
        raise BenchError(f"the hook loop failed: {run.stdout}{run.stderr}")
    return (float(lines[1]) - float(lines[0])) / count
