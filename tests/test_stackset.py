"""The StackSet template and its custom-resource handler.

The template tests read the rendered YAML and run cfn-lint on it. moto's
CloudFormation cannot run Lambda, so the handler tests build the Lambda's
inline code exactly as the template carries it, import it, and call its
``handler`` with the events CloudFormation sends. Its boto3 calls reach the
local SageMaker through AWS_ENDPOINT_URL with account B's credentials, and
its responses go to an HTTP server on 127.0.0.1 that the test starts.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import tomllib
import yaml

from bootstrap import register
from bootstrap.cfn_yaml import GetAtt, Literal, Ref, dump
from bootstrap.cli import main
from bootstrap.config import Config, parse_config
from bootstrap.render import RenderedScript, render_all
from bootstrap.sandbox import sagemaker
from bootstrap.sandbox.stack import LocalStack
from bootstrap.stackset import (
    DOMAIN_ACTIONS,
    LIST_ACTIONS,
    LOG_ACTIONS,
    TEMPLATE_BODY_LIMIT,
    StackSetTemplate,
    inline_code,
    owned_name_pattern,
    render_stackset,
)
from bootstrap.stackset_handler import (
    PREVIOUS_TAG_PREFIX,
    RESPONSE_BODY_LIMIT,
    HandlerError,
    fit_reason,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bootstrap.example.toml"
ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
REGION = "eu-west-1"
AUTOSHUTDOWN = '#!/bin/bash\necho autoshutdown ran >> "$HOME/autoshutdown.log"\n'
CFN_LINT = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))


def example_data() -> dict[str, Any]:
    with EXAMPLE.open("rb") as handle:
        return tomllib.load(handle)


def every_option() -> dict[str, Any]:
    data = example_data()
    data["iam"].update(
        external_id="ext-1234",
        permissions_boundary="Boundary",
        tags={"team": "ml platform", "cost-center": "42"},
        source_identity=True,
    )
    data["app_types"] = ["JupyterLab", "KernelGateway"]
    data["repositories"].append(
        {
            "name": "second",
            "account_id": "333333333333",
            "role": "arn:aws:iam::333333333333:role/team/Second.Role",
            "profile": "second",
            "path": "second",
        }
    )
    return data


def template_of(data: dict[str, Any]) -> StackSetTemplate:
    return render_stackset(parse_config(data))


def resources_of_type(template: StackSetTemplate, kind: str) -> dict[str, Any]:
    return {
        name: resource
        for name, resource in template.resources.items()
        if resource["Type"] == kind
    }


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    found = [s for s in document["Statement"] if s["Sid"] == sid]
    assert len(found) == 1, document
    return dict(found[0])


def _tag_loader() -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def ref(loader: yaml.SafeLoader, node: yaml.Node) -> Ref:
        return Ref(str(loader.construct_scalar(node)))  # type: ignore[arg-type]

    def get_att(loader: yaml.SafeLoader, node: yaml.Node) -> GetAtt:
        text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
        name, attribute = text.split(".", 1)
        return GetAtt(name, attribute)

    Loader.add_constructor("!Ref", ref)
    Loader.add_constructor("!GetAtt", get_att)
    return Loader


def _plain(value: Any) -> Any:
    """Return a template body with each Literal as the string YAML reads."""
    if isinstance(value, Literal):
        return value.text
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# --- template -------------------------------------------------------------------


@pytest.mark.skipif(CFN_LINT is None, reason="cfn-lint is in the dev extra")
@pytest.mark.parametrize(
    "data", [example_data(), every_option()], ids=["example", "every-option"]
)
def test_template_passes_cfn_lint(data: dict[str, Any], tmp_path: Path) -> None:
    assert CFN_LINT is not None
    path = tmp_path / "stackset.yaml"
    path.write_text(template_of(data).text)
    result = subprocess.run(
        [CFN_LINT, "--", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "data", [example_data(), every_option()], ids=["example", "every-option"]
)
def test_yaml_reads_back_as_template(data: dict[str, Any]) -> None:
    template = template_of(data)
    assert yaml.load(template.text, Loader=_tag_loader()) == _plain(template.body)


def test_render_is_deterministic(tmp_path: Path) -> None:
    first = template_of(example_data())
    second = template_of(example_data())
    assert first.text == second.text
    assert main(["--config", str(EXAMPLE), "stackset", "--output", str(tmp_path)]) == 0
    written = (tmp_path / first.filename).read_bytes()
    assert written == first.text.encode("utf-8")


def test_command_names_s3_over_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = template_of(example_data())
    assert template.size > TEMPLATE_BODY_LIMIT
    assert main(["--config", str(EXAMPLE), "stackset", "--output", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert f"{template.size:,} bytes" in output
    assert "--template-url" in output
    assert "51,200" in output


def test_iam_policy_only_in_iam_region() -> None:
    template = template_of(example_data())
    assert template.body["Conditions"] == {
        "IsIamRegion": {"Fn::Equals": [Ref("IamRegion"), Ref("AWS::Region")]}
    }
    policies = resources_of_type(template, "AWS::IAM::Policy")
    assert list(policies) == ["AssumeRepositoryRoles"]
    policy = policies["AssumeRepositoryRoles"]
    assert policy["Condition"] == "IsIamRegion"
    assert policy["Properties"]["Roles"] == Ref("ExecutionRoleNames")
    parameters = template.body["Parameters"]
    assert parameters["IamRegion"]["Default"] == REGION
    assert parameters["ExecutionRoleNames"]["Type"] == "CommaDelimitedList"
    assert parameters["ExecutionRoleNames"]["Default"] == "StudioExecutionRole"


def test_iam_policy_grants_assume_role() -> None:
    template = template_of(every_option())
    policy = template.resources["AssumeRepositoryRoles"]["Properties"]
    document = policy["PolicyDocument"]
    assume = statement(document, "AssumeRepositoryRoles")
    roles = [
        f"arn:aws:iam::{ACCOUNT_A}:role/CrossAccountRepoRole",
        "arn:aws:iam::333333333333:role/team/Second.Role",
    ]
    assert assume["Effect"] == "Allow"
    assert assume["Action"] == ["sts:AssumeRole"]
    assert assume["Resource"] == roles
    source = statement(document, "KeepSourceIdentityOfStudioUsers")
    assert source["Action"] == ["sts:SetSourceIdentity"]
    assert source["Resource"] == roles
    assert "*" not in json.dumps(document)


def test_no_source_identity_statement_by_default() -> None:
    template = template_of(example_data())
    document = template.resources["AssumeRepositoryRoles"]["Properties"][
        "PolicyDocument"
    ]
    assert [s["Sid"] for s in document["Statement"]] == ["AssumeRepositoryRoles"]


def test_execution_roles_without_default() -> None:
    data = example_data()
    data["domain"].pop("execution_roles")
    parameter = template_of(data).body["Parameters"]["ExecutionRoleNames"]
    assert "Default" not in parameter


def test_one_lifecycle_config_per_app_type() -> None:
    config = parse_config(every_option())
    template = render_stackset(config)
    lccs = resources_of_type(template, "AWS::SageMaker::StudioLifecycleConfig")
    scripts = render_all(config)
    assert len(lccs) == len(scripts) == 2
    for script in scripts:
        properties = lccs[f"LifecycleConfig{script.app_type}"]["Properties"]
        assert properties["StudioLifecycleConfigName"] == script.lcc_name
        assert properties["StudioLifecycleConfigAppType"] == script.app_type
        assert properties["StudioLifecycleConfigContent"] == script.encoded
        assert properties["Tags"] == [
            {"Key": register.TAG_SHA, "Value": _sha256(script.content)}
        ]


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_lambda_role_grants_only_needed() -> None:
    template = template_of(example_data())
    role = template.resources["AttachRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert "RoleName" not in role

    (policy,) = role["Policies"]
    document = policy["PolicyDocument"]
    assert [s["Sid"] for s in document["Statement"]] == [
        "ListDomains",
        "UpdateDomainsOfThisRegion",
        "WriteOwnLogs",
    ]

    listing = statement(document, "ListDomains")
    assert listing["Action"] == list(LIST_ACTIONS) == ["sagemaker:ListDomains"]
    assert listing["Resource"] == ["*"]
    domains = statement(document, "UpdateDomainsOfThisRegion")
    assert domains["Action"] == list(DOMAIN_ACTIONS)
    assert domains["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:"
            "${AWS::AccountId}:domain/*"
        }
    ]

    logs = statement(document, "WriteOwnLogs")
    assert logs["Action"] == list(LOG_ACTIONS)
    assert logs["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
            ":log-group:/aws/lambda/studio-bootstrap-attach-lifecycle:*"
        }
    ]

    actions = [a for s in document["Statement"] for a in s["Action"]]
    assert not any(a.startswith("iam:") for a in actions)
    assert "sagemaker:CreateStudioLifecycleConfig" not in actions


def test_lambda_role_boundary_and_tags() -> None:
    role = template_of(every_option()).resources["AttachRole"]["Properties"]
    assert role["PermissionsBoundary"] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/Boundary"
    }
    assert role["Tags"] == [
        {"Key": "cost-center", "Value": "42"},
        {"Key": "team", "Value": "ml platform"},
    ]


def test_function_carries_inline_code() -> None:
    template = template_of(example_data())
    function = template.resources["AttachFunction"]["Properties"]
    assert function["Handler"] == "index.handler"
    assert function["Runtime"].startswith("python3.")
    assert function["Timeout"] == 900
    assert function["Role"] == GetAtt("AttachRole", "Arn")
    code = function["Code"]["ZipFile"]
    assert isinstance(code, Literal)
    assert code.text == template.code == inline_code()
    studio_source = (ROOT / "bootstrap" / "studio.py").read_text()
    assert studio_source in code.text
    assert "from bootstrap import studio" not in code.text


def test_custom_resource_properties() -> None:
    config = parse_config(example_data())
    template = render_stackset(config)
    attachment = template.resources["Attachment"]
    properties = attachment["Properties"]
    assert attachment["Type"] == "Custom::StudioLifecycleAttachment"
    assert properties["ServiceToken"] == GetAtt("AttachFunction", "Arn")
    assert properties["ServiceTimeout"] > 900
    assert properties["DomainIds"] == Ref("DomainIds")
    assert properties["ReplaceDefault"] == Ref("ReplaceDefault")
    assert properties["OwnedNamePattern"] == owned_name_pattern(config.prefix)
    assert properties["LifecycleConfigArns"] == {
        app_type: GetAtt(f"LifecycleConfig{app_type}", "StudioLifecycleConfigArn")
        for app_type in config.app_types
    }
    assert template.body["Parameters"]["ReplaceDefault"]["Default"] == "false"
    assert template.body["Parameters"]["DomainIds"]["Default"] == ""


def test_owned_pattern_matches_register() -> None:
    config = parse_config(example_data())
    pattern = re.compile(owned_name_pattern(config.prefix))
    names = [script.lcc_name for script in render_all(config)] + [
        "studio-bootstrap-jupyterlab-0123456",
        "studio-bootstrap-jupyterlab-0123456789",
        "other-jupyterlab-01234567",
        "studio-bootstrap-notebook-01234567",
    ]
    for name in names:
        expected = register.our_name(name, config.prefix) is not None
        assert (pattern.fullmatch(name) is not None) == expected, name


def test_previous_tag_prefix_matches_register() -> None:
    assert PREVIOUS_TAG_PREFIX == register.TAG_PREVIOUS


def test_literal_block_round_trip() -> None:
    text = 'def f():\n\treturn "a: b # c"\n\n\nx = 1\n'
    document = dump({"Code": {"ZipFile": Literal(text)}})
    assert yaml.safe_load(document) == {"Code": {"ZipFile": text}}


@pytest.mark.parametrize("text", ["no newline", "two\n\n", " indented\n", "a\rb\n"])
def test_literal_rejects_unsafe_text(text: str) -> None:
    with pytest.raises(ValueError):
        Literal(text)


# --- handler against the local stack ----------------------------------------------


@dataclass
class Responses:
    """The responses the handler sent with PUT to the ResponseURL server."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str | None] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def last(self) -> dict[str, Any]:
        assert self.bodies, "the handler sent no response"
        assert self.sizes[-1] <= RESPONSE_BODY_LIMIT, self.sizes[-1]
        return self.bodies[-1]


@pytest.fixture
def responses() -> Iterator[Responses]:
    """An HTTP server on 127.0.0.1 that records each PUT body."""
    recorded = Responses("")

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            recorded.bodies.append(json.loads(raw))
            recorded.sizes.append(len(raw))
            recorded.content_types.append(self.headers.get("Content-Type"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return  # keeps the test output free of access lines

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorded.url = f"http://127.0.0.1:{server.server_address[1]}/response"
    yield recorded
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def handler_module(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[ModuleType]:
    """The Lambda's inline code, imported as Lambda does, with account B's session."""
    for key, value in local_stack.admin_credentials(ACCOUNT_B).items():
        monkeypatch.setenv(key, value)
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_stack.endpoint_url)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)

    path = tmp_path / "index.py"
    path.write_text(inline_code())
    name = f"stackset_index_{id(path)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "FIRST_POLL_SECONDS", 0.05)
    yield module
    del sys.modules[name]


@pytest.fixture
def client(local_stack: LocalStack) -> Any:
    return local_stack.session(ACCOUNT_B).client("sagemaker")


@pytest.fixture(autouse=True)
def clean_sagemaker(local_stack: LocalStack) -> Iterator[None]:
    sagemaker.reset()
    previous = sagemaker.set_update_delay(0.05)
    yield
    sagemaker.set_update_delay(previous)
    sagemaker.reset()


class LambdaContext:
    """The parts of Lambda's context object that the handler reads."""

    log_stream_name = "2025/01/01/[$LATEST]test"

    def __init__(self, seconds: float = 120.0) -> None:
        self.end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.end - time.monotonic()) * 1000)


@dataclass
class Version:
    """One rendered config and the ARNs of its LCCs in the local stack."""

    config: Config
    scripts: list[RenderedScript]
    arns: dict[str, str]


def create_version(client: Any, **changes: Any) -> Version:
    """Create the LCCs of the example config, as the template's resources would."""
    data = example_data()
    data.update(changes)
    config = parse_config(data)
    scripts = render_all(config)
    arns = {}
    for script in scripts:
        response = client.create_studio_lifecycle_config(
            StudioLifecycleConfigName=script.lcc_name,
            StudioLifecycleConfigContent=script.encoded,
            StudioLifecycleConfigAppType=script.app_type,
            Tags=[{"Key": register.TAG_SHA, "Value": _sha256(script.content)}],
        )
        arns[script.app_type] = str(response["StudioLifecycleConfigArn"])
    return Version(config, scripts, arns)


def create_lcc(client: Any, name: str, app_type: str) -> str:
    response = client.create_studio_lifecycle_config(
        StudioLifecycleConfigName=name,
        StudioLifecycleConfigContent=base64.b64encode(AUTOSHUTDOWN.encode()).decode(),
        StudioLifecycleConfigAppType=app_type,
    )
    return str(response["StudioLifecycleConfigArn"])


def create_domain(client: Any, execution_role: str, **settings: Any) -> str:
    user_settings = {
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
        **settings,
    }
    response = client.create_domain(
        DomainName=f"studio-{time.monotonic_ns()}",
        AuthMode="IAM",
        DefaultUserSettings=user_settings,
        DefaultSpaceSettings={
            "ExecutionRole": execution_role,
            "JupyterLabAppSettings": {
                "DefaultResourceSpec": {"InstanceType": "ml.t3.medium"}
            },
        },
        SubnetIds=["subnet-0123456789abcdef0"],
        VpcId="vpc-0123456789abcdef0",
    )
    domain_id = str(response["DomainId"])
    deadline = time.monotonic() + 10
    while client.describe_domain(DomainId=domain_id)["Status"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return domain_id


def event(
    request_type: str,
    responses: Responses,
    version: Version,
    domain_ids: list[str] | None = None,
    replace_default: str = "false",
    old: dict[str, Any] | None = None,
    physical_id: str | None = None,
) -> dict[str, Any]:
    properties = {
        "ServiceToken": "arn:aws:lambda:eu-west-1:222222222222:function:attach",
        "DomainIds": domain_ids if domain_ids is not None else [""],
        "ReplaceDefault": replace_default,
        "OwnedNamePattern": owned_name_pattern(version.config.prefix),
        "LifecycleConfigArns": dict(version.arns),
    }
    request: dict[str, Any] = {
        "RequestType": request_type,
        "ResponseURL": responses.url,
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_B}:stack/s/1",
        "RequestId": f"request-{len(responses.bodies) + 1}",
        "ResourceType": "Custom::StudioLifecycleAttachment",
        "LogicalResourceId": "Attachment",
        "ResourceProperties": properties,
    }
    if old is not None:
        request["OldResourceProperties"] = old
    if physical_id is not None:
        request["PhysicalResourceId"] = physical_id
    return request


def settings_of(client: Any, domain_id: str) -> dict[str, Any]:
    domain = client.describe_domain(DomainId=domain_id)
    return {
        "DefaultUserSettings": domain["DefaultUserSettings"],
        "DefaultSpaceSettings": domain.get("DefaultSpaceSettings", {}),
    }


def domain_tags(client: Any, domain_id: str) -> dict[str, str]:
    arn = client.describe_domain(DomainId=domain_id)["DomainArn"]
    tags = client.list_tags(ResourceArn=arn)["Tags"]
    return {tag["Key"]: tag["Value"] for tag in tags}


def run(module: ModuleType, request: dict[str, Any], seconds: float = 120.0) -> None:
    module.handler(request, LambdaContext(seconds))


def test_create_attaches_keeps_others(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    other = create_lcc(client, "team-kernel-setup", "KernelGateway")
    domain_id = create_domain(
        client,
        execution_role,
        KernelGatewayAppSettings={
            "DefaultResourceSpec": {"InstanceType": "ml.t3.medium"},
            "LifecycleConfigArns": [other],
        },
    )
    before = settings_of(client, domain_id)
    version = create_version(client)

    run(handler_module, event("Create", responses, version))

    response = responses.last()
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert response["PhysicalResourceId"] == f"Attachment-{REGION}"
    assert response["Data"] == {"Domains": domain_id, "OtherDefaults": ""}
    assert response["RequestId"] == "request-1"
    assert responses.content_types[-1] == ""
    user = settings_of(client, domain_id)["DefaultUserSettings"]
    arns = version.arns
    lab = user["JupyterLabAppSettings"]
    assert lab["BuiltInLifecycleConfigArn"] == arns["JupyterLab"]
    assert "LifecycleConfigArns" not in lab
    editor = user["CodeEditorAppSettings"]
    assert editor["BuiltInLifecycleConfigArn"] == arns["CodeEditor"]
    server = user["JupyterServerAppSettings"]
    assert server["DefaultResourceSpec"]["LifecycleConfigArn"] == arns["JupyterServer"]
    assert server["LifecycleConfigArns"] == [arns["JupyterServer"]]
    kernel = user["KernelGatewayAppSettings"]
    assert kernel["DefaultResourceSpec"]["LifecycleConfigArn"] == arns["KernelGateway"]
    assert kernel["LifecycleConfigArns"] == [other, arns["KernelGateway"]]
    assert kernel["DefaultResourceSpec"]["InstanceType"] == "ml.t3.medium"
    assert user["ExecutionRole"] == execution_role
    space = settings_of(client, domain_id)["DefaultSpaceSettings"]
    space_lab = space["JupyterLabAppSettings"]
    assert space_lab["BuiltInLifecycleConfigArn"] == arns["JupyterLab"]
    assert "CodeEditorAppSettings" not in space
    assert "JupyterServerAppSettings" not in space

    sagemaker.reset_call_log()
    run(handler_module, event("Create", responses, version))
    assert responses.last()["Status"] == "SUCCESS"
    assert sagemaker.call_log().mutating_total == 0

    run(
        handler_module,
        event("Delete", responses, version, physical_id=f"Attachment-{REGION}"),
    )
    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    assert responses.last()["PhysicalResourceId"] == f"Attachment-{REGION}"
    assert settings_of(client, domain_id) == before

    sagemaker.reset_call_log()
    run(handler_module, event("Delete", responses, version, physical_id="x"))
    assert responses.last()["Status"] == "SUCCESS"
    assert sagemaker.call_log().mutating_total == 0


def test_update_swaps_versions(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    other = create_lcc(client, "team-lab-setup", "JupyterLab")
    domain_id = create_domain(
        client,
        execution_role,
        JupyterLabAppSettings={
            "DefaultResourceSpec": {"InstanceType": "ml.t3.medium"},
            "LifecycleConfigArns": [other],
        },
    )
    first = create_version(client)
    second = create_version(client, strict=True)
    assert set(first.arns.values()).isdisjoint(second.arns.values())
    created = event("Create", responses, first)
    run(handler_module, created)
    assert responses.last()["Status"] == "SUCCESS"

    updated = event(
        "Update",
        responses,
        second,
        old=created["ResourceProperties"],
        physical_id=f"Attachment-{REGION}",
    )
    run(handler_module, updated)

    response = responses.last()
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert response["PhysicalResourceId"] == f"Attachment-{REGION}"
    settings = settings_of(client, domain_id)
    text = json.dumps(settings)
    for arn in first.arns.values():
        assert arn not in text
    user = settings["DefaultUserSettings"]
    lab = user["JupyterLabAppSettings"]
    assert lab["BuiltInLifecycleConfigArn"] == second.arns["JupyterLab"]
    assert lab["LifecycleConfigArns"] == [other]
    server = user["JupyterServerAppSettings"]
    assert server["LifecycleConfigArns"] == [second.arns["JupyterServer"]]
    server_default = server["DefaultResourceSpec"]["LifecycleConfigArn"]
    assert server_default == second.arns["JupyterServer"]

    sagemaker.reset_call_log()
    run(handler_module, updated)
    assert responses.last()["Status"] == "SUCCESS"
    assert sagemaker.call_log().mutating_total == 0


def test_update_detaches_dropped_app_type(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    domain_id = create_domain(client, execution_role)
    version = create_version(client)
    created = event("Create", responses, version)
    run(handler_module, created)
    narrower = copy.deepcopy(version)
    del narrower.arns["KernelGateway"]

    run(
        handler_module,
        event("Update", responses, narrower, old=created["ResourceProperties"]),
    )

    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    user = settings_of(client, domain_id)["DefaultUserSettings"]
    kernel = user["KernelGatewayAppSettings"]
    assert "LifecycleConfigArns" not in kernel
    assert kernel["DefaultResourceSpec"] == {"InstanceType": "ml.t3.medium"}
    server = user["JupyterServerAppSettings"]
    assert server["LifecycleConfigArns"] == [version.arns["JupyterServer"]]


def test_update_detaches_dropped_domain(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    kept_domain = create_domain(client, execution_role)
    dropped = create_domain(client, execution_role)
    dropped_before = settings_of(client, dropped)
    version = create_version(client)
    created = event("Create", responses, version)
    run(handler_module, created)
    assert responses.last()["Data"]["Domains"] == ",".join(
        sorted([kept_domain, dropped])
    )

    run(
        handler_module,
        event(
            "Update",
            responses,
            version,
            domain_ids=[kept_domain],
            old=created["ResourceProperties"],
        ),
    )

    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    assert responses.last()["Data"]["Domains"] == kept_domain
    assert settings_of(client, dropped) == dropped_before
    kept_user = settings_of(client, kept_domain)["DefaultUserSettings"]
    kept_lab = kept_user["JupyterLabAppSettings"]
    assert kept_lab["BuiltInLifecycleConfigArn"] == version.arns["JupyterLab"]


def test_foreign_default_fails_unchanged(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    autoshutdown = create_lcc(client, "autoshutdown", "JupyterServer")
    domain_id = create_domain(
        client,
        execution_role,
        JupyterServerAppSettings={
            "DefaultResourceSpec": {
                "InstanceType": "system",
                "LifecycleConfigArn": autoshutdown,
            },
            "LifecycleConfigArns": [autoshutdown],
        },
    )
    before = settings_of(client, domain_id)
    version = create_version(client)
    sagemaker.reset_call_log()

    run(handler_module, event("Create", responses, version))

    response = responses.last()
    assert response["Status"] == "FAILED"
    assert "\n" not in response["Reason"]
    assert "autoshutdown is not ours" in response["Reason"]
    assert "ReplaceDefault" in response["Reason"]
    assert "log stream" in response["Reason"]
    assert settings_of(client, domain_id) == before
    assert sagemaker.call_log().mutating_total == 0


def test_replace_default_restored_on_delete(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    autoshutdown = create_lcc(client, "autoshutdown", "JupyterServer")
    domain_id = create_domain(
        client,
        execution_role,
        JupyterServerAppSettings={
            "DefaultResourceSpec": {
                "InstanceType": "system",
                "LifecycleConfigArn": autoshutdown,
            },
            "LifecycleConfigArns": [autoshutdown],
        },
    )
    before = settings_of(client, domain_id)
    version = create_version(client)

    run(handler_module, event("Create", responses, version, replace_default="true"))

    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    server = settings_of(client, domain_id)["DefaultUserSettings"][
        "JupyterServerAppSettings"
    ]
    ours = version.arns["JupyterServer"]
    assert server["DefaultResourceSpec"]["LifecycleConfigArn"] == ours
    assert server["LifecycleConfigArns"] == [autoshutdown, ours]
    tag = f"{PREVIOUS_TAG_PREFIX}domain/JupyterServer"
    assert domain_tags(client, domain_id)[tag] == autoshutdown

    run(handler_module, event("Delete", responses, version, replace_default="true"))

    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    assert settings_of(client, domain_id) == before
    assert tag not in domain_tags(client, domain_id)


def test_missing_domain_fails(
    handler_module: ModuleType, responses: Responses, client: Any
) -> None:
    version = create_version(client)
    run(handler_module, event("Create", responses, version, domain_ids=["d-absent"]))
    response = responses.last()
    assert response["Status"] == "FAILED"
    assert "d-absent was not found" in response["Reason"]

    run(handler_module, event("Delete", responses, version, domain_ids=["d-absent"]))
    assert responses.last()["Status"] == "SUCCESS"


def test_update_domain_error_fails(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    create_domain(client, execution_role)
    version = create_version(client)
    sagemaker.inject_error("UpdateDomain", "AccessDeniedException", "not allowed")

    run(handler_module, event("Create", responses, version))

    response = responses.last()
    assert response["Status"] == "FAILED"
    assert "AWS call failed" in response["Reason"]
    assert "AccessDeniedException" in response["Reason"]


def test_invalid_properties_fail(
    handler_module: ModuleType, responses: Responses, client: Any
) -> None:
    version = create_version(client)
    request = event("Create", responses, version, replace_default="maybe")
    run(handler_module, request)
    assert responses.last()["Status"] == "FAILED"
    assert "ReplaceDefault must be true or false" in responses.last()["Reason"]

    request["RequestType"] = "Delete"
    run(handler_module, request)
    assert responses.last()["Status"] == "SUCCESS"


def test_responds_before_timeout(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    domain_id = create_domain(client, execution_role)
    version = create_version(client)
    sagemaker.hold_domain_updating(domain_id)
    try:
        started = time.monotonic()
        run(handler_module, event("Create", responses, version), seconds=4.0)
        elapsed = time.monotonic() - started
    finally:
        sagemaker.release_domain_updating(domain_id)
    response = responses.last()
    assert response["Status"] == "FAILED"
    assert f"timed out: domain {domain_id} is still Updating" in response["Reason"]
    assert elapsed < 4.0


def test_unreachable_endpoint_still_responds(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = create_version(client)
    # A loopback port that this test bound and closed, so nothing listens.
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    closed_port = probe.server_address[1]
    probe.server_close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")

    run(handler_module, event("Create", responses, version))

    response = responses.last()
    assert response["Status"] == "FAILED"
    assert "AWS call failed" in response["Reason"]


# --- defaults chosen by hand, rollbacks and reasons ---------------------------------


def choose_default_by_hand(
    client: Any, domain_id: str, app_type: str, other: str
) -> dict[str, Any]:
    """Make other the default of one app type, as an admin in the console would."""
    key = f"{app_type}AppSettings"
    current = settings_of(client, domain_id)["DefaultUserSettings"][key]
    chosen = copy.deepcopy(current)
    chosen["DefaultResourceSpec"]["LifecycleConfigArn"] = other
    chosen["LifecycleConfigArns"] = [*current.get("LifecycleConfigArns", []), other]
    client.update_domain(DomainId=domain_id, DefaultUserSettings={key: chosen})
    deadline = time.monotonic() + 10
    while client.describe_domain(DomainId=domain_id)["Status"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return chosen


def test_update_keeps_hand_set_default(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    domain_id = create_domain(client, execution_role)
    before = settings_of(client, domain_id)
    first = create_version(client)
    second = create_version(client, strict=True)
    created = event("Create", responses, first)
    run(handler_module, created)
    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    manual = create_lcc(client, "manual-setup", "JupyterServer")
    choose_default_by_hand(client, domain_id, "JupyterServer", manual)

    updated = event("Update", responses, second, old=created["ResourceProperties"])
    run(handler_module, updated)

    response = responses.last()
    assert response["Status"] == "SUCCESS", response["Reason"]
    note = f"{domain_id} DefaultUserSettings JupyterServer default manual-setup"
    assert response["Data"]["OtherDefaults"] == note
    assert note in response["Reason"]
    assert "allowed list" in response["Reason"]
    user = settings_of(client, domain_id)["DefaultUserSettings"]
    server = user["JupyterServerAppSettings"]
    assert server["DefaultResourceSpec"]["LifecycleConfigArn"] == manual
    assert server["LifecycleConfigArns"] == [second.arns["JupyterServer"], manual]
    kernel = user["KernelGatewayAppSettings"]
    kernel_default = kernel["DefaultResourceSpec"]["LifecycleConfigArn"]
    assert kernel_default == second.arns["KernelGateway"]

    # The rollback CloudFormation sends when a later resource fails.
    rollback = event("Update", responses, first, old=updated["ResourceProperties"])
    run(handler_module, rollback)

    response = responses.last()
    assert response["Status"] == "SUCCESS", response["Reason"]
    server = settings_of(client, domain_id)["DefaultUserSettings"][
        "JupyterServerAppSettings"
    ]
    assert server["DefaultResourceSpec"]["LifecycleConfigArn"] == manual
    assert server["LifecycleConfigArns"] == [first.arns["JupyterServer"], manual]

    run(handler_module, event("Delete", responses, first))

    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    after = settings_of(client, domain_id)
    server = after["DefaultUserSettings"].pop("JupyterServerAppSettings")
    assert server["DefaultResourceSpec"]["LifecycleConfigArn"] == manual
    assert server["LifecycleConfigArns"] == [manual]
    del before["DefaultUserSettings"]["JupyterServerAppSettings"]
    assert after == before


def test_create_still_fails_on_hand_set_default(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    domain_id = create_domain(client, execution_role)
    version = create_version(client)
    manual = create_lcc(client, "manual-setup", "JupyterServer")
    choose_default_by_hand(client, domain_id, "JupyterServer", manual)
    before = settings_of(client, domain_id)
    sagemaker.reset_call_log()

    run(handler_module, event("Create", responses, version))

    response = responses.last()
    assert response["Status"] == "FAILED"
    assert f"domain {domain_id}:" in response["Reason"]
    assert "manual-setup is not ours" in response["Reason"]
    assert settings_of(client, domain_id) == before
    assert sagemaker.call_log().mutating_total == 0


def test_update_drops_stale_previous_tag(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    autoshutdown = create_lcc(client, "autoshutdown", "JupyterServer")
    domain_id = create_domain(
        client,
        execution_role,
        JupyterServerAppSettings={
            "DefaultResourceSpec": {
                "InstanceType": "system",
                "LifecycleConfigArn": autoshutdown,
            },
            "LifecycleConfigArns": [autoshutdown],
        },
    )
    version = create_version(client)
    created = event("Create", responses, version, replace_default="true")
    run(handler_module, created)
    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    tag = f"{PREVIOUS_TAG_PREFIX}domain/JupyterServer"
    assert domain_tags(client, domain_id)[tag] == autoshutdown
    manual = create_lcc(client, "manual-setup", "JupyterServer")
    choose_default_by_hand(client, domain_id, "JupyterServer", manual)

    run(
        handler_module,
        event("Update", responses, version, old=created["ResourceProperties"]),
    )

    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    assert tag not in domain_tags(client, domain_id)
    ours = version.arns["JupyterServer"]
    server = settings_of(client, domain_id)["DefaultUserSettings"][
        "JupyterServerAppSettings"
    ]
    assert server["LifecycleConfigArns"] == [autoshutdown, ours, manual]

    run(handler_module, event("Delete", responses, version))

    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    server = settings_of(client, domain_id)["DefaultUserSettings"][
        "JupyterServerAppSettings"
    ]
    assert server["DefaultResourceSpec"]["LifecycleConfigArn"] == manual
    assert server["LifecycleConfigArns"] == [autoshutdown, manual]


def fail_update_of(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch, domain_id: str
) -> Any:
    """Make the UpdateDomain call for domain_id fail; return the original apply."""
    apply = module.Domains.apply

    def failing_apply(self: Any, change: Any) -> None:
        if change.domain_id == domain_id:
            sagemaker.inject_error("UpdateDomain", "ValidationException", "injected")
        apply(self, change)

    monkeypatch.setattr(module.Domains, "apply", failing_apply)
    return apply


def test_rollback_after_aws_error(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    domain_ids = sorted(create_domain(client, execution_role) for _ in range(3))
    first = create_version(client)
    second = create_version(client, strict=True)
    created = event("Create", responses, first)
    run(handler_module, created)
    assert responses.last()["Status"] == "SUCCESS", responses.last()["Reason"]
    manual = create_lcc(client, "manual-setup", "JupyterServer")
    choose_default_by_hand(client, domain_ids[0], "JupyterServer", manual)
    apply = fail_update_of(handler_module, monkeypatch, domain_ids[1])

    updated = event("Update", responses, second, old=created["ResourceProperties"])
    run(handler_module, updated)

    response = responses.last()
    reason = response["Reason"]
    assert response["Status"] == "FAILED"
    assert f"AWS call failed on domain {domain_ids[1]} while updating it" in reason
    assert "UpdateDomain operation: injected" in reason
    assert f"Already updated: {domain_ids[0]}." in reason
    assert f"Not reached: {domain_ids[2]}." in reason
    assert reason.endswith(f"(log stream {LambdaContext.log_stream_name})")
    server = settings_of(client, domain_ids[0])["DefaultUserSettings"][
        "JupyterServerAppSettings"
    ]
    assert server["LifecycleConfigArns"] == [second.arns["JupyterServer"], manual]

    monkeypatch.setattr(handler_module.Domains, "apply", apply)
    rollback = event("Update", responses, first, old=updated["ResourceProperties"])
    run(handler_module, rollback)

    response = responses.last()
    assert response["Status"] == "SUCCESS", response["Reason"]
    for domain_id in domain_ids:
        text = json.dumps(settings_of(client, domain_id))
        for arn in second.arns.values():
            assert arn not in text, domain_id
        for arn in first.arns.values():
            assert arn in text, domain_id
    server = settings_of(client, domain_ids[0])["DefaultUserSettings"][
        "JupyterServerAppSettings"
    ]
    assert server["DefaultResourceSpec"]["LifecycleConfigArn"] == manual


def test_conflicts_name_every_domain(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
) -> None:
    manual = create_lcc(client, "manual-setup", "JupyterServer")
    conflicting = {
        "JupyterServerAppSettings": {
            "DefaultResourceSpec": {
                "InstanceType": "system",
                "LifecycleConfigArn": manual,
            },
            "LifecycleConfigArns": [manual],
        }
    }
    domain_ids = sorted(
        create_domain(client, execution_role, **conflicting) for _ in range(4)
    )
    version = create_version(client)

    run(handler_module, event("Create", responses, version))

    reason = responses.last()["Reason"]
    assert responses.last()["Status"] == "FAILED"
    for domain_id in domain_ids:
        assert f"domain {domain_id}: DefaultUserSettings JupyterServer" in reason
    assert "ReplaceDefault" in reason
    assert reason.endswith(f"(log stream {LambdaContext.log_stream_name})")


def test_long_conflict_reason_keeps_log_stream(
    handler_module: ModuleType,
    responses: Responses,
    client: Any,
    execution_role: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manual = create_lcc(client, "manual-setup", "JupyterServer")
    conflicting = {
        "JupyterServerAppSettings": {
            "DefaultResourceSpec": {
                "InstanceType": "system",
                "LifecycleConfigArn": manual,
            },
            "LifecycleConfigArns": [manual],
        }
    }
    domain_ids = sorted(
        create_domain(client, execution_role, **conflicting) for _ in range(4)
    )
    version = create_version(client)
    limit = 650
    monkeypatch.setattr(handler_module, "RESPONSE_BODY_LIMIT", limit)

    run(handler_module, event("Create", responses, version))

    response = responses.last()
    reason = response["Reason"]
    body = json.dumps(response).encode()
    assert response["Status"] == "FAILED"
    assert len(body) <= limit
    assert reason.startswith("nothing was changed")
    assert f"domain {domain_ids[0]}:" in reason
    assert f"domain {domain_ids[-1]}:" not in reason
    assert re.search(r"\.\.\. and [1-3] more domains?\.", reason), reason
    assert "ReplaceDefault" in reason
    assert reason.endswith(f"(log stream {LambdaContext.log_stream_name})")


@pytest.mark.parametrize("budget", [120, 200, 1000])
def test_fit_reason_keeps_suffix(budget: int) -> None:
    details = [f"domain d-{i:012d}: default ünïcödé-{i} is not ours" for i in range(40)]
    error = HandlerError("nothing was changed", details, "Set ReplaceDefault")
    suffix = " (log stream 2025/01/01/[$LATEST]0123456789abcdef)"

    reason = fit_reason(error, suffix, budget)

    assert len(json.dumps(reason)) - 2 <= budget
    assert reason.endswith(suffix)
    assert reason.startswith("nothing was")


def test_fit_reason_cuts_long_summary() -> None:
    error = HandlerError(
        "AWS call failed on domain d-1 while updating it: " + "x" * 5000
    )

    reason = fit_reason(error, " (log stream s)", 300)

    assert len(json.dumps(reason)) - 2 <= 300
    assert reason.startswith("AWS call failed on domain d-1")
    assert " ... " in reason
    assert reason.endswith(" (log stream s)")
