"""App starts in a VPC-only domain, each in a network namespace with loopback alone.

Every scenario runs ``python -m bootstrap.sandbox.vpc`` under ``unshare
--net``: the local stack, the package index and the app starts live in a
namespace where ``lo`` is the only interface, so a call to any address but
127.0.0.1 fails there. The starts run without AWS_ENDPOINT_URL,
AWS_ENDPOINT_URL_STS and CODE_COMMIT_ENDPOINT, so the STS, S3 and Git
endpoints come from the config alone.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap.sandbox.aws import DOMAIN_ACCOUNT, REPOSITORY_ACCOUNT
from bootstrap.sandbox.helper_wheel import build_cli_wheels, build_helper_wheels
from bootstrap.sandbox.vpc import CODEARTIFACT_PREFIX, ENDPOINT_VARIABLES, REPOSITORY

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_SECONDS = 300
CODECOMMIT_ORIGIN = f"codecommit::eu-west-1://repo-account@{REPOSITORY}"
README = "# vpc-repo\n\nCloned through the VPC endpoints.\n"
# A session key id of STS, or the signature part of a Git password.
SECRET_SHAPES = re.compile(r"ASIA[A-Z0-9]{12,}|\d{8}T\d{6}Z[0-9a-f]{64}")


@functools.cache
def namespace_problem() -> str | None:
    """Return why a network namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "unshare --net needs root"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare (util-linux) and ip (iproute2) are needed"
    probe = subprocess.run(
        ["unshare", "--net", "ip", "-o", "link", "show"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"unshare --net failed: {probe.stderr.strip()}"
    return None


pytestmark = pytest.mark.skipif(
    namespace_problem() is not None, reason=namespace_problem() or ""
)


@pytest.fixture(scope="module")
def wheels() -> Iterator[Path]:
    """A folder with the git-remote-codecommit wheel that uid 1000 can read."""
    folder = Path(tempfile.mkdtemp(prefix="studio-vpc-wheels-"))
    folder.chmod(0o755)
    try:
        yield build_helper_wheels(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cli_wheels() -> Iterator[Path]:
    """A folder with the wheels of the AWS CLI and its dependencies."""
    folder = Path(tempfile.mkdtemp(prefix="studio-vpc-cli-wheels-"))
    folder.chmod(0o755)
    try:
        yield build_cli_wheels(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_vpc(wheels: Path, **scenario: Any) -> dict[str, Any]:
    """Run one scenario in a new network namespace and return its report."""
    scenario = {"wheels": str(wheels), "transport": "codecommit", **scenario}
    command = ["unshare", "--net", sys.executable, "-m", "bootstrap.sandbox.vpc"]
    result = subprocess.run(
        [*command, json.dumps(scenario)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=SCENARIO_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def assert_loopback_only(report: dict[str, Any]) -> None:
    network = report["network"]
    assert network["interfaces"] == ["lo"]
    for route in network["routes"]:
        assert " dev lo " in route, route
        assert not route.startswith("default"), route


def assert_no_endpoint_variables(start: dict[str, Any]) -> None:
    assert set(start["environment"]).isdisjoint(ENDPOINT_VARIABLES)


def assert_cloned(start: dict[str, Any], origin: str) -> None:
    assert start["returncode"] == 0, start["stdout"] + start["stderr"]
    assert start["readme"] == README, start["sync_log"]
    assert start["origin"] == origin
    assert start["status"].startswith("state=ok\n"), start["sync_log"]


def assert_quiet_logs(report: dict[str, Any]) -> None:
    """No issued secret, key id or Git password reaches any output or log."""
    assert report["secrets_checked"] > 0
    for start in report["starts"]:
        assert start["secrets_logged"] == 0
        texts = [start["stdout"], start["stderr"], start["sync_log"] or ""]
        assert not SECRET_SHAPES.search("\n".join(texts))


def installed_from(
    start: dict[str, Any], source: str, package: str = "git-remote-codecommit"
) -> bool:
    line = f"studio-bootstrap: installed {package} from {source}\n"
    return line in (start["sync_log"] or "")


def assert_token_kept_secret(report: dict[str, Any]) -> None:
    """CodeArtifact tokens reach no command line, log, status or home file."""
    assert report["tokens_issued"] > 0
    assert report["cmdline_scans"] > 0
    assert report["token_in_cmdline"] == []
    assert report["token_files"] == []
    assert_quiet_logs(report)


def token_requests(report: dict[str, Any]) -> list[tuple[int, str | None]]:
    return [(r["status"], r["code"]) for r in report["codeartifact_requests"]]


def test_wheelhouse_source_clones(wheels: Path) -> None:
    report = run_vpc(wheels, sources=["wheelhouse"])
    assert_loopback_only(report)
    (start,) = report["starts"]
    assert_no_endpoint_variables(start)
    assert_cloned(start, CODECOMMIT_ORIGIN)
    assert installed_from(start, "wheelhouse")
    assert start["installed"] == ["git-remote-codecommit"]
    assert report["index_requests"] == []
    assert_quiet_logs(report)


def test_s3_source_after_pypi_fails(wheels: Path) -> None:
    report = run_vpc(wheels, sources=["pypi", "s3"], s3_object="wheel")
    assert_loopback_only(report)
    (start,) = report["starts"]
    assert_no_endpoint_variables(start)
    assert_cloned(start, CODECOMMIT_ORIGIN)
    log = start["sync_log"]
    assert re.search(
        r"installing git-remote-codecommit from pypi failed: .+; "
        r"trying the next source\n",
        log,
    ), log
    assert installed_from(start, "s3")
    assert start["leftovers"] == []
    assert_quiet_logs(report)


def test_index_source_clones(wheels: Path) -> None:
    report = run_vpc(wheels, sources=["index"])
    (start,) = report["starts"]
    assert_no_endpoint_variables(start)
    assert_cloned(start, CODECOMMIT_ORIGIN)
    assert installed_from(start, "index")
    assert "/simple/git-remote-codecommit/" in report["index_requests"]
    assert any(
        r.startswith("/files/git_remote_codecommit-1.17-")
        for r in report["index_requests"]
    )
    assert_quiet_logs(report)


def test_pypi_source_fails_then_retries(wheels: Path) -> None:
    # The first start finds no index, as in a VPC without internet; the
    # second finds one as pip's default, so the retry installs and clones.
    report = run_vpc(wheels, sources=["pypi"], starts=2, index_on_start=2)
    assert_loopback_only(report)
    first, second = report["starts"]
    assert first["returncode"] == 0, first["stdout"] + first["stderr"]
    assert first["readme"] is None
    assert first["installed"] == []
    assert first["status"].startswith("state=failed\n")
    assert re.search(
        r"message=installing git-remote-codecommit from pypi failed: .+",
        first["status"],
    ), first["status"]
    assert "trying the next source" not in first["sync_log"]
    assert_cloned(second, CODECOMMIT_ORIGIN)
    assert installed_from(second, "pypi")
    assert_quiet_logs(report)


def test_s3_wrong_sha256_is_rejected(wheels: Path) -> None:
    report = run_vpc(wheels, sources=["s3"], s3_object="tampered")
    (start,) = report["starts"]
    assert start["returncode"] == 0, start["stdout"] + start["stderr"]
    assert start["readme"] is None
    assert start["installed"] == []
    assert start["leftovers"] == []
    assert "sha256 mismatch: s3://studio-bootstrap-helper/" in start["status"]
    assert not installed_from(start, "s3")
    assert_quiet_logs(report)


def test_https_transport_through_endpoints(wheels: Path) -> None:
    report = run_vpc(wheels, transport="https", sources=["pypi"], rewrite=True)
    assert_loopback_only(report)
    (start,) = report["starts"]
    assert_no_endpoint_variables(start)
    origin = start["origin"]
    assert re.fullmatch(rf"https://127\.0\.0\.1:\d+/v1/repos/{REPOSITORY}", origin)
    assert_cloned(start, origin)
    # The AWS CLI was on PATH, so nothing was installed.
    assert start["installed"] == []
    host = origin.split("/")[2]
    gitconfig = start["gitconfig"]
    assert f'[credential "https://{host}"]' in gitconfig
    assert "--ignore-host-check" in gitconfig
    assert f'[url "https://{host}/"]\n' in gitconfig
    assert "\tinsteadOf = https://git-codecommit.eu-west-1.amazonaws.com/" in gitconfig
    aws_config = start["aws_config"]
    assert "services = studio-bootstrap\n" in aws_config
    assert re.search(
        r"\[services studio-bootstrap\]\nsts =\n\tendpoint_url = http://127\.0\.0\.1:\d+\n",
        aws_config,
    ), aws_config
    assert_quiet_logs(report)


def test_codeartifact_index_clones(wheels: Path) -> None:
    report = run_vpc(wheels, sources=["index"], codeartifact={})
    assert_loopback_only(report)
    (start,) = report["starts"]
    assert_no_endpoint_variables(start)
    assert_cloned(start, CODECOMMIT_ORIGIN)
    assert installed_from(start, "index")
    assert token_requests(report) == [(200, None)]
    (request,) = report["codeartifact_requests"]
    assert request["domain"] == "ml-tools"
    assert request["domain_owner"] == DOMAIN_ACCOUNT
    assert request["duration"] == "900"
    assert request["caller_account"] == DOMAIN_ACCOUNT
    assert f"{CODEARTIFACT_PREFIX}git-remote-codecommit/" in report["index_requests"]
    assert report["index_rejections"] == []
    assert_token_kept_secret(report)


@pytest.mark.parametrize(
    ("codeartifact", "code", "status"),
    [
        ({"domain": "missing"}, "ResourceNotFoundException", 404),
        (
            {"domain": "not_shared", "owner": REPOSITORY_ACCOUNT},
            "AccessDeniedException",
            403,
        ),
    ],
    ids=["unknown-domain", "wrong-owner"],
)
def test_codeartifact_failure_then_fixed(
    wheels: Path, codeartifact: dict[str, Any], code: str, status: int
) -> None:
    # The first start cannot get a token; before the second, the domain
    # exists and lets account B in, so the retry installs and clones.
    scenario = {**codeartifact, "fixed_on_start": 2}
    report = run_vpc(wheels, sources=["index"], codeartifact=scenario, starts=2)
    first, second = report["starts"]
    assert first["returncode"] == 0, first["stdout"] + first["stderr"]
    assert first["readme"] is None
    assert first["installed"] == []
    assert first["status"].startswith("state=failed\n")
    message = first["status"].split("message=", 1)[1]
    assert message.startswith("installing git-remote-codecommit from index failed: ")
    assert code in message
    assert "\n" not in message.strip()
    log = first["sync_log"]
    assert "Traceback" not in log
    failures = [line for line in log.splitlines() if code in line]
    assert failures, log
    for line in failures:
        assert "studio-bootstrap: " in line
    assert_cloned(second, CODECOMMIT_ORIGIN)
    assert installed_from(second, "index")
    assert (status, code) in token_requests(report)
    assert token_requests(report)[-1] == (200, None)
    assert_token_kept_secret(report)


def test_https_cli_from_codeartifact(wheels: Path, cli_wheels: Path) -> None:
    report = run_vpc(
        wheels,
        transport="https",
        sources=["index"],
        codeartifact={},
        cli_wheels=str(cli_wheels),
        image_aws=False,
    )
    (start,) = report["starts"]
    assert start["aws_on_path"] is None
    assert_cloned(start, start["origin"])
    assert start["origin"].startswith("https://127.0.0.1:")
    assert installed_from(start, "index", "awscli")
    assert start["installed"] == ["awscli"]
    assert f"{CODEARTIFACT_PREFIX}awscli/" in report["index_requests"]
    assert f"{CODEARTIFACT_PREFIX}botocore/" in report["index_requests"]
    assert report["index_rejections"] == []
    assert_token_kept_secret(report)


def test_https_cli_from_plain_index(wheels: Path, cli_wheels: Path) -> None:
    report = run_vpc(
        wheels,
        transport="https",
        sources=["index"],
        cli_wheels=str(cli_wheels),
        image_aws=False,
    )
    (start,) = report["starts"]
    assert start["aws_on_path"] is None
    assert_cloned(start, start["origin"])
    assert installed_from(start, "index", "awscli")
    assert start["installed"] == ["awscli"]
    assert "/simple/awscli/" in report["index_requests"]
    assert report["codeartifact_requests"] == []
    assert_quiet_logs(report)


def test_every_source_with_short_names_clones(wheels: Path) -> None:
    """The largest config fits only with short internal names, and still runs."""
    report = run_vpc(
        wheels,
        sources=["wheelhouse", "s3", "index", "pypi"],
        s3_object="wheel",
        codeartifact={},
    )
    assert report["names_shortened"]
    assert_loopback_only(report)
    (start,) = report["starts"]
    assert_cloned(start, CODECOMMIT_ORIGIN)
    assert installed_from(start, "wheelhouse")
    assert_quiet_logs(report)
