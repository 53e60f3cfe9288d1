"""App starts in a VPC-only domain: a network namespace with loopback alone.

Run it in a new network namespace, where loopback is the only interface:

    unshare --net python -m bootstrap.sandbox.vpc SCENARIO_JSON

It brings ``lo`` up and stops with an error if any other interface
exists. Then it starts the local stack and renders the JupyterLab script of
a one-repository config whose ``[network]`` endpoints are the stack's
servers. It runs app starts in a sandbox home without AWS_ENDPOINT_URL,
AWS_ENDPOINT_URL_STS or CODE_COMMIT_ENDPOINT, and prints a JSON report of
what the starts left.

The scenario is a JSON object:

- ``transport``: "codecommit" or "https";
- ``sources``: the helper sources, in order;
- ``wheels``: a folder with the git-remote-codecommit wheel
  (``helper_wheel.build_helper_wheels``), readable by uid 1000;
- ``s3_object``: "wheel" uploads the wheel to the bucket, "tampered" a
  copy with one more byte, so that its sha256 differs;
- ``starts``: how many app starts to run, one after the other;
- ``index_on_start``: from this start on (1-based), pip's default index is
  the local package index; before it, a closed loopback port;
- ``cli_wheels``: a folder with the wheels of the AWS CLI and its
  dependencies (``helper_wheel.build_cli_wheels``), which the package index
  serves as well;
- ``image_aws``: false leaves the image's ``aws`` off PATH;
- ``codeartifact``: the ``index`` source is a CodeArtifact repository behind
  the stack's CodeArtifact endpoint, and the index accepts only its tokens.
  ``owner`` is the domain owner of the config (account B by default), and
  ``domain``: "shared" creates the domain so that account B may use it,
  "missing" creates none, "not_shared" creates it in ``owner`` without
  letting account B in. From ``fixed_on_start`` on (1-based), the domain
  exists and lets account B in.

The report has, for each start, its exit status and output and what the
home contains after its sync: the clone, the sync log, the status file, the
managed config files and the installed helper. It also has the requests
that the package index served and rejected, the CodeArtifact requests, the
command lines that contained a token while pip ran, the files of the home
that contain a token, and the namespace's interfaces and routes.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from moto.sts.models import sts_backends

from bootstrap.config import Config, parse_config
from bootstrap.iam import codeartifact_statements
from bootstrap.render import check_size, render_script
from bootstrap.sandbox.aws import DOMAIN_ACCOUNT, REPOSITORY_ACCOUNT
from bootstrap.sandbox.helper_wheel import PackageIndex, helper_wheel
from bootstrap.sandbox.image import SYSTEM_PATH, studio_image
from bootstrap.sandbox.runner import (
    CAN_RUN_AS_STUDIO_USER,
    ROOT_USER,
    STUDIO_USER,
    SandboxHome,
    kill_all,
    run_lifecycle,
    studio_environment,
    wait_idle,
)
from bootstrap.sandbox.stack import LocalStack

logger = logging.getLogger(__name__)

APP_TYPE = "JupyterLab"
REPOSITORY = "vpc-repo"
README = "# vpc-repo\n\nCloned through the VPC endpoints.\n"
PROFILE = "repo-account"
BUCKET = "studio-bootstrap-helper"
WHEELHOUSE = "wheels"
SYNC_SECONDS = 120.0
CONTAINER_TOKEN = "vpc-container-token"
CODEARTIFACT_DOMAIN = "ml-tools"
CODEARTIFACT_REPOSITORY = "python-mirror"
# The path of a CodeArtifact PyPI repository, which names the repository, so
# that the IAM statements of the config grant ReadFromRepository on it.
CODEARTIFACT_PREFIX = f"/pypi/{CODEARTIFACT_REPOSITORY}/simple/"
# The variables that would send AWS and Git calls to the stack without the
# config. The runs go without them, so the endpoints come from the config.
ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "CODE_COMMIT_ENDPOINT",
)
# A closed port on loopback plays PyPI, which a VPC without internet cannot
# reach. pip reads no configuration file of this machine.
UNREACHABLE_INDEX = "http://127.0.0.1:9/simple"
PIP_ENVIRONMENT = {
    "PIP_CONFIG_FILE": "/dev/null",
    "PIP_RETRIES": "0",
    "PIP_TIMEOUT": "5",
}


class NamespaceError(RuntimeError):
    """The process does not run in a namespace where loopback is alone."""


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if len(argv) != 2:
        print("usage: python -m bootstrap.sandbox.vpc SCENARIO_JSON", file=sys.stderr)
        return 2
    scenario = json.loads(argv[1])
    network = loopback_only()
    report = run_scenario(scenario)
    report["network"] = network
    json.dump(report, sys.stdout)
    return 0


def loopback_only() -> dict[str, list[str]]:
    """Bring lo up and return the interfaces and routes.

    Raises NamespaceError when an interface other than lo exists.
    """
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    links = _ip_lines("-o", "link", "show")
    names = [line.split(":")[1].strip().split("@")[0] for line in links]
    if names != ["lo"]:
        raise NamespaceError(
            f"interfaces {names} found; run this module under unshare --net, "
            "where lo is the only one"
        )
    return {
        "interfaces": names,
        "addresses": _ip_lines("-o", "addr", "show"),
        "routes": _ip_lines("route", "show", "table", "all"),
    }


def _ip_lines(*args: str) -> list[str]:
    output = subprocess.run(
        ["ip", *args], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in output.splitlines() if line.strip()]


def run_scenario(scenario: dict[str, Any]) -> dict[str, Any]:
    wheel = helper_wheel(Path(scenario["wheels"]))
    folders = [wheel.parent]
    if scenario.get("cli_wheels"):
        folders.append(Path(scenario["cli_wheels"]))
    codeartifact = scenario.get("codeartifact")
    stack = LocalStack(authorization_token=CONTAINER_TOKEN)
    with stack:
        index = _package_index(stack, folders, codeartifact)
        with index:
            return _run_starts(stack, index, scenario, wheel)


def _package_index(
    stack: LocalStack, folders: list[Path], codeartifact: dict[str, Any] | None
) -> PackageIndex:
    if codeartifact is None:
        return PackageIndex(folders)
    check = stack.codeartifact.token_checker(
        CODEARTIFACT_DOMAIN, _owner(codeartifact), CODEARTIFACT_REPOSITORY
    )
    return PackageIndex(folders, prefix=CODEARTIFACT_PREFIX, check_token=check)


def _owner(codeartifact: dict[str, Any]) -> str:
    return str(codeartifact.get("owner", DOMAIN_ACCOUNT))


def _run_starts(
    stack: LocalStack, index: PackageIndex, scenario: dict[str, Any], wheel: Path
) -> dict[str, Any]:
    execution_role = stack.create_execution_role()
    repo_role = stack.create_repo_role(trusted_arns=[execution_role])
    stack.codecommit.create_repository(REPOSITORY, allowed_role_arns=[repo_role])
    stack.codecommit.commit(REPOSITORY, {"README.md": README}, "Initial commit")
    config = parse_config(_config_data(scenario, stack, repo_role, wheel, index))
    if "s3" in scenario["sources"]:
        _upload(stack, config.helper.key or "", wheel, scenario["s3_object"])
    codeartifact = scenario.get("codeartifact")
    if codeartifact is not None:
        _grant_codeartifact(stack, config, execution_role)
        _stage_domain(stack, codeartifact, fixed=False)
    script = render_script(config, APP_TYPE)
    check_size(script)
    script_path = stack.root / "vpc.sh"
    script_path.write_text(script.text)

    owner = STUDIO_USER if CAN_RUN_AS_STUDIO_USER else ROOT_USER
    home = SandboxHome.create(stack, "vpc", owner=owner)
    try:
        if "wheelhouse" in scenario["sources"]:
            home.write_file(f"{WHEELHOUSE}/{wheel.name}", wheel.read_bytes())
        starts = []
        for number in range(1, scenario.get("starts", 1) + 1):
            if codeartifact is not None and number == codeartifact.get(
                "fixed_on_start"
            ):
                _stage_domain(stack, codeartifact, fixed=True)
            starts.append(_start(stack, home, script_path, scenario, index, number))
        secrets = _issued_secrets(stack)
        for start in starts:
            texts = (start["stdout"], start["stderr"], start["sync_log"] or "")
            everything = "\n".join((*texts, start["status"] or ""))
            start["secrets_logged"] = sum(s in everything for s in secrets)
        tokens = stack.codeartifact.issued_tokens()
        return {
            "starts": starts,
            # Whether the script only fits with short internal names.
            "names_shortened": "sb_update" not in script.text
            and "sb_update" not in _program(script.text),
            "index_requests": list(index.requests),
            "index_rejections": list(index.rejections),
            "secrets_checked": len(secrets),
            "codeartifact_requests": [asdict(r) for r in stack.codeartifact.requests],
            "tokens_issued": len(tokens),
            "cmdline_scans": index.cmdline_scans,
            "token_in_cmdline": list(index.token_in_cmdline),
            "token_files": _files_containing(home.path, tokens),
        }
    finally:
        kill_all(home)


def _grant_codeartifact(stack: LocalStack, config: Config, role_arn: str) -> None:
    """Give the execution role the CodeArtifact statements that ``iam`` writes."""
    document = {
        "Version": "2012-10-17",
        "Statement": codeartifact_statements(config, "aws"),
    }
    stack.session(DOMAIN_ACCOUNT).client("iam").put_role_policy(
        RoleName=role_arn.rsplit("/", 1)[1],
        PolicyName="codeartifact",
        PolicyDocument=json.dumps(document),
    )


def _stage_domain(stack: LocalStack, codeartifact: dict[str, Any], fixed: bool) -> None:
    owner = _owner(codeartifact)
    state = "shared" if fixed else codeartifact.get("domain", "shared")
    if state == "missing":
        return
    allowed = (DOMAIN_ACCOUNT,) if state == "shared" else ()
    stack.codeartifact.create_domain(CODEARTIFACT_DOMAIN, owner, allowed)


def _files_containing(root: Path, needles: list[str]) -> list[str]:
    """Return the files under a folder that contain any of the strings."""
    if not needles:
        return []
    found = []
    encoded = [n.encode() for n in needles]
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(n in data for n in encoded):
                found.append(str(path.relative_to(root)))
    return found


def _program(text: str) -> str:
    """Return the program that a packed script carries."""
    payload = text.split("SB_PACKED=", 1)[1].split("\n", 1)[0]
    return gzip.decompress(base64.b64decode(payload)).decode()


def _config_data(
    scenario: dict[str, Any],
    stack: LocalStack,
    repo_role: str,
    wheel: Path,
    index: PackageIndex,
) -> dict[str, Any]:
    helper: dict[str, Any] = {"sources": scenario["sources"], "version": "1.17"}
    if "s3" in scenario["sources"]:
        helper.update(wheel=str(wheel), bucket=BUCKET)
    network = {
        "git_endpoints": {stack.region: stack.codecommit_host},
        "sts_endpoint_url": stack.endpoint_url,
        "s3_endpoint_url": stack.endpoint_url,
        "rewrite_public_git_urls": scenario.get("rewrite", False),
    }
    if "index" in scenario["sources"]:
        helper["index_url"] = index.url
    codeartifact = scenario.get("codeartifact")
    if codeartifact is not None:
        helper["codeartifact_domain"] = CODEARTIFACT_DOMAIN
        helper["codeartifact_owner"] = _owner(codeartifact)
        network["codeartifact_endpoint_url"] = stack.codeartifact.url
    if "wheelhouse" in scenario["sources"]:
        helper["wheelhouse"] = WHEELHOUSE
    return {
        "domain": {"id": "d-vpconly000001", "region": stack.region},
        "app_types": [APP_TYPE],
        "network": network,
        "helper": helper,
        "repositories": [
            {
                "name": REPOSITORY,
                "account_id": REPOSITORY_ACCOUNT,
                "role": repo_role,
                "profile": PROFILE,
                "transport": scenario["transport"],
            }
        ],
    }


def _upload(stack: LocalStack, key: str, wheel: Path, kind: str) -> None:
    """Put the wheel, or a copy with one more byte, in a bucket of account B."""
    body = wheel.read_bytes()
    if kind == "tampered":
        body += b"\0"
    s3 = stack.session(DOMAIN_ACCOUNT).client("s3")
    s3.create_bucket(
        Bucket=BUCKET,
        CreateBucketConfiguration={"LocationConstraint": stack.region},
    )
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def _start(
    stack: LocalStack,
    home: SandboxHome,
    script: Path,
    scenario: dict[str, Any],
    index: PackageIndex,
    number: int,
) -> dict[str, Any]:
    index_on = scenario.get("index_on_start")
    default_index = index.url if index_on and number >= index_on else UNREACHABLE_INDEX
    env = {
        "PATH": _tools(stack, scenario.get("image_aws", True)),
        "PIP_INDEX_URL": default_index,
        **PIP_ENVIRONMENT,
    }
    result = run_lifecycle(
        script,
        home,
        app_type=APP_TYPE,
        user=home.owner,
        env=env,
        unset=ENDPOINT_VARIABLES,
    )
    wait_idle(home, timeout=SYNC_SECONDS)
    # The sync inherits the environment of the run, built as run_lifecycle does.
    environment = {**studio_environment(home, user=home.owner), **env}
    for name in ENDPOINT_VARIABLES:
        environment.pop(name, None)
    return {
        "aws_on_path": shutil.which("aws", path=env["PATH"]),
        "returncode": result.returncode,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "environment": sorted(environment),
        **_home_state(home),
    }


def _tools(stack: LocalStack, image_aws: bool) -> str:
    """Return a PATH with git and the system tools, without git-remote-codecommit.

    python3 is the image's, which has pip and botocore as Studio's has, and
    aws is the image's AWS CLI unless ``image_aws`` is false.
    """
    folder = stack.root / "vpc-tools"
    if not folder.exists():
        folder.mkdir(mode=0o755)
        python = folder / "python3"
        # A wrapper, not a symlink: a venv is found from the path it runs as.
        python.write_text(f'#!/bin/sh\nexec {studio_image().bin / "python3"} "$@"\n')
        python.chmod(0o755)
        if image_aws:
            (folder / "aws").symlink_to(studio_image().bin / "aws")
    return f"{folder}:{SYSTEM_PATH}"


def _home_state(home: SandboxHome) -> dict[str, Any]:
    root = home.path
    state_dir = root / ".studio-bootstrap"
    clone = root / REPOSITORY
    readme = clone / "README.md"
    status = state_dir / "status" / PROFILE
    origin = ""
    if (clone / ".git").exists():
        origin = subprocess.run(
            [
                "git",
                "-c",
                "safe.directory=*",
                "-C",
                str(clone),
                "config",
                "--get",
                "remote.origin.url",
            ],
            capture_output=True,
            text=True,
            env={"PATH": SYSTEM_PATH, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(root)},
            check=False,
        ).stdout.strip()
    return {
        "readme": readme.read_text() if readme.exists() else None,
        "origin": origin,
        "sync_log": _text(state_dir / "sync.log"),
        "status": _text(status),
        "aws_config": _text(root / ".aws" / "config"),
        "gitconfig": _text(state_dir / "gitconfig"),
        "installed": sorted(p.name for p in (state_dir / "lib").glob("*") if p.is_dir())
        if (state_dir / "lib").exists()
        else [],
        "leftovers": sorted(p.name for p in (state_dir / "lib").glob("*.new.*"))
        if (state_dir / "lib").exists()
        else [],
    }


def _issued_secrets(stack: LocalStack) -> list[str]:
    """Return every secret key and session token moto issued, the container
    authorization token and the CodeArtifact tokens."""
    found = [CONTAINER_TOKEN, *stack.codeartifact.issued_tokens()]
    for account in sts_backends.values():
        for backend in account.values():
            for role in backend.assumed_roles:
                found += [role.secret_access_key, role.session_token]
    return [secret for secret in found if secret]


def _text(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


if __name__ == "__main__":
    sys.exit(main(sys.argv))
