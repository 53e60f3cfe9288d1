"""Profiles that explain the timed runs, which are never timed themselves.

bash's xtrace with ``$EPOCHREALTIME`` stamps each command, strace counts the
programs started, and ``GIT_TRACE2_PERF`` times the children of git.
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.data_plane import READY_TIMEOUT_SECONDS, RUN_USER, BenchError
from bootstrap.sandbox.runner import SandboxHome, run_in_home, wait_idle

# Each traced line: "+STAMP|FUNCNAME stack, innermost first| command".
TRACE_PS4 = "+${EPOCHREALTIME}|${FUNCNAME[*]}| "
_TRACE_LINE = re.compile(r"^\++(\d+\.\d+)\|([^|]*)\| ?(.*)$")
NETWORK_GROUP = "git clone or fetch (timeout git ...)"
PROCESS_LOOP_COUNT = 200


@dataclass
class StepProfile:
    """Seconds per step of one traced run, largest first, and the total."""

    total: float
    steps: list[tuple[str, float]] = field(default_factory=list)


def trace_steps(
    home: SandboxHome,
    script: Path,
    anchor: str,
    env: dict[str, str] | None = None,
) -> StepProfile:
    """Source a script with xtrace and add up the time of each step.

    A command's time runs from its trace line to the next one. It counts
    for the function called directly by ``anchor`` (``sb_step`` for the
    foreground, ``sb_sync_repo`` for the sync), and ``timeout`` commands,
    which run git over the network, form a group of their own.
    """
    trace = home.path / "bench-trace.txt"
    command = (
        f"PS4='{TRACE_PS4}'; exec 9>{_quote(str(trace))}; BASH_XTRACEFD=9; "
        f"set -x; . {_quote(str(script))}"
    )
    run = run_in_home(home, ["bash", "-c", command], user=RUN_USER, env=env)
    wait_idle(home, timeout=READY_TIMEOUT_SECONDS)
    if run.returncode != 0:
        raise BenchError(f"the traced run failed: {run.stdout}{run.stderr}")
    events = []
    for line in trace.read_text(errors="replace").splitlines():
        match = _TRACE_LINE.match(line)
        if match:
            events.append((float(match[1]), match[2].split(), match[3]))
    trace.unlink()
    groups: dict[str, float] = {}
    for (stamp, stack, text), (following, _, _) in itertools.pairwise(events):
        name = _group(stack, text, anchor)
        groups[name] = groups.get(name, 0.0) + following - stamp
    total = events[-1][0] - events[0][0] if events else 0.0
    ranked = sorted(groups.items(), key=lambda item: -item[1])
    return StepProfile(total, ranked)


def _group(stack: list[str], text: str, anchor: str) -> str:
    if text.startswith("timeout "):
        return NETWORK_GROUP
    if anchor in stack:
        position = stack.index(anchor)
        return stack[position - 1] if position > 0 else anchor
    return stack[0] if stack else "top level"


def count_processes(
    home: SandboxHome, command: list[str], env: dict[str, str] | None = None
) -> Counter[str] | None:
    """Count the programs a command starts, by name; None without strace."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    output = home.path / "bench-strace.txt"
    traced = [strace, "-f", "-qq", "-e", "trace=execve", "-o", str(output), *command]
    run = run_in_home(home, traced, user=RUN_USER, env=env)
    wait_idle(home, timeout=READY_TIMEOUT_SECONDS)
    if run.returncode != 0 or not output.exists():
        return None
    names: Counter[str] = Counter()
    for line in output.read_text(errors="replace").splitlines():
        match = re.search(r'execve\("([^"]+)"', line)
        if match and not re.search(r"= -1 E", line):
            names[match[1].rsplit("/", 1)[-1]] += 1
    output.unlink()
    return names


def process_start_seconds(home: SandboxHome) -> float:
    """Return what starting one small program (/bin/true) costs bash here."""
    loop = (
        f"start=$EPOCHREALTIME; for ((i = 0; i < {PROCESS_LOOP_COUNT}; i++)); "
        'do /bin/true; done; printf \'%s %s\\n\' "$start" "$EPOCHREALTIME"'
    )
    run = run_in_home(home, ["bash", "-c", loop], user=RUN_USER)
    start, end = (float(value) for value in run.stdout.split())
    return (end - start) / PROCESS_LOOP_COUNT


def helper_child_seconds(
    home: SandboxHome, command: list[str], env: dict[str, str] | None = None
) -> float | None:
    """Run git with GIT_TRACE2_PERF; return how long its credential helper ran.

    None when git started no credential helper.
    """
    perf = home.path / "bench-trace2.txt"
    run = run_in_home(
        home, command, user=RUN_USER, env={**(env or {}), "GIT_TRACE2_PERF": str(perf)}
    )
    if run.returncode != 0 or not perf.exists():
        raise BenchError(f"the traced git command failed: {run.stderr}")
    started: dict[tuple[str, str], bool] = {}
    total = None
    for line in perf.read_text(errors="replace").splitlines():
        fields = [part.strip() for part in line.split("|")]
        if len(fields) < 9:
            continue
        depth, event, detail = fields[1], fields[3], fields[8]
        child = detail.split(" ", 1)[0]
        if event == "child_start":
            started[(depth, child)] = "credential-helper" in detail
        elif event == "child_exit" and started.pop((depth, child), False):
            total = (total or 0.0) + float(fields[6])
    perf.unlink()
    return total


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
