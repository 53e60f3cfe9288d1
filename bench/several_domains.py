"""``register`` on one config that names several domains, with and without --jobs.

Local domains spread over two accounts and two regions, each with a few
user profiles. ``python -m bootstrap register`` runs in its own process, as an
admin runs it: the AWS config file has one admin profile per account and the
environment contains no credentials. Calls are counted at the local SageMaker.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.control_plane import COMMAND_TIMEOUT_SECONDS, ControlPlaneError
from bench.timing import Samples, timed
from bootstrap import studio
from bootstrap.sandbox import sagemaker
from bootstrap.sandbox.aws import REPOSITORY_ACCOUNT
from bootstrap.sandbox.stack import LocalStack

logger = logging.getLogger(__name__)

ACCOUNTS = ("222222222222", "333333333333")
REGIONS = ("eu-west-1", "us-east-1")
DOMAIN_COUNT = 12
PROFILES_PER_DOMAIN = 5
# How long a local domain stays Updating after UpdateDomain. 5 s is an
# estimate, not a duration measured on AWS. It makes the wait for InService,
# not the requests, fill most of each domain's time, and that wait is what
# --jobs overlaps.
UPDATE_DELAY_SECONDS = 5.0
# --jobs values, each timed on fresh domains. 1 is the sequential run.
JOBS = (1, 4, 12)
ATTACH_RUNS = 3
UNCHANGED_RUNS = 3
UNCHANGED_LABEL = "no change"
# The first wait between two DescribeDomain calls of register's
# wait_in_service (bootstrap/register.py), which doubles each time.
FIRST_POLL_SECONDS = 0.5

_DOMAIN_SETTINGS = {
    "JupyterServerAppSettings": {"DefaultResourceSpec": {"InstanceType": "system"}},
    "KernelGatewayAppSettings": {
        "DefaultResourceSpec": {"InstanceType": "ml.t3.medium"}
    },
    "JupyterLabAppSettings": {"DefaultResourceSpec": {"InstanceType": "ml.t3.medium"}},
    "CodeEditorAppSettings": {"DefaultResourceSpec": {"InstanceType": "ml.t3.medium"}},
}


@dataclass(frozen=True)
class LocalDomain:
    """One domain of the benchmark and where it lives."""

    name: str
    domain_id: str
    account: str
    region: str


@dataclass(frozen=True)
class DomainsRun:
    """One register run over every domain, with the requests the endpoint counted."""

    label: str
    jobs: int
    seconds: float
    mutating: dict[str, int]
    reads: dict[str, int]
    # Domains whose JupyterLab default lifecycle configuration is set after the run.
    attached: int

    @property
    def mutating_total(self) -> int:
        return sum(self.mutating.values())

    @property
    def reads_total(self) -> int:
        return sum(self.reads.values())


@dataclass
class SeveralDomains:
    """Results of the several-domains benchmark."""

    domains: int
    profiles_per_domain: int
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    update_delay: float
    # Deleting every SageMaker resource and creating the domains again.
    setup: Samples = field(default_factory=Samples)
    # Wall time of a register that attaches to every domain, by --jobs.
    attach: dict[int, Samples] = field(default_factory=dict)
    unchanged: Samples = field(default_factory=Samples)
    runs: list[DomainsRun] = field(default_factory=list)

    @property
    def unchanged_runs(self) -> list[DomainsRun]:
        return [run for run in self.runs if run.label == UNCHANGED_LABEL]

    def first_run(self, jobs: int) -> DomainsRun:
        """Return the first attaching run with ``jobs``."""
        return next(
            r for r in self.runs if r.jobs == jobs and r.label != UNCHANGED_LABEL
        )

    def ideal_fraction(self, jobs: int) -> float:
        """Return the fraction of the sequential time if only the waits overlapped."""
        return math.ceil(self.domains / jobs) / self.domains


def first_in_service_poll(delay: float) -> float:
    """Return the seconds after UpdateDomain at which register first reads InService.

    This ignores the time that the requests themselves take.
    """
    elapsed, wait = 0.0, FIRST_POLL_SECONDS
    while elapsed < delay:
        elapsed += wait
        wait = min(wait * 2, 10.0)
    return elapsed


def measure_alone() -> SeveralDomains:
    """Start a local stack and run only this benchmark, in a temporary folder."""
    with (
        LocalStack() as stack,
        tempfile.TemporaryDirectory(prefix="bench-domains-") as folder,
    ):
        return measure_several_domains(stack, Path(folder))


def measure_several_domains(stack: LocalStack, folder: Path) -> SeveralDomains:
    """Time register on fresh domains for each --jobs value, then with no change.

    Each attaching run starts from domains created just before it, so every
    run creates the lifecycle configurations and updates every domain. The
    modes alternate within each round, so that a change in the machine's
    load falls on all of them.
    """
    previous = sagemaker.set_update_delay(UPDATE_DELAY_SECONDS)
    try:
        return _measure(stack, folder)
    finally:
        sagemaker.set_update_delay(previous)


def _measure(stack: LocalStack, folder: Path) -> SeveralDomains:
    folder.mkdir(parents=True, exist_ok=True)
    result = SeveralDomains(
        domains=DOMAIN_COUNT,
        profiles_per_domain=PROFILES_PER_DOMAIN,
        accounts=ACCOUNTS,
        regions=REGIONS,
        update_delay=sagemaker.update_delay(),
        attach={jobs: Samples() for jobs in JOBS},
    )
    environment = _admin_environment(stack, folder)
    config = folder / "bootstrap-domains.toml"
    domains: list[LocalDomain] = []
    for round_number in range(1, ATTACH_RUNS + 1):
        for jobs in JOBS:
            seconds, domains = timed(lambda: _create_domains(stack))
            result.setup.add(seconds)
            _write_config(config, domains)
            run = _register(stack, folder, config, environment, domains, jobs)
            logger.info(
                "register --jobs %d on %d domains (round %d): %.2f s, %d attached",
                jobs,
                len(domains),
                round_number,
                run.seconds,
                run.attached,
            )
            if run.attached != len(domains):
                raise ControlPlaneError(
                    f"register --jobs {jobs} attached to {run.attached} of "
                    f"{len(domains)} domains"
                )
            result.runs.append(run)
            result.attach[jobs].add(run.seconds)

    for _ in range(UNCHANGED_RUNS):
        run = _register(stack, folder, config, environment, domains, 1, UNCHANGED_LABEL)
        logger.info(
            "register with no change on %d domains: %.2f s, %d mutating calls",
            len(domains),
            run.seconds,
            run.mutating_total,
        )
        result.runs.append(run)
        result.unchanged.add(run.seconds)
    return result


def _create_domains(stack: LocalStack) -> list[LocalDomain]:
    """Delete every SageMaker resource, then create the domains and their profiles.

    The domains are spread over every account and region in turn.
    """
    sagemaker.reset()
    places = [(account, region) for account in ACCOUNTS for region in REGIONS]
    domains = []
    for index in range(DOMAIN_COUNT):
        account, region = places[index % len(places)]
        client = stack.session(account, region).client("sagemaker")
        name = f"team-{index + 1:02d}"
        domain_id = _create_domain(client, name, _execution_role(account))
        for profile in range(PROFILES_PER_DOMAIN):
            client.create_user_profile(
                DomainId=domain_id, UserProfileName=f"user-{profile + 1:02d}"
            )
        domains.append(LocalDomain(name, domain_id, account, region))
    return domains


def _create_domain(client: Any, name: str, execution_role: str) -> str:
    response = client.create_domain(
        DomainName=name,
        AuthMode="IAM",
        DefaultUserSettings={"ExecutionRole": execution_role, **_DOMAIN_SETTINGS},
        SubnetIds=["subnet-0123456789abcdef0"],
        VpcId="vpc-0123456789abcdef0",
    )
    domain_id = str(response["DomainId"])
    status = client.describe_domain(DomainId=domain_id)["Status"]
    if status != "InService":
        raise ControlPlaneError(f"new domain {domain_id} is {status}, not InService")
    return domain_id


def _execution_role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/StudioExecutionRole"


def _admin_profile(account: str) -> str:
    return f"admin-{account}"


def _write_config(path: Path, domains: list[LocalDomain]) -> None:
    """Write a config with one shared repository and a [[domains]] table each."""
    lines = [
        'prefix = "studio-bootstrap"',
        "",
        "[[repositories]]",
        'name = "example-repo"',
        f'account_id = "{REPOSITORY_ACCOUNT}"',
        'role = "CrossAccountRepoRole"',
    ]
    for domain in domains:
        lines += [
            "",
            "[[domains]]",
            f'name = "{domain.name}"',
            f'id = "{domain.domain_id}"',
            f'region = "{domain.region}"',
            f'profile = "{_admin_profile(domain.account)}"',
            f'execution_roles = ["{_execution_role(domain.account)}"]',
        ]
    path.write_text("\n".join(lines) + "\n")


def _admin_environment(stack: LocalStack, folder: Path) -> dict[str, str]:
    """Return an environment whose AWS config file has one admin profile per account.

    This machine's AWS, Git and proxy settings are left out, and the
    environment itself contains no credentials.
    """
    lines = []
    for account in ACCOUNTS:
        credentials = stack.admin_credentials(account)
        lines += [
            f"[profile {_admin_profile(account)}]",
            f"aws_access_key_id = {credentials['AWS_ACCESS_KEY_ID']}",
            f"aws_secret_access_key = {credentials['AWS_SECRET_ACCESS_KEY']}",
            f"aws_session_token = {credentials['AWS_SESSION_TOKEN']}",
            "",
        ]
    config_file = folder / "aws-config"
    config_file.write_text("\n".join(lines))
    empty = folder / "empty-aws-credentials"
    empty.write_text("")
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "GIT_")) and not name.lower().endswith("_proxy")
    }
    environment.update(
        AWS_CONFIG_FILE=str(config_file),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return environment


def _register(
    stack: LocalStack,
    folder: Path,
    config: Path,
    environment: dict[str, str],
    domains: list[LocalDomain],
    jobs: int,
    label: str = "",
) -> DomainsRun:
    """Run register in its own process and count its requests and attachments."""
    command = [sys.executable, "-m", "bootstrap", "--config", str(config)]
    command += ["register", "--endpoint-url", stack.endpoint_url]
    command += ["--jobs", str(jobs)]
    sagemaker.reset_call_log()
    seconds, completed = timed(
        lambda: subprocess.run(
            command,
            cwd=folder,
            env=environment,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
    )
    log = sagemaker.call_log()
    if completed.returncode != 0:
        raise ControlPlaneError(
            f"register --jobs {jobs} on {len(domains)} domains exited "
            f"{completed.returncode}: {completed.stderr[-2000:]}"
        )
    return DomainsRun(
        label or f"--jobs {jobs}",
        jobs,
        seconds,
        log.mutating,
        log.reads,
        _count_attached(stack, domains),
    )


def _count_attached(stack: LocalStack, domains: list[LocalDomain]) -> int:
    """Count the domains whose JupyterLab default lifecycle configuration is set.

    The domains are created without one, so a set default is register's.
    """
    attached = 0
    for domain in domains:
        client = stack.session(domain.account, domain.region).client("sagemaker")
        described = client.describe_domain(DomainId=domain.domain_id)
        settings = described["DefaultUserSettings"].get("JupyterLabAppSettings")
        if studio.built_in_of(settings) is not None:
            attached += 1
    return attached
