"""A container-credentials endpoint on loopback, as the Studio container has.

botocore's container provider fetches ``AWS_CONTAINER_CREDENTIALS_FULL_URI``
with a GET, sends ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` as the
``Authorization`` header when that variable is set, and reads the JSON fields
``AccessKeyId``, ``SecretAccessKey``, ``Token`` and ``Expiration``.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from bootstrap.sandbox.servers import LOOPBACK, LoopbackHTTPServer

logger = logging.getLogger(__name__)

CREDENTIALS_PATH = "/v2/credentials/sandbox"

# Cached credentials are renewed when less than this much time is left.
# botocore refreshes credentials 15 minutes before they expire, so anything
# served must have more left than that.
RENEW_BEFORE_EXPIRY = datetime.timedelta(minutes=20)

# "slow" responds after this many seconds. botocore's container fetcher gives up
# after 2 seconds per attempt (ContainerMetadataFetcher.TIMEOUT_SECONDS in
# botocore 1.43).
DEFAULT_SLOW_SECONDS = 5.0

CREDENTIALS_FAULTS = (None, "down", "slow", "malformed", "403")


@dataclass(frozen=True)
class IssuedCredentials:
    """Temporary credentials of the role the endpoint serves."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime.datetime
    role_arn: str

    def as_json(self) -> bytes:
        expiration = self.expiration.astimezone(datetime.timezone.utc)
        document = {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.session_token,
            "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RoleArn": self.role_arn,
        }
        return json.dumps(document).encode()


@dataclass(frozen=True)
class CredentialsRequest:
    """One request the endpoint received: the fault in force and the status."""

    path: str
    status: int | None
    fault: str | None


class ContainerCredentialsServer:
    """Serve the credentials of one role over HTTP on 127.0.0.1.

    ``issue`` returns fresh credentials for a role ARN (the stack assumes the
    role in moto). ``role_arn`` is the role served, None until set. With an
    ``authorization_token``, a request whose ``Authorization`` header differs
    gets 401.

    ``fault`` breaks the endpoint on purpose: "down" closes each connection
    without a response, "slow" responds after ``slow_seconds``, "malformed"
    returns a body that is not JSON, "403" returns 403.
    """

    def __init__(
        self,
        issue: Callable[[str], IssuedCredentials],
        *,
        authorization_token: str | None = None,
    ) -> None:
        self._issue = issue
        self.authorization_token = authorization_token
        self.role_arn: str | None = None
        self.slow_seconds = DEFAULT_SLOW_SECONDS
        self.requests: list[CredentialsRequest] = []
        self._fault: str | None = None
        self._cached: IssuedCredentials | None = None
        self._lock = threading.Lock()
        self._server = LoopbackHTTPServer(_handler_for(self))

    @property
    def fault(self) -> str | None:
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value not in CREDENTIALS_FAULTS:
            raise ValueError(
                f"invalid credentials fault {value!r}: expected one of "
                f"{CREDENTIALS_FAULTS}"
            )
        self._fault = value

    @property
    def url(self) -> str:
        """The full URI, for ``AWS_CONTAINER_CREDENTIALS_FULL_URI``."""
        return f"http://{LOOPBACK}:{self._server.port}{CREDENTIALS_PATH}"

    @property
    def closing(self) -> threading.Event:
        return self._server.closing

    def start(self) -> None:
        self._server.start()
        logger.debug("container credentials endpoint listening at %s", self.url)

    def close(self) -> None:
        self._server.close()

    def current_credentials(self) -> IssuedCredentials | None:
        """Return cached credentials of ``role_arn``, renewed near expiry."""
        with self._lock:
            role_arn = self.role_arn
            if role_arn is None:
                return None
            if self._needs_renewal(role_arn):
                self._cached = self._issue(role_arn)
                logger.debug("issued container credentials for %s", role_arn)
            return self._cached

    def _needs_renewal(self, role_arn: str) -> bool:
        cached = self._cached
        if cached is None or cached.role_arn != role_arn:
            return True
        now = datetime.datetime.now(datetime.timezone.utc)
        return cached.expiration - now < RENEW_BEFORE_EXPIRY

    def record(self, path: str, status: int | None) -> None:
        self.requests.append(CredentialsRequest(path, status, self._fault))


def _handler_for(
    endpoint: ContainerCredentialsServer,
) -> type[BaseHTTPRequestHandler]:
    class Handler(_CredentialsHandler):
        server_endpoint = endpoint

    return Handler


class _CredentialsHandler(BaseHTTPRequestHandler):
    server_endpoint: ContainerCredentialsServer
    timeout = 30

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("credentials endpoint: " + format, *args)

    def do_GET(self) -> None:
        endpoint = self.server_endpoint
        fault = endpoint.fault
        if fault == "down":
            endpoint.record(self.path, None)
            self.close_connection = True
            return
        if fault == "slow":
            endpoint.closing.wait(endpoint.slow_seconds)

        status = self._respond(endpoint, fault)
        endpoint.record(self.path, status)

    def _respond(self, endpoint: ContainerCredentialsServer, fault: str | None) -> int:
        if self.path != CREDENTIALS_PATH:
            return self._send_error(404, "NotFound", f"no credentials at {self.path}")

        token = endpoint.authorization_token
        if token is not None and self.headers.get("Authorization") != token:
            return self._send_error(
                401, "Unauthorized", "missing or wrong Authorization header"
            )
        if fault == "403":
            return self._send_error(403, "AccessDenied", "fault injected: 403")
        if fault == "malformed":
            return self._send(200, b'{"AccessKeyId": "ASIA')

        credentials = endpoint.current_credentials()
        if credentials is None:
            return self._send_error(404, "NotFound", "no execution role is set")
        return self._send(200, credentials.as_json())

    def _send_error(self, status: int, code: str, message: str) -> int:
        body = json.dumps({"code": code, "message": message}).encode()
        return self._send(status, body)

    def _send(self, status: int, body: bytes) -> int:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:
            # A "slow" client has usually given up by now.
            logger.debug("credentials client went away: %s", exc)
        return status
