"""A local CodeArtifact API that serves GetAuthorizationToken, and its tokens.

moto 5.2.1 has no CodeArtifact, so this endpoint plays the one operation the
lifecycle script calls, as botocore 1.43.11's service model (codeartifact
2018-09-22, rest-json) describes it: ``POST /v1/authorization-token`` with
the query parameters ``domain`` (required), ``domain-owner`` and
``duration``, answered with the JSON members ``authorizationToken`` and
``expiration`` (epoch seconds). Errors carry their code in the
``x-amzn-ErrorType`` header and the body, with the model's HTTP status:
ValidationException 400, AccessDeniedException 403,
ResourceNotFoundException 404.

A request is served only when it is SigV4-signed for service
``codeartifact`` and the endpoint's region, with credentials that moto's STS
issued (checked as the CodeCommit endpoint checks them, see ``git_auth``).
Then, in this order:

- the caller's role must allow ``codeartifact:GetAuthorizationToken`` on the
  domain's ARN and ``sts:GetServiceBearerToken`` with ``sts:AWSServiceName``
  = ``codeartifact.amazonaws.com`` (moto's policy evaluator);
- the domain must exist in the owner account (the caller's account when
  ``domain-owner`` is missing);
- a caller from another account must be allowed by the domain: a list of
  accounts stands in for the domain's resource policy.

``token_checker`` returns the check that a package index applies to the
HTTP Basic password ``aws:TOKEN`` of each request.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, quote

from bootstrap.sandbox.aws import DEFAULT_REGION, StsSession
from bootstrap.sandbox.errors import GitAuthenticationError
from bootstrap.sandbox.git_auth import (
    check_role_allows,
    check_signature_time,
    find_valid_session,
    sign_request,
)
from bootstrap.sandbox.servers import LOOPBACK, LoopbackHTTPServer

logger = logging.getLogger(__name__)

SERVICE = "codeartifact"
TOKEN_PATH = "/v1/authorization-token"
GET_TOKEN = "codeartifact:GetAuthorizationToken"
READ_REPOSITORY = "codeartifact:ReadFromRepository"
BEARER_TOKEN = "sts:GetServiceBearerToken"
BEARER_CONDITION = {"sts:AWSServiceName": "codeartifact.amazonaws.com"}

# The durationSeconds rule of the service model's documentation: 0 (the
# caller's session expiry) or 900 to 43200 seconds.
MIN_DURATION = 900
MAX_DURATION = 43200
# NOTE: the service model gives no default for a missing duration; the
# AWS CLI documents 12 hours for its login command, which this endpoint uses.
DEFAULT_DURATION = 43200

# The patterns of the service model's DomainName and AccountId shapes.
DOMAIN_NAME = re.compile(r"[a-z][a-z0-9\-]{0,48}[a-z0-9]\Z")
ACCOUNT_ID = re.compile(r"[0-9]{12}\Z")

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)"
    r"/(?P<service>[^/\s]+)/aws4_request,\s*SignedHeaders=(?P<headers>[a-z0-9;-]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})\Z"
)
_AMZ_DATE = re.compile(r"(?P<timestamp>\d{8}T\d{6})Z\Z")


class CodeArtifactError(Exception):
    """An error response: the status, the error code and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Domain:
    """A CodeArtifact domain and the other accounts its policy lets in."""

    name: str
    owner: str
    region: str
    allowed_accounts: set[str] = field(default_factory=set)

    @property
    def arn(self) -> str:
        return f"arn:aws:codeartifact:{self.region}:{self.owner}:domain/{self.name}"

    def repository_arn(self, repository: str) -> str:
        return (
            f"arn:aws:codeartifact:{self.region}:{self.owner}:"
            f"repository/{self.name}/{repository}"
        )


@dataclass(frozen=True)
class IssuedToken:
    """An authorization token's domain, the role that requested it and its expiry."""

    domain: Domain
    role_arn: str
    expiration: datetime.datetime


@dataclass(frozen=True)
class TokenRequest:
    """One GetAuthorizationToken request. It contains no secret."""

    domain: str | None
    domain_owner: str | None
    duration: str | None
    caller_account: str | None
    status: int
    code: str | None


class LocalCodeArtifact:
    """CodeArtifact domains, the tokens issued for them and the HTTP API on loopback."""

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self.requests: list[TokenRequest] = []
        self._domains: dict[tuple[str, str], Domain] = {}
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()
        self._server = LoopbackHTTPServer(_handler_for(self))

    @property
    def url(self) -> str:
        """The endpoint URL, for ``network.codeartifact_endpoint_url``."""
        return f"http://{LOOPBACK}:{self._server.port}"

    def start(self) -> None:
        self._server.start()
        logger.debug("codeartifact endpoint listening at %s", self.url)

    def close(self) -> None:
        self._server.close()

    def create_domain(
        self, name: str, owner: str, allowed_accounts: tuple[str, ...] = ()
    ) -> Domain:
        """Create a domain in the owner account, or return the one that exists."""
        with self._lock:
            domain = self._domains.get((owner, name))
            if domain is None:
                domain = Domain(name, owner, self.region)
                self._domains[(owner, name)] = domain
            domain.allowed_accounts.update(allowed_accounts)
            return domain

    def issued_tokens(self) -> list[str]:
        """Return every token issued so far, expired or not."""
        with self._lock:
            return list(self._tokens)

    def get_authorization_token(
        self,
        session: StsSession,
        query: dict[str, str],
        now: datetime.datetime,
    ) -> dict[str, object]:
        """Issue a token for an authenticated caller, or raise CodeArtifactError."""
        name = query.get("domain")
        owner = query.get("domain-owner")
        duration = _duration(query.get("duration"))
        if name is None or DOMAIN_NAME.match(name) is None:
            raise CodeArtifactError(
                400,
                "ValidationException",
                f"invalid domain {name!r}: expected 2 to 50 lowercase letters, "
                "digits and hyphens, starting with a letter",
            )
        if owner is not None and ACCOUNT_ID.match(owner) is None:
            raise CodeArtifactError(
                400,
                "ValidationException",
                f"invalid domain-owner {owner!r}: expected a 12-digit account id",
            )
        caller_account = session.role_arn.split(":")[4]
        owner = owner or caller_account
        requested = Domain(name, owner, self.region)
        _check_identity_policy(session.role_arn, requested.arn)

        with self._lock:
            domain = self._domains.get((owner, name))
        if domain is None:
            raise CodeArtifactError(
                404,
                "ResourceNotFoundException",
                f"domain {name} not found in account {owner}",
            )
        if caller_account != owner and caller_account not in domain.allowed_accounts:
            raise CodeArtifactError(
                403,
                "AccessDeniedException",
                f"{session.role_arn} is not authorized to perform {GET_TOKEN} on "
                f"{domain.arn}: no domain policy allows account {caller_account}",
            )

        if duration == 0:
            expiration = session.expiration
        else:
            expiration = now + datetime.timedelta(seconds=duration)
        token = secrets.token_urlsafe(96)
        with self._lock:
            self._tokens[token] = IssuedToken(domain, session.role_arn, expiration)
        logger.info(
            "issued a CodeArtifact token for %s to %s until %s",
            domain.arn,
            session.role_arn,
            expiration.isoformat(),
        )
        return {"authorizationToken": token, "expiration": expiration.timestamp()}

    def token_checker(
        self, domain: str, owner: str, repository: str
    ) -> Callable[[str], str | None]:
        """Return a check of the token sent to a repository of a domain.

        The check returns None for a token that this endpoint issued for the
        domain, that has not expired, and whose requester may
        ``codeartifact:ReadFromRepository`` the repository. Otherwise it
        returns the reason, which names no secret.
        """

        def check(token: str) -> str | None:
            now = datetime.datetime.now(datetime.timezone.utc)
            with self._lock:
                issued = self._tokens.get(token)
            if issued is None:
                return "token was not issued by the CodeArtifact endpoint"
            if (issued.domain.owner, issued.domain.name) != (owner, domain):
                return f"token was issued for {issued.domain.arn}"
            if now >= issued.expiration:
                return f"token expired at {issued.expiration.isoformat()}"
            try:
                check_role_allows(
                    issued.role_arn,
                    READ_REPOSITORY,
                    issued.domain.repository_arn(repository),
                )
            except GitAuthenticationError as exc:
                return str(exc)
            return None

        return check

    def record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _duration(value: str | None) -> int:
    if value is None:
        return DEFAULT_DURATION
    try:
        seconds = int(value)
    except ValueError:
        seconds = -1
    if seconds != 0 and not MIN_DURATION <= seconds <= MAX_DURATION:
        raise CodeArtifactError(
            400,
            "ValidationException",
            f"invalid duration {value!r}: expected 0, or {MIN_DURATION} to "
            f"{MAX_DURATION} seconds",
        )
    return seconds


def _check_identity_policy(role_arn: str, domain_arn: str) -> None:
    """Raise AccessDeniedException unless the role's policies allow the token."""
    try:
        check_role_allows(role_arn, GET_TOKEN, domain_arn)
        check_role_allows(role_arn, BEARER_TOKEN, "*", BEARER_CONDITION)
    except GitAuthenticationError as exc:
        raise CodeArtifactError(403, "AccessDeniedException", str(exc)) from exc


# SigV4 checking of one request.


def authenticate(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    *,
    region: str,
    now: datetime.datetime,
) -> StsSession:
    """Return the STS session that signed a request, or raise CodeArtifactError.

    ``headers`` maps lowercase names to values. The canonical request is
    rebuilt as SigV4 defines it: the method, the path as sent, the sorted
    query, the signed headers with trimmed values, their names, and the
    sha256 of the body.
    """
    authorization = headers.get("authorization")
    if authorization is None:
        raise CodeArtifactError(
            403, "MissingAuthenticationTokenException", "missing Authorization header"
        )
    match = _AUTHORIZATION.fullmatch(authorization.strip())
    if match is None:
        raise CodeArtifactError(
            403,
            "IncompleteSignatureException",
            "Authorization header is not an AWS4-HMAC-SHA256 signature",
        )
    if match["service"] != SERVICE or match["region"] != region:
        raise CodeArtifactError(
            403,
            "InvalidSignatureException",
            f"credential scope {match['region']}/{match['service']} is not "
            f"{region}/{SERVICE}",
        )
    amz_date = _AMZ_DATE.fullmatch(headers.get("x-amz-date", ""))
    if amz_date is None or amz_date["timestamp"][:8] != match["date"]:
        raise CodeArtifactError(
            403,
            "IncompleteSignatureException",
            "X-Amz-Date is missing or does not match the credential scope date",
        )
    signed_names = match["headers"].split(";")
    if "host" not in signed_names or any(n not in headers for n in signed_names):
        raise CodeArtifactError(
            403,
            "IncompleteSignatureException",
            f"signed headers {match['headers']} must include host and be present",
        )
    try:
        session = find_valid_session(
            match["key"], headers.get("x-amz-security-token"), now
        )
        check_signature_time(amz_date["timestamp"], now)
    except GitAuthenticationError as exc:
        code = "ExpiredTokenException" if "expired" in str(exc) else None
        raise CodeArtifactError(
            403, code or "UnrecognizedClientException", str(exc)
        ) from exc

    canonical_headers = "".join(
        f"{name}:{' '.join(headers[name].split())}\n" for name in signed_names
    )
    payload_hash = (
        headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    )
    canonical = "\n".join(
        (
            method,
            path,
            _canonical_query(query),
            canonical_headers,
            match["headers"],
            payload_hash,
        )
    )
    expected = sign_request(
        session.secret_access_key, amz_date.group(0), region, SERVICE, canonical
    )
    if not hmac.compare_digest(expected, match["signature"]):
        raise CodeArtifactError(
            403,
            "InvalidSignatureException",
            f"signature does not match for access key {match['key']}",
        )
    return session


def _canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _handler_for(endpoint: LocalCodeArtifact) -> type[BaseHTTPRequestHandler]:
    class Handler(_CodeArtifactHandler):
        server_endpoint = endpoint

    return Handler


class _CodeArtifactHandler(BaseHTTPRequestHandler):
    server_endpoint: LocalCodeArtifact
    timeout = 30

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("codeartifact endpoint: " + format, *args)

    def do_POST(self) -> None:
        endpoint = self.server_endpoint
        path, _, raw_query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        now = datetime.datetime.now(datetime.timezone.utc)
        caller_account: str | None = None
        try:
            if path != TOKEN_PATH:
                raise CodeArtifactError(
                    404, "UnknownOperationException", f"no operation at POST {path}"
                )
            session = authenticate(
                "POST",
                path,
                raw_query,
                headers,
                body,
                region=endpoint.region,
                now=now,
            )
            caller_account = session.role_arn.split(":")[4]
            document = endpoint.get_authorization_token(session, query, now)
            status, code = 200, None
        except CodeArtifactError as exc:
            logger.info(
                "rejected GetAuthorizationToken for domain %s: %s %s: %s",
                query.get("domain"),
                exc.status,
                exc.code,
                exc.message,
            )
            document = {"__type": exc.code, "message": exc.message}
            status, code = exc.status, exc.code
        endpoint.record(
            TokenRequest(
                domain=query.get("domain"),
                domain_owner=query.get("domain-owner"),
                duration=query.get("duration"),
                caller_account=caller_account,
                status=status,
                code=code,
            )
        )
        self._send(status, code, document)

    def _send(self, status: int, code: str | None, document: dict[str, object]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if code is not None:
            self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
