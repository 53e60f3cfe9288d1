"""The HTTPS handler of the local CodeCommit endpoint.

It checks CodeCommit's Git credentials, applies the repository's fault, and
then runs ``git http-backend`` as a CGI program, streaming the request body
to it and its output back to the client.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import logging
import re
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import IO, TYPE_CHECKING
from urllib.parse import parse_qs

from bootstrap.sandbox.errors import GitAuthenticationError
from bootstrap.sandbox.git_auth import (
    check_role_allows,
    git_action,
    parse_basic_authorization,
    verify_git_credentials,
)
from bootstrap.sandbox.servers import TLSHandshakeMixin

if TYPE_CHECKING:
    from bootstrap.sandbox.codecommit import LocalCodeCommit, Repository

logger = logging.getLogger(__name__)

REALM = "CodeCommit sandbox"
_REPOSITORY_PATH = re.compile(r"/v1/repos/(?P<name>[^/?]+)(?P<rest>/[^?]*)?")
_COPY_SIZE = 64 * 1024

# Bytes of request body read and discarded before an error response, so that
# closing the connection does not reset it under the client's feet.
_MAX_DRAINED_BODY = 8 * 1024 * 1024

# A pack starts with "PACK", a 4-byte version and a 4-byte object count.
_PACK_SIGNATURE = b"PACK"
_PACK_HEADER_SIZE = 12


def git_service(rest: str, query: str) -> str | None:
    """Return the Git service a smart-HTTP request is for, if any."""
    if rest == "/info/refs":
        services = parse_qs(query).get("service", [])
        return services[0] if services else None
    if rest in ("/git-upload-pack", "/git-receive-pack"):
        return rest[1:]
    return None


class CodeCommitRequestHandler(TLSHandshakeMixin, BaseHTTPRequestHandler):
    """Serve ``/v1/repos/REPO/...`` for requests with valid Git credentials."""

    endpoint: LocalCodeCommit
    timeout = 60
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("codecommit endpoint: " + format, *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        match = _REPOSITORY_PATH.fullmatch(path)
        self._repository_name = match["name"] if match else None
        self._service = git_service(match["rest"] or "", query) if match else None
        self._access_key_id: str | None = None
        self._role_arn: str | None = None
        if match is None:
            self._reject(404, f"{path} is not a repository path")
            return

        authorization = self.headers.get("Authorization")
        if not authorization:
            self._challenge()
            return
        repository = self.endpoint.find_repository(match["name"])
        if repository is None:
            self._reject(404, f"repository {match['name']} not found")
            return
        try:
            self._authorize(repository, authorization)
        except GitAuthenticationError as exc:
            self._reject(403, str(exc))
            return

        self._serve(repository, match["rest"] or "", query)

    def _authorize(self, repository: Repository, authorization: str) -> None:
        credentials = parse_basic_authorization(authorization)
        self._access_key_id = credentials.access_key_id
        session = verify_git_credentials(
            credentials,
            region=repository.region,
            path=f"/v1/repos/{repository.name}",
            host=self.headers.get("Host") or self.endpoint.host,
            now=datetime.datetime.now(datetime.timezone.utc),
        )
        self._role_arn = session.role_arn
        if session.role_arn not in repository.allowed_role_arns:
            raise GitAuthenticationError(
                f"role {session.role_arn} may not access repository {repository.name}"
            )
        check_role_allows(session.role_arn, git_action(self._service), repository.arn)

    def _serve(self, repository: Repository, rest: str, query: str) -> None:
        fault = repository.fault
        if fault in ("403", "500"):
            status = int(fault)
            self._reject(status, f"fault {fault} injected", fault=fault)
        elif fault == "reset":
            self._record(None, "fault reset injected", fault)
            self._reset_connection()
        else:
            self._run_backend(repository, rest, query, stall=fault == "stall")

    def _challenge(self) -> None:
        self._drain_body()
        self.send_response(401)
        self.send_header("WWW-Authenticate", f'Basic realm="{REALM}"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        self._record(401, "no credentials")

    def _reject(self, status: int, reason: str, fault: str | None = None) -> None:
        logger.info(
            "rejected %s %s with %d: %s", self.command, self.path, status, reason
        )
        self._drain_body()
        body = f"{reason}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self._record(status, reason, fault)

    def _record(
        self, status: int | None, reason: str | None, fault: str | None = None
    ) -> None:
        self.endpoint.record(
            repository=self._repository_name,
            method=self.command,
            service=self._service,
            access_key_id=self._access_key_id,
            role_arn=self._role_arn,
            status=status,
            reason=reason,
            fault=fault,
        )

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP reset.
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.connection.close()
        self.close_connection = True

    def finish(self) -> None:
        # The connection may have been reset on purpose or dropped by the client.
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    # Request bodies.

    def _body_chunks(self) -> Iterator[bytes]:
        """Yield the request body as sent, decoding chunked transfer encoding."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            yield from self._chunked_body()
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, _COPY_SIZE))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def _chunked_body(self) -> Iterator[bytes]:
        while True:
            size_line = self.rfile.readline(1024)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            while size > 0:
                chunk = self.rfile.read(min(size, _COPY_SIZE))
                if not chunk:
                    return
                size -= len(chunk)
                yield chunk
            self.rfile.readline(1024)
        # Trailers end with an empty line.
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass

    def _drain_body(self) -> None:
        drained = 0
        try:
            for chunk in self._body_chunks():
                drained += len(chunk)
                if drained > _MAX_DRAINED_BODY:
                    break
        except (OSError, ValueError):
            logger.debug("could not read the body of a rejected request")

    # git http-backend.

    def _run_backend(
        self, repository: Repository, rest: str, query: str, stall: bool
    ) -> None:
        environment = self.endpoint.cgi_environment(
            repository=repository,
            path_info=f"/{repository.name}{rest}",
            method=self.command,
            query=query,
            headers=self.headers,
            remote_user=self._role_arn or "",
        )
        with self.endpoint.backend_process(environment) as process:
            # Popen created all three pipes, as PIPE was passed for each.
            assert process.stdin is not None
            assert process.stdout is not None
            assert process.stderr is not None
            feeder = threading.Thread(target=self._feed_body, args=(process.stdin,))
            feeder.start()
            errors: list[bytes] = []
            reader = threading.Thread(target=_read_all, args=(process.stderr, errors))
            reader.start()
            completed = False
            self._stalled = False
            try:
                status, completed = self._relay_response(process.stdout, stall)
            finally:
                if not completed:
                    # git may be blocked writing to a client that is gone.
                    # Its children (upload-pack, pack-objects) outlive the
                    # kill and keep stderr open, so the reader would wait
                    # forever. Closing stdout ends them with SIGPIPE.
                    process.kill()
                    process.stdout.close()
                feeder.join()
                process.wait()
                reader.join()
        if errors and errors[0].strip():
            logger.debug(
                "git http-backend: %s", b"".join(errors).decode(errors="replace")
            )
        reason = "fault stall injected after the pack header" if self._stalled else None
        self._record(status, reason, "stall" if stall else None)

    def _feed_body(self, stdin: IO[bytes]) -> None:
        try:
            for chunk in self._body_chunks():
                stdin.write(chunk)
        except (OSError, ValueError) as exc:
            logger.debug("request body not fully passed to git: %s", exc)
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _relay_response(self, stdout: IO[bytes], stall: bool) -> tuple[int, bool]:
        """Send git http-backend's CGI response to the client.

        Return the status and whether the whole output reached the client.
        """
        self.close_connection = True
        status, headers = _read_cgi_headers(stdout)
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if stall and self._relay_until_pack(stdout):
                self._stalled = True
                self._stall()
                return status, False
            _copy(stdout, self.wfile)
        except OSError as exc:
            logger.debug("client went away during the response: %s", exc)
            return status, False
        return status, True

    def _relay_until_pack(self, stdout: IO[bytes]) -> bool:
        """Relay output up to the end of a pack header, and return whether one came."""
        tail = b""
        while chunk := stdout.read1(_COPY_SIZE):  # type: ignore[attr-defined]
            window = tail + chunk
            start = window.find(_PACK_SIGNATURE)
            if start >= 0:
                end = start + _PACK_HEADER_SIZE - len(tail)
                self.wfile.write(chunk[: max(0, min(len(chunk), end))])
                self.wfile.flush()
                return True
            self.wfile.write(chunk)
            tail = window[-(len(_PACK_SIGNATURE) - 1) :]
        return False

    def _stall(self) -> None:
        """Hold the connection open until the client leaves or time runs out."""
        self.connection.settimeout(0.5)
        deadline = time.monotonic() + self.endpoint.stall_seconds
        closing = self.endpoint.closing
        while time.monotonic() < deadline and not closing.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.5)
            if readable and _peer_closed(self.connection):
                logger.debug("client gave up on a stalled pack")
                return


def _peer_closed(connection: socket.socket) -> bool:
    try:
        return connection.recv(1) == b""
    except (BlockingIOError, TimeoutError, ssl.SSLWantReadError):
        # Data or a partial TLS record arrived, but the connection is open.
        return False
    except OSError:
        return True


def _read_cgi_headers(stdout: IO[bytes]) -> tuple[int, list[tuple[str, str]]]:
    status = 200
    headers: list[tuple[str, str]] = []
    while True:
        line = stdout.readline()
        if line in (b"\r\n", b"\n"):
            return status, headers
        if not line:
            logger.warning("git http-backend ended before its headers")
            return 502, []
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        else:
            headers.append((name.strip(), value.strip()))


def _copy(source: IO[bytes], target: io.BufferedIOBase) -> None:
    while chunk := source.read1(_COPY_SIZE):  # type: ignore[attr-defined]
        target.write(chunk)
    target.flush()


def _read_all(stream: IO[bytes], into: list[bytes]) -> None:
    into.append(stream.read())
