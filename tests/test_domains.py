"""One config with several domains in several accounts and regions.

Each domain has its own admin profile in the AWS config file, as a platform
team's laptop or pipeline would. Calls go to the local SageMaker, which keeps
each account and region apart.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_register import (  # the fixtures are shared with these tests
    clean_sagemaker,
    create_autoshutdown_domain,
    create_domain,
)

from bootstrap import studio
from bootstrap.cli import main
from bootstrap.sandbox import sagemaker
from bootstrap.sandbox.helper_wheel import minimal_wheel
from bootstrap.sandbox.stack import LocalStack

__all__ = ["clean_sagemaker"]

ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
ACCOUNT_C = "333333333333"
PLACES = {
    "research-eu": (ACCOUNT_B, "eu-west-1"),
    "research-us": (ACCOUNT_B, "us-east-1"),
    "risk-eu": (ACCOUNT_C, "eu-west-1"),
}


@pytest.fixture
def admin_profiles(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An AWS config file with one admin profile per account, and nothing else."""
    lines = []
    for account in (ACCOUNT_A, ACCOUNT_B, ACCOUNT_C):
        credentials = local_stack.admin_credentials(account)
        lines += [
            f"[profile admin-{account}]",
            f"aws_access_key_id = {credentials['AWS_ACCESS_KEY_ID']}",
            f"aws_secret_access_key = {credentials['AWS_SECRET_ACCESS_KEY']}",
            f"aws_session_token = {credentials['AWS_SESSION_TOKEN']}",
            "",
        ]
    config_file = tmp_path / "aws-config"
    config_file.write_text("\n".join(lines))
    empty = tmp_path / "empty"
    empty.write_text("")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)


def sagemaker_client(local_stack: LocalStack, name: str) -> Any:
    account, region = PLACES[name]
    return local_stack.session(account, region).client("sagemaker")


def execution_role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/StudioExecutionRole"


@pytest.fixture
def domains(local_stack: LocalStack, admin_profiles: None) -> dict[str, str]:
    """Create one domain in each place and return their ids by name."""
    return {
        name: create_domain(
            sagemaker_client(local_stack, name), execution_role(account)
        )
        for name, (account, _) in PLACES.items()
    }


def write_config(
    folder: Path,
    domains: dict[str, str],
    role: str = "CrossAccountRepoRole",
    **ids: str,
) -> Path:
    """A config naming every domain; ``ids`` replaces a domain's id."""
    text = [
        'prefix = "studio-bootstrap"',
        "[[repositories]]",
        'name = "example-repo"',
        'account_id = "111111111111"',
        f'role = "{role}"',
    ]
    for name, (account, region) in PLACES.items():
        text += [
            "[[domains]]",
            f'name = "{name}"',
            f'id = "{ids.get(name, domains[name])}"',
            f'region = "{region}"',
            f'profile = "admin-{account}"',
            f'execution_roles = ["{execution_role(account)}"]',
        ]
    if "risk-eu" not in ids:
        # The risk team's domain clones a repository of its own.
        text += [
            "[[domains.repositories]]",
            'name = "risk-models"',
            'account_id = "111111111111"',
            f'role = "{role}"',
        ]
    path = folder / "bootstrap.toml"
    path.write_text("\n".join(text) + "\n")
    return path


def cli(config: Path, local_stack: LocalStack, *args: str) -> int:
    command, *rest = args
    endpoint = ["--endpoint-url", local_stack.endpoint_url]
    return main(["--config", str(config), command, *endpoint, *rest])


def attached(local_stack: LocalStack, name: str, domain_id: str) -> str | None:
    """The built-in JupyterLab LCC of a domain, by name."""
    client = sagemaker_client(local_stack, name)
    settings = client.describe_domain(DomainId=domain_id)["DefaultUserSettings"]
    arn = studio.built_in_of(settings.get("JupyterLabAppSettings"))
    return arn.rsplit("/", 1)[-1] if arn else None


def test_register_every_domain_with_summary(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    config = write_config(tmp_path, domains)
    assert cli(config, local_stack, "register") == 0
    output = capsys.readouterr()
    for index, name in enumerate(PLACES, 1):
        assert f"[{index}/3] {name} ({domains[name]}" in output.err
        assert attached(local_stack, name, domains[name]) is not None
    summary = output.out[output.out.index("DOMAIN  ") :].splitlines()
    assert summary[0].split() == ["DOMAIN", "ID", "REGION", "RESULT", "DETAIL"]
    assert [row.split()[0] for row in summary[1:4]] == list(PLACES)
    assert all(row.split()[3] == "registered" for row in summary[1:4])
    assert summary[4] == "3 domains, 0 failed"
    # The risk domain's script clones its own repository, not the shared one.
    risk = attached(local_stack, "risk-eu", domains["risk-eu"])
    research = attached(local_stack, "research-eu", domains["research-eu"])
    assert risk != research
    assert (tmp_path / "lifecycle" / "risk-eu").is_dir()

    sagemaker.reset_call_log()
    assert cli(config, local_stack, "register") == 0
    assert sagemaker.call_log().mutating_total == 0
    assert capsys.readouterr().out.count("up to date") >= 3


def test_one_failing_domain_does_not_stop_the_others(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    config = write_config(tmp_path, domains, **{"research-us": "d-000000000000"})
    assert cli(config, local_stack, "register") == 1
    output = capsys.readouterr()
    assert attached(local_stack, "research-eu", domains["research-eu"])
    assert attached(local_stack, "risk-eu", domains["risk-eu"])
    assert attached(local_stack, "research-us", domains["research-us"]) is None
    rows = {line.split()[0]: line for line in output.out.splitlines() if line}
    assert "failed" in rows["research-us"]
    assert "d-000000000000" in rows["research-us"]
    assert "3 domains, 1 failed" in output.out
    assert "error: research-us:" in output.err


def test_selection_touches_only_the_named_domains(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    config = write_config(tmp_path, domains)
    assert cli(config, local_stack, "register", "--domain", "research-us") == 0
    assert attached(local_stack, "research-us", domains["research-us"])
    assert attached(local_stack, "research-eu", domains["research-eu"]) is None
    assert attached(local_stack, "risk-eu", domains["risk-eu"]) is None
    # A domain can also be named by its id.
    by_id = ["--domain", domains["risk-eu"]]
    assert cli(config, local_stack, "register", *by_id) == 0
    assert attached(local_stack, "risk-eu", domains["risk-eu"])
    assert "[1/1]" in capsys.readouterr().err


def test_unknown_domain_is_usage_error(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    config = write_config(tmp_path, domains)
    sagemaker.reset_call_log()
    assert cli(config, local_stack, "register", "--domain", "nope") == 2
    error = capsys.readouterr().err
    assert "--domain: no such domain" in error
    assert "research-eu, research-us, risk-eu" in error
    assert sagemaker.call_log().reads_total == 0
    assert not (tmp_path / "lifecycle").exists()


def test_plan_json_is_one_document(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    config = write_config(tmp_path, domains)
    sagemaker.reset_call_log()
    assert cli(config, local_stack, "plan", "--output", "json") == 0
    document = json.loads(capsys.readouterr().out)
    assert sagemaker.call_log().mutating_total == 0
    assert [entry["name"] for entry in document["domains"]] == list(PLACES)
    for entry in document["domains"]:
        assert entry["result"].endswith("calls planned")
        actions = [change["action"] for change in entry["data"]["changes"]]
        assert actions.count("create") == 4


def test_status_unregister_and_doctor_cover_every_domain(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    config = write_config(tmp_path, domains)
    before = {
        name: sagemaker_client(local_stack, name).describe_domain(DomainId=domain_id)[
            "DefaultUserSettings"
        ]
        for name, domain_id in domains.items()
    }
    assert cli(config, local_stack, "register") == 0
    capsys.readouterr()
    assert cli(config, local_stack, "status", "--output", "json") == 0
    status = json.loads(capsys.readouterr().out)
    assert {entry["result"] for entry in status["domains"]} == {"current"}

    assert cli(config, local_stack, "unregister") == 0
    assert "3 domains, 0 failed" in capsys.readouterr().out
    for name, domain_id in domains.items():
        client = sagemaker_client(local_stack, name)
        after = client.describe_domain(DomainId=domain_id)["DefaultUserSettings"]
        assert after == before[name]

    # doctor runs per domain too. The repository roles do not exist in this
    # test, so each domain fails on its own, and all three are reported.
    profile_a = f"--profile-a=admin-{ACCOUNT_A}"
    assert cli(config, local_stack, "doctor", profile_a, "--output", "json") == 1
    document = json.loads(capsys.readouterr().out)
    assert len(document["domains"]) == 3
    for entry in document["domains"]:
        assert entry["result"] == "failed"
        statuses = {check["status"] for check in entry["data"]}
        assert "fail" in statuses


def test_vpc_only_domain_warnings(
    local_stack: LocalStack, admin_profiles: None, tmp_path: Path, capsys: Any
) -> None:
    client = sagemaker_client(local_stack, "research-eu")
    domain_id = create_domain(client, execution_role(ACCOUNT_B), SecurityGroups=[])
    client.update_domain(DomainId=domain_id, AppNetworkAccessType="VpcOnly")
    client.create_user_profile(DomainId=domain_id, UserProfileName="ana")
    path = tmp_path / "bootstrap.toml"
    path.write_text(
        "\n".join(
            [
                "[domain]",
                f'id = "{domain_id}"',
                'region = "eu-west-1"',
                f'profile = "admin-{ACCOUNT_B}"',
                "[[repositories]]",
                'name = "example-repo"',
                'account_id = "111111111111"',
                'role = "CrossAccountRepoRole"',
            ]
        )
        + "\n"
    )
    assert cli(path, local_stack, "plan") == 0
    error = capsys.readouterr().err
    assert "VpcOnly" in error
    assert "installs only from PyPI" in error
    assert "no STS endpoint" in error
    assert "no CodeCommit Git endpoint is configured for eu-west-1" in error
    assert "security groups" in error
    assert "ana" in error
    assert error.count("  fix: ") == 4

    profile_a = f"--profile-a=admin-{ACCOUNT_A}"
    assert cli(path, local_stack, "doctor", profile_a, "--output", "json") == 1
    checks = json.loads(capsys.readouterr().out)
    warnings = [c for c in checks if c["status"] == "warn"]
    assert len(warnings) == 4
    assert all(c["fix"] for c in warnings)


def test_register_uploads_helper_wheel(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    account, region = PLACES["research-eu"]
    s3 = local_stack.session(account, region).client("s3")
    bucket = "helper-wheels-research"
    s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
    )
    wheel = minimal_wheel(tmp_path, extra=b"a wheel's bytes")
    path = tmp_path / "bootstrap.toml"
    path.write_text(
        "\n".join(
            [
                "[domain]",
                f'id = "{domains["research-eu"]}"',
                f'region = "{region}"',
                f'profile = "admin-{account}"',
                "[helper]",
                'sources = ["s3"]',
                f'wheel = "{wheel.name}"',
                f'bucket = "{bucket}"',
                "[[repositories]]",
                'name = "example-repo"',
                'account_id = "111111111111"',
                'role = "CrossAccountRepoRole"',
            ]
        )
        + "\n"
    )
    key = f"studio-bootstrap/{wheel.name}"
    target = f"s3://{bucket}/{key}"

    assert cli(path, local_stack, "plan") == 0
    assert f"upload  {target}" in capsys.readouterr().out
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)

    assert cli(path, local_stack, "register") == 0
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == wheel.read_bytes()
    capsys.readouterr()
    assert cli(path, local_stack, "register") == 0
    assert "up to date" in capsys.readouterr().out

    # doctor finds the wheel, and misses it once it is gone.
    def wheel_check() -> dict[str, str]:
        profile_a = f"--profile-a=admin-{ACCOUNT_A}"
        cli(path, local_stack, "doctor", profile_a, "--output", "json")
        checks = json.loads(capsys.readouterr().out)
        (check,) = [c for c in checks if c["subject"] == f"helper wheel {target}"]
        return check

    assert wheel_check()["status"] == "ok"
    s3.delete_object(Bucket=bucket, Key=key)
    missing = wheel_check()
    assert missing["status"] == "fail"
    assert "is missing" in missing["message"]
    assert cli(path, local_stack, "register") == 0
    capsys.readouterr()

    assert cli(path, local_stack, "unregister") == 0
    assert target in capsys.readouterr().out
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_jobs_keep_blocks_whole(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    config = write_config(tmp_path, domains)
    sagemaker.set_update_delay(0.3)
    assert cli(config, local_stack, "register", "--jobs", "3") == 0
    output = capsys.readouterr()
    for name, domain_id in domains.items():
        assert attached(local_stack, name, domain_id)
    blocks = output.out.split("== ")[1:]
    assert len(blocks) == 3
    for block in blocks:
        name = block.split()[0]
        # Every line a domain printed sits in its own block.
        assert f"domain {domains[name]}: registered" in block
        others = [d for n, d in domains.items() if n != name]
        assert not any(f"domain {other}:" in block for other in others)
    assert "3 domains, 0 failed" in output.out


def test_jobs_must_be_a_small_positive_number(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    config = write_config(tmp_path, domains)
    with pytest.raises(SystemExit) as raised:
        cli(config, local_stack, "register", "--jobs", "0")
    assert raised.value.code == 2
    assert "--jobs: must be a number from 1 to 64, not '0'" in capsys.readouterr().err


def test_ctrl_c_finishes_current_domain(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path
) -> None:
    config = write_config(tmp_path, domains)
    sagemaker.set_update_delay(1.5)
    command = [sys.executable, "-m", "bootstrap", "--config", str(config)]
    command += ["register", "--endpoint-url", local_stack.endpoint_url]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until the first domain is being updated, then press Ctrl-C.
    client = sagemaker_client(local_stack, "research-eu")
    wait_until_updating(client, domains["research-eu"], process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted: finishing the domains in progress" in err
    rows = {line.split()[0]: line for line in out.splitlines() if line}
    assert "registered" in rows["research-eu"]
    assert "skipped" in rows["research-us"]
    assert "skipped" in rows["risk-eu"]
    assert attached(local_stack, "research-eu", domains["research-eu"])
    assert attached(local_stack, "research-us", domains["research-us"]) is None


def test_iam_shares_roles_across_domains(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    for account in (ACCOUNT_B, ACCOUNT_C):
        client = local_stack.session(account).client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        with contextlib.suppress(client.exceptions.EntityAlreadyExistsException):
            client.create_role(
                RoleName="StudioExecutionRole",
                AssumeRolePolicyDocument=json.dumps(trust),
            )
    # A role of this test's own: other tests create CrossAccountRepoRole
    # outside CloudFormation.
    config = write_config(tmp_path, domains, role="SharedRepoRole")
    options = ["--profile-a", f"admin-{ACCOUNT_A}", "--deploy", "--yes"]
    assert cli(config, local_stack, "iam", *options) == 0, capsys.readouterr().err
    output = capsys.readouterr().out
    assert "stack studio-bootstrap-repository-access in account 111111111111" in output
    folder = tmp_path / "lifecycle" / "iam"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(PLACES)

    # One role in account A trusts the execution roles of both domain accounts
    # and grants both repositories.
    iam_a = local_stack.session(ACCOUNT_A).client("iam")
    role = iam_a.get_role(RoleName="SharedRepoRole")["Role"]
    principals = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]
    assert sorted(principals) == [execution_role(ACCOUNT_B), execution_role(ACCOUNT_C)]
    policy = iam_a.get_role_policy(
        RoleName="SharedRepoRole", PolicyName="studio-bootstrap-codecommit"
    )["PolicyDocument"]
    resources = [r for s in policy["Statement"] for r in s["Resource"]]
    assert any(r.endswith(":example-repo") for r in resources)
    assert any(r.endswith(":risk-models") for r in resources)
    # Each domain account got its own assume-role grant, through its profile.
    for name, (account, _) in PLACES.items():
        iam_b = local_stack.session(account).client("iam")
        names = iam_b.list_role_policies(RoleName="StudioExecutionRole")["PolicyNames"]
        assert f"studio-bootstrap-{domains[name]}-assume-roles" in names


def one_place_config(folder: Path, domains: dict[str, str], own: str = "") -> Path:
    """Domains of one account and region; ``own`` clones a repository of its own."""
    text = [
        "[[repositories]]",
        'name = "example-repo"',
        'account_id = "111111111111"',
        'role = "CrossAccountRepoRole"',
    ]
    for name, domain_id in domains.items():
        text += [
            "[[domains]]",
            f'name = "{name}"',
            f'id = "{domain_id}"',
            'region = "eu-west-1"',
            f'profile = "admin-{ACCOUNT_B}"',
        ]
        if name == own:
            text += [
                "[[domains.repositories]]",
                'name = "other-repo"',
                'account_id = "111111111111"',
                'role = "CrossAccountRepoRole"',
            ]
    path = folder / "bootstrap.toml"
    path.write_text("\n".join(text) + "\n")
    return path


def test_one_place_domains_never_share_versions(
    local_stack: LocalStack, admin_profiles: None, tmp_path: Path, capsys: Any
) -> None:
    client = sagemaker_client(local_stack, "research-eu")
    role = execution_role(ACCOUNT_B)
    auto, autoshutdown = create_autoshutdown_domain(client, role, "auto")
    domains = {"auto": auto, "plain": create_domain(client, role, "plain")}
    before = {name: _user_settings(client, d) for name, d in domains.items()}
    config = one_place_config(tmp_path, domains)

    assert cli(config, local_stack, "register", "--replace-default") == 0
    names = {
        name: studio.default_of(
            _user_settings(client, d).get("JupyterServerAppSettings")
        )
        for name, d in domains.items()
    }
    assert names["auto"] != names["plain"]

    # Unregistering one domain restores its own displaced default only.
    assert cli(config, local_stack, "unregister", "--domain", "plain") == 0
    assert _user_settings(client, domains["plain"]) == before["plain"]
    jupyter = _user_settings(client, auto)["JupyterServerAppSettings"]
    assert autoshutdown in jupyter["LifecycleConfigArns"]
    assert studio.default_of(jupyter) == names["auto"]
    assert cli(config, local_stack, "unregister") == 0
    assert _user_settings(client, auto) == before["auto"]
    capsys.readouterr()


def test_one_place_domains_with_own_repositories_settle(
    local_stack: LocalStack, admin_profiles: None, tmp_path: Path, capsys: Any
) -> None:
    client = sagemaker_client(local_stack, "research-eu")
    role = execution_role(ACCOUNT_B)
    domains = {name: create_domain(client, role, name) for name in ("one", "two")}
    config = one_place_config(tmp_path, domains, own="two")
    assert cli(config, local_stack, "register", "--jobs", "2") == 0
    capsys.readouterr()

    sagemaker.reset_call_log()
    assert cli(config, local_stack, "register") == 0
    assert sagemaker.call_log().mutating_total == 0
    output = capsys.readouterr().out
    assert output.count("up to date") == 4  # two results, two summary rows
    assert "is kept" not in output

    # Unregistering one domain deletes its versions only.
    assert cli(config, local_stack, "unregister", "--domain", "one") == 0
    capsys.readouterr()
    assert (
        cli(config, local_stack, "status", "--domain", "two", "--output", "json") == 0
    )
    document = json.loads(capsys.readouterr().out)
    status = document["domains"][0]["data"]
    assert all(e["current_registered"] for e in status["app_types"].values())


def test_parallel_domains_of_one_place_all_succeed(
    local_stack: LocalStack, admin_profiles: None, tmp_path: Path, capsys: Any
) -> None:
    client = sagemaker_client(local_stack, "research-eu")
    role = execution_role(ACCOUNT_B)
    domains = {name: create_domain(client, role, name) for name in ("p", "q", "r")}
    config = one_place_config(tmp_path, domains)
    assert cli(config, local_stack, "register", "--jobs", "3") == 0
    assert cli(config, local_stack, "unregister", "--jobs", "3") == 0
    output = capsys.readouterr()
    assert output.out.count("3 domains, 0 failed") == 2
    for line in output.err.splitlines():
        # Progress lines of different domains never share a line.
        assert line.count("[") <= 1 or not line.startswith("["), line


def _user_settings(client: Any, domain_id: str) -> dict[str, Any]:
    return dict(client.describe_domain(DomainId=domain_id)["DefaultUserSettings"])


def test_second_ctrl_c_stops_at_once(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path
) -> None:
    config = write_config(tmp_path, domains)
    sagemaker.set_update_delay(6)
    command = [sys.executable, "-m", "bootstrap", "--config", str(config)]
    command += ["register", "--endpoint-url", local_stack.endpoint_url]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    client = sagemaker_client(local_stack, "research-eu")
    wait_until_updating(client, domains["research-eu"], process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert time.monotonic() - started < 10
    assert process.returncode == 130, err
    assert "press Ctrl-C again to stop at once" in err
    rows = {line.split()[0]: line for line in out.splitlines() if line}
    for name in PLACES:
        assert "stopped; run the command again to finish" in rows[name]
    assert "Traceback" not in err
    sagemaker.set_update_delay(0.05)
    wait_until_in_service(client, domains["research-eu"])


def wait_until_updating(
    client: Any, domain_id: str, process: subprocess.Popen[str]
) -> None:
    """Wait until register has sent the domain's update, while it still runs."""
    deadline = time.monotonic() + 30
    while client.describe_domain(DomainId=domain_id)["Status"] != "Updating":
        assert time.monotonic() < deadline
        assert process.poll() is None
        time.sleep(0.02)


def wait_until_in_service(client: Any, domain_id: str) -> None:
    deadline = time.monotonic() + 60
    while client.describe_domain(DomainId=domain_id)["Status"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_iam_domain_picks_account_b_templates_only(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    config = write_config(tmp_path, domains, role="PickedRepoRole")
    assert cli(config, local_stack, "iam", "--domain", "research-us") == 0
    folder = tmp_path / "lifecycle" / "iam"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["research-us"]
    # The shared repository role still trusts every domain's execution roles.
    (shared,) = folder.glob("*-repository-*.yaml")
    text = shared.read_text()
    assert execution_role(ACCOUNT_B) in text
    assert execution_role(ACCOUNT_C) in text
    capsys.readouterr()


def test_missing_profile_fails_only_its_domain(
    local_stack: LocalStack, domains: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    config = write_config(tmp_path, domains)
    text = config.read_text().replace(
        f'profile = "admin-{ACCOUNT_C}"', 'profile = "not-in-the-aws-config"'
    )
    config.write_text(text)
    assert cli(config, local_stack, "register") == 1
    output = capsys.readouterr()
    rows = {line.split()[0]: line for line in output.out.splitlines() if line}
    assert "AWS profile not found: not-in-the-aws-config" in rows["risk-eu"]
    assert "registered" in rows["research-eu"]
    assert "registered" in rows["research-us"]
