"""IAM templates of both accounts: their documents, lint, and deploys to moto.

The deploy tests run ``studio-bootstrap iam --deploy`` against moto's
CloudFormation in the local stack, then clone (and push) with the rendered
lifecycle script as Studio runs it, through the deployed roles.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from iam_support import (
    ACCOUNT_A,
    ACCOUNT_B,
    PROFILE_B,
    REGION,
    ROOT,
    Names,
    Stacks,
    account_options,
    admin_profiles,
    config_data,
    example_data,
    run_iam,
    stacks,
    unique_names,
    write_config,
)

from bootstrap.access import CONTRIBUTE_ACTIONS, GIT_PULL, GIT_PUSH, READ_ACTIONS
from bootstrap.cfn_yaml import GetAtt, Ref, dump
from bootstrap.cli import main
from bootstrap.config import parse_config
from bootstrap.errors import ConfigError
from bootstrap.iam import Chain, Template, render_templates
from bootstrap.render import aws_block, render_all
from bootstrap.sandbox.errors import GitAuthenticationError
from bootstrap.sandbox.git_auth import check_role_allows
from bootstrap.sandbox.helper_wheel import minimal_wheel
from bootstrap.sandbox.runner import (
    CAN_RUN_AS_STUDIO_USER,
    STUDIO_USER_SKIP_REASON,
    SandboxHome,
    run_in_home,
    run_lifecycle,
    wait_idle,
)
from bootstrap.sandbox.stack import LocalStack

__all__ = ["admin_profiles", "stacks"]  # fixtures used by name

EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT_B}:role/StudioExecutionRole"
PATH_ROLE = f"arn:aws:iam::{ACCOUNT_B}:role/service-role/AmazonSageMaker-Exec-1"
ORGANIZATION = "o-exampleorgid1"
SYNC_SECONDS = 90
FORBIDDEN_IN_CONTRIBUTE = (
    "codecommit:DeleteRepository",
    "codecommit:UpdateRepositoryName",
    "codecommit:UpdateRepositoryDescription",
    "codecommit:UpdateDefaultBranch",
    "codecommit:PutRepositoryTriggers",
    "codecommit:UpdateRepositoryEncryptionKey",
    "codecommit:TagResource",
    "codecommit:UntagResource",
    "codecommit:OverridePullRequestApprovalRules",
    "codecommit:CreateApprovalRuleTemplate",
    "codecommit:AssociateApprovalRuleTemplateWithRepository",
)


def templates_of(data: dict[str, Any], *roles: str, source_identity: bool = False):
    config = parse_config(data)
    chain = Chain(roles or (EXECUTION_ROLE,), source_identity)
    return {template.kind: template for template in render_templates(config, chain)}


def resource(template: Template, kind: str) -> dict[str, Any]:
    found = [r for r in template.resources.values() if r["Type"] == kind]
    assert len(found) == 1, found
    return dict(found[0]["Properties"])


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    found = [s for s in document["Statement"] if s["Sid"] == sid]
    assert len(found) == 1, document
    return dict(found[0])


def two_repositories(second_access: Any) -> dict[str, Any]:
    data = example_data()
    data["repositories"].append(
        {
            "name": "second-repo",
            "account_id": ACCOUNT_A,
            "role": "CrossAccountRepoRole",
            "profile": "second",
            "path": "second-repo",
            "access": second_access,
        }
    )
    return data


# --- documents ------------------------------------------------------------------


def test_read_preset_actions() -> None:
    policy = resource(templates_of(example_data())["repository"], "AWS::IAM::Policy")
    read = statement(policy["PolicyDocument"], "ReadRepositories")
    assert read["Effect"] == "Allow"
    assert read["Action"] == list(READ_ACTIONS)
    assert read["Resource"] == [f"arn:aws:codecommit:{REGION}:{ACCOUNT_A}:example-repo"]
    assert GIT_PULL in read["Action"]
    assert GIT_PUSH not in read["Action"]
    verbs = {action.split(":")[1] for action in read["Action"]} - {"GitPull"}
    assert all(
        re.match(r"(Get|List|Describe|BatchGet|BatchDescribe)", v) for v in verbs
    )


def test_contribute_preset_actions() -> None:
    data = example_data()
    data["repositories"][0]["access"] = "contribute"
    policy = resource(templates_of(data)["repository"], "AWS::IAM::Policy")
    contribute = statement(policy["PolicyDocument"], "ContributeRepositories")
    actions = contribute["Action"]
    assert actions == list(CONTRIBUTE_ACTIONS)
    assert set(READ_ACTIONS) <= set(actions)
    for needed in (GIT_PUSH, "codecommit:CreateBranch", "codecommit:CreatePullRequest"):
        assert needed in actions
    for forbidden in FORBIDDEN_IN_CONTRIBUTE:
        assert forbidden not in actions


def test_explicit_actions_granted() -> None:
    data = example_data()
    data["repositories"][0]["access"] = [GIT_PULL, "codecommit:GetBranch"]
    policy = resource(templates_of(data)["repository"], "AWS::IAM::Policy")
    custom = statement(policy["PolicyDocument"], "Custom1Repositories")
    assert custom["Action"] == [GIT_PULL, "codecommit:GetBranch"]


def test_access_statements_per_repository() -> None:
    policy = resource(
        templates_of(two_repositories("contribute"))["repository"], "AWS::IAM::Policy"
    )
    document = policy["PolicyDocument"]
    assert [s["Sid"] for s in document["Statement"]] == [
        "ReadRepositories",
        "ContributeRepositories",
    ]
    read = statement(document, "ReadRepositories")
    contribute = statement(document, "ContributeRepositories")
    assert read["Resource"] == [f"arn:aws:codecommit:{REGION}:{ACCOUNT_A}:example-repo"]
    assert contribute["Resource"] == [
        f"arn:aws:codecommit:{REGION}:{ACCOUNT_A}:second-repo"
    ]


def test_same_access_shares_one_statement() -> None:
    policy = resource(
        templates_of(two_repositories("read"))["repository"], "AWS::IAM::Policy"
    )
    read = statement(policy["PolicyDocument"], "ReadRepositories")
    assert len(policy["PolicyDocument"]["Statement"]) == 1
    assert read["Resource"] == [
        f"arn:aws:codecommit:{REGION}:{ACCOUNT_A}:example-repo",
        f"arn:aws:codecommit:{REGION}:{ACCOUNT_A}:second-repo",
    ]


def test_policy_is_attached_to_its_role() -> None:
    template = templates_of(example_data())["repository"]
    policy = resource(template, "AWS::IAM::Policy")
    assert policy["Roles"] == [Ref("RoleCrossAccountRepoRole")]
    assert template.resources["RoleCrossAccountRepoRole"]["Type"] == "AWS::IAM::Role"


def test_trust_admits_exactly_execution_roles() -> None:
    role = resource(
        templates_of(example_data(), EXECUTION_ROLE, PATH_ROLE)["repository"],
        "AWS::IAM::Role",
    )
    trust = role["AssumeRolePolicyDocument"]
    assert len(trust["Statement"]) == 1
    assume = statement(trust, "AssumeFromStudioExecutionRoles")
    assert assume["Effect"] == "Allow"
    assert assume["Principal"] == {"AWS": [EXECUTION_ROLE, PATH_ROLE]}
    assert assume["Action"] == "sts:AssumeRole"
    assert "Condition" not in assume
    assert ":root" not in str(trust)


def test_trust_requires_external_id_when_set() -> None:
    data = example_data()
    data["iam"]["external_id"] = "team-42.studio"
    role = resource(templates_of(data)["repository"], "AWS::IAM::Role")
    assume = statement(
        role["AssumeRolePolicyDocument"], "AssumeFromStudioExecutionRoles"
    )
    assert assume["Condition"] == {"StringEquals": {"sts:ExternalId": "team-42.studio"}}


def test_profile_sends_external_id() -> None:
    data = example_data()
    data["iam"]["external_id"] = "team-42.studio"
    block = aws_block(parse_config(data).repositories)
    assert "\nexternal_id = team-42.studio\n" in block


def test_profile_without_external_id_is_unchanged() -> None:
    block = aws_block(parse_config(example_data()).repositories)
    assert "external_id" not in block


def test_source_identity_when_asked() -> None:
    without = templates_of(example_data())
    with_it = templates_of(example_data(), source_identity=True)
    trust = resource(with_it["repository"], "AWS::IAM::Role")[
        "AssumeRolePolicyDocument"
    ]
    keep = statement(trust, "KeepSourceIdentityOfStudioUsers")
    assert keep["Action"] == "sts:SetSourceIdentity"
    assert keep["Principal"] == {"AWS": [EXECUTION_ROLE]}
    assert "Condition" not in keep
    plain = resource(without["repository"], "AWS::IAM::Role")[
        "AssumeRolePolicyDocument"
    ]
    assert "SetSourceIdentity" not in str(plain)
    grant = resource(with_it["execution"], "AWS::IAM::Policy")["PolicyDocument"]
    assert statement(grant, "KeepSourceIdentityOfStudioUsers")["Action"] == (
        "sts:SetSourceIdentity"
    )


def test_role_options() -> None:
    data = example_data()
    data["iam"]["permissions_boundary"] = "team/Boundary"
    data["iam"]["tags"] = {"team": "ml platform", "cost-center": "42"}
    role = resource(templates_of(data)["repository"], "AWS::IAM::Role")
    assert role["RoleName"] == "CrossAccountRepoRole"
    assert role["Path"] == "/"
    assert role["MaxSessionDuration"] == 3600
    assert role["PermissionsBoundary"] == (
        f"arn:aws:iam::{ACCOUNT_A}:policy/team/Boundary"
    )
    assert role["Tags"] == [
        {"Key": "cost-center", "Value": "42"},
        {"Key": "team", "Value": "ml platform"},
    ]


def test_boundary_arn_is_kept() -> None:
    data = example_data()
    boundary = "arn:aws:iam::aws:policy/PowerUserAccess"
    data["iam"]["permissions_boundary"] = boundary
    role = resource(templates_of(data)["repository"], "AWS::IAM::Role")
    assert role["PermissionsBoundary"] == boundary


def test_role_with_path() -> None:
    data = example_data()
    data["repositories"][0]["role"] = f"arn:aws:iam::{ACCOUNT_A}:role/team/Repo.Role"
    template = templates_of(data)["repository"]
    role = resource(template, "AWS::IAM::Role")
    assert role["RoleName"] == "Repo.Role"
    assert role["Path"] == "/team/"
    assert "RoleRepoRole" in template.resources
    grant = resource(templates_of(data)["execution"], "AWS::IAM::Policy")
    assert statement(grant["PolicyDocument"], "AssumeRepositoryRoles")["Resource"] == [
        f"arn:aws:iam::{ACCOUNT_A}:role/team/Repo.Role"
    ]


def test_execution_grant_names_roles() -> None:
    data = two_repositories("read")
    data["repositories"].append(
        {
            "name": "other-account",
            "account_id": "333333333333",
            "role": "OtherRole",
            "profile": "other",
            "path": "other",
        }
    )
    templates = templates_of(data, EXECUTION_ROLE, PATH_ROLE)
    grant = resource(templates["execution"], "AWS::IAM::Policy")
    assert grant["Roles"] == ["StudioExecutionRole", "AmazonSageMaker-Exec-1"]
    assume = statement(grant["PolicyDocument"], "AssumeRepositoryRoles")
    assert assume["Effect"] == "Allow"
    assert assume["Action"] == "sts:AssumeRole"
    assert assume["Resource"] == [
        f"arn:aws:iam::{ACCOUNT_A}:role/CrossAccountRepoRole",
        "arn:aws:iam::333333333333:role/OtherRole",
    ]
    assert templates["execution"].account == ACCOUNT_B


def test_one_template_per_repository_account() -> None:
    data = example_data()
    data["repositories"].append(
        {
            "name": "other-account",
            "account_id": "333333333333",
            "role": "OtherRole",
            "profile": "other",
            "path": "other",
        }
    )
    config = parse_config(data)
    templates = render_templates(config, Chain((EXECUTION_ROLE,), False))
    assert [(t.kind, t.account) for t in templates] == [
        ("repository", ACCOUNT_A),
        ("repository", "333333333333"),
        ("execution", ACCOUNT_B),
        ("register-admin", ACCOUNT_B),
    ]


def test_admin_policy_covers_register() -> None:
    policy = resource(
        templates_of(example_data())["register-admin"], "AWS::IAM::ManagedPolicy"
    )
    document = policy["PolicyDocument"]
    lcc = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_B}:studio-lifecycle-config"
    own = statement(document, "OwnLifecycleConfigurations")
    assert own["Resource"] == [f"{lcc}/studio-bootstrap-*"]
    assert set(own["Action"]) == {
        "sagemaker:CreateStudioLifecycleConfig",
        "sagemaker:DeleteStudioLifecycleConfig",
        "sagemaker:AddTags",
        "sagemaker:ListTags",
    }
    describe = statement(document, "DescribeLifecycleConfigurations")
    assert describe["Action"] == ["sagemaker:DescribeStudioLifecycleConfig"]
    domain = statement(document, "Domain")
    assert domain["Resource"] == [
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT_B}:domain/d-xxxxxxxxxxxx"
    ]
    assert set(domain["Action"]) == {
        "sagemaker:DescribeDomain",
        "sagemaker:UpdateDomain",
    }
    members = statement(document, "UserProfilesAndSpaces")
    assert set(members["Action"]) == {
        "sagemaker:DescribeUserProfile",
        "sagemaker:UpdateUserProfile",
        "sagemaker:DescribeSpace",
        "sagemaker:UpdateSpace",
    }
    lists = statement(document, "ListDomainMembers")
    assert lists["Resource"] == ["*"]
    assert all(action.startswith("sagemaker:List") for action in lists["Action"])
    assert "iam:PassRole" not in str(document)


def s3_helper(folder: Path, key_prefix: str = "studio-bootstrap/") -> dict[str, Any]:
    wheel = minimal_wheel(folder)
    data = example_data()
    data["helper"] = {
        "sources": ["s3"],
        "wheel": str(wheel),
        "bucket": "studio-wheels",
        "key_prefix": key_prefix,
    }
    return data


def test_s3_helper_grants(tmp_path: Path) -> None:
    templates = templates_of(s3_helper(tmp_path))
    wheel = "arn:aws:s3:::studio-wheels/studio-bootstrap/" + (
        "git_remote_codecommit-1.17-py3-none-any.whl"
    )
    execution = resource(templates["execution"], "AWS::IAM::Policy")
    read = statement(execution["PolicyDocument"], "ReadHelperWheel")
    assert read["Action"] == ["s3:GetObject"]
    assert read["Resource"] == [wheel]
    admin = resource(templates["register-admin"], "AWS::IAM::ManagedPolicy")
    objects = statement(admin["PolicyDocument"], "HelperWheelObject")
    assert set(objects["Action"]) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert objects["Resource"] == [wheel]
    bucket = statement(admin["PolicyDocument"], "HelperWheelBucket")
    assert bucket["Action"] == ["s3:ListBucket"]
    assert bucket["Resource"] == ["arn:aws:s3:::studio-wheels"]


def test_s3_grants_only_with_s3_source() -> None:
    templates = templates_of(example_data())
    for template in templates.values():
        assert "s3:" not in template.text, template.filename


def test_s3_grant_escapes_wildcard(tmp_path: Path) -> None:
    templates = templates_of(s3_helper(tmp_path, key_prefix="a*b/"))
    execution = resource(templates["execution"], "AWS::IAM::Policy")
    read = statement(execution["PolicyDocument"], "ReadHelperWheel")
    assert read["Resource"] == [
        "arn:aws:s3:::studio-wheels/a${*}b/git_remote_codecommit-1.17-py3-none-any.whl"
    ]


# --- text -----------------------------------------------------------------------


def _tag_loader() -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def ref(loader: yaml.SafeLoader, node: yaml.Node) -> Ref:
        return Ref(loader.construct_scalar(node))  # type: ignore[arg-type]

    def get_att(loader: yaml.SafeLoader, node: yaml.Node) -> GetAtt:
        name, attribute = str(loader.construct_scalar(node)).split(".", 1)  # type: ignore[arg-type]
        return GetAtt(name, attribute)

    Loader.add_constructor("!Ref", ref)
    Loader.add_constructor("!GetAtt", get_att)
    return Loader


def full_options() -> dict[str, Any]:
    data = two_repositories([GIT_PULL, "codecommit:Get*"])
    data["iam"].update(
        external_id="ext-1234",
        permissions_boundary="Boundary",
        tags={"team": "ml platform", "cost-center": "42"},
        source_identity=True,
    )
    data["repositories"].append(
        {
            "name": "contributed",
            "account_id": "333333333333",
            "role": "arn:aws:iam::333333333333:role/team/Second.Role",
            "profile": "third",
            "path": "contributed",
            "access": "contribute",
        }
    )
    return data


@pytest.mark.parametrize(
    "data", [example_data(), full_options()], ids=["example", "every-option"]
)
def test_yaml_reads_back_as_the_template(data: dict[str, Any]) -> None:
    for template in templates_of(data, EXECUTION_ROLE, PATH_ROLE).values():
        assert yaml.load(template.text, Loader=_tag_loader()) == template.body


def test_yaml_quotes_every_string() -> None:
    text = dump(
        {"A": {"Version": "2012-10-17", "Yes": "yes", "Null": "null", "N": "1"}}
    )
    assert text == (
        'A:\n  Version: "2012-10-17"\n  "Yes": "yes"\n  "Null": "null"\n  "N": "1"\n'
    )
    assert yaml.safe_load(text) == {
        "A": {"Version": "2012-10-17", "Yes": "yes", "Null": "null", "N": "1"}
    }


def test_render_is_deterministic() -> None:
    first = templates_of(full_options(), EXECUTION_ROLE)
    second = templates_of(full_options(), EXECUTION_ROLE)
    assert [t.text for t in first.values()] == [t.text for t in second.values()]


CFN_LINT = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))


def organization_options() -> dict[str, Any]:
    data = full_options()
    data["iam"]["organization_id"] = ORGANIZATION
    return data


@pytest.mark.skipif(CFN_LINT is None, reason="cfn-lint is in the dev extra")
@pytest.mark.parametrize(
    "data",
    [example_data(), full_options(), organization_options()],
    ids=["example", "every-option", "organization"],
)
def test_templates_pass_cfn_lint(data: dict[str, Any], tmp_path: Path) -> None:
    assert CFN_LINT is not None
    paths = []
    for template in templates_of(data, EXECUTION_ROLE, PATH_ROLE).values():
        path = tmp_path / template.filename
        path.write_text(template.text)
        paths.append(str(path))
    result = subprocess.run(
        [CFN_LINT, "--", *paths], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(CFN_LINT is None, reason="cfn-lint is in the dev extra")
@pytest.mark.parametrize("key_prefix", ["studio-bootstrap/", "a*b/"])
def test_s3_helper_passes_cfn_lint(tmp_path: Path, key_prefix: str) -> None:
    assert CFN_LINT is not None
    paths = []
    data = s3_helper(tmp_path, key_prefix)
    for template in templates_of(data, EXECUTION_ROLE, PATH_ROLE).values():
        path = tmp_path / template.filename
        path.write_text(template.text)
        paths.append(str(path))
    result = subprocess.run(
        [CFN_LINT, "--", *paths], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_organization_trust_admits_role_names_in_every_account() -> None:
    templates = templates_of(
        organization_options(), EXECUTION_ROLE, PATH_ROLE, source_identity=True
    )
    role = resource(templates["repository"], "AWS::IAM::Role")
    trust = role["AssumeRolePolicyDocument"]
    assume = statement(trust, "AssumeFromStudioExecutionRoles")
    assert assume["Principal"] == {"AWS": "*"}
    assert assume["Condition"]["StringEquals"] == {
        "aws:PrincipalOrgID": ORGANIZATION,
        "sts:ExternalId": "ext-1234",
    }
    assert assume["Condition"]["ArnLike"] == {
        "aws:PrincipalArn": [
            "arn:aws:iam::*:role/StudioExecutionRole",
            "arn:aws:iam::*:role/service-role/AmazonSageMaker-Exec-1",
        ]
    }
    keep = statement(trust, "KeepSourceIdentityOfStudioUsers")
    assert keep["Principal"] == {"AWS": "*"}
    assert keep["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": ORGANIZATION}
    assert keep["Condition"]["ArnLike"] == assume["Condition"]["ArnLike"]


def test_organization_id_is_checked() -> None:
    data = example_data()
    data["iam"]["organization_id"] = "o-SHORT"
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert str(caught.value.issues[0]).startswith(
        "iam.organization_id: must be an organization id"
    )


def test_committed_templates_match_example() -> None:
    config = parse_config(example_data())
    roles = config.domain.execution_roles
    for template in render_templates(config, Chain(roles, False)):
        committed = ROOT / "lifecycle" / "iam" / template.filename
        assert committed.read_text() == template.text, template.filename


def test_docs_show_the_example_templates() -> None:
    docs = (ROOT / "docs" / "iam.md").read_text()
    config = parse_config(example_data())
    for template in render_templates(
        config, Chain(config.domain.execution_roles, False)
    ):
        assert f"```yaml\n{template.text}```" in docs, template.filename


# --- config -----------------------------------------------------------------------


def issues_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test.toml")
    return [str(issue) for issue in caught.value.issues]


BAD_VALUES = [
    (("repositories", 0, "access"), "write", "repositories[0].access: must be one of"),
    (("repositories", 0, "access"), [], "repositories[0].access: must list at least"),
    (
        ("repositories", 0, "access"),
        ["s3:GetObject", GIT_PULL],
        "repositories[0].access[0]: must be a CodeCommit action",
    ),
    (
        ("repositories", 0, "access"),
        ["codecommit:GetBranch"],
        "repositories[0].access: must include codecommit:GitPull",
    ),
    (
        ("repositories", 0, "access"),
        [GIT_PULL, "codecommit:gitpull"],
        "repositories[0].access[1]: listed twice",
    ),
    (("iam", "external_id"), "x", "iam.external_id: must be 2 to 1224"),
    (("iam", "external_id"), "has space", "iam.external_id: must be 2 to 1224"),
    (("iam", "source_identity"), "yes", 'iam.source_identity: must be "auto"'),
    (
        ("iam", "permissions_boundary"),
        "arn:aws:iam::1:policy/x",
        "iam.permissions_boundary: must be a managed policy ARN",
    ),
    (
        ("iam", "permissions_boundary"),
        f"arn:aws:iam::{ACCOUNT_B}:policy/Boundary",
        "iam.permissions_boundary: must be a policy in every role's account",
    ),
    (("iam", "tags"), {"aws:owner": "x"}, "iam.tags.aws:owner (key): must not start"),
    (("iam", "tags"), {"team": "a;b"}, "iam.tags.team: must contain only"),
    (("iam", "tags"), "team", "iam.tags: must be a table"),
    (("iam", "color"), "blue", "iam.color: unknown field"),
    (
        ("domain", "execution_roles"),
        [f"arn:aws:iam::{ACCOUNT_B}:root"],
        "domain.execution_roles[0]: must be an IAM role ARN",
    ),
    (
        ("domain", "execution_roles"),
        [EXECUTION_ROLE, "arn:aws:iam::333333333333:role/Other"],
        "domain.execution_roles[1]: must be in the domain's account",
    ),
    (
        ("domain", "execution_roles"),
        [EXECUTION_ROLE, EXECUTION_ROLE],
        "domain.execution_roles[1]: listed twice",
    ),
    (
        ("domain", "execution_roles"),
        EXECUTION_ROLE,
        "domain.execution_roles: must be a list",
    ),
]


@pytest.mark.parametrize(
    ("location", "value", "expected"),
    BAD_VALUES,
    ids=[f"{'.'.join(map(str, loc))}={value!r}" for loc, value, _ in BAD_VALUES],
)
def test_iam_fields_are_checked(
    location: tuple[Any, ...], value: Any, expected: str
) -> None:
    data = example_data()
    target: Any = data
    for key in location[:-1]:
        target = target[key]
    target[location[-1]] = value
    issues = issues_of(data)
    assert any(issue.startswith(expected) for issue in issues), issues


def test_role_named_with_two_paths_is_an_issue() -> None:
    data = two_repositories("read")
    data["repositories"][1]["role"] = (
        f"arn:aws:iam::{ACCOUNT_A}:role/x/CrossAccountRepoRole"
    )
    issues = issues_of(data)
    assert any(
        issue.startswith("repositories[1].role: role CrossAccountRepoRole is also")
        for issue in issues
    ), issues


def test_every_iam_issue_is_reported() -> None:
    data = example_data()
    data["repositories"][0]["access"] = "write"
    data["iam"]["external_id"] = "x"
    data["iam"]["tags"] = {"aws:x": "y"}
    data["domain"]["execution_roles"] = ["nope"]
    issues = issues_of(data)
    fields = {issue.split(":", 1)[0] for issue in issues}
    assert {
        "repositories[0].access",
        "iam.external_id",
        "iam.tags.aws",
        "domain.execution_roles[0]",
    } <= fields


def test_iam_config_issue_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bootstrap.toml"
    text = (ROOT / "bootstrap.example.toml").read_text()
    path.write_text(text.replace('access = "read"', 'access = "admin"'))
    assert main(["--config", str(path), "iam", "--output", str(tmp_path / "iam")]) == 2
    error = capsys.readouterr().err
    assert "repositories[0].access: must be one of read, contribute" in error
    assert "'admin'" in error
    assert not (tmp_path / "iam").exists()


def test_prefix_must_name_stacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bootstrap.toml"
    text = (ROOT / "bootstrap.example.toml").read_text()
    path.write_text(text.replace('prefix = "studio-bootstrap"', 'prefix = "1studio"'))
    assert main(["--config", str(path), "iam", "--output", str(tmp_path / "iam")]) == 2
    assert "prefix: must start with a letter" in capsys.readouterr().err


def test_cli_writes_templates_without_aws(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "iam"
    example = str(ROOT / "bootstrap.example.toml")
    assert main(["--config", example, "iam", "--output", str(output)]) == 0
    names = sorted(path.name for path in output.iterdir())
    assert names == [
        "studio-bootstrap-execution-222222222222.yaml",
        "studio-bootstrap-register-admin-222222222222.yaml",
        "studio-bootstrap-repository-111111111111.yaml",
    ]
    out = capsys.readouterr().out
    assert "stack studio-bootstrap-d-xxxxxxxxxxxx-repository-access in account " in out
    first = {path.name: path.read_bytes() for path in output.iterdir()}
    assert main(["--config", example, "iam", "--output", str(output)]) == 0
    assert first == {path.name: path.read_bytes() for path in output.iterdir()}


def test_profile_account_must_be_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = str(ROOT / "bootstrap.example.toml")
    code = main(
        [
            "--config",
            example,
            "iam",
            "--output",
            str(tmp_path),
            "--profile-a",
            "333333333333=other",
        ]
    )
    assert code == 2
    assert "account 333333333333 owns none of the configured" in capsys.readouterr().err


# --- the local CodeCommit endpoint's policy check --------------------------------


def make_role(stack: LocalStack, name: str, policy: str | None, **extra: Any) -> str:
    client = stack.session(ACCOUNT_A).client("iam")
    trust = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        f'"Principal":{{"AWS":"{EXECUTION_ROLE}"}},"Action":"sts:AssumeRole"}}]}}'
    )
    arn = client.create_role(RoleName=name, AssumeRolePolicyDocument=trust, **extra)[
        "Role"
    ]["Arn"]
    if policy is not None:
        client.put_role_policy(
            RoleName=name, PolicyName="access", PolicyDocument=policy
        )
    return str(arn)


def allow(actions: list[str], resource: str, effect: str = "Allow") -> str:
    quoted = ",".join(f'"{action}"' for action in actions)
    return (
        '{"Version":"2012-10-17","Statement":[{"Effect":"' + effect + '",'
        f'"Action":[{quoted}],"Resource":"{resource}"}}]}}'
    )


REPO_ARN = f"arn:aws:codecommit:{REGION}:{ACCOUNT_A}:checked-repo"


def test_endpoint_admits_granted_pull(local_stack: LocalStack) -> None:
    role = make_role(local_stack, "EndpointPull", allow([GIT_PULL], REPO_ARN))
    check_role_allows(role, GIT_PULL, REPO_ARN)
    with pytest.raises(GitAuthenticationError, match="no policy of role"):
        check_role_allows(role, GIT_PUSH, REPO_ARN)


def test_endpoint_rejects_other_repository(local_stack: LocalStack) -> None:
    role = make_role(local_stack, "EndpointOther", allow([GIT_PULL], REPO_ARN + "-x"))
    with pytest.raises(GitAuthenticationError, match="allows codecommit:GitPull"):
        check_role_allows(role, GIT_PULL, REPO_ARN)


def test_endpoint_rejects_explicit_deny(local_stack: LocalStack) -> None:
    role = make_role(local_stack, "EndpointDeny", allow([GIT_PULL], REPO_ARN))
    local_stack.session(ACCOUNT_A).client("iam").put_role_policy(
        RoleName="EndpointDeny",
        PolicyName="deny",
        PolicyDocument=allow(["codecommit:*"], "*", effect="Deny"),
    )
    with pytest.raises(GitAuthenticationError, match="is denied to"):
        check_role_allows(role, GIT_PULL, REPO_ARN)


def test_endpoint_applies_permissions_boundary(local_stack: LocalStack) -> None:
    iam = local_stack.session(ACCOUNT_A).client("iam")
    boundary = iam.create_policy(
        PolicyName="EndpointBoundary",
        PolicyDocument=allow(["codecommit:GetBranch"], "*"),
    )["Policy"]["Arn"]
    role = make_role(
        local_stack,
        "EndpointBounded",
        allow([GIT_PULL], REPO_ARN),
        PermissionsBoundary=boundary,
    )
    with pytest.raises(
        GitAuthenticationError, match="outside the permissions boundary"
    ):
        check_role_allows(role, GIT_PULL, REPO_ARN)


def test_endpoint_rejects_unknown_role() -> None:
    with pytest.raises(GitAuthenticationError, match="does not exist"):
        check_role_allows(f"arn:aws:iam::{ACCOUNT_A}:role/Nobody", GIT_PULL, REPO_ARN)


def test_sandbox_repo_role_grants_pull_and_push(repo_role: str) -> None:
    arn = f"arn:aws:codecommit:{REGION}:{ACCOUNT_A}:example-repo"
    check_role_allows(repo_role, GIT_PULL, arn)
    check_role_allows(repo_role, GIT_PUSH, arn)


# --- deploy to the local stack ------------------------------------------------------


needs_studio_user = pytest.mark.skipif(
    not CAN_RUN_AS_STUDIO_USER, reason=STUDIO_USER_SKIP_REASON
)


def deployed(
    tmp_path: Path,
    local_stack: LocalStack,
    stacks: Stacks,
    names: Names,
    execution_role: str,
    **repository: Any,
) -> tuple[Path, dict[str, Any]]:
    data = config_data(names, [execution_role], **repository)
    config = write_config(tmp_path, data)
    stacks.add_domain(names.domain_id)
    assert run_iam(config, local_stack, "--deploy", "--yes") == 0
    return config, data


def create_repository(stack: LocalStack, names: Names) -> None:
    stack.codecommit.create_repository(
        names.repository, allowed_role_arns=[names.role_arn]
    )
    stack.codecommit.commit(
        names.repository, {"README.md": "# deployed\n"}, "Initial commit"
    )


def clone_with_script(tmp_path: Path, home: SandboxHome, data: dict[str, Any]) -> Path:
    """Run the JupyterLab script as Studio does, and wait for its sync."""
    script = next(
        s for s in render_all(parse_config(data)) if s.app_type == "JupyterLab"
    )
    path = tmp_path / script.filename
    path.write_text(script.text)
    result = run_lifecycle(path, home, app_type="JupyterLab")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_idle(home, timeout=SYNC_SECONDS)
    return home.path / data["repositories"][0]["path"]


def push(home: SandboxHome, clone: Path) -> subprocess.CompletedProcess[str]:
    home.write_file(f"{clone.name}/pushed.md", "pushed\n")
    identity = {
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@sandbox.invalid",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@sandbox.invalid",
        "GIT_TERMINAL_PROMPT": "0",
    }
    for command in (["add", "pushed.md"], ["commit", "-qm", "Push from Studio"]):
        done = run_in_home(home, ["git", "-C", str(clone), *command], env=identity)
        assert done.returncode == 0, done.stderr
    return run_in_home(
        home,
        ["git", "-C", str(clone), "push", "origin", "HEAD:refs/heads/pushed"],
        env=identity,
    )


def sync_log(home: SandboxHome) -> str:
    path = home.path / ".studio-bootstrap" / "sync.log"
    return path.read_text() if path.exists() else ""


@needs_studio_user
def test_read_role_clones_not_pushes(
    local_stack: LocalStack,
    execution_role: str,
    admin_profiles: None,
    stacks: Stacks,
    sandbox_home: SandboxHome,
    tmp_path: Path,
) -> None:
    names = unique_names("read")
    _, data = deployed(tmp_path, local_stack, stacks, names, execution_role)
    create_repository(local_stack, names)

    clone = clone_with_script(tmp_path, sandbox_home, data)
    assert (clone / "README.md").read_text() == "# deployed\n", sync_log(sandbox_home)
    before = len(local_stack.codecommit.requests)
    pushed = push(sandbox_home, clone)

    assert pushed.returncode != 0
    rejected = [r for r in local_stack.codecommit.requests[before:] if r.status == 403]
    assert rejected
    assert f"no policy of role {names.role_arn} allows codecommit:GitPush" in (
        rejected[-1].reason or ""
    )


@needs_studio_user
def test_contribute_role_pushes(
    local_stack: LocalStack,
    execution_role: str,
    admin_profiles: None,
    stacks: Stacks,
    sandbox_home: SandboxHome,
    tmp_path: Path,
) -> None:
    names = unique_names("contribute")
    _, data = deployed(
        tmp_path, local_stack, stacks, names, execution_role, access="contribute"
    )
    create_repository(local_stack, names)

    clone = clone_with_script(tmp_path, sandbox_home, data)
    pushed = push(sandbox_home, clone)

    assert pushed.returncode == 0, pushed.stderr
    local = run_in_home(sandbox_home, ["git", "-C", str(clone), "rev-parse", "HEAD"])
    assert (
        local_stack.codecommit.head(names.repository, "pushed") == local.stdout.strip()
    )


def test_deploy_creates_the_chain(
    local_stack: LocalStack,
    execution_role: str,
    admin_profiles: None,
    stacks: Stacks,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = unique_names("chain")
    deployed(tmp_path, local_stack, stacks, names, execution_role)
    out = capsys.readouterr().out
    assert "would create the stack" in out
    assert "AWS::IAM::Role" in out
    assert out.count("IAM matches the template") == 3

    iam_a = local_stack.session(ACCOUNT_A).client("iam")
    role = iam_a.get_role(RoleName=names.role)["Role"]
    assert role["MaxSessionDuration"] == 3600
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "AWS": [execution_role]
    }
    iam_b = local_stack.session(ACCOUNT_B).client("iam")
    grant = iam_b.get_role_policy(
        RoleName="StudioExecutionRole",
        PolicyName=f"studio-bootstrap-{names.domain_id}-assume-roles",
    )["PolicyDocument"]
    assert grant["Statement"][0]["Resource"] == [names.role_arn]
    status = (
        local_stack.session(ACCOUNT_A)
        .client("cloudformation", region_name=REGION)
        .describe_stacks(
            StackName=f"studio-bootstrap-{names.domain_id}-repository-access"
        )
    )["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"


def test_redeploy_updates_the_policy(
    local_stack: LocalStack,
    execution_role: str,
    admin_profiles: None,
    stacks: Stacks,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = unique_names("update")
    deployed(tmp_path, local_stack, stacks, names, execution_role)
    capsys.readouterr()

    data = config_data(names, [execution_role], access="contribute")
    config = write_config(tmp_path, data)
    assert run_iam(config, local_stack, "--deploy", "--yes") == 0
    out = capsys.readouterr().out
    assert "would update the stack" in out
    assert re.search(r"Modify\s+AccessUpdateRole\d+\s+AWS::IAM::Policy", out), out
    document = (
        local_stack.session(ACCOUNT_A)
        .client("iam")
        .get_role_policy(RoleName=names.role, PolicyName="studio-bootstrap-codecommit")[
            "PolicyDocument"
        ]
    )
    assert GIT_PUSH in document["Statement"][0]["Action"]

    assert run_iam(config, local_stack, "--deploy", "--yes") == 0
    again = capsys.readouterr().out
    assert again.count(": up to date") == 3
    assert "would update" not in again


def test_declined_change_set_changes_nothing(
    local_stack: LocalStack,
    execution_role: str,
    admin_profiles: None,
    stacks: Stacks,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = unique_names("declined")
    config = write_config(tmp_path, config_data(names, [execution_role]))
    stacks.add_domain(names.domain_id)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\nn\nn\n"))

    assert run_iam(config, local_stack, "--deploy") == 1

    captured = capsys.readouterr()
    assert "[y/N]" in captured.err
    assert "was not deployed" in captured.err
    cloudformation = local_stack.session(ACCOUNT_A).client("cloudformation")
    stack_names = [s["StackName"] for s in cloudformation.describe_stacks()["Stacks"]]
    assert f"studio-bootstrap-{names.domain_id}-repository-access" not in stack_names
    iam_a = local_stack.session(ACCOUNT_A).client("iam")
    with pytest.raises(iam_a.exceptions.NoSuchEntityException):
        iam_a.get_role(RoleName=names.role)


def test_deploy_reports_drift(
    local_stack: LocalStack,
    execution_role: str,
    admin_profiles: None,
    stacks: Stacks,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = unique_names("drift")
    config, _ = deployed(tmp_path, local_stack, stacks, names, execution_role)
    other = f"arn:aws:iam::{ACCOUNT_B}:role/SomeoneElse"
    local_stack.session(ACCOUNT_A).client("iam").update_assume_role_policy(
        RoleName=names.role,
        PolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            f'"Principal":{{"AWS":"{other}"}},"Action":"sts:AssumeRole"}}]}}'
        ),
    )
    capsys.readouterr()

    assert run_iam(config, local_stack, "--deploy", "--yes") == 1
    error = capsys.readouterr().err
    assert f"role {names.role}: trust policy differs from the template" in error
    assert other in error


def test_deploy_checks_profile_accounts(
    local_stack: LocalStack,
    execution_role: str,
    admin_profiles: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = unique_names("account")
    config = write_config(tmp_path, config_data(names, [execution_role]))
    code = main(
        [
            "--config",
            str(config),
            "iam",
            "--output",
            str(tmp_path / "iam"),
            "--deploy",
            "--yes",
            "--profile-a",
            PROFILE_B,
            "--profile-b",
            PROFILE_B,
            "--endpoint-url",
            local_stack.endpoint_url,
        ]
    )
    assert code == 1
    error = capsys.readouterr().err
    assert f"profile {PROFILE_B} is in account {ACCOUNT_B}, not {ACCOUNT_A}" in error
    assert "--profile-a" in error


def test_execution_roles_from_domain(
    local_stack: LocalStack,
    admin_profiles: None,
    tmp_path: Path,
) -> None:
    sagemaker = local_stack.session(ACCOUNT_B).client("sagemaker")
    user_role = f"arn:aws:iam::{ACCOUNT_B}:role/UserRole"
    domain_id = sagemaker.create_domain(
        DomainName="iam-discovery",
        AuthMode="IAM",
        DefaultUserSettings={"ExecutionRole": EXECUTION_ROLE},
        DomainSettings={"ExecutionRoleIdentityConfig": "USER_PROFILE_NAME"},
        SubnetIds=["subnet-0123456789abcdef0"],
        VpcId="vpc-0123456789abcdef0",
    )["DomainId"]
    wait_in_service(sagemaker, domain_id)
    sagemaker.create_user_profile(
        DomainId=domain_id,
        UserProfileName="ada",
        UserSettings={"ExecutionRole": user_role},
    )
    names = Names(domain_id, "DiscoveredRole", "discovered-repo")
    config = write_config(tmp_path, config_data(names, None))

    assert (
        main(
            [
                "--config",
                str(config),
                "iam",
                "--output",
                str(tmp_path / "iam"),
                *account_options(local_stack),
            ]
        )
        == 0
    )

    text = (
        tmp_path / "iam" / f"studio-bootstrap-repository-{ACCOUNT_A}.yaml"
    ).read_text()
    document = yaml.load(text, Loader=_tag_loader())
    trust = document["Resources"]["RoleDiscoveredRole"]["Properties"][
        "AssumeRolePolicyDocument"
    ]
    assert statement(trust, "AssumeFromStudioExecutionRoles")["Principal"] == {
        "AWS": [EXECUTION_ROLE, user_role]
    }
    assert statement(trust, "KeepSourceIdentityOfStudioUsers")["Action"] == (
        "sts:SetSourceIdentity"
    )


def wait_in_service(client: Any, domain_id: str) -> None:
    import time

    deadline = time.monotonic() + 10
    while client.describe_domain(DomainId=domain_id)["Status"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def codeartifact_helper(index_url: str) -> dict[str, Any]:
    data = example_data()
    data["helper"] = {"sources": ["index"], "index_url": index_url}
    return data


CODEARTIFACT_INDEX = (
    "https://ml-tools-333333333333.d.codeartifact.eu-west-1.amazonaws.com"
    "/pypi/python-mirror/simple/"
)


def test_codeartifact_grants() -> None:
    templates = templates_of(codeartifact_helper(CODEARTIFACT_INDEX))
    execution = resource(templates["execution"], "AWS::IAM::Policy")
    document = execution["PolicyDocument"]
    token = statement(document, "GetCodeArtifactToken")
    assert token["Action"] == ["codeartifact:GetAuthorizationToken"]
    assert token["Resource"] == [
        "arn:aws:codeartifact:eu-west-1:333333333333:domain/ml-tools"
    ]
    bearer = statement(document, "GetCodeArtifactBearerToken")
    assert bearer["Action"] == ["sts:GetServiceBearerToken"]
    assert bearer["Resource"] == ["*"]
    assert bearer["Condition"] == {
        "StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}
    }
    read = statement(document, "ReadCodeArtifactRepository")
    assert read["Action"] == ["codeartifact:ReadFromRepository"]
    assert read["Resource"] == [
        "arn:aws:codeartifact:eu-west-1:333333333333:repository/ml-tools/python-mirror"
    ]


def test_codeartifact_read_needs_repository_in_url() -> None:
    data = codeartifact_helper("http://127.0.0.1:8080/simple/")
    data["helper"].update(
        codeartifact_domain="ml-tools", codeartifact_owner="333333333333"
    )
    execution = resource(templates_of(data)["execution"], "AWS::IAM::Policy")
    sids = [s["Sid"] for s in execution["PolicyDocument"]["Statement"]]
    assert "GetCodeArtifactToken" in sids
    assert "ReadCodeArtifactRepository" not in sids


def test_no_codeartifact_grants_without_it() -> None:
    for template in templates_of(example_data()).values():
        assert "codeartifact" not in template.text, template.filename


@pytest.mark.skipif(CFN_LINT is None, reason="cfn-lint is in the dev extra")
def test_codeartifact_passes_cfn_lint(tmp_path: Path) -> None:
    assert CFN_LINT is not None
    paths = []
    data = codeartifact_helper(CODEARTIFACT_INDEX)
    for template in templates_of(data, EXECUTION_ROLE, PATH_ROLE).values():
        path = tmp_path / template.filename
        path.write_text(template.text)
        paths.append(str(path))
    result = subprocess.run(
        [CFN_LINT, "--", *paths], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
