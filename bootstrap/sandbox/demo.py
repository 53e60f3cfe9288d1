"""The whole studio-bootstrap story on a local stack: ``make demo``.

Everything runs on 127.0.0.1: moto plays SageMaker, IAM and STS for two
accounts, a container-credentials server plays Studio's, and an HTTPS
git http-backend plays CodeCommit. The admin's half runs through
``make register-lifecycle``, the data scientist's half through CreateApp,
which runs the registered scripts in sandbox homes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bootstrap.sandbox import sagemaker
from bootstrap.sandbox.helper_wheel import build_helper_wheels
from bootstrap.sandbox.runner import (
    CAN_RUN_AS_STUDIO_USER,
    interactive_shell,
    run_in_home,
)
from bootstrap.sandbox.stack import LocalStack
from bootstrap.sandbox.studio import StudioApps

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_B = "222222222222"
ACCOUNT_C = "333333333333"
# The domains of a platform team: name, account and region.
TEAM_DOMAINS = (
    ("research-eu", ACCOUNT_B, "eu-west-1"),
    ("research-us", ACCOUNT_B, "us-east-1"),
    ("risk-eu", ACCOUNT_C, "eu-west-1"),
)
REPOSITORY = "example-repo"
CONFIG = """\
prefix = "studio-bootstrap"
app_types = {app_types}

[domain]
id = "{domain_id}"
region = "eu-west-1"

[[repositories]]
name = "{repository}"
account_id = "111111111111"
role = "CrossAccountRepoRole"
profile = "repo-account"
"""


def step(number: int, title: str, *lines: str) -> None:
    print(f"\n==> {number}. {title}", flush=True)
    for line in lines:
        print(f"    {line}", flush=True)


def show(text: str) -> None:
    for line in text.rstrip("\n").splitlines():
        print(f"    | {line}", flush=True)


class Demo:
    """One run of the demo, with its stack, domains and homes."""

    def __init__(self, stack: LocalStack, apps: StudioApps, folder: Path) -> None:
        self.stack = stack
        self.apps = apps
        self.folder = folder
        self.client = stack.session(ACCOUNT_B).client("sagemaker")
        self.user = None if CAN_RUN_AS_STUDIO_USER else "root"

    def make(self, target: str, config: Path) -> None:
        """Run a Makefile target as an admin of account B would."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "GIT_"))
        }
        env.update(self.stack.admin_credentials(ACCOUNT_B))
        env.update(
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=str(self.folder / "empty"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.folder / "empty"),
        )
        command = [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT),
            target,
            f"CONFIG={config}",
            f"ENDPOINT_URL={self.stack.endpoint_url}",
            "REGION=eu-west-1",
        ]
        print(
            f"    $ make {target} CONFIG={config.name} ENDPOINT_URL=http://127.0.0.1:..."
        )
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        show(result.stdout)
        if result.returncode != 0:
            show(result.stderr)
            raise SystemExit(f"make {target} failed with exit {result.returncode}")

    def create_domain(self, name: str, app_types: list[str]) -> tuple[str, Path]:
        role = self.stack.execution_role_arn
        settings = {
            f"{t}AppSettings": {
                "DefaultResourceSpec": {
                    "InstanceType": "system" if t == "JupyterServer" else "ml.t3.medium"
                }
            }
            for t in app_types
        }
        response = self.client.create_domain(
            DomainName=name,
            AuthMode="IAM",
            DefaultUserSettings={"ExecutionRole": role, **settings},
            SubnetIds=["subnet-0123456789abcdef0"],
            VpcId="vpc-0123456789abcdef0",
        )
        domain_id = str(response["DomainId"])
        self.wait_domain(domain_id)
        config = self.folder / f"{name}.toml"
        config.write_text(
            CONFIG.format(
                app_types="[" + ", ".join(f'"{t}"' for t in app_types) + "]",
                domain_id=domain_id,
                repository=REPOSITORY,
            )
        )
        return domain_id, config

    def wait_domain(self, domain_id: str) -> None:
        while self.client.describe_domain(DomainId=domain_id)["Status"] != "InService":
            time.sleep(0.05)

    def start_app(self, domain_id: str, app_type: str, name: str, **owner: str) -> None:
        self.client.create_app(
            DomainId=domain_id, AppType=app_type, AppName=name, **owner
        )
        while True:
            app = self.client.describe_app(
                DomainId=domain_id, AppType=app_type, AppName=name, **owner
            )
            if app["Status"] != "Pending":
                break
            time.sleep(0.05)
        print(f"    CreateApp {app_type}/{name}: {app['Status']}")
        if app["Status"] != "InService":
            raise SystemExit(f"app {name} failed: {app.get('FailureReason')}")
        self.apps.wait()

    def git_log(self, domain_id: str, owner: str) -> str:
        home = self.apps.home(domain_id, owner)
        result = run_in_home(
            home,
            ["git", "-C", REPOSITORY, "log", "--format=%h %s", "-3"],
            user=self.user or "sagemaker-user",
        )
        return result.stdout

    def cli(self, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """Run studio-bootstrap as a platform team would, with a profile per account."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "GIT_"))
        }
        env.update(
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=str(self.admin_profiles()),
            AWS_SHARED_CREDENTIALS_FILE=str(self.folder / "empty"),
        )
        command, *rest = args
        print(f"    $ studio-bootstrap --config {config.name} {' '.join(args)}")
        program = [sys.executable, "-m", "bootstrap", "--config", str(config)]
        endpoint = ["--endpoint-url", self.stack.endpoint_url]
        result = subprocess.run(
            [*program, command, *endpoint, *rest],
            env=env,
            cwd=self.folder,
            capture_output=True,
            text=True,
        )
        show(result.stderr)
        show(result.stdout)
        return result

    def admin_profiles(self) -> Path:
        """Write an AWS config file with one admin profile per account."""
        path = self.folder / "admin-profiles"
        if not path.exists():
            lines = []
            for account in (ACCOUNT_B, ACCOUNT_C):
                credentials = self.stack.admin_credentials(account)
                lines += [
                    f"[profile admin-{account}]",
                    f"aws_access_key_id = {credentials['AWS_ACCESS_KEY_ID']}",
                    f"aws_secret_access_key = {credentials['AWS_SECRET_ACCESS_KEY']}",
                    f"aws_session_token = {credentials['AWS_SESSION_TOKEN']}",
                    "",
                ]
            path.write_text("\n".join(lines))
        return path

    def describe(self, domain_id: str) -> dict[str, Any]:
        description = dict(self.client.describe_domain(DomainId=domain_id))
        for key in ("ResponseMetadata", "LastModifiedTime", "Status"):
            description.pop(key, None)
        return description


def run(demo: Demo) -> None:
    stack = demo.stack
    (demo.folder / "empty").write_text("")

    step(
        1,
        "Two accounts on loopback",
        f"moto plays AWS at {stack.endpoint_url}; account B 222222222222 owns the",
        "Studio domains, account A 111111111111 owns the repository.",
    )
    print(f"    homes and repositories live under {stack.root}, removed at the end")
    execution_role = stack.create_execution_role()
    repo_role = stack.create_repo_role(trusted_arns=[execution_role])
    print(f"    execution role (B): {execution_role}")
    print(f"    repository role (A): {repo_role}, trusting only the execution role")
    stack.codecommit.create_repository(REPOSITORY, allowed_role_arns=[repo_role])
    for number, (path, text) in enumerate(
        [
            ("README.md", "# example-repo\n"),
            ("analysis.py", "print('hello')\n"),
            ("NOTES.md", "notes\n"),
        ],
        1,
    ):
        stack.codecommit.commit(
            REPOSITORY, {path: text}, f"Commit {number}: add {path}"
        )
    print(
        f"    CodeCommit repository {REPOSITORY} (A) with 3 commits at https://{stack.codecommit_host}"
    )

    step(2, "A Studio Classic domain and a Studio domain, with a user and a space")
    classic_id, classic_config = demo.create_domain(
        "classic", ["JupyterServer", "KernelGateway"]
    )
    studio_id, studio_config = demo.create_domain(
        "studio", ["JupyterLab", "CodeEditor"]
    )
    for domain_id in (classic_id, studio_id):
        demo.client.create_user_profile(DomainId=domain_id, UserProfileName="user-a")
    demo.client.create_space(
        DomainId=studio_id,
        SpaceName="space-a",
        OwnershipSettings={"OwnerUserProfileName": "user-a"},
        SpaceSharingSettings={"SharingType": "Private"},
        SpaceSettings={"AppType": "JupyterLab"},
    )
    print(
        f"    Classic domain {classic_id}, Studio domain {studio_id}; "
        "user user-a; space space-a"
    )
    before = {
        domain_id: demo.describe(domain_id) for domain_id in (classic_id, studio_id)
    }

    step(
        3,
        "The admin looks at the plan first",
        "make plan reads the domain and changes nothing.",
    )
    demo.make("plan", studio_config)

    step(
        4,
        "The admin registers the lifecycle configurations",
        "One LCC per app type, named by its content hash, attached where it runs.",
    )
    demo.make("register-lifecycle", classic_config)
    demo.make("register-lifecycle", studio_config)

    step(
        5,
        "user-a opens Studio Classic (CreateApp JupyterServer)",
        "The script merges ~/.aws/config, assumes the account-A role and clones",
        "in the background.",
    )
    demo.start_app(classic_id, "JupyterServer", "default", UserProfileName="user-a")
    show(demo.git_log(classic_id, "user-user-a"))

    step(6, "user-a opens a JupyterLab space in Studio (CreateApp JupyterLab)")
    demo.start_app(studio_id, "JupyterLab", "default", SpaceName="space-a")
    show(demo.git_log(studio_id, "space-space-a"))

    step(
        7,
        "A new commit upstream arrives at the next app start",
        "KernelGateway apps share the Classic home; the sync fetches and",
        "fast-forwards.",
    )
    stack.codecommit.commit(
        REPOSITORY, {"results.md": "accuracy 0.93\n"}, "Commit 4: add results"
    )
    demo.start_app(
        classic_id, "KernelGateway", "datascience-1", UserProfileName="user-a"
    )
    show(demo.git_log(classic_id, "user-user-a"))

    step(
        8,
        "user-a opens a terminal",
        "An interactive shell with the hook runs git log -1.",
    )
    home = demo.apps.home(classic_id, "user-user-a")
    shell = interactive_shell(
        home,
        f"git --no-pager -C {REPOSITORY} log -1 --format='%h %s'",
        user=demo.user or "sagemaker-user",
    )
    show(shell.stdout)

    step(9, "The admin registers again: nothing changes")
    sagemaker.reset_call_log()
    demo.make("register-lifecycle", classic_config)
    demo.make("register-lifecycle", studio_config)
    log = sagemaker.call_log()
    print(
        f"    calls at the endpoint: {log.reads_total} reads, "
        f"{log.mutating_total} mutating"
    )
    if log.mutating_total:
        raise SystemExit("the second register changed something")

    step(10, "The admin unregisters: the domains are as they were")
    for domain_id in (classic_id, studio_id):
        demo.client.delete_app(
            DomainId=domain_id,
            AppType="JupyterServer" if domain_id == classic_id else "JupyterLab",
            AppName="default",
            **(
                {"UserProfileName": "user-a"}
                if domain_id == classic_id
                else {"SpaceName": "space-a"}
            ),
        )
    demo.client.delete_app(
        DomainId=classic_id,
        AppType="KernelGateway",
        AppName="datascience-1",
        UserProfileName="user-a",
    )
    demo.make("unregister", classic_config)
    demo.make("unregister", studio_config)
    for domain_id in (classic_id, studio_id):
        demo.wait_domain(domain_id)
        same = demo.describe(domain_id) == before[domain_id]
        print(f"    DescribeDomain {domain_id} equals its first description: {same}")
        if not same:
            raise SystemExit(f"domain {domain_id} differs after unregister")

    several_domains(demo)
    vpc_only(demo)


def several_domains(demo: Demo) -> None:
    step(
        11,
        "A platform team rolls out to three domains in two accounts",
        "One config names each domain and the admin profile of its account;",
        "--jobs 3 registers them at the same time and a table sums up.",
    )
    lines = [
        'prefix = "studio-bootstrap"',
        'app_types = ["JupyterLab", "CodeEditor"]',
        "[[repositories]]",
        f'name = "{REPOSITORY}"',
        'account_id = "111111111111"',
        'role = "CrossAccountRepoRole"',
    ]
    before = {}
    for name, account, region in TEAM_DOMAINS:
        client = demo.stack.session(account, region).client("sagemaker")
        role = f"arn:aws:iam::{account}:role/StudioExecutionRole"
        # UpdateDomain cannot remove a settings object, so the domain starts
        # with the two that register fills, as Studio domains usually do.
        spec = {"DefaultResourceSpec": {"InstanceType": "ml.t3.medium"}}
        domain_id = client.create_domain(
            DomainName=name,
            AuthMode="IAM",
            DefaultUserSettings={
                "ExecutionRole": role,
                "JupyterLabAppSettings": spec,
                "CodeEditorAppSettings": spec,
            },
            SubnetIds=["subnet-0123456789abcdef0"],
            VpcId="vpc-0123456789abcdef0",
        )["DomainId"]
        while client.describe_domain(DomainId=domain_id)["Status"] != "InService":
            time.sleep(0.05)
        before[name] = (client, domain_id, _settings(client, domain_id))
        lines += [
            "[[domains]]",
            f'name = "{name}"',
            f'id = "{domain_id}"',
            f'region = "{region}"',
            f'profile = "admin-{account}"',
        ]
    config = demo.folder / "team.toml"
    config.write_text("\n".join(lines) + "\n")
    if demo.cli(config, "register", "--jobs", "3").returncode != 0:
        raise SystemExit("register on three domains failed")
    if demo.cli(config, "unregister", "--jobs", "3").returncode != 0:
        raise SystemExit("unregister on three domains failed")
    for name, (client, domain_id, settings) in before.items():
        same = _settings(client, domain_id) == settings
        print(f"    {name}: settings as before register: {same}")
        if not same:
            raise SystemExit(f"domain {name} differs after unregister")


def _settings(client: Any, domain_id: str) -> Any:
    return client.describe_domain(DomainId=domain_id)["DefaultUserSettings"]


def vpc_only(demo: Demo) -> None:
    step(
        12,
        "A VPC-only domain with no internet",
        "plan names what such a domain lacks: a way to install the helper, the",
        "STS and Git endpoints, security groups.",
    )
    client = demo.client
    domain_id = client.create_domain(
        DomainName="private",
        AuthMode="IAM",
        AppNetworkAccessType="VpcOnly",
        DefaultUserSettings={"ExecutionRole": demo.stack.execution_role_arn},
        SubnetIds=["subnet-0123456789abcdef0"],
        VpcId="vpc-0123456789abcdef0",
    )["DomainId"]
    demo.wait_domain(domain_id)
    config = demo.folder / "private.toml"
    config.write_text(
        CONFIG.format(
            app_types='["JupyterLab"]', domain_id=domain_id, repository=REPOSITORY
        ).replace(
            'region = "eu-west-1"',
            f'region = "eu-west-1"\nprofile = "admin-{ACCOUNT_B}"',
            1,
        )
    )
    demo.cli(config, "plan")

    step(
        13,
        "An app start in that domain, in a network namespace with loopback alone",
        "The config names the STS, S3 and Git endpoints; the helper comes from",
        "the wheel that register uploads to S3, checked against its sha256.",
    )
    problem = namespace_problem()
    if problem:
        print(f"    skipped: {problem}")
        return
    wheels = demo.folder / "wheels"
    wheels.mkdir()
    wheels.chmod(0o755)
    scenario = {
        "transport": "codecommit",
        "sources": ["s3"],
        "s3_object": "wheel",
        "wheels": str(build_helper_wheels(wheels)),
    }
    program = ["unshare", "--net", sys.executable, "-m", "bootstrap.sandbox.vpc"]
    result = subprocess.run(
        [*program, json.dumps(scenario)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if result.returncode != 0:
        show(result.stderr[-2000:])
        raise SystemExit("the VPC-only app start failed")
    report = json.loads(result.stdout)
    network = report["network"]
    start = report["starts"][0]
    print(f"    interfaces: {', '.join(network['interfaces'])}")
    on_lo = all(" dev lo " in route for route in network["routes"])
    default = any(route.startswith("default") for route in network["routes"])
    print(
        f"    routes: {len(network['routes'])}, all on lo: {on_lo}, "
        f"default route: {default}"
    )
    print(f"    app start exit status: {start['returncode']}")
    show(start["sync_log"] or "")
    print(f"    clone origin: {start['origin']}")


def namespace_problem() -> str | None:
    """Return why a network namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "a network namespace needs root"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare (util-linux) and ip (iproute2) are missing"
    return None


def main() -> int:
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    for name in list(os.environ):
        if name.startswith(
            ("AWS_CONTAINER_", "AWS_PROFILE", "AWS_ACCESS", "AWS_SECRET", "AWS_SESSION")
        ):
            del os.environ[name]
    started = time.monotonic()
    print("studio-bootstrap demo: the whole story on 127.0.0.1")
    with (
        tempfile.TemporaryDirectory(prefix="studio-bootstrap-demo-") as folder,
        LocalStack(authorization_token="demo-container-token") as stack,
    ):
        previous = sagemaker.set_update_delay(0.1)
        try:
            with StudioApps(
                stack, user=None if CAN_RUN_AS_STUDIO_USER else "root"
            ) as apps:
                run(Demo(stack, apps, Path(folder)))
        finally:
            sagemaker.set_update_delay(previous)
    print(f"\nDone in {time.monotonic() - started:.0f} s; the local stack is stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
