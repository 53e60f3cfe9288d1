"""register, plan, unregister and status against the local SageMaker.

The CLI runs in this process with the account-B admin's credentials and
talks HTTP to moto. Calls are counted at the endpoint, not in our code.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap.cli import main
from bootstrap.sandbox import sagemaker
from bootstrap.sandbox.stack import LocalStack
from bootstrap.sandbox.studio import StudioApps

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bootstrap.example.toml"
ACCOUNT_B = "222222222222"
REGION = "eu-west-1"
AUTOSHUTDOWN = '#!/bin/bash\necho autoshutdown ran >> "$HOME/autoshutdown.log"\n'


@pytest.fixture
def admin_env(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The environment of an admin of account B whose calls go to the local stack."""
    for key, value in local_stack.admin_credentials(ACCOUNT_B).items():
        monkeypatch.setenv(key, value)
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)


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


def create_lcc(
    client: Any, name: str, app_type: str, script: str = AUTOSHUTDOWN
) -> str:
    response = client.create_studio_lifecycle_config(
        StudioLifecycleConfigName=name,
        StudioLifecycleConfigContent=base64.b64encode(script.encode()).decode(),
        StudioLifecycleConfigAppType=app_type,
    )
    return str(response["StudioLifecycleConfigArn"])


def create_domain(
    client: Any, execution_role: str, name: str = "studio", **settings: Any
) -> str:
    user_settings = {
        "ExecutionRole": execution_role,
        "SecurityGroups": ["sg-0123456789abcdef0"],
        "JupyterServerAppSettings": {"DefaultResourceSpec": {"InstanceType": "system"}},
        "KernelGatewayAppSettings": {
            "DefaultResourceSpec": {"InstanceType": "ml.t3.medium"},
            "CustomImages": [{"ImageName": "team-image", "AppImageConfigName": "team"}],
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
        DomainName=name,
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
    wait_in_service(client, domain_id)
    return domain_id


def create_autoshutdown_domain(
    client: Any, execution_role: str, name: str = "studio"
) -> tuple[str, str]:
    """Create a domain whose JupyterServer default is another LCC, autoshutdown."""
    autoshutdown = create_lcc(client, "autoshutdown", "JupyterServer")
    domain = create_domain(
        client,
        execution_role,
        name,
        JupyterServerAppSettings={
            "DefaultResourceSpec": {
                "InstanceType": "system",
                "LifecycleConfigArn": autoshutdown,
            },
            "LifecycleConfigArns": [autoshutdown],
        },
    )
    return domain, autoshutdown


def wait_in_service(client: Any, domain_id: str) -> None:
    deadline = time.monotonic() + 10
    while client.describe_domain(DomainId=domain_id)["Status"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def write_config(folder: Path, domain_id: str, role: str, **changes: Any) -> Path:
    text = EXAMPLE.read_text().replace("d-xxxxxxxxxxxx", domain_id)
    text = text.replace('role = "CrossAccountRepoRole"', f'role = "{role}"')
    for key, value in changes.items():
        text = text.replace('# branch = "main"', f'{key} = "{value}"')
    path = folder / "bootstrap.toml"
    path.write_text(text)
    return path


def cli(config: Path, local_stack: LocalStack, *args: str) -> int:
    return main(
        [
            "--config",
            str(config),
            *args[:1],
            "--endpoint-url",
            local_stack.endpoint_url,
            *args[1:],
        ]
    )


def without_volatile(description: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(description)
    for key in ("ResponseMetadata", "LastModifiedTime", "Status"):
        result.pop(key, None)
    return result


@pytest.fixture
def domain(client: Any, execution_role: str) -> str:
    return create_domain(client, execution_role)


@pytest.fixture
def config(tmp_path: Path, domain: str, repo_role: str, admin_env: None) -> Path:
    return write_config(tmp_path, domain, repo_role)


# --- register ----------------------------------------------------------------------


def test_register_from_nothing(
    client: Any, domain: str, config: Path, local_stack: LocalStack
) -> None:
    assert cli(config, local_stack, "register") == 0
    names = [
        c["StudioLifecycleConfigName"]
        for c in client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"]
    ]
    assert len(names) == 4
    settings = client.describe_domain(DomainId=domain)["DefaultUserSettings"]
    for key in ("JupyterLabAppSettings", "CodeEditorAppSettings"):
        assert (
            "jupyterlab"
            in settings["JupyterLabAppSettings"]["BuiltInLifecycleConfigArn"]
        )
        assert (
            "codeeditor"
            in settings["CodeEditorAppSettings"]["BuiltInLifecycleConfigArn"]
        )
        assert "LifecycleConfigArns" not in settings[key]
    for key in ("JupyterServerAppSettings", "KernelGatewayAppSettings"):
        default = settings[key]["DefaultResourceSpec"]["LifecycleConfigArn"]
        assert default in settings[key]["LifecycleConfigArns"]
    space = client.describe_domain(DomainId=domain)["DefaultSpaceSettings"]
    assert "jupyterlab" in space["JupyterLabAppSettings"]["BuiltInLifecycleConfigArn"]


def test_content_sent_is_one_base64_string(
    client: Any, config: Path, local_stack: LocalStack
) -> None:
    assert cli(config, local_stack, "register") == 0
    for item in client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"]:
        content = client.describe_studio_lifecycle_config(
            StudioLifecycleConfigName=item["StudioLifecycleConfigName"]
        )["StudioLifecycleConfigContent"]
        assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", content)
        assert base64.b64decode(content, validate=True).startswith(b"#!/bin/bash\n")
        tags = {
            t["Key"]: t["Value"]
            for t in client.list_tags(ResourceArn=item["StudioLifecycleConfigArn"])[
                "Tags"
            ]
        }
        assert len(tags["studio-bootstrap:sha256"]) == 64
        assert tags["studio-bootstrap:replaces"] == "none"


def test_second_register_changes_nothing(config: Path, local_stack: LocalStack) -> None:
    assert cli(config, local_stack, "register") == 0
    sagemaker.reset_call_log()
    assert cli(config, local_stack, "register") == 0
    log = sagemaker.call_log()
    assert log.mutating_total == 0
    assert log.reads_total > 0


def test_plan_changes_nothing(
    config: Path, local_stack: LocalStack, capsys: Any
) -> None:
    sagemaker.reset_call_log()
    assert cli(config, local_stack, "plan", "--output", "json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert sagemaker.call_log().mutating_total == 0
    actions = [change["action"] for change in plan["changes"]]
    assert actions.count("create") == 4
    assert "update" in actions


def test_other_settings_survive(
    client: Any,
    execution_role: str,
    repo_role: str,
    admin_env: None,
    tmp_path: Path,
    local_stack: LocalStack,
) -> None:
    other = create_lcc(client, "team-tools", "JupyterServer")
    domain = create_domain(
        client,
        execution_role,
        JupyterServerAppSettings={
            "DefaultResourceSpec": {"InstanceType": "system"},
            "LifecycleConfigArns": [other],
            "CodeRepositories": [{"RepositoryUrl": "https://example.com/team.git"}],
        },
    )
    before = client.describe_domain(DomainId=domain)["DefaultUserSettings"]
    config = write_config(tmp_path, domain, repo_role)
    assert cli(config, local_stack, "register") == 0
    after = client.describe_domain(DomainId=domain)["DefaultUserSettings"]
    server = after["JupyterServerAppSettings"]
    assert (
        server["CodeRepositories"]
        == before["JupyterServerAppSettings"]["CodeRepositories"]
    )
    assert server["LifecycleConfigArns"][0] == other
    assert (
        len(server["LifecycleConfigArns"])
        == len(set(server["LifecycleConfigArns"]))
        == 2
    )
    assert (
        after["KernelGatewayAppSettings"]["CustomImages"]
        == before["KernelGatewayAppSettings"]["CustomImages"]
    )
    assert after["SecurityGroups"] == before["SecurityGroups"]
    assert after["ExecutionRole"] == before["ExecutionRole"]


def test_conflicting_default_stops_before_update(
    client: Any,
    execution_role: str,
    repo_role: str,
    admin_env: None,
    tmp_path: Path,
    local_stack: LocalStack,
    capsys: Any,
) -> None:
    domain, _ = create_autoshutdown_domain(client, execution_role)
    config = write_config(tmp_path, domain, repo_role)
    sagemaker.reset_call_log()
    assert cli(config, local_stack, "register") == 1
    error = capsys.readouterr().err
    assert "autoshutdown" in error
    assert "--compose" in error
    assert "--replace-default" in error
    assert sagemaker.call_log().mutating_total == 0


def test_compose_runs_both_scripts(
    client: Any,
    execution_role: str,
    repo_role: str,
    example_repo: str,
    admin_env: None,
    tmp_path: Path,
    local_stack: LocalStack,
) -> None:
    domain, autoshutdown = create_autoshutdown_domain(client, execution_role)
    config = write_config(tmp_path, domain, repo_role)
    assert cli(config, local_stack, "register", "--compose") == 0
    settings = client.describe_domain(DomainId=domain)["DefaultUserSettings"][
        "JupyterServerAppSettings"
    ]
    ours = settings["DefaultResourceSpec"]["LifecycleConfigArn"]
    assert ours != autoshutdown
    assert autoshutdown in settings["LifecycleConfigArns"]
    client.create_user_profile(DomainId=domain, UserProfileName="user-a")
    with StudioApps(local_stack) as apps:
        client.create_app(
            DomainId=domain,
            UserProfileName="user-a",
            AppType="JupyterServer",
            AppName="default",
        )
        wait_app(
            client, domain, "default", UserProfileName="user-a", AppType="JupyterServer"
        )
        apps.wait()
        home = apps.home(domain, "user-user-a").path
        assert (home / "autoshutdown.log").read_text() == "autoshutdown ran\n"
        assert (home / "example-repo" / "README.md").exists()


def wait_app(client: Any, domain: str, name: str, **owner: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        app = client.describe_app(DomainId=domain, AppName=name, **owner)
        if app["Status"] != "Pending":
            return dict(app)
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_overriding_user_is_updated(
    client: Any, domain: str, config: Path, local_stack: LocalStack
) -> None:
    other = create_lcc(client, "user-tools", "JupyterServer")
    client.create_user_profile(
        DomainId=domain,
        UserProfileName="user-a",
        UserSettings={"JupyterServerAppSettings": {"LifecycleConfigArns": [other]}},
    )
    client.create_user_profile(DomainId=domain, UserProfileName="user-b")
    sagemaker.reset_call_log()
    assert cli(config, local_stack, "register") == 0
    assert sagemaker.call_log().count("UpdateUserProfile") == 1
    user = client.describe_user_profile(DomainId=domain, UserProfileName="user-a")[
        "UserSettings"
    ]
    settings = user["JupyterServerAppSettings"]
    assert (
        settings["DefaultResourceSpec"]["LifecycleConfigArn"]
        in settings["LifecycleConfigArns"]
    )
    assert other in settings["LifecycleConfigArns"]
    plain = client.describe_user_profile(DomainId=domain, UserProfileName="user-b")
    assert "JupyterServerAppSettings" not in plain.get("UserSettings", {})


def test_user_profiles_none_reports(
    client: Any, domain: str, config: Path, local_stack: LocalStack, capsys: Any
) -> None:
    other = create_lcc(client, "user-tools", "JupyterServer")
    client.create_user_profile(
        DomainId=domain,
        UserProfileName="user-a",
        UserSettings={"JupyterServerAppSettings": {"LifecycleConfigArns": [other]}},
    )
    assert cli(config, local_stack, "register", "--user-profiles", "none") == 0
    assert (
        "user user-a overrides the domain's JupyterServer settings"
        in capsys.readouterr().out
    )
    user = client.describe_user_profile(DomainId=domain, UserProfileName="user-a")[
        "UserSettings"
    ]
    assert user["JupyterServerAppSettings"] == {"LifecycleConfigArns": [other]}


def test_config_change_retires_old_version(
    client: Any,
    domain: str,
    config: Path,
    repo_role: str,
    tmp_path: Path,
    local_stack: LocalStack,
) -> None:
    assert cli(config, local_stack, "register") == 0
    first = {
        c["StudioLifecycleConfigName"]
        for c in client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"]
    }
    changed = write_config(tmp_path, domain, repo_role, branch="main")
    assert cli(changed, local_stack, "register") == 0
    second = {
        c["StudioLifecycleConfigName"]
        for c in client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"]
    }
    assert len(second) == 4
    assert not first & second
    settings = client.describe_domain(DomainId=domain)["DefaultUserSettings"]
    assert (
        settings["JupyterLabAppSettings"]["BuiltInLifecycleConfigArn"].rsplit("/", 1)[
            -1
        ]
        in second
    )


def test_version_held_by_running_app_is_kept(
    client: Any,
    domain: str,
    config: Path,
    repo_role: str,
    tmp_path: Path,
    local_stack: LocalStack,
    capsys: Any,
) -> None:
    assert cli(config, local_stack, "register") == 0
    settings = client.describe_domain(DomainId=domain)["DefaultUserSettings"][
        "JupyterServerAppSettings"
    ]
    held = settings["DefaultResourceSpec"]["LifecycleConfigArn"]
    client.create_user_profile(DomainId=domain, UserProfileName="user-a")
    client.create_app(
        DomainId=domain,
        UserProfileName="user-a",
        AppType="JupyterServer",
        AppName="default",
        ResourceSpec={"LifecycleConfigArn": held},
    )
    wait_app(
        client, domain, "default", UserProfileName="user-a", AppType="JupyterServer"
    )
    changed = write_config(tmp_path, domain, repo_role, branch="main")
    capsys.readouterr()
    assert cli(changed, local_stack, "register") == 0
    output = capsys.readouterr().out
    names = {
        c["StudioLifecycleConfigName"]
        for c in client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"]
    }
    assert held.rsplit("/", 1)[-1] in names
    assert len(names) == 5
    assert re.search(rf"{held.rsplit('/', 1)[-1]} is kept: .*running app", output), (
        output
    )


def test_unregister_restores_everything(
    client: Any, domain: str, config: Path, local_stack: LocalStack
) -> None:
    other = create_lcc(client, "user-tools", "JupyterServer")
    client.create_user_profile(
        DomainId=domain,
        UserProfileName="user-a",
        UserSettings={"JupyterServerAppSettings": {"LifecycleConfigArns": [other]}},
    )
    client.create_user_profile(DomainId=domain, UserProfileName="user-b")
    domain_before = without_volatile(client.describe_domain(DomainId=domain))
    users_before = {
        name: without_volatile(
            client.describe_user_profile(DomainId=domain, UserProfileName=name)
        )
        for name in ("user-a", "user-b")
    }
    assert cli(config, local_stack, "register") == 0
    assert cli(config, local_stack, "unregister") == 0
    wait_in_service(client, domain)
    assert without_volatile(client.describe_domain(DomainId=domain)) == domain_before
    for name, before in users_before.items():
        after = without_volatile(
            client.describe_user_profile(DomainId=domain, UserProfileName=name)
        )
        assert after == before
    remaining = client.list_studio_lifecycle_configs()["StudioLifecycleConfigs"]
    assert [c["StudioLifecycleConfigName"] for c in remaining] == ["user-tools"]


def test_replace_default_then_unregister_restores_it(
    client: Any,
    execution_role: str,
    repo_role: str,
    admin_env: None,
    tmp_path: Path,
    local_stack: LocalStack,
) -> None:
    domain, _ = create_autoshutdown_domain(client, execution_role)
    before = without_volatile(client.describe_domain(DomainId=domain))
    config = write_config(tmp_path, domain, repo_role)
    assert cli(config, local_stack, "register", "--replace-default") == 0
    assert cli(config, local_stack, "unregister") == 0
    wait_in_service(client, domain)
    assert without_volatile(client.describe_domain(DomainId=domain)) == before


def test_throttled_call_is_retried(config: Path, local_stack: LocalStack) -> None:
    sagemaker.inject_error("DescribeDomain", "ThrottlingException", times=2)
    assert cli(config, local_stack, "register") == 0
    assert sagemaker.call_log().count("DescribeDomain") >= 3


def test_api_failure_is_one_line(
    config: Path, local_stack: LocalStack, capsys: Any
) -> None:
    sagemaker.inject_error(
        "UpdateDomain", "AccessDeniedException", message="not allowed", http_status=400
    )
    assert cli(config, local_stack, "register") == 1
    error = capsys.readouterr().err
    lines = [line for line in error.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "UpdateDomain" in lines[0]
    assert "AccessDeniedException" in lines[0]
    assert "Traceback" not in error


def test_rerun_finishes_after_failure(
    client: Any, domain: str, config: Path, local_stack: LocalStack
) -> None:
    sagemaker.inject_error(
        "UpdateDomain", "AccessDeniedException", message="not allowed"
    )
    assert cli(config, local_stack, "register") == 1
    assert cli(config, local_stack, "register") == 0
    settings = client.describe_domain(DomainId=domain)["DefaultUserSettings"]
    assert settings["JupyterServerAppSettings"]["DefaultResourceSpec"][
        "LifecycleConfigArn"
    ]


def test_status_reports_attachments(
    config: Path, local_stack: LocalStack, capsys: Any
) -> None:
    assert cli(config, local_stack, "register") == 0
    capsys.readouterr()
    assert cli(config, local_stack, "status", "--output", "json") == 0
    report = json.loads(capsys.readouterr().out)
    for entry in report["app_types"].values():
        assert entry["current_registered"] is True
        assert entry["attached"]


# --- apps start and run our script ---------------------------------------------------


@pytest.mark.parametrize(
    "app_type", ["JupyterServer", "KernelGateway", "JupyterLab", "CodeEditor"]
)
def test_app_start_runs_our_script(
    client: Any,
    domain: str,
    config: Path,
    example_repo: str,
    local_stack: LocalStack,
    app_type: str,
) -> None:
    assert cli(config, local_stack, "register") == 0
    client.create_user_profile(DomainId=domain, UserProfileName="user-a")
    with StudioApps(local_stack) as apps:
        if app_type in ("JupyterServer", "KernelGateway"):
            owner = {"UserProfileName": "user-a"}
            home_key = "user-user-a"
        else:
            client.create_space(
                DomainId=domain,
                SpaceName="space-a",
                OwnershipSettings={"OwnerUserProfileName": "user-a"},
                SpaceSharingSettings={"SharingType": "Private"},
                SpaceSettings={"AppType": app_type},
            )
            owner = {"SpaceName": "space-a"}
            home_key = "space-space-a"
        name = "default" if app_type == "JupyterServer" else "app-1"
        client.create_app(DomainId=domain, AppType=app_type, AppName=name, **owner)
        app = wait_app(client, domain, name, AppType=app_type, **owner)
        assert app["Status"] == "InService", app
        apps.wait()
        readme = apps.path(domain, home_key, "example-repo/README.md")
        assert readme.exists(), "\n".join(apps.outputs)
