"""moto in server mode as the sandbox's AWS endpoint, and lookups in its state.

moto keeps its state in process-wide backends, so every moto server started
in one Python process serves the same IAM roles and STS sessions. The
lookups below read those backends directly, which is how the local CodeCommit
endpoint checks the keys that moto's STS issued.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from moto.iam.models import get_account_id_from
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)
from moto.sts.models import sts_backends
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from bootstrap.sandbox.servers import (
    LOOPBACK,
    SHUTDOWN_POLL_SECONDS,
    ConnectionTrackingMixin,
)

logger = logging.getLogger(__name__)

# The Studio domain and its execution role are in account B. The CodeCommit
# repository and the role that may read it are in account A.
DOMAIN_ACCOUNT = "222222222222"
REPOSITORY_ACCOUNT = "111111111111"
DEFAULT_REGION = "eu-west-1"

# moto maps keys it did not issue to this account.
MOTO_DEFAULT_ACCOUNT = "123456789012"
MOTO_PARTITION = "aws"


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler with its access log sent to this module's logger."""

    def log(self, type: str, message: str, *args: Any) -> None:
        logger.debug("moto %s: " + message, type, *args)


class _TrackedWSGIServer(ConnectionTrackingMixin, ThreadedWSGIServer):
    """werkzeug's threaded server whose close() ends keep-alive connections."""


class MotoServer(ThreadedMotoServer):
    """moto's threaded server on 127.0.0.1 and a free port.

    moto's own ``stop()`` neither ends keep-alive connections nor closes the
    listening socket, so this class builds the werkzeug server itself.
    NOTE: ``_server_entry`` overrides a private method of moto 5.2.1; check
    it when moto is upgraded.
    """

    def __init__(self) -> None:
        super().__init__(ip_address=LOOPBACK, port=0, verbose=False)

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = _TrackedWSGIServer(
            LOOPBACK, 0, app, handler=_QuietRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever(poll_interval=SHUTDOWN_POLL_SECONDS)

    @property
    def endpoint_url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        server = self._server
        if not isinstance(server, _TrackedWSGIServer):
            return
        server.closing.set()
        server.shutdown()
        server.shutdown_connections()
        if self._thread is not None:
            self._thread.join()
        server.server_close()
        self._server = None


class SandboxSession(boto3.Session):
    """A boto3 session whose clients and resources default to one endpoint.

    Clients ignore proxy environment variables: the endpoint is on loopback.
    """

    def __init__(self, *, endpoint_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint_url = endpoint_url

    def client(self, *args: Any, **kwargs: Any) -> Any:
        return super().client(*args, **self._with_defaults(kwargs))

    def resource(self, *args: Any, **kwargs: Any) -> Any:
        return super().resource(*args, **self._with_defaults(kwargs))

    def _with_defaults(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if kwargs.get("endpoint_url") is None:
            kwargs["endpoint_url"] = self.endpoint_url
        # An empty mapping, unlike None, stops botocore reading HTTPS_PROXY.
        no_proxy = Config(proxies={})
        given = kwargs.get("config")
        kwargs["config"] = no_proxy.merge(given) if given is not None else no_proxy
        return kwargs


def make_session(
    credentials: dict[str, str],
    *,
    endpoint_url: str,
    region: str,
    config_file: Path,
) -> SandboxSession:
    """Build a session with explicit credentials and no developer settings.

    ``credentials`` has boto3's keyword names (``aws_access_key_id``, ...).
    ``config_file`` must contain an empty ``[default]`` profile: pointing the
    session at it hides the developer's ``~/.aws`` files and ``AWS_PROFILE``.
    """
    core = botocore.session.Session()
    core.set_config_variable("config_file", str(config_file))
    core.set_config_variable("credentials_file", str(config_file))
    core.set_config_variable("profile", "default")
    return SandboxSession(
        endpoint_url=endpoint_url,
        botocore_session=core,
        region_name=region,
        **credentials,
    )


@dataclass(frozen=True)
class StsSession:
    """Temporary credentials that moto's STS issued for an assumed role."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    role_arn: str
    expiration: datetime.datetime

    def expired(self, now: datetime.datetime) -> bool:
        return now >= self.expiration


def find_sts_session(access_key_id: str) -> StsSession | None:
    """Return the STS session moto issued with this access key, if any."""
    account_id = get_account_id_from(access_key_id)
    backend = sts_backends[account_id][MOTO_PARTITION]
    assumed_role = backend.get_assumed_role_from_access_key(access_key_id)
    if assumed_role is None:
        return None

    # moto stores naive UTC datetimes.
    expiration = assumed_role.expiration.replace(tzinfo=datetime.timezone.utc)
    return StsSession(
        access_key_id=assumed_role.access_key_id,
        secret_access_key=assumed_role.secret_access_key,
        session_token=assumed_role.session_token,
        role_arn=assumed_role.role_arn,
        expiration=expiration,
    )
