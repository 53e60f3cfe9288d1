"""``register`` against the local SageMaker: API calls and wall time at scale.

Calls are counted at the endpoint (``bootstrap.sandbox.sagemaker.call_log``),
not in our code. ``register`` and the reference client each run in their
own Python process, as an admin runs them, while moto serves them from
this one.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.configs import EXAMPLE, ROOT
from bench.timing import Samples, timed
from bootstrap.sandbox import sagemaker
from bootstrap.sandbox.aws import DEFAULT_REGION, DOMAIN_ACCOUNT
from bootstrap.sandbox.stack import LocalStack

logger = logging.getLogger(__name__)

USER_PROFILES = 1000
# Every fifth user profile has settings of its own that keep the domain's
# JupyterServer and KernelGateway scripts from running for it.
OVERRIDE_EVERY = 5
SETUP_THREADS = 8
ATTACH_RUNS = 5
UNCHANGED_RUNS = 5
COMMAND_TIMEOUT_SECONDS = 300

INSTANCE_TYPES = {
    "JupyterServerAppSettings": "system",
    "KernelGatewayAppSettings": "ml.t3.medium",
    "JupyterLabAppSettings": "ml.t3.medium",
    "CodeEditorAppSettings": "ml.t3.medium",
}


class ControlPlaneError(RuntimeError):
    """Raised when register or the reference client fails during the benchmark."""


@dataclass(frozen=True)
class RegisterCalls:
    """The SageMaker requests of one register run, as the endpoint counts them."""

    label: str
    seconds: float
    mutating: dict[str, int]
    reads: dict[str, int]
    # "done: update user NAME" lines that register printed, and distinct names.
    user_update_lines: int = 0
    users_updated: int = 0

    @property
    def mutating_total(self) -> int:
        return sum(self.mutating.values())

    @property
    def reads_total(self) -> int:
        return sum(self.reads.values())


@dataclass
class ControlPlane:
    """Results of the control-plane benchmark."""

    profiles: int
    overriding: int
    update_delay: float
    setup_seconds: float = 0.0
    calls: list[RegisterCalls] = field(default_factory=list)
    attach: Samples = field(default_factory=Samples)
    unchanged: Samples = field(default_factory=Samples)
    reference: Samples = field(default_factory=Samples)


def measure_control_plane(
    stack: LocalStack, execution_role: str, repo_role: str, folder: Path
) -> ControlPlane:
    """Build a domain of 1,000 user profiles, then time register and the reference.

    Register runs alternate between two configs that differ in the branch, so
    that each run after the first attaches a new version everywhere.
    """
    sagemaker.reset()
    client = stack.session(DOMAIN_ACCOUNT).client("sagemaker")
    result = ControlPlane(
        profiles=USER_PROFILES,
        overriding=USER_PROFILES // OVERRIDE_EVERY,
        update_delay=sagemaker.update_delay(),
    )
    result.setup_seconds, domain_id = timed(
        lambda: _create_domain(client, execution_role)
    )
    configs = [
        _write_config(folder, "a", domain_id, repo_role, branch=None),
        _write_config(folder, "b", domain_id, repo_role, branch="main"),
    ]
    environment = _admin_environment(stack, folder)

    def register(config: Path, label: str) -> float:
        sagemaker.reset_call_log()
        seconds, output = timed(lambda: _register(stack, config, environment))
        log = sagemaker.call_log()
        updates = [line for line in output.splitlines() if "done: update user " in line]
        result.calls.append(
            RegisterCalls(
                label, seconds, log.mutating, log.reads, len(updates), len(set(updates))
            )
        )
        logger.info("register (%s): %.2f s, %s", label, seconds, log)
        return seconds

    def reference() -> None:
        seconds, _ = timed(lambda: _list_and_describe(stack, domain_id, environment))
        result.reference.add(seconds)
        logger.info("list and describe: %.2f s", seconds)

    result.attach.add(register(configs[0], "first register"))
    reference()
    result.unchanged.add(register(configs[0], "re-register, no change"))
    result.attach.add(register(configs[1], "config change"))
    reference()
    for index in range(2, ATTACH_RUNS):
        result.attach.add(register(configs[index % 2], "config change"))
        reference()
    last = configs[(ATTACH_RUNS - 1) % 2]
    for _ in range(1, UNCHANGED_RUNS):
        result.unchanged.add(register(last, "re-register, no change"))
    return result


def _create_domain(client: Any, execution_role: str) -> str:
    """Create the domain, its team scripts and the user profiles; return its id."""
    team = {
        app_type: client.create_studio_lifecycle_config(
            StudioLifecycleConfigName=f"team-tools-{app_type.lower()}",
            StudioLifecycleConfigContent=base64.b64encode(
                b"#!/bin/bash\necho team tools\n"
            ).decode(),
            StudioLifecycleConfigAppType=app_type,
        )["StudioLifecycleConfigArn"]
        for app_type in ("JupyterServer", "KernelGateway")
    }
    settings = {
        key: {"DefaultResourceSpec": {"InstanceType": instance_type}}
        for key, instance_type in INSTANCE_TYPES.items()
    }
    domain_id = str(
        client.create_domain(
            DomainName="bench",
            AuthMode="IAM",
            DefaultUserSettings={"ExecutionRole": execution_role, **settings},
            SubnetIds=["subnet-0123456789abcdef0"],
            VpcId="vpc-0123456789abcdef0",
        )["DomainId"]
    )
    _wait_in_service(client, domain_id)

    def create_profile(index: int) -> None:
        user_settings: dict[str, Any] = {}
        if index % OVERRIDE_EVERY == 0:
            user_settings = {
                "JupyterServerAppSettings": {
                    "LifecycleConfigArns": [team["JupyterServer"]]
                },
                "KernelGatewayAppSettings": {
                    "LifecycleConfigArns": [team["KernelGateway"]]
                },
            }
        client.create_user_profile(
            DomainId=domain_id,
            UserProfileName=f"user-{index:04d}",
            UserSettings=user_settings,
        )

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        list(pool.map(create_profile, range(USER_PROFILES)))
    return domain_id


def _wait_in_service(client: Any, domain_id: str) -> None:
    deadline = time.monotonic() + 30
    while client.describe_domain(DomainId=domain_id)["Status"] != "InService":
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"domain {domain_id} not InService after 30 s")
        time.sleep(0.02)


def _write_config(
    folder: Path, name: str, domain_id: str, role: str, branch: str | None
) -> Path:
    text = EXAMPLE.read_text().replace("d-xxxxxxxxxxxx", domain_id)
    text = text.replace('role = "CrossAccountRepoRole"', f'role = "{role}"')
    if branch is not None:
        text = text.replace('# branch = "main"', f'branch = "{branch}"')
    path = folder / f"bootstrap-{name}.toml"
    path.write_text(text)
    return path


def _admin_environment(stack: LocalStack, folder: Path) -> dict[str, str]:
    """Return the environment of an admin of account B, without this machine's AWS."""
    empty = folder / "empty-aws-config"
    empty.write_text("")
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "GIT_")) and not name.lower().endswith("_proxy")
    }
    environment.update(stack.admin_credentials(DOMAIN_ACCOUNT))
    environment.update(
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_DEFAULT_REGION=DEFAULT_REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return environment


def _register(stack: LocalStack, config: Path, environment: dict[str, str]) -> str:
    command = [sys.executable, "-m", "bootstrap", "--config", str(config)]
    command += ["register", "--endpoint-url", stack.endpoint_url]
    return _run(command, environment)


def _list_and_describe(
    stack: LocalStack, domain_id: str, environment: dict[str, str]
) -> str:
    command = [sys.executable, "-m", "bench.list_profiles"]
    command += ["--endpoint-url", stack.endpoint_url, "--domain-id", domain_id]
    return _run(command, environment)


def _run(command: list[str], environment: dict[str, str]) -> str:
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise ControlPlaneError(
            f"{' '.join(command[1:4])} exited {result.returncode}: "
            f"{result.stderr[-2000:]}"
        )
    return result.stdout
