"""The local SageMaker: Studio APIs served by moto's server to real boto3 calls."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from bootstrap.sandbox import sagemaker

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/StudioExecutionRole"
SCRIPT = b"#!/bin/bash\nset -eu\necho started\n"
CONTENT = base64.b64encode(SCRIPT).decode()

# Variables that would point botocore or urllib anywhere but the local
# server: the container credential endpoints, profiles and proxies.
_ENVIRONMENT_TO_CLEAR = (
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)

Client = Any


@pytest.fixture(scope="module")
def local_sagemaker() -> Iterator[str]:
    """Start a moto server on 127.0.0.1 with the Studio operations; yield its URL."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _ENVIRONMENT_TO_CLEAR:
            patch.delenv(name, raising=False)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        sagemaker.install()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
            sagemaker.reset()


@pytest.fixture(autouse=True)
def clean_state(local_sagemaker: str) -> Iterator[None]:
    sagemaker.reset()
    sagemaker.set_app_start_hook(None)
    yield
    sagemaker.set_app_start_hook(None)
    sagemaker.set_update_delay(sagemaker.DEFAULT_UPDATE_DELAY)


def make_client(endpoint_url: str, retries: dict[str, Any]) -> Client:
    return boto3.client(
        "sagemaker",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries=retries),
    )


@pytest.fixture
def client(local_sagemaker: str) -> Client:
    """A SageMaker client that does not retry, so each call is one request."""
    return make_client(local_sagemaker, {"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def instant_updates() -> None:
    """Updated resources are InService again at once."""
    sagemaker.set_update_delay(0)


def create_lcc(client: Client, name: str, app_type: str = "JupyterLab") -> str:
    response = client.create_studio_lifecycle_config(
        StudioLifecycleConfigName=name,
        StudioLifecycleConfigContent=base64.b64encode(f"# {name}\n".encode()).decode(),
        StudioLifecycleConfigAppType=app_type,
    )
    return str(response["StudioLifecycleConfigArn"])


def create_domain(client: Client, **settings: Any) -> str:
    user_settings = {"ExecutionRole": ROLE, **settings}
    response = client.create_domain(
        DomainName="studio",
        AuthMode="IAM",
        DefaultUserSettings=user_settings,
        SubnetIds=["subnet-0123456789abcdef0"],
        VpcId="vpc-0123456789abcdef0",
    )
    return str(response["DomainId"])


@pytest.fixture
def studio_domain(client: Client) -> str:
    """An IAM domain with only an execution role in its user settings."""
    return create_domain(client)


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def error_message(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Message"])


def wait_for_app(client: Client, timeout: float = 5.0, **app: str) -> dict[str, Any]:
    """Poll DescribeApp until the app leaves Pending; return the description."""
    deadline = time.monotonic() + timeout
    while True:
        description: dict[str, Any] = client.describe_app(**app)
        if description["Status"] != "Pending" or time.monotonic() > deadline:
            return description
        time.sleep(0.01)


def wait_for_domain(client: Client, domain_id: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = str(client.describe_domain(DomainId=domain_id)["Status"])
        if status != "Updating" or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


class RecordingHook:
    """An app start hook that records each start and exits with set statuses."""

    def __init__(self) -> None:
        self.starts: list[sagemaker.AppStart] = []
        self.exit_statuses: dict[str, int] = {}

    def __call__(self, start: sagemaker.AppStart) -> Sequence[int]:
        self.starts.append(start)
        return [self.exit_statuses.get(script.arn, 0) for script in start.scripts]

    def run_order(self) -> list[str]:
        return [script.arn for script in self.starts[-1].scripts]


@pytest.fixture
def recorded_starts() -> RecordingHook:
    hook = RecordingHook()
    sagemaker.set_app_start_hook(hook)
    return hook


# Lifecycle configurations


def test_lcc_describe_round_trip(client: Client) -> None:
    arn = client.create_studio_lifecycle_config(
        StudioLifecycleConfigName="clone-repo-v1",
        StudioLifecycleConfigContent=CONTENT,
        StudioLifecycleConfigAppType="JupyterLab",
    )["StudioLifecycleConfigArn"]

    described = client.describe_studio_lifecycle_config(
        StudioLifecycleConfigName="clone-repo-v1"
    )

    expected_arn = (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:studio-lifecycle-config/clone-repo-v1"
    )
    assert arn == expected_arn
    assert described["StudioLifecycleConfigArn"] == expected_arn
    assert described["StudioLifecycleConfigContent"] == CONTENT
    assert described["StudioLifecycleConfigAppType"] == "JupyterLab"
    assert described["LastModifiedTime"] == described["CreationTime"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a" * 63, CONTENT),
        ("a-b--c9", CONTENT),
        ("max-content", "A" * 16384),
    ],
    ids=["name-63-characters", "name-with-hyphens", "content-16384-characters"],
)
def test_lcc_limits_accepted(client: Client, name: str, content: str) -> None:
    client.create_studio_lifecycle_config(
        StudioLifecycleConfigName=name,
        StudioLifecycleConfigContent=content,
        StudioLifecycleConfigAppType="JupyterServer",
    )

    described = client.describe_studio_lifecycle_config(StudioLifecycleConfigName=name)
    assert described["StudioLifecycleConfigName"] == name


INVALID_LCCS = [
    ("a" * 64, CONTENT, "JupyterLab", "length less than or equal to 63"),
    ("clone_repo", CONTENT, "JupyterLab", "regular expression pattern"),
    ("clone.repo", CONTENT, "JupyterLab", "regular expression pattern"),
    ("-clone", CONTENT, "JupyterLab", "regular expression pattern"),
    ("clone", "A" * 16385, "JupyterLab", "length less than or equal to 16384"),
    ("clone", "not base64!", "JupyterLab", "not valid base64"),
    ("clone", "IyEvYmlu\nL2Jhc2g=", "JupyterLab", "not valid base64"),
    ("clone", CONTENT, "RStudioServerPro", "enum value set"),
]


@pytest.mark.parametrize(
    ("name", "content", "app_type", "constraint"),
    INVALID_LCCS,
    ids=[
        "name-64-characters",
        "name-with-underscore",
        "name-with-dot",
        "name-starting-with-hyphen",
        "content-16385-characters",
        "content-not-base64",
        "content-with-line-break",
        "app-type-not-for-lccs",
    ],
)
def test_lcc_invalid_rejected(
    client: Client, name: str, content: str, app_type: str, constraint: str
) -> None:
    with pytest.raises(ClientError) as caught:
        client.create_studio_lifecycle_config(
            StudioLifecycleConfigName=name,
            StudioLifecycleConfigContent=content,
            StudioLifecycleConfigAppType=app_type,
        )

    assert error_code(caught) == "ValidationException"
    assert constraint in error_message(caught)


def test_lcc_51_tags_rejected(client: Client) -> None:
    tags = [{"Key": f"key{index}", "Value": "v"} for index in range(51)]

    with pytest.raises(ClientError) as caught:
        client.create_studio_lifecycle_config(
            StudioLifecycleConfigName="tagged",
            StudioLifecycleConfigContent=CONTENT,
            StudioLifecycleConfigAppType="JupyterLab",
            Tags=tags,
        )

    assert error_code(caught) == "ValidationException"
    assert "length less than or equal to 50" in error_message(caught)


def test_lcc_duplicate_name_in_use(client: Client) -> None:
    create_lcc(client, "clone-repo-v1")

    with pytest.raises(client.exceptions.ResourceInUse):
        create_lcc(client, "clone-repo-v1", app_type="CodeEditor")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.describe_studio_lifecycle_config(StudioLifecycleConfigName="gone"),
        lambda c: c.delete_studio_lifecycle_config(StudioLifecycleConfigName="gone"),
    ],
    ids=["describe", "delete"],
)
def test_lcc_missing_not_found(client: Client, call: Callable[[Client], Any]) -> None:
    with pytest.raises(client.exceptions.ResourceNotFound):
        call(client)


def test_lcc_unused_deleted(client: Client) -> None:
    create_lcc(client, "clone-repo-v1")

    client.delete_studio_lifecycle_config(StudioLifecycleConfigName="clone-repo-v1")

    with pytest.raises(client.exceptions.ResourceNotFound):
        client.describe_studio_lifecycle_config(
            StudioLifecycleConfigName="clone-repo-v1"
        )


def reference_from_domain_user_settings(client: Client, arn: str) -> None:
    create_domain(client, JupyterLabAppSettings={"LifecycleConfigArns": [arn]})


def reference_from_domain_space_settings(client: Client, arn: str) -> None:
    domain_id = create_domain(client)
    client.update_domain(
        DomainId=domain_id,
        DefaultSpaceSettings={
            "ExecutionRole": ROLE,
            "JupyterLabAppSettings": {"BuiltInLifecycleConfigArn": arn},
        },
    )


def reference_from_user_profile(client: Client, arn: str) -> None:
    domain_id = create_domain(client)
    client.create_user_profile(
        DomainId=domain_id,
        UserProfileName="alice",
        UserSettings={
            "JupyterLabAppSettings": {
                "DefaultResourceSpec": {"LifecycleConfigArn": arn}
            }
        },
    )


def reference_from_space(client: Client, arn: str) -> None:
    domain_id = create_domain(client)
    client.create_space(
        DomainId=domain_id,
        SpaceName="team",
        SpaceSettings={
            "AppType": "JupyterLab",
            "JupyterLabAppSettings": {
                "DefaultResourceSpec": {"LifecycleConfigArn": arn}
            },
        },
    )


def reference_from_running_app(client: Client, arn: str) -> None:
    domain_id = create_domain(
        client, JupyterLabAppSettings={"LifecycleConfigArns": [arn]}
    )
    client.create_space(
        DomainId=domain_id, SpaceName="team", SpaceSettings={"AppType": "JupyterLab"}
    )
    app = {
        "DomainId": domain_id,
        "SpaceName": "team",
        "AppType": "JupyterLab",
        "AppName": "default",
    }
    client.create_app(**app, ResourceSpec={"LifecycleConfigArn": arn})
    assert wait_for_app(client, **app)["Status"] == "InService"
    # Detach it, so only the running app still uses it.
    client.update_domain(
        DomainId=domain_id,
        DefaultUserSettings={"JupyterLabAppSettings": {"LifecycleConfigArns": []}},
    )


@pytest.mark.parametrize(
    "reference",
    [
        reference_from_domain_user_settings,
        reference_from_domain_space_settings,
        reference_from_user_profile,
        reference_from_space,
        reference_from_running_app,
    ],
    ids=[
        "domain-default-user-settings",
        "domain-default-space-settings",
        "user-profile",
        "space",
        "running-app",
    ],
)
def test_lcc_delete_while_referenced_in_use(
    client: Client,
    instant_updates: None,
    reference: Callable[[Client, str], None],
) -> None:
    arn = create_lcc(client, "clone-repo-v1")
    reference(client, arn)

    with pytest.raises(client.exceptions.ResourceInUse):
        client.delete_studio_lifecycle_config(StudioLifecycleConfigName="clone-repo-v1")


def test_lcc_delete_after_app_deleted(client: Client, instant_updates: None) -> None:
    arn = create_lcc(client, "clone-repo-v1")
    reference_from_running_app(client, arn)
    domain_id = client.list_domains()["Domains"][0]["DomainId"]

    client.delete_app(
        DomainId=domain_id, SpaceName="team", AppType="JupyterLab", AppName="default"
    )
    client.delete_studio_lifecycle_config(StudioLifecycleConfigName="clone-repo-v1")

    assert client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"] == []


def test_lcc_list_filters(client: Client) -> None:
    create_lcc(client, "bootstrap-lab-v1", "JupyterLab")
    create_lcc(client, "bootstrap-editor-v1", "CodeEditor")
    create_lcc(client, "auto-shutdown", "JupyterLab")

    by_name = client.list_studio_lifecycle_configs(NameContains="bootstrap")
    by_type = client.list_studio_lifecycle_configs(AppTypeEquals="JupyterLab")

    names = sorted(
        c["StudioLifecycleConfigName"] for c in by_name["StudioLifecycleConfigs"]
    )
    types = {
        c["StudioLifecycleConfigAppType"] for c in by_type["StudioLifecycleConfigs"]
    }
    assert names == ["bootstrap-editor-v1", "bootstrap-lab-v1"]
    assert types == {"JupyterLab"}
    assert len(by_type["StudioLifecycleConfigs"]) == 2


def test_lcc_list_pages_sorted_by_name(client: Client) -> None:
    for index in range(7):
        create_lcc(client, f"lcc-{index}")

    pages = client.get_paginator("list_studio_lifecycle_configs").paginate(
        SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 3}
    )
    page_sizes = []
    names = []
    for page in pages:
        page_sizes.append(len(page["StudioLifecycleConfigs"]))
        names += [
            c["StudioLifecycleConfigName"] for c in page["StudioLifecycleConfigs"]
        ]

    assert page_sizes == [3, 3, 1]
    assert names == [f"lcc-{index}" for index in range(7)]


def test_lcc_list_newest_first_by_default(client: Client) -> None:
    create_lcc(client, "older")
    create_lcc(client, "newer")

    listed = client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"]

    assert [c["StudioLifecycleConfigName"] for c in listed] == ["newer", "older"]


def test_lcc_delete_between_pages_skips_none(client: Client) -> None:
    for index in range(4):
        create_lcc(client, f"lcc-{index}")

    first = client.list_studio_lifecycle_configs(
        SortBy="Name", SortOrder="Ascending", MaxResults=2
    )
    for config in first["StudioLifecycleConfigs"]:
        client.delete_studio_lifecycle_config(
            StudioLifecycleConfigName=config["StudioLifecycleConfigName"]
        )
    second = client.list_studio_lifecycle_configs(
        SortBy="Name", SortOrder="Ascending", MaxResults=2, NextToken=first["NextToken"]
    )

    names = [c["StudioLifecycleConfigName"] for c in second["StudioLifecycleConfigs"]]
    assert names == ["lcc-2", "lcc-3"]


def test_list_invalid_token_rejected(client: Client) -> None:
    with pytest.raises(ClientError) as caught:
        client.list_studio_lifecycle_configs(NextToken="not-a-token")

    assert error_code(caught) == "ValidationException"


# Tags


def tagged_lcc(client: Client) -> str:
    return create_lcc(client, "clone-repo-v1")


def tagged_domain(client: Client) -> str:
    domain_id = create_domain(client)
    return str(client.describe_domain(DomainId=domain_id)["DomainArn"])


def tagged_user_profile(client: Client) -> str:
    domain_id = create_domain(client)
    response = client.create_user_profile(DomainId=domain_id, UserProfileName="alice")
    return str(response["UserProfileArn"])


def tagged_space(client: Client) -> str:
    domain_id = create_domain(client)
    return str(client.create_space(DomainId=domain_id, SpaceName="team")["SpaceArn"])


@pytest.mark.parametrize(
    "create_resource",
    [tagged_lcc, tagged_domain, tagged_user_profile, tagged_space],
    ids=["lifecycle-config", "domain", "user-profile", "space"],
)
def test_tags_round_trip(
    client: Client, create_resource: Callable[[Client], str]
) -> None:
    arn = create_resource(client)

    client.add_tags(
        ResourceArn=arn,
        Tags=[{"Key": "owner", "Value": "platform"}, {"Key": "tool", "Value": "a"}],
    )
    client.add_tags(
        ResourceArn=arn, Tags=[{"Key": "tool", "Value": "studio-bootstrap"}]
    )
    after_add = client.list_tags(ResourceArn=arn)["Tags"]
    client.delete_tags(ResourceArn=arn, TagKeys=["owner"])
    after_delete = client.list_tags(ResourceArn=arn)["Tags"]

    assert sorted((t["Key"], t["Value"]) for t in after_add) == [
        ("owner", "platform"),
        ("tool", "studio-bootstrap"),
    ]
    assert after_delete == [{"Key": "tool", "Value": "studio-bootstrap"}]


def test_tags_at_create_listed(client: Client) -> None:
    arn = client.create_studio_lifecycle_config(
        StudioLifecycleConfigName="clone-repo-v1",
        StudioLifecycleConfigContent=CONTENT,
        StudioLifecycleConfigAppType="JupyterLab",
        Tags=[{"Key": "équipe", "Value": "données ml"}],
    )["StudioLifecycleConfigArn"]

    assert client.list_tags(ResourceArn=arn)["Tags"] == [
        {"Key": "équipe", "Value": "données ml"}
    ]


def test_tag_key_pattern_enforced(client: Client) -> None:
    arn = create_lcc(client, "clone-repo-v1")

    with pytest.raises(ClientError) as caught:
        client.add_tags(ResourceArn=arn, Tags=[{"Key": "bad#key", "Value": "v"}])

    assert error_code(caught) == "ValidationException"
    assert "tags.1.member.key" in error_message(caught)


def test_tags_of_missing_resource_not_found(client: Client) -> None:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:studio-lifecycle-config/gone"

    with pytest.raises(client.exceptions.ResourceNotFound):
        client.list_tags(ResourceArn=arn)


# Domains

FULL_USER_SETTINGS: dict[str, Any] = {
    "ExecutionRole": ROLE,
    "SecurityGroups": ["sg-0123456789abcdef0"],
    "JupyterLabAppSettings": {
        "DefaultResourceSpec": {
            "InstanceType": "ml.t3.medium",
            "SageMakerImageArn": (
                f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:image/sagemaker-distribution-cpu"
            ),
        },
        "CustomImages": [
            {"ImageName": "team-image", "AppImageConfigName": "team-config"}
        ],
        "CodeRepositories": [{"RepositoryUrl": "https://example.com/team.git"}],
        "LifecycleConfigArns": [],
    },
    "CodeEditorAppSettings": {
        "CustomImages": [
            {
                "ImageName": "editor",
                "AppImageConfigName": "editor",
                "ImageVersionNumber": 3,
            }
        ],
        "LifecycleConfigArns": [],
    },
    "KernelGatewayAppSettings": {
        "DefaultResourceSpec": {"InstanceType": "ml.t3.medium"},
    },
}


def test_domain_settings_round_trip(client: Client) -> None:
    builtin = create_lcc(client, "bootstrap-v1")
    user_settings = {
        **FULL_USER_SETTINGS,
        "JupyterLabAppSettings": {
            **FULL_USER_SETTINGS["JupyterLabAppSettings"],
            "BuiltInLifecycleConfigArn": builtin,
        },
    }
    space_settings = {
        "ExecutionRole": ROLE,
        "JupyterLabAppSettings": {"BuiltInLifecycleConfigArn": builtin},
    }
    domain_settings = {
        "SecurityGroupIds": ["sg-0fedcba9876543210"],
        "DockerSettings": {"EnableDockerAccess": "DISABLED"},
    }

    domain_id = client.create_domain(
        DomainName="studio",
        AuthMode="IAM",
        DefaultUserSettings=user_settings,
        DefaultSpaceSettings=space_settings,
        DomainSettings=domain_settings,
        AppNetworkAccessType="VpcOnly",
        SubnetIds=["subnet-0123456789abcdef0"],
        VpcId="vpc-0123456789abcdef0",
    )["DomainId"]
    described = client.describe_domain(DomainId=domain_id)

    assert described["DefaultUserSettings"] == user_settings
    assert described["DefaultSpaceSettings"] == space_settings
    assert described["DomainSettings"] == domain_settings
    assert described["AppNetworkAccessType"] == "VpcOnly"
    assert described["Status"] == "InService"


def test_domain_id_matches_model_pattern(client: Client, studio_domain: str) -> None:
    described = client.describe_domain(DomainId=studio_domain)

    assert studio_domain.startswith("d-")
    assert described["DomainArn"].endswith(f":domain/{studio_domain}")


def test_domain_missing_not_found(client: Client) -> None:
    with pytest.raises(client.exceptions.ResourceNotFound):
        client.describe_domain(DomainId="d-000000000000")


def test_update_domain_replaces_sent_objects(client: Client) -> None:
    lab = create_lcc(client, "lab-v1")
    server_v1 = create_lcc(client, "server-v1", "JupyterServer")
    server_v2 = create_lcc(client, "server-v2", "JupyterServer")
    domain_id = create_domain(
        client,
        SecurityGroups=["sg-0123456789abcdef0"],
        JupyterLabAppSettings={
            "CustomImages": [{"ImageName": "team", "AppImageConfigName": "team"}],
            "LifecycleConfigArns": [lab],
        },
        JupyterServerAppSettings={
            "DefaultResourceSpec": {"LifecycleConfigArn": server_v1},
            "LifecycleConfigArns": [server_v1],
            "CodeRepositories": [{"RepositoryUrl": "https://example.com/a.git"}],
        },
    )

    client.update_domain(
        DomainId=domain_id,
        DefaultUserSettings={
            "JupyterServerAppSettings": {"LifecycleConfigArns": [server_v2]}
        },
    )
    settings = client.describe_domain(DomainId=domain_id)["DefaultUserSettings"]

    assert settings["JupyterServerAppSettings"] == {"LifecycleConfigArns": [server_v2]}
    assert settings["JupyterLabAppSettings"]["LifecycleConfigArns"] == [lab]
    assert settings["JupyterLabAppSettings"]["CustomImages"] == [
        {"ImageName": "team", "AppImageConfigName": "team"}
    ]
    assert settings["ExecutionRole"] == ROLE
    assert settings["SecurityGroups"] == ["sg-0123456789abcdef0"]


def test_update_domain_settings_for_update(client: Client, studio_domain: str) -> None:
    client.update_domain(
        DomainId=studio_domain,
        DomainSettingsForUpdate={"SecurityGroupIds": ["sg-0123456789abcdef0"]},
        AppNetworkAccessType="VpcOnly",
    )
    described = client.describe_domain(DomainId=studio_domain)

    assert described["DomainSettings"] == {"SecurityGroupIds": ["sg-0123456789abcdef0"]}
    assert described["AppNetworkAccessType"] == "VpcOnly"


def test_update_domain_updating_then_in_service(
    client: Client, studio_domain: str
) -> None:
    sagemaker.set_update_delay(0.5)

    client.update_domain(DomainId=studio_domain, AppNetworkAccessType="VpcOnly")
    right_after = client.describe_domain(DomainId=studio_domain)["Status"]
    later = wait_for_domain(client, studio_domain)

    assert right_after == "Updating"
    assert later == "InService"


def test_update_domain_while_updating_in_use(
    client: Client, studio_domain: str
) -> None:
    sagemaker.set_update_delay(5)
    client.update_domain(DomainId=studio_domain, AppNetworkAccessType="VpcOnly")

    with pytest.raises(client.exceptions.ResourceInUse):
        client.update_domain(DomainId=studio_domain, AppNetworkAccessType="VpcOnly")


def test_held_domain_stays_updating(
    client: Client, studio_domain: str, instant_updates: None
) -> None:
    sagemaker.hold_domain_updating(studio_domain)
    while_held = client.describe_domain(DomainId=studio_domain)["Status"]
    sagemaker.release_domain_updating(studio_domain)
    after_release = client.describe_domain(DomainId=studio_domain)["Status"]

    assert while_held == "Updating"
    assert after_release == "InService"


def test_update_domain_unknown_lcc_not_found(
    client: Client, studio_domain: str
) -> None:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:studio-lifecycle-config/gone"

    with pytest.raises(client.exceptions.ResourceNotFound):
        client.update_domain(
            DomainId=studio_domain,
            DefaultUserSettings={
                "JupyterLabAppSettings": {"LifecycleConfigArns": [arn]}
            },
        )


@pytest.mark.parametrize(
    "settings_member",
    ["JupyterServerAppSettings", "CodeEditorAppSettings", "KernelGatewayAppSettings"],
    ids=["jupyter-server", "code-editor", "kernel-gateway"],
)
def test_update_domain_wrong_app_type_rejected(
    client: Client, studio_domain: str, settings_member: str
) -> None:
    lab = create_lcc(client, "lab-v1", "JupyterLab")

    with pytest.raises(ClientError) as caught:
        client.update_domain(
            DomainId=studio_domain,
            DefaultUserSettings={settings_member: {"LifecycleConfigArns": [lab]}},
        )

    assert error_code(caught) == "ValidationException"


def test_delete_domain_with_user_in_use(client: Client, studio_domain: str) -> None:
    client.create_user_profile(DomainId=studio_domain, UserProfileName="alice")

    with pytest.raises(client.exceptions.ResourceInUse):
        client.delete_domain(DomainId=studio_domain)


# User profiles and spaces


def test_user_profiles_paginate_250(client: Client, studio_domain: str) -> None:
    expected = [f"user-{index:03d}" for index in range(250)]
    for name in expected:
        client.create_user_profile(DomainId=studio_domain, UserProfileName=name)

    pages = client.get_paginator("list_user_profiles").paginate(
        DomainIdEquals=studio_domain, PaginationConfig={"PageSize": 100}
    )
    page_sizes = []
    names = []
    for page in pages:
        page_sizes.append(len(page["UserProfiles"]))
        names += [profile["UserProfileName"] for profile in page["UserProfiles"]]

    assert page_sizes == [100, 100, 50]
    assert names == expected


def test_user_profile_default_page_is_10(client: Client, studio_domain: str) -> None:
    for index in range(12):
        client.create_user_profile(DomainId=studio_domain, UserProfileName=f"u{index}")

    first = client.list_user_profiles(DomainIdEquals=studio_domain)

    assert len(first["UserProfiles"]) == 10
    assert "NextToken" in first


def test_user_profile_duplicate_in_use(client: Client, studio_domain: str) -> None:
    client.create_user_profile(DomainId=studio_domain, UserProfileName="alice")

    with pytest.raises(client.exceptions.ResourceInUse):
        client.create_user_profile(DomainId=studio_domain, UserProfileName="Alice")


def test_update_user_profile_replaces_sent_objects(
    client: Client, studio_domain: str
) -> None:
    lab_v1 = create_lcc(client, "lab-v1")
    lab_v2 = create_lcc(client, "lab-v2")
    client.create_user_profile(
        DomainId=studio_domain,
        UserProfileName="alice",
        UserSettings={
            "ExecutionRole": ROLE,
            "JupyterLabAppSettings": {
                "DefaultResourceSpec": {"LifecycleConfigArn": lab_v1},
                "LifecycleConfigArns": [lab_v1],
            },
        },
    )

    sagemaker.set_update_delay(5)

    client.update_user_profile(
        DomainId=studio_domain,
        UserProfileName="alice",
        UserSettings={"JupyterLabAppSettings": {"LifecycleConfigArns": [lab_v2]}},
    )
    described = client.describe_user_profile(
        DomainId=studio_domain, UserProfileName="alice"
    )

    assert described["UserSettings"] == {
        "ExecutionRole": ROLE,
        "JupyterLabAppSettings": {"LifecycleConfigArns": [lab_v2]},
    }
    assert described["Status"] == "Updating"


def test_space_round_trip(client: Client, studio_domain: str) -> None:
    lab = create_lcc(client, "lab-v1")
    client.create_user_profile(DomainId=studio_domain, UserProfileName="alice")
    settings = {
        "AppType": "JupyterLab",
        "JupyterLabAppSettings": {
            "DefaultResourceSpec": {
                "InstanceType": "ml.t3.medium",
                "LifecycleConfigArn": lab,
            }
        },
    }

    client.create_space(
        DomainId=studio_domain,
        SpaceName="alice-lab",
        SpaceSettings=settings,
        OwnershipSettings={"OwnerUserProfileName": "alice"},
        SpaceSharingSettings={"SharingType": "Private"},
    )
    described = client.describe_space(DomainId=studio_domain, SpaceName="alice-lab")
    listed = client.list_spaces(DomainIdEquals=studio_domain)["Spaces"]

    assert described["SpaceSettings"] == settings
    assert described["OwnershipSettings"] == {"OwnerUserProfileName": "alice"}
    assert described["SpaceSharingSettings"] == {"SharingType": "Private"}
    assert listed[0]["SpaceSettingsSummary"] == {"AppType": "JupyterLab"}


def test_update_space_app_type_rejected(client: Client, studio_domain: str) -> None:
    client.create_space(
        DomainId=studio_domain,
        SpaceName="team",
        SpaceSettings={"AppType": "JupyterLab"},
    )

    with pytest.raises(ClientError) as caught:
        client.update_space(
            DomainId=studio_domain,
            SpaceName="team",
            SpaceSettings={"AppType": "CodeEditor"},
        )

    assert error_code(caught) == "ValidationException"


def test_private_space_without_owner_rejected(
    client: Client, studio_domain: str
) -> None:
    with pytest.raises(ClientError) as caught:
        client.create_space(
            DomainId=studio_domain,
            SpaceName="mine",
            SpaceSettings={"AppType": "JupyterLab"},
            SpaceSharingSettings={"SharingType": "Private"},
        )

    assert error_code(caught) == "ValidationException"


# Apps and lifecycle configuration choice


def lab_space(client: Client, domain_id: str, owner: str = "alice") -> dict[str, str]:
    """Create a private JupyterLab space; return the CreateApp arguments for it."""
    client.create_user_profile(DomainId=domain_id, UserProfileName=owner)
    client.create_space(
        DomainId=domain_id,
        SpaceName=f"{owner}-lab",
        SpaceSettings={"AppType": "JupyterLab"},
        OwnershipSettings={"OwnerUserProfileName": owner},
        SpaceSharingSettings={"SharingType": "Private"},
    )
    return {
        "DomainId": domain_id,
        "SpaceName": f"{owner}-lab",
        "AppType": "JupyterLab",
        "AppName": "default",
    }


def test_jupyterlab_runs_built_in_then_default(
    client: Client, recorded_starts: RecordingHook
) -> None:
    builtin = create_lcc(client, "bootstrap-v1")
    default = create_lcc(client, "auto-shutdown")
    domain_id = create_domain(
        client,
        JupyterLabAppSettings={
            "BuiltInLifecycleConfigArn": builtin,
            "LifecycleConfigArns": [default],
            "DefaultResourceSpec": {"LifecycleConfigArn": default},
        },
    )
    app = lab_space(client, domain_id)

    client.create_app(**app)
    description = wait_for_app(client, **app)

    start = recorded_starts.starts[0]
    assert description["Status"] == "InService"
    assert recorded_starts.run_order() == [builtin, default]
    assert start.scripts[0].script == b"# bootstrap-v1\n"
    assert start.user_profile_name == "alice"
    assert start.space_name == "alice-lab"
    assert description["BuiltInLifecycleConfigArn"] == builtin
    assert description["ResourceSpec"]["LifecycleConfigArn"] == default


def test_default_missing_from_list_fails_app(
    client: Client, recorded_starts: RecordingHook
) -> None:
    listed = create_lcc(client, "listed")
    unlisted = create_lcc(client, "unlisted")
    domain_id = create_domain(
        client,
        JupyterLabAppSettings={
            "LifecycleConfigArns": [listed],
            "DefaultResourceSpec": {"LifecycleConfigArn": unlisted},
        },
    )
    app = lab_space(client, domain_id)

    client.create_app(**app)
    description = wait_for_app(client, **app)

    assert description["Status"] == "Failed"
    assert unlisted in description["FailureReason"]
    assert recorded_starts.starts == []


def test_requested_lcc_outside_list_rejected(
    client: Client, recorded_starts: RecordingHook
) -> None:
    listed = create_lcc(client, "listed")
    unlisted = create_lcc(client, "unlisted")
    domain_id = create_domain(
        client, JupyterLabAppSettings={"LifecycleConfigArns": [listed]}
    )
    app = lab_space(client, domain_id)

    with pytest.raises(ClientError) as caught:
        client.create_app(**app, ResourceSpec={"LifecycleConfigArn": unlisted})

    assert error_code(caught) == "ValidationException"
    assert recorded_starts.starts == []


def test_requested_lcc_replaces_default(
    client: Client, recorded_starts: RecordingHook
) -> None:
    default = create_lcc(client, "default")
    picked = create_lcc(client, "picked")
    domain_id = create_domain(
        client,
        JupyterLabAppSettings={
            "LifecycleConfigArns": [default, picked],
            "DefaultResourceSpec": {"LifecycleConfigArn": default},
        },
    )
    app = lab_space(client, domain_id)

    client.create_app(**app, ResourceSpec={"LifecycleConfigArn": picked})
    wait_for_app(client, **app)

    assert recorded_starts.run_order() == [picked]


def test_classic_jupyter_server_runs_default(
    client: Client, recorded_starts: RecordingHook
) -> None:
    default = create_lcc(client, "classic-bootstrap", "JupyterServer")
    domain_id = create_domain(
        client,
        JupyterServerAppSettings={
            "LifecycleConfigArns": [default],
            "DefaultResourceSpec": {"LifecycleConfigArn": default},
        },
    )
    client.create_user_profile(DomainId=domain_id, UserProfileName="alice")
    app = {
        "DomainId": domain_id,
        "UserProfileName": "alice",
        "AppType": "JupyterServer",
        "AppName": "default",
    }

    client.create_app(**app)
    description = wait_for_app(client, **app)

    start = recorded_starts.starts[0]
    assert description["Status"] == "InService"
    assert recorded_starts.run_order() == [default]
    assert start.user_profile_name == "alice"
    assert start.space_name is None


def test_jupyter_server_other_name_rejected(client: Client, studio_domain: str) -> None:
    client.create_user_profile(DomainId=studio_domain, UserProfileName="alice")

    with pytest.raises(ClientError) as caught:
        client.create_app(
            DomainId=studio_domain,
            UserProfileName="alice",
            AppType="JupyterServer",
            AppName="main",
        )

    assert error_code(caught) == "ValidationException"


def test_user_default_beats_domain_default(
    client: Client, recorded_starts: RecordingHook
) -> None:
    domain_lcc = create_lcc(client, "domain-default", "JupyterServer")
    user_lcc = create_lcc(client, "user-default", "JupyterServer")
    domain_id = create_domain(
        client,
        JupyterServerAppSettings={
            "LifecycleConfigArns": [domain_lcc],
            "DefaultResourceSpec": {"LifecycleConfigArn": domain_lcc},
        },
    )
    client.create_user_profile(
        DomainId=domain_id,
        UserProfileName="alice",
        UserSettings={
            "JupyterServerAppSettings": {
                "LifecycleConfigArns": [user_lcc],
                "DefaultResourceSpec": {"LifecycleConfigArn": user_lcc},
            }
        },
    )
    app = {
        "DomainId": domain_id,
        "UserProfileName": "alice",
        "AppType": "JupyterServer",
        "AppName": "default",
    }

    client.create_app(**app)
    description = wait_for_app(client, **app)

    assert description["Status"] == "InService"
    assert recorded_starts.run_order() == [user_lcc]


def test_user_built_in_beats_domain_built_in(
    client: Client, recorded_starts: RecordingHook
) -> None:
    domain_builtin = create_lcc(client, "domain-builtin")
    user_builtin = create_lcc(client, "user-builtin")
    domain_id = create_domain(
        client, JupyterLabAppSettings={"BuiltInLifecycleConfigArn": domain_builtin}
    )
    app = lab_space(client, domain_id)
    client.update_user_profile(
        DomainId=domain_id,
        UserProfileName="alice",
        UserSettings={
            "JupyterLabAppSettings": {"BuiltInLifecycleConfigArn": user_builtin}
        },
    )

    client.create_app(**app)
    wait_for_app(client, **app)

    assert recorded_starts.run_order() == [user_builtin]


def test_space_default_beats_user_default(
    client: Client, recorded_starts: RecordingHook
) -> None:
    user_lcc = create_lcc(client, "user-default")
    space_lcc = create_lcc(client, "space-default")
    domain_id = create_domain(
        client, JupyterLabAppSettings={"LifecycleConfigArns": [user_lcc, space_lcc]}
    )
    app = lab_space(client, domain_id)
    client.update_user_profile(
        DomainId=domain_id,
        UserProfileName="alice",
        UserSettings={
            "JupyterLabAppSettings": {
                "DefaultResourceSpec": {"LifecycleConfigArn": user_lcc}
            }
        },
    )
    client.update_space(
        DomainId=domain_id,
        SpaceName="alice-lab",
        SpaceSettings={
            "JupyterLabAppSettings": {
                "DefaultResourceSpec": {"LifecycleConfigArn": space_lcc}
            }
        },
    )

    client.create_app(**app)
    wait_for_app(client, **app)

    assert recorded_starts.run_order() == [space_lcc]


def test_failing_script_fails_app(
    client: Client, recorded_starts: RecordingHook
) -> None:
    builtin = create_lcc(client, "bootstrap-v1")
    domain_id = create_domain(
        client, JupyterLabAppSettings={"BuiltInLifecycleConfigArn": builtin}
    )
    app = lab_space(client, domain_id)
    recorded_starts.exit_statuses[builtin] = 3

    client.create_app(**app)
    description = wait_for_app(client, **app)

    assert description["Status"] == "Failed"
    assert builtin in description["FailureReason"]
    assert "status 3" in description["FailureReason"]


def test_raising_hook_fails_app(client: Client, studio_domain: str) -> None:
    def broken_hook(start: sagemaker.AppStart) -> Sequence[int]:
        raise RuntimeError("home volume missing")

    sagemaker.set_app_start_hook(broken_hook)
    app = lab_space(client, studio_domain)

    client.create_app(**app)
    description = wait_for_app(client, **app)

    assert description["Status"] == "Failed"
    assert "home volume missing" in description["FailureReason"]


def test_app_without_hook_in_service(client: Client, studio_domain: str) -> None:
    app = lab_space(client, studio_domain)

    client.create_app(**app)
    description = wait_for_app(client, **app)

    assert description["Status"] == "InService"


def test_second_app_in_space_in_use(client: Client, studio_domain: str) -> None:
    app = lab_space(client, studio_domain)
    client.create_app(**app)

    with pytest.raises(client.exceptions.ResourceInUse):
        client.create_app(**{**app, "AppName": "second"})


def test_deleted_app_listed_as_deleted(client: Client, studio_domain: str) -> None:
    app = lab_space(client, studio_domain)
    client.create_app(**app)
    wait_for_app(client, **app)

    client.delete_app(**app)
    listed = client.list_apps(DomainIdEquals=studio_domain)["Apps"]

    assert [entry["Status"] for entry in listed] == ["Deleted"]


def kernel_gateway_app(client: Client, domain_spec: dict[str, str]) -> dict[str, str]:
    """Create a domain and user; return CreateApp arguments of a KernelGateway app."""
    domain_id = create_domain(
        client, KernelGatewayAppSettings={"DefaultResourceSpec": domain_spec}
    )
    client.create_user_profile(DomainId=domain_id, UserProfileName="alice")
    return {
        "DomainId": domain_id,
        "UserProfileName": "alice",
        "AppType": "KernelGateway",
        "AppName": "datascience-1",
    }


@pytest.mark.parametrize(
    ("domain_spec", "requested_spec"),
    [({"InstanceType": "ml.t3.medium"}, {}), ({}, {"InstanceType": "ml.m5.large"})],
    ids=["domain-instance-type", "requested-instance-type"],
)
def test_kernel_gateway_with_instance_type_starts(
    client: Client, domain_spec: dict[str, str], requested_spec: dict[str, str]
) -> None:
    app = kernel_gateway_app(client, domain_spec)

    client.create_app(**app, ResourceSpec=requested_spec)

    assert wait_for_app(client, **app)["Status"] == "InService"


def test_kernel_gateway_without_instance_type_rejected(client: Client) -> None:
    app = kernel_gateway_app(client, {})

    with pytest.raises(ClientError) as caught:
        client.create_app(**app)

    assert error_code(caught) == "ValidationException"


# Call log and fault injection


def test_call_log_counts_operations(client: Client, studio_domain: str) -> None:
    sagemaker.reset_call_log()

    client.describe_domain(DomainId=studio_domain)
    client.describe_domain(DomainId=studio_domain)
    client.update_domain(DomainId=studio_domain, AppNetworkAccessType="VpcOnly")
    client.add_tags(
        ResourceArn=create_lcc(client, "x"), Tags=[{"Key": "k", "Value": "v"}]
    )
    log = sagemaker.call_log()

    assert log.reads == {"DescribeDomain": 2}
    assert log.mutating == {
        "AddTags": 1,
        "CreateStudioLifecycleConfig": 1,
        "UpdateDomain": 1,
    }
    assert log.mutating_total == 3
    assert log.reads_total == 2


def test_call_log_over_http(local_sagemaker: str, client: Client) -> None:
    control = sagemaker.ControlClient(local_sagemaker)
    control.reset_call_log()

    client.list_domains()
    remote = control.call_log()
    control.reset_call_log()
    after_reset = control.call_log()

    assert remote.count("ListDomains") == 1
    assert after_reset.reads_total == 0


def test_throttling_retried_by_standard_mode(
    local_sagemaker: str, studio_domain: str
) -> None:
    retrying = make_client(local_sagemaker, {"mode": "standard", "max_attempts": 3})
    sagemaker.inject_error("DescribeDomain", "ThrottlingException", "Rate exceeded")
    sagemaker.reset_call_log()

    response = retrying.describe_domain(DomainId=studio_domain)

    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert sagemaker.call_log().count("DescribeDomain") == 2


def test_injected_error_returns_code(client: Client, studio_domain: str) -> None:
    sagemaker.inject_error("UpdateDomain", "ResourceLimitExceeded", times=2)

    for _ in range(2):
        with pytest.raises(client.exceptions.ResourceLimitExceeded):
            client.update_domain(DomainId=studio_domain, AppNetworkAccessType="VpcOnly")
    client.update_domain(DomainId=studio_domain, AppNetworkAccessType="VpcOnly")

    assert sagemaker.pending_injected_errors() == []


def test_injected_error_http_status(client: Client) -> None:
    sagemaker.inject_error("ListDomains", "InternalFailure", http_status=500)

    with pytest.raises(ClientError) as caught:
        client.list_domains()

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert error_code(caught) == "InternalFailure"


def test_inject_unknown_operation_rejected() -> None:
    with pytest.raises(ValueError, match="unknown SageMaker operation"):
        sagemaker.inject_error("DescribeDomains", "ThrottlingException")


def test_controls_over_http(
    local_sagemaker: str, client: Client, studio_domain: str
) -> None:
    control = sagemaker.ControlClient(local_sagemaker)

    control.inject_error("DescribeDomain", "ThrottlingException")
    with pytest.raises(ClientError) as caught:
        client.describe_domain(DomainId=studio_domain)
    control.hold_domain_updating(studio_domain)
    while_held = client.describe_domain(DomainId=studio_domain)["Status"]
    control.release_domain_updating(studio_domain)
    previous_delay = control.set_update_delay(0.5)
    control.reset()

    assert error_code(caught) == "ThrottlingException"
    assert while_held == "Updating"
    assert previous_delay == sagemaker.DEFAULT_UPDATE_DELAY
    assert sagemaker.update_delay() == 0.5
    assert client.list_domains()["Domains"] == []


def test_invalid_control_request_rejected(local_sagemaker: str) -> None:
    control = sagemaker.ControlClient(local_sagemaker)

    with pytest.raises(sagemaker.ControlRequestError) as caught:
        control.inject_error("DescribeDomains", "ThrottlingException")

    assert caught.value.status == 400
    assert "unknown SageMaker operation" in str(caught.value)


def test_control_client_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        sagemaker.ControlClient("http://sagemaker.example.com:5000")


def test_moto_operations_still_served(client: Client) -> None:
    arn = client.create_model(
        ModelName="model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "example.com/model:1"},
        Tags=[{"Key": "owner", "Value": "ml"}],
    )["ModelArn"]

    described = client.describe_model(ModelName="model")
    tags = client.list_tags(ResourceArn=arn)["Tags"]

    assert described["ModelArn"] == arn
    assert tags == [{"Key": "owner", "Value": "ml"}]


def test_reset_keeps_other_services(
    local_sagemaker: str, client: Client, studio_domain: str
) -> None:
    iam = boto3.client(
        "iam",
        region_name=REGION,
        endpoint_url=local_sagemaker,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam.create_role(RoleName="reset-survivor", AssumeRolePolicyDocument="{}")

    sagemaker.reset()
    kept_role = iam.get_role(RoleName="reset-survivor")["Role"]["RoleName"]
    iam.delete_role(RoleName="reset-survivor")

    assert kept_role == "reset-survivor"
    assert client.list_domains()["Domains"] == []


def test_environment_has_no_container_credentials() -> None:
    assert "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" not in os.environ
