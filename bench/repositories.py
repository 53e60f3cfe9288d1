"""Generated Git repositories of a given size, with history, cached on disk.

Each repository has COMMITS commits on ``main``; each commit adds one file
of pseudo-random bytes and appends a line to ``CHANGES.md``. Random bytes do
not compress, so the pack that a clone downloads is as large as the
repository's nominal size. A fixed seed makes every machine generate the
same objects, and ``git fast-import`` writes them in one pass.
"""

from __future__ import annotations

import logging
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.cache import COMPLETE_MARKER, BenchCache
from bootstrap.sandbox.codecommit import LocalCodeCommit

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
COMMITS = 50
SEED = 20240101
# Bump when the generated content changes, so that old caches are not reused.
GENERATOR_VERSION = "1"
FIRST_COMMIT_TIME = 1704067200  # 2024-01-01T00:00:00Z


@dataclass(frozen=True)
class CachedRepository:
    """A generated bare repository: its nominal size and its real pack size."""

    size_mib: int
    path: Path

    @property
    def name(self) -> str:
        return f"bench-{self.size_mib}mib"

    @property
    def pack_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path / "objects").rglob("*.pack"))

    @property
    def label(self) -> str:
        return f"{self.size_mib} MiB"


def ensure_repository(cache: BenchCache, size_mib: int) -> CachedRepository:
    """Return the cached repository of this size, generating it the first time."""
    path = cache.repositories / f"v{GENERATOR_VERSION}-{size_mib}mib.git"
    repository = CachedRepository(size_mib, path)
    if (path / COMPLETE_MARKER).exists():
        return repository
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("generating a %d MiB repository in %s", size_mib, path)
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(path))
    _fast_import(path, size_mib * MIB)
    (path / COMPLETE_MARKER).write_text(f"{size_mib} MiB, {COMMITS} commits\n")
    return repository


def publish(
    codecommit: LocalCodeCommit, repository: CachedRepository, role_arn: str
) -> None:
    """Serve a cached repository from the local CodeCommit endpoint.

    The endpoint's empty repository is replaced by a clone of the cache,
    whose objects are hard links when both are on one file system.
    """
    served = codecommit.create_repository(repository.name, allowed_role_arns=[role_arn])
    shutil.rmtree(served.path)
    _git("clone", "--quiet", "--bare", str(repository.path), str(served.path))


def read_packs(repository: CachedRepository) -> None:
    """Read every pack once, so that the first timed clone finds them in memory."""
    for pack in (repository.path / "objects").rglob("*.pack"):
        with pack.open("rb") as handle:
            while handle.read(MIB):
                pass


def _fast_import(path: Path, size: int) -> None:
    generator = random.Random(SEED + size)
    per_commit = size // COMMITS
    process = subprocess.Popen(
        ["git", "-C", str(path), "fast-import", "--quiet"],
        stdin=subprocess.PIPE,
        env=_git_environment(),
    )
    assert process.stdin is not None
    stream = process.stdin
    changes = b""
    for index in range(COMMITS):
        data = generator.randbytes(per_commit)
        changes += b"- part %03d\n" % index
        message = b"Add data/part-%03d.bin\n" % index
        stream.write(b"blob\nmark :%d\ndata %d\n" % (3 * index + 1, len(data)))
        stream.write(data + b"\n")
        stream.write(b"blob\nmark :%d\ndata %d\n" % (3 * index + 2, len(changes)))
        stream.write(changes + b"\n")
        stream.write(b"commit refs/heads/main\nmark :%d\n" % (3 * index + 3))
        stream.write(
            b"committer Bench <bench@example.invalid> %d +0000\n"
            % (FIRST_COMMIT_TIME + index * 3600)
        )
        stream.write(b"data %d\n%s" % (len(message), message))
        if index:
            stream.write(b"from :%d\n" % (3 * index))
        stream.write(b"M 100644 :%d data/part-%03d.bin\n" % (3 * index + 1, index))
        stream.write(b"M 100644 :%d CHANGES.md\n\n" % (3 * index + 2))
    stream.close()
    if process.wait() != 0:
        raise RuntimeError(f"git fast-import failed for {path}")


def _git(*arguments: str) -> None:
    result = subprocess.run(
        ["git", *arguments],
        capture_output=True,
        text=True,
        env=_git_environment(),
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"git {arguments[0]} failed with {result.returncode}: {result.stderr}"
        )


def _git_environment() -> dict[str, str]:
    """Return an environment free of the developer's Git settings."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
