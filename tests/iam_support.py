"""Shared helpers of the IAM and doctor tests: configs, profiles and stacks.

Each test names its own domain id, role and repository, so that stacks,
roles and moto's records of inline policies never collide between tests
that share the session's local stack.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomllib
from botocore.exceptions import ClientError

from bootstrap.cli import main
from bootstrap.config import parse_config
from bootstrap.sandbox.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bootstrap.example.toml"
ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
REGION = "eu-west-1"
PROFILE_A = "repo-admin"
PROFILE_B = "domain-admin"
_numbers = itertools.count(1)


def example_data() -> dict[str, Any]:
    with EXAMPLE.open("rb") as handle:
        return tomllib.load(handle)


@dataclass
class Names:
    """Names that no other test uses: domain id, role and repository."""

    domain_id: str
    role: str
    repository: str

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT_A}:role/{self.role}"


def unique_names(kind: str) -> Names:
    number = next(_numbers)
    return Names(
        f"d-{kind}{number:04d}",
        f"{kind.capitalize()}Role{number}",
        f"{kind}-repo-{number}",
    )


def config_data(
    names: Names, execution_roles: list[str] | None, **repository: Any
) -> dict[str, Any]:
    """The example config for one repository, role and domain."""
    data = example_data()
    data["domain"]["id"] = names.domain_id
    if execution_roles is None:
        data["domain"].pop("execution_roles")
    else:
        data["domain"]["execution_roles"] = execution_roles
    data["repositories"][0].update(
        name=names.repository, path=names.repository, role=names.role
    )
    data["repositories"][0].update(repository)
    return data


def write_config(folder: Path, data: dict[str, Any]) -> Path:
    """Write a config as TOML for the CLI, quoting only what these tests use."""
    parse_config(data)  # fail early on a broken test config
    lines: list[str] = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    arrays = {
        k: v for k, v in data.items() if isinstance(v, list) and k == "repositories"
    }
    for key, value in data.items():
        if key not in tables and key not in arrays:
            lines.append(f"{key} = {_toml(value)}")
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
    for item in arrays.get("repositories", []):
        lines.append("[[repositories]]")
        lines += [f"{key} = {_toml(value)}" for key, value in item.items()]
    path = folder / "bootstrap.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    return str(value)


def write_profiles(stack: LocalStack, path: Path) -> None:
    """Write a credentials file with an admin profile for each account."""
    sections = []
    for profile, account in ((PROFILE_A, ACCOUNT_A), (PROFILE_B, ACCOUNT_B)):
        credentials = stack.admin_credentials(account)
        sections.append(
            f"[{profile}]\n"
            f"aws_access_key_id = {credentials['AWS_ACCESS_KEY_ID']}\n"
            f"aws_secret_access_key = {credentials['AWS_SECRET_ACCESS_KEY']}\n"
            f"aws_session_token = {credentials['AWS_SESSION_TOKEN']}\n"
        )
    path.write_text("\n".join(sections))


@pytest.fixture
def admin_profiles(
    local_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Profiles repo-admin (account A) and domain-admin (account B), and no others."""
    credentials = tmp_path / "aws-credentials"
    write_profiles(local_stack, credentials)
    config = tmp_path / "aws-config"
    config.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)


def account_options(stack: LocalStack) -> list[str]:
    return [
        "--profile-a",
        PROFILE_A,
        "--profile-b",
        PROFILE_B,
        "--endpoint-url",
        stack.endpoint_url,
    ]


def run_iam(config: Path, stack: LocalStack, *options: str) -> int:
    output = config.parent / "iam"
    return main(
        [
            "--config",
            str(config),
            "iam",
            "--output",
            str(output),
            *account_options(stack),
            *options,
        ]
    )


@dataclass
class Stacks:
    """Stacks a test deployed, deleted when it ends."""

    stack: LocalStack
    names: list[tuple[str, str]] = field(default_factory=list)
    managed_policies: list[tuple[str, str]] = field(default_factory=list)

    def add_domain(self, domain_id: str, prefix: str = "studio-bootstrap") -> None:
        base = f"{prefix}-{domain_id}"
        self.names += [
            (ACCOUNT_A, f"{base}-repository-access"),
            (ACCOUNT_B, f"{base}-execution-access"),
            (ACCOUNT_B, f"{base}-register-admin"),
        ]
        # NOTE: moto 5.2.1 does not delete a stack's AWS::IAM::ManagedPolicy.
        policy = f"arn:aws:iam::{ACCOUNT_B}:policy/{base}-register-admin"
        self.managed_policies.append((ACCOUNT_B, policy))

    def delete(self) -> None:
        for account, name in self.names:
            cloudformation = self.stack.session(account).client("cloudformation")
            with contextlib.suppress(ClientError):
                cloudformation.delete_stack(StackName=name)
        for account, arn in self.managed_policies:
            client = self.stack.session(account).client("iam")
            with contextlib.suppress(ClientError):
                client.delete_policy(PolicyArn=arn)


@pytest.fixture
def stacks(local_stack: LocalStack) -> Iterator[Stacks]:
    deployed = Stacks(local_stack)
    yield deployed
    deployed.delete()
