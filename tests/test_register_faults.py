"""register and unregister meeting AWS errors part-way, on the local SageMaker.

Whatever fails, the domain is never left half-attached (a default missing
from its list, or an ARN of ours that names no LCC), the output names what
was done, and a re-run finishes the job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_register import (  # the fixtures are shared with these tests
    admin_env,
    clean_sagemaker,
    cli,
    client,
    config,
    domain,
)

from bootstrap import studio
from bootstrap.sandbox import sagemaker
from bootstrap.sandbox.stack import LocalStack

__all__ = ["admin_env", "clean_sagemaker", "client", "config", "domain"]

OPERATIONS = ["CreateStudioLifecycleConfig", "UpdateDomain", "UpdateUserProfile"]
CODES = [
    "ResourceInUse",
    "ResourceNotFound",
    "ValidationException",
    "AccessDeniedException",
]
# Throttling goes through botocore's retries with backoff first, which takes
# seconds, so it is tried on one operation of each kind only.
FAULTS = [(operation, code) for operation in OPERATIONS for code in CODES]
FAULTS += [
    ("UpdateDomain", "ThrottlingException"),
    ("ListUserProfiles", "ThrottlingException"),
]


def assert_consistent(client: Any, domain_id: str) -> None:
    """Check that every default is listed and every ARN of ours exists."""
    existing = {
        item["StudioLifecycleConfigArn"]
        for item in client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"]
    }
    description = client.describe_domain(DomainId=domain_id)
    objects = [description.get("DefaultUserSettings") or {}]
    objects.append(description.get("DefaultSpaceSettings") or {})
    for user in client.list_user_profiles(DomainIdEquals=domain_id)["UserProfiles"]:
        profile = client.describe_user_profile(
            DomainId=domain_id, UserProfileName=user["UserProfileName"]
        )
        objects.append(profile.get("UserSettings") or {})
    for settings in objects:
        for key in studio.SETTINGS_KEYS.values():
            app = settings.get(key)
            assert studio.default_in_list(app), (key, app)
            for arn in [studio.default_of(app), studio.built_in_of(app)]:
                if arn and "studio-bootstrap" in arn:
                    assert arn in existing, arn
            for arn in studio.allowed_of(app):
                if "studio-bootstrap" in arn:
                    assert arn in existing, arn


@pytest.fixture
def overriding_user(client: Any, domain: str) -> str:
    other = client.create_studio_lifecycle_config(
        StudioLifecycleConfigName="user-tools",
        StudioLifecycleConfigContent="IyEvYmluL2Jhc2gK",
        StudioLifecycleConfigAppType="JupyterServer",
    )["StudioLifecycleConfigArn"]
    client.create_user_profile(
        DomainId=domain,
        UserProfileName="user-a",
        UserSettings={"JupyterServerAppSettings": {"LifecycleConfigArns": [other]}},
    )
    return "user-a"


@pytest.mark.parametrize(
    ("operation", "code"), FAULTS, ids=[f"{o}-{c}" for o, c in FAULTS]
)
def test_register_fault_then_rerun(
    client: Any,
    domain: str,
    config: Path,
    overriding_user: str,
    local_stack: LocalStack,
    capsys: Any,
    operation: str,
    code: str,
) -> None:
    # More failures than botocore's retries, so throttling reaches the tool.
    sagemaker.inject_error(operation, code, message="injected", times=20)
    assert cli(config, local_stack, "register") == 1
    error = capsys.readouterr().err
    assert f"{operation} failed" in error
    assert code in error
    assert "Traceback" not in error
    sagemaker.clear_injected_errors()
    assert_consistent(client, domain)

    assert cli(config, local_stack, "register") == 0
    assert_consistent(client, domain)
    sagemaker.reset_call_log()
    assert cli(config, local_stack, "register") == 0
    assert sagemaker.call_log().mutating_total == 0


def test_stuck_domain_stops_then_rerun_finishes(
    client: Any, domain: str, config: Path, local_stack: LocalStack, capsys: Any
) -> None:
    sagemaker.hold_domain_updating(domain)
    try:
        status = cli(config, local_stack, "register", "--wait-timeout", "1")
    finally:
        sagemaker.release_domain_updating(domain)
    assert status == 1
    assert "run again once it is InService" in capsys.readouterr().err
    assert_consistent(client, domain)
    assert cli(config, local_stack, "register") == 0
    assert_consistent(client, domain)


@pytest.mark.parametrize("code", ["AccessDeniedException", "ValidationException"])
def test_unregister_fault_then_rerun(
    client: Any, domain: str, config: Path, local_stack: LocalStack, code: str
) -> None:
    assert cli(config, local_stack, "register") == 0
    sagemaker.inject_error("UpdateDomain", code, message="injected", times=20)
    assert cli(config, local_stack, "unregister") == 1
    sagemaker.clear_injected_errors()
    assert_consistent(client, domain)
    assert cli(config, local_stack, "unregister") == 0
    remaining = client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"]
    assert remaining == []


def test_delete_in_use_is_reported(
    client: Any, domain: str, config: Path, local_stack: LocalStack, capsys: Any
) -> None:
    assert cli(config, local_stack, "register") == 0
    sagemaker.inject_error("DeleteStudioLifecycleConfig", "ResourceInUse", times=1)
    capsys.readouterr()
    assert cli(config, local_stack, "unregister") == 0
    output = capsys.readouterr().out
    assert "is kept: another domain, user profile, space or running app" in output
    assert cli(config, local_stack, "unregister") == 0
    assert client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"] == []
