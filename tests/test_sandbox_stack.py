"""The local Studio sandbox: moto, container credentials, CodeCommit, runner."""

from __future__ import annotations

import datetime
import http.client
import json
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator

import botocore.credentials
import botocore.session
import git_remote_codecommit
import pytest
from awscli.customizations.codecommit import CodeCommitGetCommand

from bootstrap.sandbox.aws import DOMAIN_ACCOUNT
from bootstrap.sandbox.codecommit import CodeCommitRequest
from bootstrap.sandbox.credentials import ContainerCredentialsServer
from bootstrap.sandbox.errors import BackgroundWorkTimeoutError, GitAuthenticationError
from bootstrap.sandbox.git_auth import parse_basic_authorization, sign_git_request
from bootstrap.sandbox.runner import (
    CAN_RUN_AS_STUDIO_USER,
    STUDIO_USER_SKIP_REASON,
    SandboxHome,
    home_processes,
    interactive_shell,
    kill_all,
    run_in_home,
    run_lifecycle,
    studio_environment,
    wait_idle,
)
from bootstrap.sandbox.stack import LocalStack

REGION = "eu-west-1"
REPO_PROFILE = "repo-account"
CLONE_FOLDER = "clone"
GIT_TIMEOUT_SECONDS = 60

needs_studio_user = pytest.mark.skipif(
    not CAN_RUN_AS_STUDIO_USER, reason=STUDIO_USER_SKIP_REASON
)


# Helpers.


def write_repo_profile(home: SandboxHome, role_arn: str) -> None:
    """Write the cross-account profile that the lifecycle script relies on."""
    home.write_file(
        ".aws/config",
        f"[profile {REPO_PROFILE}]\n"
        "credential_source = EcsContainer\n"
        f"role_arn = {role_arn}\n"
        f"region = {REGION}\n"
        "sts_regional_endpoints = regional\n",
    )


def git(
    home: SandboxHome, *arguments: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {"GIT_TERMINAL_PROMPT": "0", **env}
    return run_in_home(
        home, ["git", *arguments], env=environment, timeout=GIT_TIMEOUT_SECONDS
    )


def codecommit_url(repository: str) -> str:
    return f"codecommit::{REGION}://{REPO_PROFILE}@{repository}"


def requests_since(stack: LocalStack, start: int) -> list[CodeCommitRequest]:
    return stack.codecommit.requests[start:]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def get_credentials(
    endpoint: ContainerCredentialsServer, token: str | None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """GET the container-credentials URL, and return the status and body."""
    url = urllib.parse.urlsplit(endpoint.url)
    headers = {"Authorization": token} if token is not None else {}
    connection = http.client.HTTPConnection(url.netloc, timeout=timeout)
    try:
        connection.request("GET", url.path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def signed_url(
    stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    repository: str,
    credentials: botocore.credentials.Credentials,
) -> str:
    """Return the HTTPS URL git-remote-codecommit would hand to git."""
    monkeypatch.setenv("CODE_COMMIT_ENDPOINT", stack.codecommit_host)
    return git_remote_codecommit.git_url(repository, "v1", REGION, credentials)


def assume_role(stack: LocalStack, role_arn: str) -> botocore.credentials.Credentials:
    sts = stack.session(DOMAIN_ACCOUNT).client("sts")
    issued = sts.assume_role(RoleArn=role_arn, RoleSessionName="test")["Credentials"]
    return botocore.credentials.Credentials(
        issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]
    )


def container_credentials(stack: LocalStack) -> botocore.credentials.Credentials:
    status, body = get_credentials(stack.credentials, stack.authorization_token)
    assert status == 200
    document = json.loads(body)
    return botocore.credentials.Credentials(
        document["AccessKeyId"], document["SecretAccessKey"], document["Token"]
    )


def tamper(url: str) -> str:
    """Flip the last hex digit of the signature at the end of the password."""
    userinfo, _, rest = url.partition("@")
    last = userinfo[-1]
    return f"{userinfo[:-1]}{'0' if last != '0' else '1'}@{rest}"


def stale_url(stack: LocalStack, repository: str, key, secret, token) -> str:
    """Return a correctly signed URL whose timestamp is 20 minutes old."""
    signed_at = datetime.datetime.now(datetime.timezone.utc)
    timestamp = (signed_at - datetime.timedelta(minutes=20)).strftime("%Y%m%dT%H%M%S")
    path = f"/v1/repos/{repository}"
    host = stack.codecommit_host
    signature = sign_git_request(secret, timestamp, REGION, path, host)
    username = urllib.parse.quote(f"{key}%{token}", safe="")
    return f"https://{username}:{timestamp}Z{signature}@{host}{path}"


@pytest.fixture
def repo_home(sandbox_home: SandboxHome, repo_role: str) -> SandboxHome:
    write_repo_profile(sandbox_home, repo_role)
    return sandbox_home


@pytest.fixture
def credentials_endpoint(
    local_stack: LocalStack, execution_role: str
) -> Iterator[ContainerCredentialsServer]:
    endpoint = local_stack.credentials
    slow_seconds = endpoint.slow_seconds
    yield endpoint
    endpoint.fault = None
    endpoint.slow_seconds = slow_seconds


# Signatures, checked against the two real clients.


def test_signature_matches_git_remote_codecommit():
    credentials = botocore.credentials.Credentials("ASIAEXAMPLE", "secret", "token")
    host = "127.0.0.1:4443"
    path = "/v1/repos/example-repo"

    signed = git_remote_codecommit.sign(host, path, REGION, credentials)
    timestamp, _, signature = signed.partition("Z")

    assert sign_git_request("secret", timestamp, REGION, path, host) == signature


def test_signature_matches_aws_helper_without_port():
    session = botocore.session.Session()
    session.set_credentials("ASIAEXAMPLE", "secret", "token")
    url = "https://127.0.0.1:4443/v1/repos/example-repo"

    signed = CodeCommitGetCommand(session).sign_request(REGION, url)
    timestamp, _, signature = signed.partition("Z")

    path = "/v1/repos/example-repo"
    assert sign_git_request("secret", timestamp, REGION, path, "127.0.0.1") == signature


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Basic !!!",
        "Basic dXNlcg==",
        "Basic dXNlcjpub3QtYS1zaWduYXR1cmU=",
    ],
    ids=["not-basic", "not-base64", "no-password", "password-not-signed"],
)
def test_basic_authorization_malformed(header):
    with pytest.raises(GitAuthenticationError):
        parse_basic_authorization(header)


# Container credentials.


def test_container_credentials_serve_execution_role(credentials_endpoint):
    status, body = get_credentials(
        credentials_endpoint, credentials_endpoint.authorization_token
    )
    document = json.loads(body)

    assert status == 200
    assert document["RoleArn"] == credentials_endpoint.role_arn
    assert set(document) == {
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "Expiration",
        "RoleArn",
    }


def test_container_credentials_last_an_hour(credentials_endpoint):
    _, body = get_credentials(
        credentials_endpoint, credentials_endpoint.authorization_token
    )
    expiration = datetime.datetime.strptime(
        json.loads(body)["Expiration"], "%Y-%m-%dT%H:%M:%S%z"
    )

    remaining = expiration - datetime.datetime.now(datetime.timezone.utc)
    assert remaining > datetime.timedelta(minutes=20)


def test_container_credentials_act_in_domain_account(local_stack, execution_role):
    credentials = container_credentials(local_stack)
    session = local_stack.credentials_session(
        {
            "aws_access_key_id": credentials.access_key,
            "aws_secret_access_key": credentials.secret_key,
            "aws_session_token": credentials.token,
        }
    )

    identity = session.client("sts").get_caller_identity()

    assert identity["Account"] == DOMAIN_ACCOUNT
    assert ":assumed-role/StudioExecutionRole/" in identity["Arn"]


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
def test_container_credentials_reject_bad_token(credentials_endpoint, token):
    status, _ = get_credentials(credentials_endpoint, token)

    assert status == 401


def test_credentials_fault_403(credentials_endpoint):
    credentials_endpoint.fault = "403"

    status, _ = get_credentials(
        credentials_endpoint, credentials_endpoint.authorization_token
    )

    assert status == 403


def test_credentials_fault_malformed(credentials_endpoint):
    credentials_endpoint.fault = "malformed"

    status, body = get_credentials(
        credentials_endpoint, credentials_endpoint.authorization_token
    )

    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_credentials_fault_down(credentials_endpoint):
    credentials_endpoint.fault = "down"

    with pytest.raises(http.client.RemoteDisconnected):
        get_credentials(credentials_endpoint, credentials_endpoint.authorization_token)


def test_credentials_fault_slow(credentials_endpoint):
    credentials_endpoint.fault = "slow"
    credentials_endpoint.slow_seconds = 1.0

    with pytest.raises(TimeoutError):
        get_credentials(
            credentials_endpoint, credentials_endpoint.authorization_token, 0.2
        )


def test_credentials_fault_invalid(credentials_endpoint):
    with pytest.raises(ValueError, match="invalid credentials fault"):
        credentials_endpoint.fault = "flaky"


# CodeCommit through the cross-account profile.


@needs_studio_user
def test_clone_through_profile(repo_home, example_repo, example_readme):
    result = git(repo_home, "clone", codecommit_url(example_repo), CLONE_FOLDER)

    assert result.returncode == 0, result.stderr
    readme = repo_home.path / CLONE_FOLDER / "README.md"
    assert readme.read_text() == example_readme
    assert readme.stat().st_uid == 1000


@needs_studio_user
def test_clone_uses_repo_role(local_stack, repo_home, example_repo, repo_role):
    start = len(local_stack.codecommit.requests)

    git(repo_home, "clone", codecommit_url(example_repo), CLONE_FOLDER)

    served = [r for r in requests_since(local_stack, start) if r.status == 200]
    assert served
    assert {r.role_arn for r in served} == {repo_role}
    assert {r.service for r in served} == {"git-upload-pack"}


@needs_studio_user
def test_push_through_profile_lands(local_stack, repo_home, example_repo):
    git(repo_home, "clone", codecommit_url(example_repo), CLONE_FOLDER)
    clone = str(repo_home.path / CLONE_FOLDER)
    repo_home.write_file(f"{CLONE_FOLDER}/pushed.txt", "pushed from a sandbox home\n")
    identity = {
        "GIT_AUTHOR_NAME": "Sandbox User",
        "GIT_AUTHOR_EMAIL": "user@sandbox.invalid",
        "GIT_COMMITTER_NAME": "Sandbox User",
        "GIT_COMMITTER_EMAIL": "user@sandbox.invalid",
    }
    git(repo_home, "-C", clone, "add", "pushed.txt")
    git(repo_home, "-C", clone, "commit", "--quiet", "-m", "Add pushed.txt", **identity)
    start = len(local_stack.codecommit.requests)

    pushed = git(repo_home, "-C", clone, "push", "origin", "HEAD:pushed-branch")

    assert pushed.returncode == 0, pushed.stderr
    local_head = git(repo_home, "-C", clone, "rev-parse", "HEAD").stdout.strip()
    assert local_stack.codecommit.head(example_repo, "pushed-branch") == local_head
    services = {
        r.service for r in requests_since(local_stack, start) if r.status == 200
    }
    assert "git-receive-pack" in services


# Rejected credentials.


def execution_role_url(stack, monkeypatch, repository, repo_role):
    return signed_url(stack, monkeypatch, repository, container_credentials(stack))


def wrong_secret_url(stack, monkeypatch, repository, repo_role):
    good = assume_role(stack, repo_role)
    wrong = botocore.credentials.Credentials(
        good.access_key, "wrong-secret", good.token
    )
    return signed_url(stack, monkeypatch, repository, wrong)


def tampered_url(stack, monkeypatch, repository, repo_role):
    good = assume_role(stack, repo_role)
    return tamper(signed_url(stack, monkeypatch, repository, good))


def stale_timestamp_url(stack, monkeypatch, repository, repo_role):
    good = assume_role(stack, repo_role)
    return stale_url(stack, repository, good.access_key, good.secret_key, good.token)


def unknown_key_url(stack, monkeypatch, repository, repo_role):
    unknown = botocore.credentials.Credentials(
        "ASIAUNKNOWNSANDBOX00", "secret", "token"
    )
    return signed_url(stack, monkeypatch, repository, unknown)


def no_credentials_url(stack, monkeypatch, repository, repo_role):
    return f"https://{stack.codecommit_host}/v1/repos/{repository}"


@needs_studio_user
@pytest.mark.parametrize(
    ("make_url", "status", "reason"),
    [
        (execution_role_url, 403, "may not access repository"),
        (wrong_secret_url, 403, "signature does not match"),
        (tampered_url, 403, "signature does not match"),
        (stale_timestamp_url, 403, "away from the server clock"),
        (unknown_key_url, 403, "was not issued by STS"),
        (no_credentials_url, 401, "no credentials"),
    ],
    ids=[
        "execution-role",
        "wrong-secret",
        "tampered-signature",
        "stale-timestamp",
        "unknown-key",
        "no-credentials",
    ],
)
def test_clone_rejected(
    local_stack,
    sandbox_home,
    example_repo,
    repo_role,
    monkeypatch,
    make_url,
    status,
    reason,
):
    url = make_url(local_stack, monkeypatch, example_repo, repo_role)
    start = len(local_stack.codecommit.requests)

    result = git(sandbox_home, "clone", url, CLONE_FOLDER)

    assert result.returncode != 0
    assert not (sandbox_home.path / CLONE_FOLDER).exists()
    seen = requests_since(local_stack, start)
    assert seen[-1].status == status
    assert reason in (seen[-1].reason or "")
    assert all(r.status != 200 for r in seen)


# The AWS CLI's credential helper over plain HTTPS.


def configure_credential_helper(home: SandboxHome, host: str, helper: str) -> None:
    section = f"credential.https://{host}"
    for key, value in (("helper", ""), ("helper", helper), ("UseHttpPath", "true")):
        result = git(home, "config", "--global", "--add", f"{section}.{key}", value)
        assert result.returncode == 0, result.stderr


PLAIN_HELPER = f"!aws codecommit credential-helper --profile {REPO_PROFILE} $@"
# awscli signs only for hosts containing amazon.com or amazonaws.com unless
# "get" is given --ignore-host-check.
HOST_CHECK_OFF_HELPER = (
    '!f() { if [ "$1" = get ]; then set -- get --ignore-host-check; fi; '
    f'aws codecommit credential-helper --profile {REPO_PROFILE} "$@"; }}; f'
)


@needs_studio_user
def test_credential_helper_skips_loopback_host(local_stack, repo_home, example_repo):
    host = local_stack.codecommit_host
    configure_credential_helper(repo_home, host, PLAIN_HELPER)
    start = len(local_stack.codecommit.requests)

    result = git(repo_home, "clone", f"https://{host}/v1/repos/{example_repo}")

    assert result.returncode != 0
    assert {r.status for r in requests_since(local_stack, start)} == {401}


@needs_studio_user
def test_credential_helper_clones_with_host_check_off(
    local_stack, repo_home, example_repo, repo_role
):
    host = local_stack.codecommit_host
    configure_credential_helper(repo_home, host, HOST_CHECK_OFF_HELPER)
    start = len(local_stack.codecommit.requests)

    result = git(
        repo_home, "clone", f"https://{host}/v1/repos/{example_repo}", CLONE_FOLDER
    )

    assert result.returncode == 0, result.stderr
    served = [r for r in requests_since(local_stack, start) if r.status == 200]
    assert {r.role_arn for r in served} == {repo_role}


# CodeCommit faults.


@pytest.fixture
def faulty_repo(local_stack, repo_role, example_readme, request) -> str:
    name = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
    codecommit = local_stack.codecommit
    codecommit.create_repository(name, allowed_role_arns=[repo_role])
    codecommit.commit(name, {"README.md": example_readme}, "Initial commit")
    return name


@needs_studio_user
@pytest.mark.parametrize(
    ("fault", "status"),
    [("403", 403), ("500", 500), ("reset", None), ("stall", 200)],
    ids=["403", "500", "reset", "stall"],
)
def test_codecommit_fault(local_stack, repo_home, faulty_repo, fault, status):
    local_stack.codecommit.set_fault(faulty_repo, fault)
    start = len(local_stack.codecommit.requests)

    # git gives up on a transfer slower than 1000 bytes/s for 1 second.
    result = git(
        repo_home,
        "clone",
        codecommit_url(faulty_repo),
        CLONE_FOLDER,
        GIT_HTTP_LOW_SPEED_LIMIT="1000",
        GIT_HTTP_LOW_SPEED_TIME="1",
    )

    assert result.returncode != 0
    assert not (repo_home.path / CLONE_FOLDER).exists()
    assert wait_until(
        lambda: any(r.fault == fault for r in requests_since(local_stack, start))
    )
    faulted = [r for r in requests_since(local_stack, start) if r.fault == fault]
    assert faulted[-1].status == status


@needs_studio_user
def test_codecommit_stall_sends_pack_header(local_stack, repo_home, faulty_repo):
    local_stack.codecommit.set_fault(faulty_repo, "stall")
    start = len(local_stack.codecommit.requests)

    git(
        repo_home,
        "clone",
        codecommit_url(faulty_repo),
        CLONE_FOLDER,
        GIT_HTTP_LOW_SPEED_LIMIT="1000",
        GIT_HTTP_LOW_SPEED_TIME="1",
    )

    def stalled() -> list[CodeCommitRequest]:
        seen = requests_since(local_stack, start)
        return [r for r in seen if "pack header" in (r.reason or "")]

    assert wait_until(lambda: len(stalled()) == 1)
    assert stalled()[0].service == "git-upload-pack"


def test_codecommit_fault_invalid(local_stack, example_repo):
    with pytest.raises(ValueError, match="invalid CodeCommit fault"):
        local_stack.codecommit.set_fault(example_repo, "flaky")


# The runner.


@needs_studio_user
def test_lifecycle_runs_as_studio_user(sandbox_home, tmp_path):
    script = tmp_path / "on-start.sh"
    script.write_text(
        "set -euo pipefail\n"
        "id -u\n"
        "id -g\n"
        'printf "foreground\\n" > "$HOME/foreground.txt"\n'
        '( sleep 1; printf "background\\n" > "$HOME/background.txt" ) '
        ">/dev/null 2>&1 &\n"
    )

    result = run_lifecycle(script, sandbox_home, app_type="JupyterLab", timeout=30)
    wait_idle(sandbox_home, timeout=10)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "1000\n100\n"
    for name in ("foreground.txt", "background.txt"):
        written = (sandbox_home.path / name).stat()
        assert (written.st_uid, written.st_gid) == (1000, 100)


@needs_studio_user
def test_kernel_gateway_runs_as_root(sandbox_home, tmp_path):
    script = tmp_path / "on-start.sh"
    script.write_text("id -u\n")

    result = run_lifecycle(script, sandbox_home, app_type="KernelGateway", timeout=30)

    assert result.stdout == "0\n"


@needs_studio_user
def test_wait_idle_finds_escaped_processes(sandbox_home, tmp_path):
    script = tmp_path / "on-start.sh"
    # One process leaves the session, the other clears its environment.
    script.write_text(
        "setsid sleep 60 >/dev/null 2>&1 &\nenv -i /bin/sleep 60 >/dev/null 2>&1 &\n"
    )
    run_lifecycle(script, sandbox_home, app_type="JupyterLab", timeout=30)
    assert wait_until(lambda: len(home_processes(sandbox_home)) == 2)

    with pytest.raises(BackgroundWorkTimeoutError):
        wait_idle(sandbox_home, timeout=0.3)

    assert len(kill_all(sandbox_home)) == 2
    assert home_processes(sandbox_home) == []


@needs_studio_user
def test_interactive_shell_reads_bashrc(sandbox_home):
    sandbox_home.write_file(".bashrc", 'echo "bashrc ran for $(id -u)"\n')

    result = interactive_shell(sandbox_home, "echo $-; tty", timeout=30)

    lines = result.stdout.splitlines()
    assert result.returncode == 0
    assert lines[0] == "bashrc ran for 1000"
    assert "i" in lines[1]
    assert lines[2].startswith("/dev/pts/")


# Each value is unique, so finding it in a run's environment names the leak.
DEVELOPER_SETTINGS = {
    "AWS_PROFILE": "developer-profile",
    "AWS_ACCESS_KEY_ID": "AKIADEVELOPERKEY0000",
    "AWS_SECRET_ACCESS_KEY": "developer-secret",
    "AWS_CONFIG_FILE": "/root/.aws/developer-config",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/developer",
    "GIT_DIR": "/root/developer.git",
    "GIT_CONFIG_GLOBAL": "/root/.developer-gitconfig",
    "GIT_SSL_NO_VERIFY": "developer-no-verify",
    "HTTPS_PROXY": "http://developer-proxy.invalid:3128",
}

RUN_ENVIRONMENT = {
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PATH",
    "LANG",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
    "AWS_EC2_METADATA_DISABLED",
    "CODE_COMMIT_ENDPOINT",
    "GIT_SSL_CAINFO",
    "GIT_CONFIG_NOSYSTEM",
}

# Variables bash itself exports to the commands it runs.
BASH_VARIABLES = {"PWD", "SHLVL", "_"}


@needs_studio_user
def test_run_environment_is_clean(sandbox_home, tmp_path, monkeypatch):
    for name, value in DEVELOPER_SETTINGS.items():
        monkeypatch.setenv(name, value)
    script = tmp_path / "on-start.sh"
    script.write_text("env\n")

    result = run_lifecycle(script, sandbox_home, app_type="JupyterLab", timeout=30)

    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert names - BASH_VARIABLES == RUN_ENVIRONMENT
    for value in DEVELOPER_SETTINGS.values():
        assert value not in result.stdout


@needs_studio_user
def test_run_environment_values(local_stack, sandbox_home):
    environment = studio_environment(sandbox_home)

    assert environment["AWS_EC2_METADATA_DISABLED"] == "true"
    assert (
        environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == local_stack.credentials_url
    )
    assert environment["CODE_COMMIT_ENDPOINT"] == local_stack.codecommit_host
    assert environment["PATH"].startswith("/usr/local/sbin:/usr/local/bin:")


@needs_studio_user
def test_run_sees_no_git_config(sandbox_home, monkeypatch):
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/root/.gitconfig")

    result = git(sandbox_home, "config", "--list", "--show-origin")

    assert result.stdout == ""


@needs_studio_user
@pytest.mark.parametrize(
    "tool", ["git", "bash", "aws", "git-remote-codecommit", "python3"]
)
def test_run_path_resolves_tool(sandbox_home, tool):
    result = run_in_home(sandbox_home, ["bash", "-c", f"command -v {tool}"], timeout=30)

    assert result.returncode == 0, f"{tool} not on PATH"


# Stack lifecycle.


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_stack_stop_leaves_nothing_behind():
    threads_before = set(threading.enumerate())
    stack = LocalStack()
    stack.start()
    root = stack.root
    ports = [
        int(stack.endpoint_url.rsplit(":", 1)[1]),
        urllib.parse.urlsplit(stack.credentials_url).port,
        int(stack.codecommit_host.rsplit(":", 1)[1]),
    ]
    # Open a keep-alive connection to moto and one request to each endpoint.
    sts = stack.session(DOMAIN_ACCOUNT).client("sts")
    sts.get_caller_identity()
    get_credentials(stack.credentials, None)
    context = ssl.create_default_context(cafile=str(stack.ca_path))
    connection = http.client.HTTPSConnection(
        "127.0.0.1", ports[2], context=context, timeout=5
    )
    connection.request("GET", "/v1/repos/none/info/refs")
    assert connection.getresponse().status == 401
    connection.close()

    stack.stop()
    sts.close()

    assert set(threading.enumerate()) == threads_before
    assert [port for port in ports if listening(port)] == []
    assert not root.exists()


def test_stack_runs_hooks_before_start():
    calls = []
    stack = LocalStack()
    stack.before_start.append(lambda started: calls.append(started))

    with stack:
        assert calls == [stack]
