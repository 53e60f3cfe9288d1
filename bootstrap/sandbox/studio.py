"""App starts of the local SageMaker, run in sandbox homes as Studio runs them.

Studio Classic gives each user one home on the domain's EFS, which the
JupyterServer app (uid 1000) and KernelGateway apps (root) share. Studio
gives each space a home of its own on an EBS volume. CreateApp on the local
SageMaker calls :meth:`StudioApps.start`, which runs the resolved lifecycle
scripts in that home, in order, and returns their exit statuses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from bootstrap.sandbox import sagemaker
from bootstrap.sandbox.runner import SandboxHome, run_lifecycle, wait_idle
from bootstrap.sandbox.stack import LocalStack

logger = logging.getLogger(__name__)

CLASSIC_APP_TYPES = ("JupyterServer", "KernelGateway")


class StudioApps:
    """Runs lifecycle scripts of app starts in per-user and per-space homes."""

    def __init__(self, stack: LocalStack, user: str | None = None) -> None:
        self.stack = stack
        # None runs each app as its Studio user; "root" runs every app as root.
        self.user = user
        self.homes: dict[tuple[str, str], SandboxHome] = {}
        self.outputs: list[str] = []
        self._scripts = stack.root / "app-scripts"
        self._scripts.mkdir(exist_ok=True)
        self._scripts.chmod(0o755)
        self._count = 0

    def __enter__(self) -> StudioApps:
        self._previous = sagemaker.set_app_start_hook(self.start)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sagemaker.set_app_start_hook(self._previous)
        for home in self.homes.values():
            home.remove()

    def home(self, domain_id: str, owner: str) -> SandboxHome:
        """Return the home of a Classic user or a Studio space, creating it."""
        key = (domain_id, owner)
        if key not in self.homes:
            name = re.sub(r"[^A-Za-z0-9._-]", "-", f"{domain_id}-{owner}")[:64]
            self.homes[key] = SandboxHome.create(self.stack, name)
        return self.homes[key]

    def home_of(self, start: sagemaker.AppStart) -> SandboxHome:
        if start.app_type in CLASSIC_APP_TYPES or start.space_name is None:
            owner = f"user-{start.user_profile_name}"
        else:
            owner = f"space-{start.space_name}"
        return self.home(start.domain_id, owner)

    def start(self, start: sagemaker.AppStart) -> Sequence[int]:
        """Run the app's scripts in order; stop at the first that fails."""
        home = self.home_of(start)
        statuses = []
        for script in start.scripts:
            self._count += 1
            path = self._scripts / f"{self._count}-{script.arn.rsplit('/', 1)[-1]}.sh"
            path.write_bytes(script.script)
            path.chmod(0o644)
            result = run_lifecycle(path, home, app_type=start.app_type, user=self.user)
            self.outputs.append(result.stdout + result.stderr)
            logger.debug(
                "%s ran %s: exit %s", start.app_name, script.arn, result.returncode
            )
            statuses.append(result.returncode)
            if result.returncode != 0:
                break
        return statuses

    def wait(self, timeout: float = 120.0) -> None:
        """Wait until the background work of every home has finished."""
        for home in self.homes.values():
            wait_idle(home, timeout=timeout)

    def path(self, domain_id: str, owner: str, relative: str) -> Path:
        return self.home(domain_id, owner).path / relative
