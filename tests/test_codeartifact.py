"""The sandbox's CodeArtifact endpoint and the package index that checks its tokens."""

from __future__ import annotations

import base64
import datetime
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.config import Config

from bootstrap.sandbox.aws import DOMAIN_ACCOUNT, REPOSITORY_ACCOUNT, find_sts_session
from bootstrap.sandbox.helper_wheel import PackageIndex, minimal_wheel
from bootstrap.sandbox.stack import LocalStack

DOMAIN = "ml-tools"
REPOSITORY = "python-mirror"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "codeartifact:GetAuthorizationToken",
            "Resource": [
                f"arn:aws:codeartifact:eu-west-1:{DOMAIN_ACCOUNT}:domain/{DOMAIN}",
                f"arn:aws:codeartifact:eu-west-1:{REPOSITORY_ACCOUNT}:domain/{DOMAIN}",
            ],
        },
        {
            "Effect": "Allow",
            "Action": "sts:GetServiceBearerToken",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}
            },
        },
        {
            "Effect": "Allow",
            "Action": "codeartifact:ReadFromRepository",
            "Resource": f"arn:aws:codeartifact:eu-west-1:{DOMAIN_ACCOUNT}:"
            f"repository/{DOMAIN}/{REPOSITORY}",
        },
    ],
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as started:
        started.create_execution_role()
        started.session(DOMAIN_ACCOUNT).client("iam").put_role_policy(
            RoleName="StudioExecutionRole",
            PolicyName="codeartifact",
            PolicyDocument=json.dumps(POLICY),
        )
        started.codeartifact.create_domain(DOMAIN, DOMAIN_ACCOUNT)
        started.codeartifact.create_domain(DOMAIN, REPOSITORY_ACCOUNT)
        yield started


def client(stack: LocalStack, secret: str | None = None) -> Any:
    """A CodeArtifact client with execution-role credentials, as the script has."""
    role = stack.execution_role_arn or ""
    issued = stack._issue_execution_credentials(role)
    return botocore.session.Session().create_client(
        "codeartifact",
        "eu-west-1",
        endpoint_url=stack.codeartifact.url,
        aws_access_key_id=issued.access_key_id,
        aws_secret_access_key=secret or issued.secret_access_key,
        aws_session_token=issued.session_token,
        config=Config(proxies={}, retries={"max_attempts": 1}),
    )


def error_of(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(Exception) as caught:
        call(**kwargs)
    response = caught.value.response  # type: ignore[attr-defined]
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_token_has_requested_duration(stack: LocalStack) -> None:
    before = datetime.datetime.now(datetime.timezone.utc)
    response = client(stack).get_authorization_token(
        domain=DOMAIN, domainOwner=DOMAIN_ACCOUNT, durationSeconds=900
    )
    lifetime = response["expiration"] - before
    assert datetime.timedelta(seconds=899) < lifetime
    assert lifetime < datetime.timedelta(seconds=910)
    assert response["authorizationToken"] in stack.codeartifact.issued_tokens()


@pytest.mark.parametrize(
    ("request_arguments", "code", "status"),
    [
        ({"domain": "Bad_Name"}, "ValidationException", 400),
        ({"domain": DOMAIN, "durationSeconds": 60}, "ValidationException", 400),
        ({"domain": "other-domain"}, "AccessDeniedException", 403),
        (
            {"domain": DOMAIN, "domainOwner": REPOSITORY_ACCOUNT},
            "AccessDeniedException",
            403,
        ),
    ],
    ids=["bad-domain", "bad-duration", "not-in-policy", "not-shared"],
)
def test_token_errors(
    stack: LocalStack, request_arguments: dict[str, Any], code: str, status: int
) -> None:
    call = client(stack).get_authorization_token
    assert error_of(call, **request_arguments) == (code, status)


def test_unknown_domain_not_found(stack: LocalStack) -> None:
    stack.session(DOMAIN_ACCOUNT).client("iam").put_role_policy(
        RoleName="StudioExecutionRole",
        PolicyName="any-domain",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "codeartifact:GetAuthorizationToken",
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    call = client(stack).get_authorization_token
    try:
        assert error_of(call, domain="missing") == ("ResourceNotFoundException", 404)
    finally:
        stack.session(DOMAIN_ACCOUNT).client("iam").delete_role_policy(
            RoleName="StudioExecutionRole", PolicyName="any-domain"
        )


def test_wrong_signature_rejected(stack: LocalStack) -> None:
    call = client(stack, secret="not-the-secret").get_authorization_token
    assert error_of(call, domain=DOMAIN) == ("InvalidSignatureException", 403)


def test_index_requires_live_token(stack: LocalStack, tmp_path: Path) -> None:
    minimal_wheel(tmp_path)
    endpoint = stack.codeartifact
    check = endpoint.token_checker(DOMAIN, DOMAIN_ACCOUNT, REPOSITORY)
    token = client(stack).get_authorization_token(domain=DOMAIN, durationSeconds=900)[
        "authorizationToken"
    ]
    role = stack.execution_role_arn or ""
    issued = stack._issue_execution_credentials(role)
    # A token issued 16 minutes ago with a duration of 15 minutes.
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16)
    expired = endpoint.get_authorization_token(
        _sts_session(issued, role), {"domain": DOMAIN, "duration": "900"}, past
    )["authorizationToken"]
    with PackageIndex(
        tmp_path, prefix=f"/pypi/{REPOSITORY}/simple/", check_token=check
    ) as index:
        assert fetch(index.url, token) == 200
        assert fetch(index.url, None) == 401
        assert fetch(index.url, "not-a-token") == 401
        assert fetch(index.url, str(expired)) == 401
    assert any("expired" in reason for reason in index.rejections)
    assert index.token_in_cmdline == []


def _sts_session(issued: Any, role: str) -> Any:
    session = find_sts_session(issued.access_key_id)
    assert session is not None
    assert session.role_arn == role
    return session


def fetch(url: str, token: str | None) -> int:
    request = urllib.request.Request(url)
    if token is not None:
        encoded = base64.b64encode(f"aws:{token}".encode()).decode()
        request.add_header("Authorization", f"Basic {encoded}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
