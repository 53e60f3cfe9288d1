"""doctor: every link of the chain, checked in both accounts of the local stack.

Each test deploys the IAM templates and registers the scripts on a fresh
domain whose execution role has no other policy, so that doctor passes.
Then it breaks one link and expects doctor to name it and exit 1.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from iam_support import (
    ACCOUNT_A,
    ACCOUNT_B,
    PROFILE_B,
    Names,
    Stacks,
    account_options,
    admin_profiles,
    config_data,
    run_iam,
    stacks,
    unique_names,
    write_config,
)

from bootstrap.cli import main
from bootstrap.policy import Request, evaluate
from bootstrap.sandbox import sagemaker as local_sagemaker
from bootstrap.sandbox.stack import LocalStack

__all__ = ["admin_profiles", "stacks"]  # fixtures used by name

SAGEMAKER_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
OTHER_SCRIPT = '#!/bin/bash\necho team tools >> "$HOME/team.log"\n'


@dataclass
class Chain:
    """A deployed and registered chain, and the clients to break it."""

    stack: LocalStack
    names: Names
    execution_role: str
    config: Path
    data: dict[str, Any]

    @property
    def iam_a(self) -> Any:
        return self.stack.session(ACCOUNT_A).client("iam")

    @property
    def iam_b(self) -> Any:
        return self.stack.session(ACCOUNT_B).client("iam")

    @property
    def sagemaker(self) -> Any:
        return self.stack.session(ACCOUNT_B).client("sagemaker")

    @property
    def execution_role_name(self) -> str:
        return self.execution_role.rsplit("/", 1)[-1]


@pytest.fixture(autouse=True)
def quick_updates(local_stack: LocalStack) -> Iterator[None]:
    previous = local_sagemaker.set_update_delay(0.05)
    yield
    local_sagemaker.set_update_delay(previous)


def create_domain(client: Any, execution_role: str, name: str) -> str:
    settings = {
        "ExecutionRole": execution_role,
        "JupyterServerAppSettings": {"DefaultResourceSpec": {"InstanceType": "system"}},
        "KernelGatewayAppSettings": {
            "DefaultResourceSpec": {"InstanceType": "ml.t3.medium"}
        },
        "JupyterLabAppSettings": {
            "DefaultResourceSpec": {"InstanceType": "ml.t3.medium"}
        },
        "CodeEditorAppSettings": {
            "DefaultResourceSpec": {"InstanceType": "ml.t3.medium"}
        },
    }
    domain_id = client.create_domain(
        DomainName=name,
        AuthMode="IAM",
        DefaultUserSettings=settings,
        SubnetIds=["subnet-0123456789abcdef0"],
        VpcId="vpc-0123456789abcdef0",
    )["DomainId"]
    wait_in_service(client, str(domain_id))
    return str(domain_id)


def wait_in_service(client: Any, domain_id: str) -> None:
    deadline = time.monotonic() + 10
    while client.describe_domain(DomainId=domain_id)["Status"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.fixture
def chain(
    local_stack: LocalStack,
    admin_profiles: None,
    stacks: Stacks,
    tmp_path: Path,
) -> Chain:
    """A domain, its IAM deployed and its scripts registered: doctor passes."""
    names = unique_names("doctor")
    iam_b = local_stack.session(ACCOUNT_B).client("iam")
    role_name = f"DoctorExecution{names.role.removeprefix('DoctorRole')}"
    execution_role = iam_b.create_role(
        RoleName=role_name, AssumeRolePolicyDocument=SAGEMAKER_TRUST
    )["Role"]["Arn"]
    sagemaker = local_stack.session(ACCOUNT_B).client("sagemaker")
    domain_id = create_domain(sagemaker, execution_role, names.repository)
    names = Names(domain_id, names.role, names.repository)

    data = config_data(names, [execution_role])
    config = write_config(tmp_path, data)
    stacks.add_domain(domain_id)
    assert run_iam(config, local_stack, "--deploy", "--yes") == 0
    register = ["register", "--profile", PROFILE_B]
    assert cli(config, local_stack, *register) == 0
    return Chain(local_stack, names, execution_role, config, data)


def cli(config: Path, stack: LocalStack, command: str, *options: str) -> int:
    return main(
        [
            "--config",
            str(config),
            command,
            "--endpoint-url",
            stack.endpoint_url,
            *options,
        ]
    )


def doctor(chain: Chain, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(
        ["--config", str(chain.config), "doctor", *account_options(chain.stack)]
    )
    return code, capsys.readouterr().out


def failures(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FAIL")]


def trust_of(principal: dict[str, Any], **statement: Any) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": "sts:AssumeRole",
                    **statement,
                }
            ],
        }
    )


# --- the whole chain ----------------------------------------------------------------


def test_doctor_passes_deployed_chain(
    chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = doctor(chain, capsys)
    assert code == 0, out
    assert failures(out) == []
    assert f"role {chain.names.role_arn}: trust admits {chain.execution_role}" in out
    assert f"grants read on arn:aws:codecommit:eu-west-1:{ACCOUNT_A}:" in out
    assert f"may assume {chain.names.role_arn}" in out
    for app_type in ("JupyterLab", "CodeEditor", "JupyterServer", "KernelGateway"):
        assert f"({app_type})" in out
    assert out.rstrip().endswith("0 warnings, 0 failed")


def test_doctor_reports_json(chain: Chain, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    options = [*account_options(chain.stack), "--output", "json"]
    code = main(["--config", str(chain.config), "doctor", *options])
    checks = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {check["status"] for check in checks} == {"ok"}
    assert all(
        set(check) == {"status", "subject", "message", "fix"} for check in checks
    )


# --- broken links --------------------------------------------------------------


def break_missing_trust(chain: Chain) -> str:
    chain.iam_a.update_assume_role_policy(
        RoleName=chain.names.role,
        PolicyDocument=trust_of({"Service": "sagemaker.amazonaws.com"}),
    )
    return f"trust does not admit {chain.execution_role} (it admits no AWS principal)"


def break_trust_to_other_role(chain: Chain) -> str:
    other = f"arn:aws:iam::{ACCOUNT_B}:role/SomeOtherRole"
    chain.iam_a.update_assume_role_policy(
        RoleName=chain.names.role, PolicyDocument=trust_of({"AWS": other})
    )
    return f"trust does not admit {chain.execution_role} (it admits {other})"


def break_external_id(chain: Chain) -> str:
    chain.iam_a.update_assume_role_policy(
        RoleName=chain.names.role,
        PolicyDocument=trust_of(
            {"AWS": chain.execution_role},
            Condition={"StringEquals": {"sts:ExternalId": "secret-handshake"}},
        ),
    )
    return "trust requires an sts:ExternalId, but the config sets none"


def break_repository_arn(chain: Chain) -> str:
    wrong = f"arn:aws:codecommit:eu-west-1:{ACCOUNT_A}:some-other-repo"
    chain.iam_a.put_role_policy(
        RoleName=chain.names.role,
        PolicyName="studio-bootstrap-codecommit",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "codecommit:GitPull",
                        "Resource": wrong,
                    }
                ],
            }
        ),
    )
    repository = f"arn:aws:codecommit:eu-west-1:{ACCOUNT_A}:{chain.names.repository}"
    return (
        "does not grant codecommit:GitPull, codecommit:BatchDescribeMergeConflicts, "
        "codecommit:BatchGetCommits and 28 more read actions"
    ) + f"|on {repository} (its CodeCommit statements name {wrong})"


def break_missing_role(chain: Chain) -> str:
    chain.iam_a.delete_role_policy(
        RoleName=chain.names.role, PolicyName="studio-bootstrap-codecommit"
    )
    chain.iam_a.delete_role(RoleName=chain.names.role)
    return f"role {chain.names.role_arn}: does not exist in account {ACCOUNT_A}"


def break_assume_grant(chain: Chain) -> str:
    chain.iam_b.delete_role_policy(
        RoleName=chain.execution_role_name,
        PolicyName=f"studio-bootstrap-{chain.names.domain_id}-assume-roles",
    )
    return (
        f"execution role {chain.execution_role}: may not sts:AssumeRole "
        f"{chain.names.role_arn}: no policy allows it"
    )


def break_default(chain: Chain) -> str:
    domain = chain.sagemaker.describe_domain(DomainId=chain.names.domain_id)
    server = domain["DefaultUserSettings"]["JupyterServerAppSettings"]
    server["DefaultResourceSpec"].pop("LifecycleConfigArn")
    chain.sagemaker.update_domain(
        DomainId=chain.names.domain_id,
        DefaultUserSettings={"JupyterServerAppSettings": server},
    )
    wait_in_service(chain.sagemaker, chain.names.domain_id)
    return (
        f"domain {chain.names.domain_id}: does not run studio-bootstrap-jupyterserver-"
    ) + "|for JupyterServer: it is not the default lifecycle configuration"


def break_built_in(chain: Chain) -> str:
    domain = chain.sagemaker.describe_domain(DomainId=chain.names.domain_id)
    lab = domain["DefaultUserSettings"]["JupyterLabAppSettings"]
    lab.pop("BuiltInLifecycleConfigArn")
    chain.sagemaker.update_domain(
        DomainId=chain.names.domain_id,
        DefaultUserSettings={"JupyterLabAppSettings": lab},
    )
    wait_in_service(chain.sagemaker, chain.names.domain_id)
    return "for JupyterLab: it is not the built-in or default lifecycle configuration"


def break_overriding_user(chain: Chain) -> str:
    other = chain.sagemaker.create_studio_lifecycle_config(
        StudioLifecycleConfigName=f"team-tools-{chain.names.domain_id}",
        StudioLifecycleConfigContent=base64.b64encode(OTHER_SCRIPT.encode()).decode(),
        StudioLifecycleConfigAppType="JupyterLab",
    )["StudioLifecycleConfigArn"]
    chain.sagemaker.create_user_profile(
        DomainId=chain.names.domain_id,
        UserProfileName="grace",
        UserSettings={"JupyterLabAppSettings": {"BuiltInLifecycleConfigArn": other}},
    )
    return (
        "user profile grace: overrides the domain's JupyterLabAppSettings and "
        "does not run studio-bootstrap-jupyterlab-"
    )


def break_space_default(chain: Chain) -> str:
    other = chain.sagemaker.create_studio_lifecycle_config(
        StudioLifecycleConfigName=f"kernel-tools-{chain.names.domain_id}",
        StudioLifecycleConfigContent=base64.b64encode(OTHER_SCRIPT.encode()).decode(),
        StudioLifecycleConfigAppType="KernelGateway",
    )["StudioLifecycleConfigArn"]
    chain.sagemaker.create_space(
        DomainId=chain.names.domain_id,
        SpaceName="shared-kernels",
        SpaceSettings={
            "KernelGatewayAppSettings": {
                "DefaultResourceSpec": {"LifecycleConfigArn": other}
            }
        },
    )
    return (
        f"space shared-kernels: sets its own KernelGateway default "
        f"(kernel-tools-{chain.names.domain_id}), which runs instead of "
        "studio-bootstrap-kernelgateway-"
    )


def break_config_changed(chain: Chain) -> str:
    data = dict(chain.data)
    data["repositories"] = [dict(chain.data["repositories"][0], branch="develop")]
    write_config(chain.config.parent, data)
    return "the rendered script studio-bootstrap-jupyterlab-"


BREAKS: dict[str, Callable[[Chain], str]] = {
    "missing-trust": break_missing_trust,
    "trust-to-other-role": break_trust_to_other_role,
    "external-id-required": break_external_id,
    "wrong-repository-arn": break_repository_arn,
    "missing-role": break_missing_role,
    "missing-assume-grant": break_assume_grant,
    "lcc-not-default": break_default,
    "lcc-not-built-in": break_built_in,
    "overriding-user": break_overriding_user,
    "space-own-default": break_space_default,
    "config-not-registered": break_config_changed,
}


@pytest.mark.parametrize("broken", list(BREAKS), ids=list(BREAKS))
def test_doctor_names_broken_link(
    chain: Chain, broken: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = BREAKS[broken](chain)

    code, out = doctor(chain, capsys)

    assert code == 1
    failed = failures(out)
    assert failed, out
    for part in expected.split("|"):
        assert any(part in line for line in failed), (part, out)
    index = out.splitlines().index(
        next(line for line in failed if expected.split("|")[0] in line)
    )
    assert out.splitlines()[index + 1].startswith("      fix: "), out


def test_doctor_warns_whole_account_trust(
    chain: Chain, capsys: pytest.CaptureFixture[str]
) -> None:
    chain.iam_a.update_assume_role_policy(
        RoleName=chain.names.role,
        PolicyDocument=trust_of({"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"}),
    )
    code, out = doctor(chain, capsys)
    assert code == 0, out
    assert (
        f"WARN  role {chain.names.role_arn}: trust admits {chain.execution_role}" in out
    )
    assert "only by trusting its whole account" in out


def test_doctor_admits_organization_trust(
    chain: Chain, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    organization = "o-exampleorgid1"
    name = chain.execution_role.rsplit("/", 1)[-1]
    chain.iam_a.update_assume_role_policy(
        RoleName=chain.names.role,
        PolicyDocument=trust_of(
            {"AWS": "*"},
            Condition={
                "StringEquals": {"aws:PrincipalOrgID": organization},
                "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::*:role/{name}"},
            },
        ),
    )
    # Without the organization in the config, the check cannot decide.
    code, out = doctor(chain, capsys)
    assert code == 0, out
    assert "only under conditions this check cannot evaluate" in out

    data = {**chain.data, "iam": {**chain.data["iam"], "organization_id": organization}}
    folder = tmp_path / "organization"
    folder.mkdir()
    configured = replace(chain, config=write_config(folder, data))
    code, out = doctor(configured, capsys)
    assert code == 0, out
    assert (
        f"OK    role {chain.names.role_arn}: trust admits {chain.execution_role}" in out
    )
    assert "whole account" not in out

    # Another organization, or a role of another name, is not admitted.
    other = {**data, "iam": {**data["iam"], "organization_id": "o-otherorgid22"}}
    folder = tmp_path / "other"
    folder.mkdir()
    code, out = doctor(replace(chain, config=write_config(folder, other)), capsys)
    assert code == 1, out
    assert f"trust does not admit {chain.execution_role}" in out


# --- policy evaluation ---------------------------------------------------------

ROLE_A = f"arn:aws:iam::{ACCOUNT_A}:role/Repo"
EXECUTION = f"arn:aws:iam::{ACCOUNT_B}:role/service-role/Execution"
REPO = f"arn:aws:codecommit:eu-west-1:{ACCOUNT_A}:repo"


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


PERMISSION_CASES = [
    ("exact", {"Action": "codecommit:GitPull", "Resource": REPO}, True),
    ("action-case", {"Action": "CodeCommit:gitpull", "Resource": REPO}, True),
    ("action-wildcard", {"Action": "codecommit:Git*", "Resource": REPO}, True),
    (
        "resource-wildcard",
        {"Action": "codecommit:*", "Resource": REPO[:-2] + "*"},
        True,
    ),
    ("other-resource", {"Action": "codecommit:GitPull", "Resource": REPO + "x"}, False),
    ("other-action", {"Action": "codecommit:GitPush", "Resource": REPO}, False),
    ("not-action", {"NotAction": "codecommit:GitPush", "Resource": REPO}, True),
    ("not-resource", {"Action": "codecommit:*", "NotResource": REPO}, False),
    (
        "unknown-condition",
        {
            "Action": "codecommit:GitPull",
            "Resource": REPO,
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
        False,
    ),
]


@pytest.mark.parametrize(
    ("statement", "granted"),
    [case[1:] for case in PERMISSION_CASES],
    ids=[case[0] for case in PERMISSION_CASES],
)
def test_policy_grants(statement: dict[str, Any], granted: bool) -> None:
    decision = evaluate(
        [("policy", document({"Effect": "Allow", **statement}))],
        Request("codecommit:GitPull", REPO),
    )
    assert decision.granted is granted


def test_policy_unknown_condition_is_conditional() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "codecommit:GitPull",
        "Resource": REPO,
        "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    }
    decision = evaluate(
        [("p", document(statement))], Request("codecommit:GitPull", REPO)
    )
    assert decision.conditional
    assert not decision.allowed


def test_policy_deny_wins() -> None:
    allow = {"Effect": "Allow", "Action": "codecommit:*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "codecommit:GitPull", "Resource": REPO}
    decision = evaluate(
        [("allow", document(allow)), ("deny", document(deny))],
        Request("codecommit:GitPull", REPO),
    )
    assert decision.allowed
    assert decision.denied_by == ["deny"]
    assert not decision.granted


TRUST_CASES = [
    ("role", {"AWS": EXECUTION}, None, True),
    ("role-list", {"AWS": [ROLE_A, EXECUTION]}, None, True),
    ("other-role", {"AWS": ROLE_A}, None, False),
    ("account-root", {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"}, None, True),
    ("account-id", {"AWS": ACCOUNT_B}, None, True),
    ("other-account", {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, None, False),
    ("service", {"Service": "sagemaker.amazonaws.com"}, None, False),
    (
        "external-id-sent",
        {"AWS": EXECUTION},
        {"StringEquals": {"sts:ExternalId": "abc"}},
        True,
    ),
    (
        "external-id-other",
        {"AWS": EXECUTION},
        {"StringEquals": {"sts:ExternalId": "xyz"}},
        False,
    ),
    ("null-false", {"AWS": EXECUTION}, {"Null": {"sts:ExternalId": "false"}}, True),
    ("null-true", {"AWS": EXECUTION}, {"Null": {"sts:ExternalId": "true"}}, False),
]


@pytest.mark.parametrize(
    ("principal", "condition", "admitted"),
    [case[1:] for case in TRUST_CASES],
    ids=[case[0] for case in TRUST_CASES],
)
def test_trust_admits(
    principal: dict[str, Any], condition: dict[str, Any] | None, admitted: bool
) -> None:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    request = Request(
        "sts:AssumeRole", ROLE_A, principal=EXECUTION, context={"sts:ExternalId": "abc"}
    )
    decision = evaluate([("trust", document(statement))], request)
    assert decision.granted is admitted


def test_missing_external_id_fails_condition() -> None:
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": EXECUTION},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "abc"}},
    }
    request = Request(
        "sts:AssumeRole",
        ROLE_A,
        principal=EXECUTION,
        known_absent=frozenset({"sts:ExternalId"}),
    )
    decision = evaluate([("trust", document(statement))], request)
    assert not decision.granted
    assert not decision.conditional
