"""Facts about the machine and the code that a benchmark ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bootstrap.sandbox.image import studio_image


@dataclass(frozen=True)
class Machine:
    """Hardware, system and tool versions, as printed in the report."""

    cpu: str
    cores: int
    memory_gib: float
    system: str
    kernel: str
    git: str
    bash: str
    python: str
    studio_python: str
    commit: str


def describe_machine(root: Path) -> Machine:
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        memory_gib=_memory_kib() / (1024 * 1024),
        system=_os_name(),
        kernel=platform.release(),
        git=_output(["git", "--version"]).removeprefix("git version "),
        bash=_output(["bash", "-c", "echo $BASH_VERSION"]),
        python=platform.python_version(),
        studio_python=_output(
            [
                str(studio_image().bin / "python"),
                "-c",
                "import platform; print(platform.python_version())",
            ]
        ),
        commit=_output(["git", "-C", str(root), "describe", "--always", "--dirty"]),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_kib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip('"')
    except OSError:
        pass
    return platform.system()


def _output(command: list[str]) -> str:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"
