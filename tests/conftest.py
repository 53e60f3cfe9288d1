"""Fixtures of the local Studio sandbox: one stack per test session."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from bootstrap.sandbox.runner import SandboxHome
from bootstrap.sandbox.stack import LocalStack

CONTAINER_AUTHORIZATION_TOKEN = "sandbox-container-token"
EXAMPLE_REPO = "example-repo"
EXAMPLE_README = "# example-repo\n\nCloned into every Studio home.\n"


@pytest.fixture(scope="session", autouse=True)
def isolated_environment() -> Iterator[None]:
    """Hide the developer's AWS, Git and proxy settings from in-process clients."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("AWS_", "GIT_")) or name.lower().endswith("_proxy"):
                patch.delenv(name)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    with LocalStack(authorization_token=CONTAINER_AUTHORIZATION_TOKEN) as stack:
        yield stack


@pytest.fixture(scope="session")
def execution_role(local_stack: LocalStack) -> str:
    return local_stack.create_execution_role()


@pytest.fixture(scope="session")
def repo_role(local_stack: LocalStack, execution_role: str) -> str:
    return local_stack.create_repo_role(trusted_arns=[execution_role])


@pytest.fixture(scope="session")
def example_readme() -> str:
    return EXAMPLE_README


@pytest.fixture(scope="session")
def example_repo(local_stack: LocalStack, repo_role: str, example_readme: str) -> str:
    """A repository in account A that the repository role may read and push."""
    codecommit = local_stack.codecommit
    codecommit.create_repository(EXAMPLE_REPO, allowed_role_arns=[repo_role])
    codecommit.commit(EXAMPLE_REPO, {"README.md": example_readme}, "Initial commit")
    return EXAMPLE_REPO


@pytest.fixture
def sandbox_home(
    local_stack: LocalStack, request: pytest.FixtureRequest
) -> Iterator[SandboxHome]:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-")[:64]
    home = SandboxHome.create(local_stack, name)
    yield home
    home.remove()
