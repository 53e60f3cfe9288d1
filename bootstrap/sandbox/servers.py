"""Threaded servers on loopback that leave no thread, socket or port behind."""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import ssl
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

# How often a serving loop checks for shutdown, which bounds how long close()
# takes.
SHUTDOWN_POLL_SECONDS = 0.05

# How long closing a TLS connection waits for the client's close_notify.
_TLS_CLOSE_SECONDS = 2.0


class ConnectionTrackingMixin:
    """Track accepted connections so that close() can end keep-alive handlers.

    Mixed into a ``socketserver.ThreadingMixIn`` server. Handler threads are
    not daemons, so ``server_close()`` joins them: close() first shuts down
    every open connection, which ends handlers blocked on a read.
    """

    daemon_threads = False
    block_on_close = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.closing = threading.Event()
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()  # type: ignore[misc]
        connection = self.prepare_connection(connection)
        with self._connections_lock:
            self._connections.add(connection)
        return connection, address

    def prepare_connection(self, connection: socket.socket) -> socket.socket:
        """Return the socket to hand to the handler (a hook for TLS)."""
        return connection

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)  # type: ignore[misc]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away while the server closes is expected.
        level = logging.DEBUG if self.closing.is_set() else logging.WARNING
        logger.log(level, "request from %s failed", client_address, exc_info=True)

    def shutdown_connections(self) -> None:
        """Shut down every open connection so its handler thread returns."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # The handler or the client may have closed it already.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class LoopbackHTTPServer(ConnectionTrackingMixin, ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1, optionally serving TLS.

    With a TLS context, each connection is wrapped as it is accepted and the
    handshake runs in the handler thread (see ``TLSHandshakeMixin``), so a
    slow client cannot block the accept loop.
    """

    def __init__(
        self,
        handler: type[socketserver.BaseRequestHandler],
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.tls_context = tls_context
        super().__init__((LOOPBACK, 0), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def prepare_connection(self, connection: socket.socket) -> socket.socket:
        if self.tls_context is None:
            return connection
        return self.tls_context.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        )

    def shutdown_request(self, request: Any) -> None:
        # Responses without a length end at the close of the connection, and
        # GnuTLS (git's TLS library on Debian) reports an error unless a TLS
        # close_notify comes first.
        if isinstance(request, ssl.SSLSocket) and request.fileno() != -1:
            try:
                request.settimeout(_TLS_CLOSE_SECONDS)
                request.unwrap()
            except (OSError, ValueError):
                logger.debug("TLS close_notify not exchanged", exc_info=True)
        super().shutdown_request(request)

    def start(self) -> None:
        """Serve in a background thread until close()."""
        name = f"{type(self).__name__}-{self.port}"
        self._thread = threading.Thread(
            target=self.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), name=name
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving, end open connections and join every thread."""
        self.closing.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.shutdown_connections()
        self.server_close()


class TLSHandshakeMixin:
    """Run the TLS handshake of an accepted connection in its handler thread."""

    request: Any

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(getattr(self, "timeout", None))
            self.request.do_handshake()
        super().setup()  # type: ignore[misc]


def loopback_tls_context(ca_path: Path) -> ssl.SSLContext:
    """Return a server context for 127.0.0.1 and localhost from a new test CA.

    The CA's certificate is written to ``ca_path`` (for ``GIT_SSL_CAINFO``).
    """
    authority = trustme.CA()
    certificate = authority.issue_cert(LOOPBACK, "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    authority.cert_pem.write_to_path(str(ca_path))
    ca_path.chmod(0o644)
    return context
