"""Render the domain account's side as one template for a CloudFormation StackSet.

A service-managed StackSet deploys the template to every account of an
organizational unit and every region it names, so no admin loops over
accounts. Each stack instance creates:

- the ``sts:AssumeRole`` grant of the execution roles on the repository
  roles, only where the ``IamRegion`` parameter equals the instance's
  region, because IAM is global and a second instance would collide;
- one ``AWS::SageMaker::StudioLifecycleConfig`` per configured app type,
  with the content and name that ``register`` would create;
- a Lambda function and a custom resource that attach those LCCs to the
  domains of the account and region, with the slot rules of studio.py.

The Lambda code is built here from bootstrap/studio.py and
bootstrap/stackset_handler.py, so the rules have one source.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bootstrap import __version__
from bootstrap.cfn_yaml import GetAtt, Literal, Ref, dump
from bootstrap.config import (
    APP_SLUGS,
    HASH_LENGTH,
    POLICY_ARN_RE,
    ROLE_ARN_RE,
    Config,
    load_rollout,
)
from bootstrap.domains import one_domain
from bootstrap.errors import BootstrapError
from bootstrap.iam import POLICY_VERSION, TEMPLATE_VERSION, repository_roles
from bootstrap.register import TAG_SHA
from bootstrap.render import RenderedScript, check_size, render_all

DEFAULT_OUTPUT = "lifecycle/stackset"

# CreateStackSet and UpdateStackSet take at most 51,200 bytes in
# TemplateBody; a larger template must be uploaded to S3 and passed as
# TemplateURL (CloudFormation API reference).
TEMPLATE_BODY_LIMIT = 51200
# CloudFormation zips ZipFile code into a package of at most 4 MB, as the
# AWS::Lambda::Function Code reference states. The former limit of 4,096
# characters is gone, so the template body limit is the one that binds.
ZIP_FILE_LIMIT = 4 * 1024 * 1024

LAMBDA_RUNTIME = "python3.13"
# Lambda's maximum. The handler starts no call in its last 90 seconds.
LAMBDA_TIMEOUT_SECONDS = 900
# CloudFormation fails the custom resource when no response came by then,
# instead of waiting the default hour. Only a function that dies hits it.
SERVICE_TIMEOUT_SECONDS = LAMBDA_TIMEOUT_SECONDS + 60
LOG_RETENTION_DAYS = 90

# The handler's import of studio, which the inline code replaces with a
# reference to the combined module.
STUDIO_IMPORT = "from bootstrap import studio\n"
STUDIO_REFERENCE = "import sys\n\nstudio = sys.modules[__name__]\n"
FUTURE_IMPORT = "from __future__ import annotations\n"

IAM_CONDITION = "IsIamRegion"

# Actions of the Lambda role, by the resources each call takes.
DOMAIN_ACTIONS = (
    "sagemaker:DescribeDomain",
    "sagemaker:UpdateDomain",
    "sagemaker:AddTags",
    "sagemaker:DeleteTags",
    "sagemaker:ListTags",
)
# ListDomains takes no resource ARN, so IAM requires "*" for it.
LIST_ACTIONS = ("sagemaker:ListDomains",)
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")


@dataclass(frozen=True)
class StackSetTemplate:
    """The rendered StackSet template and the facts the command reports."""

    filename: str
    body: dict[str, Any]
    text: str
    code: str

    @property
    def size(self) -> int:
        return len(self.text.encode("utf-8"))

    @property
    def needs_s3(self) -> bool:
        return self.size > TEMPLATE_BODY_LIMIT

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.body["Resources"])


def owned_name_pattern(prefix: str) -> str:
    """Return the regular expression of our LCC names, as in register.our_name."""
    slugs = "|".join(APP_SLUGS.values())
    return rf"{re.escape(prefix)}-({slugs})-[0-9a-f]{{{HASH_LENGTH}}}"


def function_name(config: Config) -> str:
    return f"{config.prefix}-attach-lifecycle"


# --- inline code ---------------------------------------------------------------


def inline_code() -> str:
    """Build the Lambda's index.py: studio.py, then the handler module.

    Raises when the handler no longer has the expected imports or defines
    a top-level name that studio.py defines too, since one would overwrite
    the other in the combined module.
    """
    package = resources.files("bootstrap")
    studio_source = package.joinpath("studio.py").read_text(encoding="utf-8")
    handler_source = package.joinpath("stackset_handler.py").read_text(encoding="utf-8")
    for text, name in ((STUDIO_IMPORT, "studio import"), (FUTURE_IMPORT, "future")):
        if handler_source.count(text) != 1:
            raise BootstrapError(
                f"bootstrap/stackset_handler.py must contain one {name} line: {text!r}"
            )
    shared = _defined_names(studio_source) & _defined_names(handler_source)
    if shared:
        raise BootstrapError(
            "bootstrap/stackset_handler.py redefines names of bootstrap/studio.py: "
            + ", ".join(sorted(shared))
        )
    handler_body = handler_source.replace(FUTURE_IMPORT, "").replace(
        STUDIO_IMPORT, STUDIO_REFERENCE
    )
    header = (
        f"# Built by studio-bootstrap {__version__} from bootstrap/studio.py and\n"
        "# bootstrap/stackset_handler.py; edit those, not this copy.\n"
    )
    code = header + studio_source + "\n\n" + handler_body
    compile(code, "index.py", "exec")
    return code


def _defined_names(source: str) -> set[str]:
    """Return the names a module defines at top level, imports excepted."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(
            node.target, ast.Name
        ):
            names.add(node.target.id)
    return names


# --- template --------------------------------------------------------------------


def render_stackset(config: Config) -> StackSetTemplate:
    """Render the StackSet template of a config, the same bytes for the same config."""
    scripts = render_all(config)
    for script in scripts:
        check_size(script)
    code = inline_code()
    if len(code.encode("utf-8")) > ZIP_FILE_LIMIT:
        raise BootstrapError(
            f"the Lambda code has {len(code):,} bytes, over the {ZIP_FILE_LIMIT:,} "
            "bytes CloudFormation zips from ZipFile"
        )
    body: dict[str, Any] = {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": (
            "studio-bootstrap: lifecycle configurations that clone CodeCommit "
            "repositories, attached to the SageMaker Studio domains of each "
            "account and region"
        ),
        "Parameters": _parameters(config),
        "Conditions": {
            IAM_CONDITION: {"Fn::Equals": [Ref("IamRegion"), Ref("AWS::Region")]}
        },
        "Resources": {
            **_iam_resources(config),
            **_lifecycle_configs(scripts),
            **_attach_resources(config, scripts, code),
        },
        "Outputs": {
            "AttachedDomains": {
                "Description": "Domains the lifecycle configurations are attached to",
                "Value": GetAtt("Attachment", "Domains"),
            }
        },
    }
    filename = f"{config.prefix}-stackset.yaml"
    return StackSetTemplate(filename, body, dump(body, _header(config)), code)


def _parameters(config: Config) -> dict[str, Any]:
    role_names = [_role_name(arn) for arn in config.domain.execution_roles]
    execution_roles: dict[str, Any] = {
        "Type": "CommaDelimitedList",
        "Description": (
            "Names of the Studio execution roles of the account that get "
            "sts:AssumeRole on the repository roles (created in IamRegion only)"
        ),
    }
    if role_names:
        execution_roles["Default"] = ",".join(role_names)
    return {
        "IamRegion": {
            "Type": "String",
            "Default": config.domain.region,
            "AllowedPattern": "[a-z]{2}(-[a-z]+)+-[0-9]+",
            "Description": (
                "The one region whose stack instance creates the account's IAM "
                "policy; IAM is global, so the other regions skip it"
            ),
        },
        "ExecutionRoleNames": execution_roles,
        "DomainIds": {
            "Type": "CommaDelimitedList",
            "Default": "",
            "Description": (
                "Studio domain ids of this account and region to attach to; "
                "empty for every domain that ListDomains returns"
            ),
        },
        "ReplaceDefault": {
            "Type": "String",
            "Default": "false",
            "AllowedValues": ["false", "true"],
            "Description": (
                "When another lifecycle configuration is the default, make ours "
                "the default; the other stays allowed and is restored on delete"
            ),
        },
    }


def _iam_resources(config: Config) -> dict[str, Any]:
    role_arns = [role.arn for role in repository_roles(config)]
    statements: list[dict[str, Any]] = [
        _allow("AssumeRepositoryRoles", ["sts:AssumeRole"], role_arns)
    ]
    if config.iam.source_identity is True:
        # NOTE: unverified, as for the statement of the iam command's template.
        statements.append(
            _allow(
                "KeepSourceIdentityOfStudioUsers", ["sts:SetSourceIdentity"], role_arns
            )
        )
    return {
        "AssumeRepositoryRoles": {
            "Type": "AWS::IAM::Policy",
            "Condition": IAM_CONDITION,
            "Properties": {
                "PolicyName": f"{config.prefix}-stackset-assume-roles",
                "Roles": Ref("ExecutionRoleNames"),
                "PolicyDocument": {"Version": POLICY_VERSION, "Statement": statements},
            },
        }
    }


def _lifecycle_configs(scripts: list[RenderedScript]) -> dict[str, Any]:
    # Tags cannot change without replacing the LCC, and a replacement under
    # the same name fails, so only the content hash is tagged (it changes
    # with the name). A version tag would change with every release.
    resources_by_id: dict[str, Any] = {}
    for script in scripts:
        resources_by_id[_lcc_id(script.app_type)] = {
            "Type": "AWS::SageMaker::StudioLifecycleConfig",
            "Properties": {
                "StudioLifecycleConfigName": script.lcc_name,
                "StudioLifecycleConfigAppType": script.app_type,
                "StudioLifecycleConfigContent": script.encoded,
                "Tags": [
                    {
                        "Key": TAG_SHA,
                        "Value": hashlib.sha256(script.content).hexdigest(),
                    }
                ],
            },
        }
    return resources_by_id


def _attach_resources(
    config: Config, scripts: list[RenderedScript], code: str
) -> dict[str, Any]:
    name = function_name(config)
    log_group = f"/aws/lambda/{name}"
    role_properties: dict[str, Any] = {
        "Description": (
            "Lets the studio-bootstrap custom resource attach lifecycle "
            "configurations to the SageMaker Studio domains of this region"
        ),
        "AssumeRolePolicyDocument": {
            "Version": POLICY_VERSION,
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        "Policies": [
            {
                "PolicyName": "attach-lifecycle-configurations",
                "PolicyDocument": {
                    "Version": POLICY_VERSION,
                    "Statement": [
                        _allow("ListDomains", list(LIST_ACTIONS), ["*"]),
                        _allow(
                            "UpdateDomainsOfThisRegion",
                            list(DOMAIN_ACTIONS),
                            [
                                {
                                    "Fn::Sub": "arn:${AWS::Partition}:sagemaker:"
                                    "${AWS::Region}:${AWS::AccountId}:domain/*"
                                }
                            ],
                        ),
                        _allow(
                            "WriteOwnLogs",
                            list(LOG_ACTIONS),
                            [
                                {
                                    "Fn::Sub": "arn:${AWS::Partition}:logs:"
                                    "${AWS::Region}:${AWS::AccountId}:log-group:"
                                    f"{log_group}:*"
                                }
                            ],
                        ),
                    ],
                },
            }
        ],
    }
    boundary = _permissions_boundary(config)
    if boundary is not None:
        role_properties["PermissionsBoundary"] = boundary
    if config.iam.tags:
        role_properties["Tags"] = [
            {"Key": key, "Value": value} for key, value in config.iam.tags
        ]
    return {
        "AttachLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": log_group,
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        },
        "AttachRole": {"Type": "AWS::IAM::Role", "Properties": role_properties},
        "AttachFunction": {
            "Type": "AWS::Lambda::Function",
            "DependsOn": ["AttachLogGroup"],
            "Properties": {
                "FunctionName": name,
                "Description": (
                    "Attaches the studio-bootstrap lifecycle configurations to "
                    "SageMaker Studio domains (custom resource)"
                ),
                "Runtime": LAMBDA_RUNTIME,
                "Handler": "index.handler",
                "Timeout": LAMBDA_TIMEOUT_SECONDS,
                "MemorySize": 256,
                "Role": GetAtt("AttachRole", "Arn"),
                "Code": {"ZipFile": Literal(code)},
            },
        },
        "Attachment": {
            "Type": "Custom::StudioLifecycleAttachment",
            "Properties": {
                "ServiceToken": GetAtt("AttachFunction", "Arn"),
                "ServiceTimeout": SERVICE_TIMEOUT_SECONDS,
                "DomainIds": Ref("DomainIds"),
                "ReplaceDefault": Ref("ReplaceDefault"),
                "OwnedNamePattern": owned_name_pattern(config.prefix),
                "LifecycleConfigArns": {
                    script.app_type: GetAtt(
                        _lcc_id(script.app_type), "StudioLifecycleConfigArn"
                    )
                    for script in scripts
                },
            },
        },
    }


def _permissions_boundary(config: Config) -> str | dict[str, str] | None:
    boundary = config.iam.permissions_boundary
    if not boundary or POLICY_ARN_RE.match(boundary):
        return boundary
    return {
        "Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:policy/{boundary}"
    }


def _allow(sid: str, actions: list[str], resources_: list[Any]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources_}


def _lcc_id(app_type: str) -> str:
    return f"LifecycleConfig{app_type}"


def _role_name(arn: str) -> str:
    match = ROLE_ARN_RE.match(arn)
    if match is None:
        raise ValueError(f"invalid role ARN {arn!r}")
    return match.group("name")


def _header(config: Config) -> list[str]:
    return [
        f"Rendered by studio-bootstrap {__version__} from the config of SageMaker "
        f"Studio domain {config.domain.id}.",
        "Deploy it as a service-managed StackSet with CAPABILITY_NAMED_IAM; see",
        "docs/stackset.md. Over 51,200 bytes, CloudFormation takes it only by S3 URL.",
    ]


# --- command ---------------------------------------------------------------------


def write_template(template: StackSetTemplate, folder: Path) -> Path:
    """Write the template, replacing the file only when its bytes changed."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / template.filename
    content = template.text.encode("utf-8")
    if not path.exists() or path.read_bytes() != content:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(content)
        temporary.replace(path)
    return path


def run_stackset(args: argparse.Namespace) -> int:
    """Render the StackSet template, write it and report its size."""
    config = one_domain(load_rollout(args.config), args.domain, "stackset")
    template = render_stackset(config)
    path = write_template(template, Path(args.output))
    print(
        f"{path}: {template.size:,} bytes, Lambda code "
        f"{len(template.code.encode('utf-8')):,} bytes"
    )
    if template.needs_s3:
        print(
            f"The template is over the {TEMPLATE_BODY_LIMIT:,} bytes that "
            "--template-body accepts: upload it to S3 and pass --template-url "
            "to create-stack-set and update-stack-set."
        )
    else:
        print(
            f"The template fits the {TEMPLATE_BODY_LIMIT:,} bytes of --template-body."
        )
    return 0
