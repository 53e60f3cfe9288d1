"""Git credentials for CodeCommit over HTTPS: parse, sign and verify them.

git-remote-codecommit 1.17 and ``aws codecommit credential-helper`` (awscli
1.45) both send HTTP Basic credentials built the same way:

- username: ``ACCESS_KEY_ID`` then ``%`` and the session token, if any;
- password: ``YYYYMMDDTHHMMSS`` then ``Z`` then a hex SigV4 signature, for
  service ``codecommit``, of the canonical request
  ``GIT\\n/v1/repos/REPO\\n\\nhost:HOST\\n\\nhost\\n``.

The SigV4 string to sign uses the timestamp without the ``Z``. The two tools
differ in HOST: git-remote-codecommit signs ``CODE_COMMIT_ENDPOINT`` as set,
port included, while the credential helper signs the host git passes with the
port removed. So the endpoint accepts a signature over either form.

``check_role_allows`` then decides, with moto's IAM policy evaluator, whether
the session's role may pull from (or push to) the repository, as CodeCommit
checks ``codecommit:GitPull`` and ``codecommit:GitPush``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends

from bootstrap.sandbox.aws import MOTO_PARTITION, StsSession, find_sts_session
from bootstrap.sandbox.errors import GitAuthenticationError

SERVICE = "codecommit"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S"

# CodeCommit rejects signatures whose timestamp is further than this from now.
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)

_PASSWORD = re.compile(r"(?P<timestamp>\d{8}T\d{6})Z(?P<signature>[0-9a-f]{64})")

# The IAM action CodeCommit checks for each smart-HTTP service: a push
# (receive-pack, and its ref advertisement) needs GitPush, anything else
# GitPull.
GIT_PULL = "codecommit:GitPull"
GIT_PUSH = "codecommit:GitPush"


@dataclass(frozen=True)
class GitCredentials:
    """The parts of a CodeCommit Git username and password."""

    access_key_id: str
    session_token: str | None
    timestamp: str
    signature: str


def parse_basic_authorization(header: str) -> GitCredentials:
    """Split an ``Authorization: Basic ...`` header into Git credentials."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise GitAuthenticationError(f"unsupported authorization scheme {scheme!r}")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise GitAuthenticationError("Basic credentials are not base64") from exc

    username, separator, password = decoded.partition(":")
    if not separator:
        raise GitAuthenticationError("Basic credentials have no password")
    access_key_id, _, session_token = username.partition("%")
    match = _PASSWORD.fullmatch(password)
    if not access_key_id or match is None:
        raise GitAuthenticationError(
            "password is not a timestamp followed by Z and a hex signature"
        )
    return GitCredentials(
        access_key_id=access_key_id,
        session_token=session_token or None,
        timestamp=match["timestamp"],
        signature=match["signature"],
    )


def canonical_request(path: str, host: str) -> str:
    return f"GIT\n{path}\n\nhost:{host}\n\nhost\n"


def sign_git_request(
    secret_access_key: str, timestamp: str, region: str, path: str, host: str
) -> str:
    """Return the hex SigV4 signature of a CodeCommit Git request."""
    return sign_request(
        secret_access_key, timestamp, region, SERVICE, canonical_request(path, host)
    )


def sign_request(
    secret_access_key: str,
    timestamp: str,
    region: str,
    service: str,
    canonical: str,
) -> str:
    """Return the hex SigV4 signature of a canonical request.

    ``timestamp`` goes into the string to sign as given: SigV4 requests use
    ``YYYYMMDDTHHMMSSZ``, CodeCommit Git passwords the form without ``Z``.
    """
    date = timestamp[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    request_hash = hashlib.sha256(canonical.encode()).hexdigest()
    string_to_sign = f"AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{request_hash}"

    key = f"AWS4{secret_access_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def signed_hosts(host: str) -> list[str]:
    """Return the host forms a client may have signed: as sent, and portless."""
    hostname, _, port = host.rpartition(":")
    if hostname and port.isdigit() and not hostname.endswith("]"):
        return [host, hostname]
    return [host]


def verify_git_credentials(
    credentials: GitCredentials,
    *,
    region: str,
    path: str,
    host: str,
    now: datetime.datetime,
) -> StsSession:
    """Return the STS session behind valid credentials, or raise if invalid.

    Valid means: moto's STS issued the access key, the session token matches,
    the session has not expired, the timestamp is within MAX_CLOCK_SKEW of
    ``now``, and the signature matches for one of ``signed_hosts(host)``.
    Whether the session's role may use the repository is the caller's check.
    """
    key = credentials.access_key_id
    session = find_valid_session(key, credentials.session_token, now)
    check_signature_time(credentials.timestamp, now)

    for signed_host in signed_hosts(host):
        expected = sign_git_request(
            session.secret_access_key, credentials.timestamp, region, path, signed_host
        )
        if hmac.compare_digest(expected, credentials.signature):
            return session
    raise GitAuthenticationError(
        f"signature does not match for access key {key} and host {host}"
    )


def find_valid_session(
    access_key_id: str, session_token: str | None, now: datetime.datetime
) -> StsSession:
    """Return the unexpired STS session of an access key and its session token.

    Raises GitAuthenticationError when moto's STS did not issue the key, the
    token is not the session's, or the session has expired.
    """
    session = find_sts_session(access_key_id)
    if session is None:
        raise GitAuthenticationError(
            f"access key {access_key_id} was not issued by STS"
        )
    if session_token != session.session_token:
        raise GitAuthenticationError(
            f"session token does not match access key {access_key_id}"
        )
    if session.expired(now):
        raise GitAuthenticationError(
            f"credentials of access key {access_key_id} expired at "
            f"{session.expiration:%c}"
        )
    return session


def check_signature_time(timestamp: str, now: datetime.datetime) -> None:
    """Raise GitAuthenticationError unless a ``YYYYMMDDTHHMMSS`` UTC time is
    within MAX_CLOCK_SKEW of ``now``."""
    try:
        signed_at = datetime.datetime.strptime(timestamp, TIMESTAMP_FORMAT)
    except ValueError as exc:
        raise GitAuthenticationError(
            f"signature timestamp {timestamp}Z is not a valid time"
        ) from exc
    signed_at = signed_at.replace(tzinfo=datetime.timezone.utc)
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise GitAuthenticationError(
            f"signature timestamp {timestamp}Z is more than "
            f"{MAX_CLOCK_SKEW} away from the server clock"
        )


def git_action(service: str | None) -> str:
    """Return the IAM action a Git smart-HTTP service needs."""
    return GIT_PUSH if service == "git-receive-pack" else GIT_PULL


def check_role_allows(
    role_arn: str,
    action: str,
    resource: str,
    conditions: dict[str, str] | None = None,
) -> None:
    """Raise GitAuthenticationError unless the role's policies allow the action.

    The role's inline and attached policies are evaluated with moto's
    ``IAMPolicy`` (an explicit Deny wins, then any Allow), and so is its
    permissions boundary, which must allow the action too. ``conditions``
    maps condition keys to the request's values, such as
    ``sts:AWSServiceName``. NOTE: moto 5.2.1's evaluator treats an Allow with
    a Condition as a Deny when the request carries no value for its key, and
    matches action names case-sensitively.
    """
    account = role_arn.split(":")[4]
    backend = iam_backends[account][MOTO_PARTITION]
    try:
        role = backend.get_role_by_arn(role_arn)
    except NotFoundException as exc:
        raise GitAuthenticationError(f"role {role_arn} does not exist") from exc

    documents: list[Any] = [_document(d) for d in role.policies.values()]
    documents += list(role.managed_policies.values())
    results = [
        IAMPolicy(d).is_action_permitted(
            action, resource, incoming_condition_values=conditions
        )
        for d in documents
    ]
    if PermissionResult.DENIED in results:
        raise GitAuthenticationError(f"{action} on {resource} is denied to {role_arn}")
    if PermissionResult.PERMITTED not in results:
        raise GitAuthenticationError(
            f"no policy of role {role_arn} allows {action} on {resource}"
        )

    boundary_arn = role.permissions_boundary_arn
    if boundary_arn:
        try:
            boundary = backend.get_policy(boundary_arn)
        except NotFoundException as exc:
            raise GitAuthenticationError(
                f"permissions boundary {boundary_arn} of {role_arn} does not exist"
            ) from exc
        permitted = IAMPolicy(boundary).is_action_permitted(
            action, resource, incoming_condition_values=conditions
        )
        if permitted != PermissionResult.PERMITTED:
            raise GitAuthenticationError(
                f"{action} on {resource} is outside the permissions boundary "
                f"{boundary_arn} of {role_arn}"
            )


def _document(policy: str | dict[str, Any]) -> str:
    # A role made by CloudFormation's Policies property keeps a dict in moto.
    return policy if isinstance(policy, str) else json.dumps(policy)
