"""The "studio image" toolchain: git-remote-codecommit and the AWS CLI for uid 1000.

The development venv usually lives under /root (mode 0700), out of reach of
uid 1000. So a venv is built from a system Python that uid 1000 can run,
once per machine, under a world-readable folder of /var/tmp, named by a key
of the pinned versions. A file lock keeps parallel test runs from building
it twice.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bootstrap.sandbox.errors import StudioImageError

logger = logging.getLogger(__name__)

# The versions the project pins for the tools the lifecycle script calls.
IMAGE_REQUIREMENTS = ("git-remote-codecommit==1.17", "awscli==1.45.11")

# Bump when the layout of the image folder changes.
IMAGE_FORMAT = "1"

CACHE_FOLDER = Path("/var/tmp")
SYSTEM_PYTHONS = (Path("/usr/bin/python3"), Path("/usr/local/bin/python3"))
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_COMPLETE_MARKER = ".complete"
_PIP_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class StudioImage:
    """A built toolchain folder whose ``bin`` contains ``aws`` and the Git helper."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def path(self) -> str:
        """PATH for a run: the system folders first, then the image's ``bin``."""
        return f"{SYSTEM_PATH}:{self.bin}"


def world_executable(path: Path) -> bool:
    """Tell whether any user can run ``path``: it and its folders allow o+x."""
    try:
        resolved = path.resolve(strict=True)
    except OSError:
        return False
    for part in (resolved, *resolved.parents):
        if not part.stat().st_mode & stat.S_IXOTH:
            return False
    return True


@functools.cache
def find_system_python() -> Path | None:
    """Return a Python that every user can run and that has venv and ensurepip."""
    for candidate in SYSTEM_PYTHONS:
        if not world_executable(candidate):
            continue
        probe = subprocess.run(
            [str(candidate), "-c", "import venv, ensurepip"],
            capture_output=True,
            env=_python_environment(),
            check=False,
        )
        if probe.returncode == 0:
            return candidate
        logger.debug("%s lacks venv or ensurepip", candidate)
    return None


def image_key(python: Path) -> str:
    """Return a key of the Python version and the pinned requirements."""
    version = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        env=_python_environment(),
        check=True,
    ).stdout.strip()
    text = "\n".join([IMAGE_FORMAT, str(python), version, *IMAGE_REQUIREMENTS])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.cache
def studio_image() -> StudioImage:
    """Return the toolchain, building it first if this machine has none yet."""
    python = find_system_python()
    if python is None:
        raise StudioImageError(
            "no system Python with venv that every user can run: looked at "
            f"{', '.join(map(str, SYSTEM_PYTHONS))}; install python3-venv"
        )
    root = CACHE_FOLDER / f"studio-bootstrap-image-{image_key(python)}"
    lock_path = root.with_name(root.name + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / _COMPLETE_MARKER).exists():
            _build(python, root)
    return StudioImage(root)


def _build(python: Path, root: Path) -> None:
    logger.info("building the studio image toolchain in %s", root)
    # A folder without the marker is a build that did not finish.
    shutil.rmtree(root, ignore_errors=True)
    _run([str(python), "-m", "venv", str(root)])
    _run(
        [
            str(root / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-input",
            "--quiet",
            *IMAGE_REQUIREMENTS,
        ]
    )
    _make_world_readable(root)
    (root / _COMPLETE_MARKER).write_text("\n".join(IMAGE_REQUIREMENTS) + "\n")


def _run(command: list[str]) -> None:
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=_python_environment(),
        timeout=_PIP_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise StudioImageError(
            f"building the studio image failed: {' '.join(command)} exited with "
            f"{result.returncode}: {result.stderr.strip()[-2000:]}"
        )


def _make_world_readable(root: Path) -> None:
    for folder, folders, files in os.walk(root):
        for name in [*folders, *files]:
            path = Path(folder) / name
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod((mode | 0o444 | (0o111 if mode & 0o100 else 0)) & ~0o022)
    root.chmod(0o755)


def _python_environment() -> dict[str, str]:
    """Return os.environ without Python, virtualenv and AWS variables.

    pip's own settings (PIP_*, the machine's pip.conf) are kept because they
    set the package indexes of this machine.
    """
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith("AWS_")
    }
    environment["AWS_EC2_METADATA_DISABLED"] = "true"
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return environment
