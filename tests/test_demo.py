"""make demo: the whole story on the local stack, as a newcomer runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def processes_under(root: str) -> list[str]:
    """Command lines of processes that name a path under root."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if root in command:
            found.append(command)
    return found


def test_demo_runs_the_story() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GIT_"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    result = subprocess.run(
        [sys.executable, "-m", "bootstrap.sandbox.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Commit 4: add results" in result.stdout
    assert "0 mutating" in result.stdout
    assert result.stdout.count("equals its first description: True") == 2
    assert result.stdout.count("3 domains, 0 failed") == 2
    assert result.stdout.count("settings as before register: True") == 3
    assert "(VpcOnly): git-remote-codecommit installs only from PyPI" in result.stdout
    if os.geteuid() == 0:
        assert "interfaces: lo\n" in result.stdout
        assert "default route: False" in result.stdout
        assert "installed git-remote-codecommit from s3" in result.stdout
        assert "vpc-repo: cloned into ~/vpc-repo" in result.stdout
    match = re.search(r"live under (\S+), removed at the end", result.stdout)
    assert match is not None
    assert processes_under(match.group(1)) == []
    assert not Path(match.group(1)).exists()
