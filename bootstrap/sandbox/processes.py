"""Find and end the processes a sandbox run left behind, through /proc.

A lifecycle script starts background work that outlives it. A process
belongs to a run when it is in the session the run started, or when its
environment (as it was at exec) contains the run's ``HOME``. The second rule
catches processes that left the session with ``setsid``; the first catches
those that cleared their environment with ``env -i``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PROC = Path("/proc")
_POLL_SECONDS = 0.1

# How long kill_processes waits after SIGTERM before it sends SIGKILL.
TERMINATE_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class ProcessInfo:
    """A live process: its id, session id and command line."""

    pid: int
    session_id: int
    command: str


def find_processes(
    home: Path | None, session_ids: Collection[int]
) -> list[ProcessInfo]:
    """Return live processes in ``session_ids`` or whose HOME is ``home``.

    With ``home`` None, only sessions count. Zombies and this Python process
    are left out.
    """
    marker = b"HOME=" + os.fsencode(home) if home is not None else None
    found = []
    for entry in os.scandir(PROC):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        info = _read_process(int(entry.name), marker, session_ids)
        if info is not None:
            found.append(info)
    return found


def _read_process(
    pid: int, marker: bytes | None, session_ids: Collection[int]
) -> ProcessInfo | None:
    folder = PROC / str(pid)
    try:
        stat_line = (folder / "stat").read_bytes()
        # Fields after the command name, which is in parentheses and may
        # contain spaces: state, ppid, pgrp, session, ...
        fields = stat_line[stat_line.rindex(b")") + 2 :].split()
        if fields[0] == b"Z":
            return None
        session_id = int(fields[3])
        environment = (folder / "environ").read_bytes().split(b"\0")
        command = (folder / "cmdline").read_bytes().replace(b"\0", b" ").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
        # Gone since the scan, or not ours to read.
        return None
    if session_id in session_ids or (marker is not None and marker in environment):
        return ProcessInfo(pid, session_id, command.decode(errors="replace"))
    return None


def wait_for_exit(
    home: Path, session_ids: Collection[int], timeout: float
) -> list[ProcessInfo]:
    """Wait until no process of the run is alive, and return any still alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = find_processes(home, session_ids)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(_POLL_SECONDS)


def kill_processes(home: Path, session_ids: Collection[int]) -> list[ProcessInfo]:
    """Send SIGTERM, then SIGKILL after a grace period, and return the targets."""
    targets = find_processes(home, session_ids)
    for process in targets:
        _signal(process.pid, signal.SIGTERM)
    survivors = wait_for_exit(home, session_ids, TERMINATE_GRACE_SECONDS)
    for process in survivors:
        logger.debug("killing %d (%s) after SIGTERM", process.pid, process.command)
        _signal(process.pid, signal.SIGKILL)
    wait_for_exit(home, session_ids, TERMINATE_GRACE_SECONDS)
    return targets


def _signal(pid: int, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal_number)
