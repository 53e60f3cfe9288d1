"""Render the IAM of both accounts as CloudFormation templates.

- Account A (each account that owns a repository): one role per distinct
  role of the config. Its trust admits exactly the domain's execution roles
  (never an account root), and an inline policy grants each repository's
  actions on exactly that repository's ARN.
- Account B (the domain's account): an inline policy on each execution role
  that allows ``sts:AssumeRole`` on exactly those role ARNs, and
  ``s3:GetObject`` on the helper wheel when the "s3" helper source is used.
- Account B: the managed policy that the admin who runs ``register`` needs.

Inline policies are ``AWS::IAM::Policy`` resources rather than the role's
``Policies`` property, because that is the IAM resource that moto's
CloudFormation (5.2.1) updates and deletes, so the local stack can play
every change a real stack makes to the permissions.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bootstrap import __version__
from bootstrap.cfn_yaml import Ref, dump
from bootstrap.config import POLICY_ARN_RE, ROLE_ARN_RE, Config, Repository
from bootstrap.errors import BootstrapError, ConfigError, ConfigIssue
from bootstrap.helper_upload import uses_s3
from bootstrap.register import State

logger = logging.getLogger(__name__)

POLICY_VERSION = "2012-10-17"
TEMPLATE_VERSION = "2010-09-09"

# The hop from the execution role to the repository role is role chaining,
# which AWS limits to one hour whatever the role allows, and 3600 is also
# the smallest MaxSessionDuration IAM accepts.
MAX_SESSION_SECONDS = 3600

# Stack names: a letter, then letters, digits and hyphens, at most 128.
STACK_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}\Z")

# Kinds of template, which name the stack and the file.
REPOSITORY = "repository"
EXECUTION = "execution"
ADMIN = "register-admin"

# Actions that register, plan, unregister and status call in the domain's
# account, grouped by the resources each call takes.
ADMIN_OWN_LCC_ACTIONS = (
    "sagemaker:CreateStudioLifecycleConfig",
    "sagemaker:DeleteStudioLifecycleConfig",
    "sagemaker:AddTags",
    "sagemaker:ListTags",
)
# --compose reads the script of another LCC, the default it runs with ours.
ADMIN_ANY_LCC_ACTIONS = ("sagemaker:DescribeStudioLifecycleConfig",)
ADMIN_DOMAIN_ACTIONS = ("sagemaker:DescribeDomain", "sagemaker:UpdateDomain")
ADMIN_MEMBER_ACTIONS = (
    "sagemaker:DescribeUserProfile",
    "sagemaker:UpdateUserProfile",
    "sagemaker:DescribeSpace",
    "sagemaker:UpdateSpace",
)
# These list calls take no resource ARN, so IAM requires "*" for them.
ADMIN_LIST_ACTIONS = (
    "sagemaker:ListApps",
    "sagemaker:ListSpaces",
    "sagemaker:ListStudioLifecycleConfigs",
    "sagemaker:ListUserProfiles",
)

# The git-remote-codecommit wheel of the "s3" helper source. register reads,
# uploads and deletes exactly that object (see bootstrap/helper_upload.py).
# With s3:ListBucket, S3 returns 404 rather than 403 for HeadObject on a
# missing key, and HeadBucket distinguishes a missing bucket from a missing key.
# Without it, register cannot tell a free key from a denied read.
HELPER_READ_ACTIONS = ("s3:GetObject",)
HELPER_ADMIN_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
HELPER_ADMIN_BUCKET_ACTIONS = ("s3:ListBucket",)


@dataclass(frozen=True)
class Chain:
    """The account-B side of the chain: who assumes the repository roles."""

    execution_roles: tuple[str, ...]
    source_identity: bool

    @property
    def account(self) -> str:
        return _role_parts(self.execution_roles[0])["account"]

    @property
    def partition(self) -> str:
        return _role_parts(self.execution_roles[0])["partition"]


@dataclass(frozen=True)
class Role:
    """A repository role in account A and the repositories it serves."""

    arn: str
    repositories: tuple[Repository, ...]

    @property
    def name(self) -> str:
        return _role_parts(self.arn)["name"]

    @property
    def path(self) -> str:
        return "/" + _role_parts(self.arn)["path"]

    @property
    def account(self) -> str:
        return _role_parts(self.arn)["account"]


@dataclass(frozen=True)
class Template:
    """One rendered template: where it is deployed and its YAML text."""

    kind: str
    account: str
    region: str
    stack_name: str
    filename: str
    body: dict[str, Any]
    text: str
    partition: str
    roles: tuple[Role, ...] = field(default=())

    @property
    def digest(self) -> str:
        """A short content hash, part of the change set name."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:8]

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.body["Resources"])


def repository_roles(config: Config) -> list[Role]:
    """Group the repositories by role, in the order the config names them."""
    grouped: dict[str, list[Repository]] = {}
    for repository in config.repositories:
        grouped.setdefault(repository.role_arn, []).append(repository)
    return [Role(arn, tuple(items)) for arn, items in grouped.items()]


def render_templates(config: Config, chain: Chain) -> list[Template]:
    """Render the templates of every account: A first, then B."""
    _check_stack_prefix(config)
    roles = repository_roles(config)
    chains = {role.arn: chain for role in roles}
    templates = _repository_templates(config, chains, roles, [config.domain.id])
    templates.append(execution_template(config, chain, roles))
    templates.append(admin_template(config, chain))
    return templates


def render_domains_templates(
    domains: Sequence[tuple[Config, Chain]],
) -> tuple[list[Template], dict[str, list[Template]]]:
    """Render the templates of several domains that may share repository roles.

    A role that several domains use is rendered once, in one stack per
    repository account, and trusts the execution roles of each of those
    domains. Each domain keeps its own account-B templates, returned by
    domain label.
    """
    first = domains[0][0]
    for config, _ in domains:
        _check_stack_prefix(config)
    members: dict[str, list[Repository]] = {}
    chains: dict[str, Chain] = {}
    for config, chain in domains:
        for role in repository_roles(config):
            merged = members.setdefault(role.arn, [])
            for repository in role.repositories:
                _merge_repository(merged, repository)
            known = chains.get(role.arn)
            if known is None:
                chains[role.arn] = chain
            else:
                trusted = known.execution_roles + chain.execution_roles
                chains[role.arn] = Chain(
                    tuple(dict.fromkeys(trusted)),
                    known.source_identity or chain.source_identity,
                )
    roles = [Role(arn, tuple(items)) for arn, items in members.items()]
    labels = [config.domain.id for config, _ in domains]
    shared = _repository_templates(first, chains, roles, labels)
    own = {
        config.domain.label: [
            execution_template(config, chain, repository_roles(config)),
            admin_template(config, chain),
        ]
        for config, chain in domains
    }
    return shared, own


def _merge_repository(merged: list[Repository], repository: Repository) -> None:
    """Add a repository to a role's list; the same ARN twice grants both accesses."""
    for index, other in enumerate(merged):
        if other.arn == repository.arn:
            if other.access != repository.access:
                actions = tuple(dict.fromkeys(other.access + repository.access))
                merged[index] = replace(other, access=actions, access_name="custom")
            return
    merged.append(repository)


def _repository_templates(
    config: Config, chains: dict[str, Chain], roles: list[Role], domains: list[str]
) -> list[Template]:
    accounts: dict[str, list[Role]] = {}
    for role in roles:
        accounts.setdefault(role.account, []).append(role)
    return [
        repository_template(config, chains, account, account_roles, domains)
        for account, account_roles in accounts.items()
    ]


def stack_name(config: Config, kind: str, shared: bool = False) -> str:
    """Name the stack of one kind of template, per prefix and domain.

    Repository roles that several domains share live in one stack per
    account, named by the prefix alone.
    """
    suffix = {
        REPOSITORY: "repository-access",
        EXECUTION: "execution-access",
        ADMIN: "register-admin",
    }[kind]
    if shared:
        return f"{config.prefix}-{suffix}"
    return f"{config.prefix}-{config.domain.id}-{suffix}"


def _check_stack_prefix(config: Config) -> None:
    name = stack_name(config, REPOSITORY)
    if STACK_NAME_RE.match(name) is None:
        rule = "must start with a letter to name CloudFormation stacks (iam command)"
        raise ConfigError(config.source, [ConfigIssue("prefix", rule, config.prefix)])


# --- account A ---------------------------------------------------------------


def repository_template(
    config: Config,
    chains: dict[str, Chain],
    account: str,
    roles: list[Role],
    domains: list[str],
) -> Template:
    """Render the roles of one repository account and their access policies.

    ``chains`` gives each role's execution roles, and ``domains`` the ids of
    the domains whose roles these are.
    """
    resources: dict[str, Any] = {}
    ids = _logical_ids([role.name for role in roles])
    scope = ", ".join(domains)
    for role, logical_id in zip(roles, ids, strict=True):
        resources[f"Role{logical_id}"] = {
            "Type": "AWS::IAM::Role",
            "Properties": _role_properties(config, chains[role.arn], role, scope),
        }
        resources[f"Access{logical_id}"] = {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": f"{config.prefix}-codecommit",
                "Roles": [Ref(f"Role{logical_id}")],
                "PolicyDocument": access_policy(role),
            },
        }
    noun = "domain" if len(domains) == 1 else "domains"
    description = (
        f"studio-bootstrap: CodeCommit roles for SageMaker Studio {noun} {scope}"
    )
    region = roles[0].repositories[0].region
    body = _template(description, resources)
    name = stack_name(config, REPOSITORY, shared=len(domains) > 1)
    header = _header(config, REPOSITORY, account, region, name, scope)
    partition = chains[roles[0].arn].partition
    return Template(
        REPOSITORY,
        account,
        region,
        name,
        f"{config.prefix}-{REPOSITORY}-{account}.yaml",
        body,
        dump(body, header),
        partition,
        tuple(roles),
    )


def _role_properties(
    config: Config, chain: Chain, role: Role, scope: str
) -> dict[str, Any]:
    noun = "domains" if ", " in scope else "domain"
    properties: dict[str, Any] = {
        "RoleName": role.name,
        "Path": role.path,
        "Description": (
            f"Assumed by the execution roles of SageMaker Studio {noun} "
            f"{scope} to use CodeCommit"
        ),
        "MaxSessionDuration": MAX_SESSION_SECONDS,
        "AssumeRolePolicyDocument": trust_policy(config, chain),
    }
    boundary = permissions_boundary(config, role.account, chain.partition)
    if boundary:
        properties["PermissionsBoundary"] = boundary
    if config.iam.tags:
        properties["Tags"] = [
            {"Key": key, "Value": value} for key, value in config.iam.tags
        ]
    return properties


def trust_policy(config: Config, chain: Chain) -> dict[str, Any]:
    """Admit exactly the execution roles, with the external id when set.

    With ``iam.organization_id``, the trust admits a role of the same path
    and name in every account of the organization, so that domain accounts
    that join later need no change in account A.
    """
    organization = config.iam.organization_id
    principal: dict[str, Any] = {"AWS": list(chain.execution_roles)}
    scope: dict[str, Any] = {}
    if organization:
        principal = {"AWS": "*"}
        scope = {
            "StringEquals": {"aws:PrincipalOrgID": organization},
            "ArnLike": {"aws:PrincipalArn": organization_patterns(chain)},
        }
    assume: dict[str, Any] = {
        "Sid": "AssumeFromStudioExecutionRoles",
        "Effect": "Allow",
        "Principal": principal,
        "Action": "sts:AssumeRole",
    }
    conditions = {key: dict(value) for key, value in scope.items()}
    if config.iam.external_id:
        equals = conditions.setdefault("StringEquals", {})
        equals["sts:ExternalId"] = config.iam.external_id
    if conditions:
        assume["Condition"] = conditions
    statements = [assume]
    if chain.source_identity:
        # NOTE: unverified whether Studio sessions of a domain with
        # ExecutionRoleIdentityConfig carry a source identity into the
        # chained session. When they do, IAM requires this permission.
        keep: dict[str, Any] = {
            "Sid": "KeepSourceIdentityOfStudioUsers",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "sts:SetSourceIdentity",
        }
        if scope:
            keep["Condition"] = scope
        statements.append(keep)
    return {"Version": POLICY_VERSION, "Statement": statements}


def organization_patterns(chain: Chain) -> list[str]:
    """Turn each execution role ARN into a pattern for any account."""
    patterns = []
    for arn in chain.execution_roles:
        parts = _role_parts(arn)
        pattern = f"arn:{parts['partition']}:iam::*:role/{parts['path']}{parts['name']}"
        if pattern not in patterns:
            patterns.append(pattern)
    return patterns


def access_policy(role: Role) -> dict[str, Any]:
    """Grant each repository's actions on exactly its ARN.

    Repositories with the same actions share one statement, and statements
    come in the order their first repository appears in the config.
    """
    grouped: dict[tuple[str, ...], list[Repository]] = {}
    for repository in role.repositories:
        grouped.setdefault(repository.access, []).append(repository)
    statements = []
    custom = 0
    for actions, repositories in grouped.items():
        name = repositories[0].access_name
        if name == "custom":
            custom += 1
            name = f"custom{custom}"
        statements.append(
            {
                "Sid": f"{name.capitalize()}Repositories",
                "Effect": "Allow",
                "Action": list(actions),
                "Resource": [repository.arn for repository in repositories],
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def permissions_boundary(config: Config, account: str, partition: str) -> str | None:
    """Return the boundary's ARN in a role's account, or None when unset."""
    boundary = config.iam.permissions_boundary
    if not boundary or POLICY_ARN_RE.match(boundary):
        return boundary
    return f"arn:{partition}:iam::{account}:policy/{boundary}"


# --- account B ---------------------------------------------------------------


def execution_template(config: Config, chain: Chain, roles: list[Role]) -> Template:
    """Render the policy that lets each execution role assume the roles of A."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AssumeRepositoryRoles",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": [role.arn for role in roles],
        }
    ]
    if chain.source_identity:
        # NOTE: unverified, as for the trust policy's statement.
        statements.append(
            {
                "Sid": "KeepSourceIdentityOfStudioUsers",
                "Effect": "Allow",
                "Action": "sts:SetSourceIdentity",
                "Resource": [role.arn for role in roles],
            }
        )
    helper = helper_wheel_arns(config, chain.partition)
    if helper:
        # The lifecycle script fetches the wheel with the execution role.
        statements.append(_allow("ReadHelperWheel", HELPER_READ_ACTIONS, [helper[1]]))
    statements += codeartifact_statements(config, chain.partition)
    resources = {
        "AssumeRepositoryRoles": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": f"{config.prefix}-{config.domain.id}-assume-roles",
                "Roles": [_role_parts(arn)["name"] for arn in chain.execution_roles],
                "PolicyDocument": {"Version": POLICY_VERSION, "Statement": statements},
            },
        }
    }
    description = (
        f"studio-bootstrap: lets the execution roles of SageMaker Studio domain "
        f"{config.domain.id} assume the CodeCommit roles"
    )
    body = _template(description, resources)
    header = _header(config, EXECUTION, chain.account, config.domain.region)
    return Template(
        EXECUTION,
        chain.account,
        config.domain.region,
        stack_name(config, EXECUTION),
        f"{config.prefix}-{EXECUTION}-{chain.account}.yaml",
        body,
        dump(body, header),
        chain.partition,
    )


def admin_template(config: Config, chain: Chain) -> Template:
    """Render the managed policy for the admin who runs register."""
    prefix = f"arn:{chain.partition}:sagemaker:{config.domain.region}:{chain.account}"
    domain = config.domain.id
    statements = [
        _allow(
            "OwnLifecycleConfigurations",
            ADMIN_OWN_LCC_ACTIONS,
            [f"{prefix}:studio-lifecycle-config/{config.prefix}-*"],
        ),
        _allow(
            "DescribeLifecycleConfigurations",
            ADMIN_ANY_LCC_ACTIONS,
            [f"{prefix}:studio-lifecycle-config/*"],
        ),
        _allow("Domain", ADMIN_DOMAIN_ACTIONS, [f"{prefix}:domain/{domain}"]),
        _allow(
            "UserProfilesAndSpaces",
            ADMIN_MEMBER_ACTIONS,
            [
                f"{prefix}:user-profile/{domain}/*",
                f"{prefix}:space/{domain}/*",
            ],
        ),
        _allow("ListDomainMembers", ADMIN_LIST_ACTIONS, ["*"]),
    ]
    helper = helper_wheel_arns(config, chain.partition)
    if helper:
        bucket_arn, object_arn = helper
        statements.append(
            _allow("HelperWheelObject", HELPER_ADMIN_OBJECT_ACTIONS, [object_arn])
        )
        statements.append(
            _allow("HelperWheelBucket", HELPER_ADMIN_BUCKET_ACTIONS, [bucket_arn])
        )
    resources = {
        "RegisterAdminPolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "ManagedPolicyName": f"{config.prefix}-{domain}-register-admin",
                "Description": (
                    f"What studio-bootstrap register, plan, unregister and status "
                    f"call on SageMaker Studio domain {domain}"
                ),
                "PolicyDocument": {"Version": POLICY_VERSION, "Statement": statements},
            },
        }
    }
    description = (
        f"studio-bootstrap: the policy of the admin who registers lifecycle "
        f"configurations on SageMaker Studio domain {domain}"
    )
    body = _template(description, resources)
    header = _header(config, ADMIN, chain.account, config.domain.region)
    return Template(
        ADMIN,
        chain.account,
        config.domain.region,
        stack_name(config, ADMIN),
        f"{config.prefix}-{ADMIN}-{chain.account}.yaml",
        body,
        dump(body, header),
        chain.partition,
    )


# --- execution roles -------------------------------------------------------------


def configured_chain(config: Config) -> Chain | None:
    """Return the chain of the configured execution roles, or None when unset."""
    if not config.domain.execution_roles:
        return None
    return Chain(config.domain.execution_roles, config.iam.source_identity is True)


def discovered_chain(config: Config, state: State) -> Chain:
    """Build the chain from the execution roles the domain and its members name.

    With ``source_identity = "auto"``, the trust admits sts:SetSourceIdentity
    when the domain sets ExecutionRoleIdentityConfig to USER_PROFILE_NAME.
    """
    roles = execution_roles_of(state)
    if not roles:
        raise BootstrapError(
            f"domain {state.domain_id} names no execution role in its settings, "
            "user profiles or spaces; list them in domain.execution_roles"
        )
    source_identity = config.iam.source_identity
    if source_identity == "auto":
        source_identity = uses_source_identity(state)
        logger.debug("domain sets a source identity: %s", source_identity)
    return Chain(tuple(roles), bool(source_identity))


def execution_roles_of(state: State) -> list[str]:
    """Return every execution role the domain, its users and spaces name.

    A private space runs as its owner's execution role and a shared space as
    the domain's DefaultSpaceSettings role. DescribeSpace has no ExecutionRole
    in botocore 1.43's model, and one that a later model adds is read too.
    """
    found: list[str] = []
    settings = [
        state.domain.get("DefaultUserSettings") or {},
        state.domain.get("DefaultSpaceSettings") or {},
        *(state.users[name] for name in sorted(state.users)),
        *(state.spaces[name] for name in sorted(state.spaces)),
    ]
    for item in settings:
        role = item.get("ExecutionRole")
        if role and role not in found:
            found.append(str(role))
    return found


def uses_source_identity(state: State) -> bool:
    """Return whether the domain sets the user profile name as source identity."""
    domain_settings = state.domain.get("DomainSettings") or {}
    return domain_settings.get("ExecutionRoleIdentityConfig") == "USER_PROFILE_NAME"


# --- helpers -------------------------------------------------------------------


def helper_wheel_arns(config: Config, partition: str) -> tuple[str, str] | None:
    """Return the ARNs of the helper wheel's bucket and object, or None when unused."""
    if not uses_s3(config):
        return None
    helper = config.helper
    bucket_arn = f"arn:{partition}:s3:::{helper.bucket}"
    # helper.key_prefix may contain '*', which is a wildcard in a Resource,
    # so it becomes the policy variable ${*}, which IAM reads as a literal '*'.
    key = str(helper.key).replace("*", "${*}")
    return bucket_arn, f"{bucket_arn}/{key}"


def codeartifact_statements(config: Config, partition: str) -> list[dict[str, Any]]:
    """Let the execution roles read the CodeArtifact index of the helper.

    GetAuthorizationToken also needs sts:GetServiceBearerToken, which
    CodeArtifact's policy examples allow on "*" when sts:AWSServiceName is
    codeartifact.amazonaws.com. ReadFromRepository is granted only when
    index_url names the repository.
    """
    helper = config.helper
    if not helper.codeartifact:
        return []
    prefix = (
        f"arn:{partition}:codeartifact:{helper.codeartifact_region}:"
        f"{helper.codeartifact_owner}"
    )
    statements = [
        _allow(
            "GetCodeArtifactToken",
            ["codeartifact:GetAuthorizationToken"],
            [f"{prefix}:domain/{helper.codeartifact_domain}"],
        ),
        {
            **_allow(
                "GetCodeArtifactBearerToken", ["sts:GetServiceBearerToken"], ["*"]
            ),
            "Condition": {
                "StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}
            },
        },
    ]
    repository = helper.codeartifact_repository
    if repository is not None:
        arn = f"{prefix}:repository/{helper.codeartifact_domain}/{repository}"
        statements.append(
            _allow(
                "ReadCodeArtifactRepository", ["codeartifact:ReadFromRepository"], [arn]
            )
        )
    return statements


def _allow(sid: str, actions: Iterable[str], resources: list[str]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": resources,
    }


def _template(description: str, resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": description,
        "Resources": resources,
    }


def _header(
    config: Config,
    kind: str,
    account: str,
    region: str,
    name: str | None = None,
    scope: str | None = None,
) -> list[str]:
    scope = scope or config.domain.id
    noun = "domains" if ", " in scope else "domain"
    return [
        f"Rendered by studio-bootstrap {__version__} for SageMaker Studio {noun} "
        f"{scope}.",
        f"Stack {name or stack_name(config, kind)} in account {account} ({region}).",
        'Deploy it with "studio-bootstrap iam --deploy", or with any CloudFormation',
        "tool and CAPABILITY_NAMED_IAM.",
    ]


def _logical_ids(names: list[str]) -> list[str]:
    """Turn role names into distinct logical ids of letters and digits."""
    ids: list[str] = []
    for name in names:
        base = "".join(part[:1].upper() + part[1:] for part in re.split(r"\W|_", name))
        candidate = base or "Role"
        number = 2
        while candidate in ids:
            candidate = f"{base}{number}"
            number += 1
        ids.append(candidate)
    return ids


def _role_parts(arn: str) -> dict[str, str]:
    match = ROLE_ARN_RE.match(arn)
    if match is None:
        raise ValueError(f"invalid role ARN {arn!r}")
    return match.groupdict()


def write_templates(templates: Iterable[Template], folder: Path) -> list[Path]:
    """Write each template, replacing a file only when its bytes changed."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for template in templates:
        path = folder / template.filename
        content = template.text.encode("utf-8")
        if not path.exists() or path.read_bytes() != content:
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_bytes(content)
            temporary.replace(path)
        written.append(path)
    return written
