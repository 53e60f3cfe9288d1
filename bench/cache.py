"""The bench cache: a wheelhouse and the baseline's Python, built once.

The cache lives under /var/tmp, like the sandbox's studio image, because
uid 1000 must read the wheelhouse and write the baseline's Python. Each
entry is complete once its marker file exists, so an interrupted build is
started again on the next run.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bootstrap.sandbox.image import IMAGE_REQUIREMENTS, find_system_python
from bootstrap.sandbox.runner import CAN_RUN_AS_STUDIO_USER, STUDIO_GID, STUDIO_UID

logger = logging.getLogger(__name__)

DEFAULT_CACHE = Path("/var/tmp/studio-bootstrap-bench")
CACHE_VARIABLE = "STUDIO_BOOTSTRAP_BENCH_CACHE"
COMPLETE_MARKER = ".complete"

# The helper that both the baseline and the sync install, at the version the
# sandbox's studio image pins.
HELPER_REQUIREMENT = next(
    r for r in IMAGE_REQUIREMENTS if r.startswith("git-remote-codecommit==")
)
# The dependency of git-remote-codecommit, which Studio images ship.
HELPER_DEPENDENCY = "botocore"
PIP_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class BenchCache:
    """Folders of the cache: generated repositories, wheels, the baseline's Python."""

    root: Path

    @classmethod
    def default(cls) -> BenchCache:
        root = Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE)
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        return cls(root)

    @property
    def repositories(self) -> Path:
        return self.root / "repositories"

    @property
    def wheelhouse(self) -> Path:
        return self.root / "wheelhouse"

    @property
    def container(self) -> Path:
        """The baseline's Python: a venv with botocore and no helper yet."""
        return self.root / "container-python"


def python_environment() -> dict[str, str]:
    """Return os.environ without Python, virtualenv and AWS variables."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith("AWS_")
    }
    environment["AWS_EC2_METADATA_DISABLED"] = "true"
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return environment


def run(command: list[str], environment: dict[str, str] | None = None) -> None:
    """Run a build command; raise RuntimeError with its output when it fails."""
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=environment or python_environment(),
        timeout=PIP_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {result.returncode}: "
            f"{result.stderr.strip()[-2000:]}"
        )


def ensure_wheelhouse(cache: BenchCache) -> Path:
    """Download the helper and its dependencies as wheels, once.

    The helper is published only as an sdist, so ``pip wheel`` builds it
    here; installs from the wheelhouse then need no index and no build.
    """
    folder = cache.wheelhouse
    if (folder / COMPLETE_MARKER).exists():
        return folder
    python = _system_python()
    shutil.rmtree(folder, ignore_errors=True)
    logger.info("building the wheelhouse in %s", folder)
    run(
        [
            *(str(python), "-m", "pip", "wheel", "--quiet"),
            *("--wheel-dir", str(folder), HELPER_REQUIREMENT),
        ]
    )
    _make_world_readable(folder)
    (folder / COMPLETE_MARKER).write_text(HELPER_REQUIREMENT + "\n")
    return folder


def ensure_container(cache: BenchCache) -> Path:
    """Build the baseline's Python once: botocore installed, the helper not.

    It plays the Python of a Studio Classic image, which has botocore but
    not git-remote-codecommit. It belongs to the Studio user, so that the
    baseline script can pip-install into it.
    """
    folder = cache.container
    if (folder / COMPLETE_MARKER).exists():
        return folder
    python = _system_python()
    wheelhouse = ensure_wheelhouse(cache)
    shutil.rmtree(folder, ignore_errors=True)
    logger.info("building the baseline's Python in %s", folder)
    run([str(python), "-m", "venv", str(folder)])
    run(
        [
            *(str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet"),
            *("--no-index", "--find-links", str(wheelhouse), HELPER_DEPENDENCY),
        ]
    )
    _make_world_readable(folder)
    if CAN_RUN_AS_STUDIO_USER:
        _chown_tree(folder, STUDIO_UID, STUDIO_GID)
    (folder / COMPLETE_MARKER).write_text(HELPER_DEPENDENCY + "\n")
    return folder


def remove_helper(container: Path) -> None:
    """Uninstall the helper from the baseline's Python, as a new container lacks it."""
    run(
        [
            *(str(container / "bin" / "python"), "-m", "pip", "uninstall"),
            *("--quiet", "--yes", HELPER_REQUIREMENT.split("==")[0]),
        ]
    )


def _system_python() -> Path:
    python = find_system_python()
    if python is None:
        raise RuntimeError(
            "no system Python with venv that every user can run: install "
            "python3-venv (the bench needs /usr/bin/python3 with venv and pip)"
        )
    return python


def _make_world_readable(root: Path) -> None:
    for folder, folders, files in os.walk(root):
        for name in [*folders, *files]:
            path = Path(folder) / name
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | 0o444 | (0o111 if mode & 0o100 else 0))
    root.chmod(0o755)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for folder, folders, files in os.walk(root):
        for name in [*folders, *files]:
            os.chown(Path(folder) / name, uid, gid, follow_symlinks=False)
