"""The sandbox's local AWS stack on 127.0.0.1.

``LocalStack`` starts moto in server mode (IAM, STS and the rest of AWS), a
container-credentials endpoint serving account B's execution role, an HTTPS
CodeCommit Git endpoint whose repositories live in account A, and a
CodeArtifact API endpoint, which moto lacks.

moto picks the account of a request from its access key: keys it did not
issue map to 123456789012, keys from STS AssumeRole map to the role's
account. Each account therefore gets an admin session by assuming
``arn:aws:iam::ACCOUNT:role/SandboxAdmin`` from the base test credentials.
"""

from __future__ import annotations

import datetime
import importlib
import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from bootstrap.sandbox.aws import (
    DEFAULT_REGION,
    DOMAIN_ACCOUNT,
    REPOSITORY_ACCOUNT,
    MotoServer,
    SandboxSession,
    make_session,
)
from bootstrap.sandbox.codeartifact import LocalCodeArtifact
from bootstrap.sandbox.codecommit import LocalCodeCommit, Repository
from bootstrap.sandbox.credentials import ContainerCredentialsServer, IssuedCredentials
from bootstrap.sandbox.errors import StackNotStartedError
from bootstrap.sandbox.servers import loopback_tls_context

logger = logging.getLogger(__name__)

BASE_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}
ADMIN_ROLE_NAME = "SandboxAdmin"
ADMIN_SESSION_SECONDS = 12 * 3600

# The container endpoint serves execution-role sessions of one hour.
# NOTE: AWS does not document the session length the SageMaker container
# agent serves, so one hour is an estimate.
EXECUTION_SESSION_SECONDS = 3600

# Role chaining limits a session to one hour, so the repository role's
# maximum session duration is one hour as well.
REPO_ROLE_MAX_SESSION_SECONDS = 3600

SAGEMAKER_EXTENSION = "bootstrap.sandbox.sagemaker"

StackHook = Callable[["LocalStack"], None]


def install_sagemaker_extension(stack: LocalStack) -> None:
    """Call ``install()`` of the SageMaker extension module, if it has one.

    ``install()`` patches moto before its server starts. It runs at every
    stack start, so it must be safe to call more than once per process.
    """
    try:
        module = importlib.import_module(SAGEMAKER_EXTENSION)
    except ModuleNotFoundError as exc:
        if exc.name != SAGEMAKER_EXTENSION:
            raise
        logger.debug("no %s module, moto's SageMaker is used as is", exc.name)
        return
    install = getattr(module, "install", None)
    if install is None:
        logger.debug("%s has no install(), skipping it", SAGEMAKER_EXTENSION)
        return
    install()


class LocalStack:
    """moto, a container-credentials endpoint, a CodeCommit and a CodeArtifact endpoint.

    Use as a context manager, or call start() and stop(). stop() ends every
    thread, subprocess and listening socket the stack started and deletes its
    ``root`` folder (``keep_root=True`` keeps it). Every server listens on
    127.0.0.1 and a free port, so stacks can run side by side.

    ``before_start`` lists hooks called with the stack before moto starts.
    """

    def __init__(
        self,
        *,
        region: str = DEFAULT_REGION,
        authorization_token: str | None = None,
        keep_root: bool = False,
    ) -> None:
        self.region = region
        self.authorization_token = authorization_token
        self.keep_root = keep_root
        self.before_start: list[StackHook] = [install_sagemaker_extension]
        self.execution_role_arn: str | None = None
        self._root: Path | None = None
        self._moto: MotoServer | None = None
        self._credentials: ContainerCredentialsServer | None = None
        self._codecommit: LocalCodeCommit | None = None
        self._codeartifact: LocalCodeArtifact | None = None
        self._admin_credentials: dict[str, dict[str, str]] = {}
        self._admin_lock = threading.Lock()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Lifecycle.

    def start(self) -> None:
        """Start moto, then the credentials, CodeCommit and CodeArtifact endpoints."""
        if self._root is not None:
            raise StackNotStartedError("the stack is already started")
        self._root = self._make_root()
        try:
            for hook in self.before_start:
                hook(self)
            self._moto = MotoServer()
            self._moto.start()
            self._start_credentials()
            self._start_codecommit()
            self._codeartifact = LocalCodeArtifact(self.region)
            self._codeartifact.start()
        except BaseException:
            self.stop()
            raise
        logger.info(
            "local stack started: moto %s, credentials %s, codecommit %s, "
            "codeartifact %s",
            self.endpoint_url,
            self.credentials_url,
            self.codecommit_host,
            self.codeartifact.url,
        )

    def stop(self) -> None:
        """Stop every server and delete the stack's folder."""
        if self._codeartifact is not None:
            self._codeartifact.close()
            self._codeartifact = None
        if self._codecommit is not None:
            self._codecommit.close()
            self._codecommit = None
        if self._credentials is not None:
            self._credentials.close()
            self._credentials = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self._admin_credentials.clear()
        if self._root is not None and not self.keep_root:
            shutil.rmtree(self._root, ignore_errors=True)
        self._root = None

    def _make_root(self) -> Path:
        # Homes live under this folder and uid 1000 must traverse it, so it
        # is 0755 and not under a 0700 folder such as pytest's tmp_path.
        root = Path(tempfile.mkdtemp(prefix="studio-sandbox-"))
        root.chmod(0o755)
        (root / "aws-config").write_text("[default]\n")
        return root

    def _start_credentials(self) -> None:
        self._credentials = ContainerCredentialsServer(
            self._issue_execution_credentials,
            authorization_token=self.authorization_token,
        )
        self._credentials.start()

    def _start_codecommit(self) -> None:
        tls_context = loopback_tls_context(self.ca_path)
        self._codecommit = LocalCodeCommit(
            self.root / "codecommit",
            tls_context,
            on_create=self._create_moto_repository,
        )
        self._codecommit.start()

    # Endpoints.

    @property
    def root(self) -> Path:
        if self._root is None:
            raise StackNotStartedError("the stack is not started")
        return self._root

    @property
    def endpoint_url(self) -> str:
        """moto's URL, the AWS endpoint of every service."""
        if self._moto is None:
            raise StackNotStartedError("the stack is not started")
        return self._moto.endpoint_url

    @property
    def credentials(self) -> ContainerCredentialsServer:
        if self._credentials is None:
            raise StackNotStartedError("the stack is not started")
        return self._credentials

    @property
    def credentials_url(self) -> str:
        """The URI for ``AWS_CONTAINER_CREDENTIALS_FULL_URI``."""
        return self.credentials.url

    @property
    def codecommit(self) -> LocalCodeCommit:
        if self._codecommit is None:
            raise StackNotStartedError("the stack is not started")
        return self._codecommit

    @property
    def codecommit_host(self) -> str:
        """``127.0.0.1:PORT``, the value for ``CODE_COMMIT_ENDPOINT``."""
        return self.codecommit.host

    @property
    def codeartifact(self) -> LocalCodeArtifact:
        """The CodeArtifact API, whose ``url`` is the API endpoint URL."""
        if self._codeartifact is None:
            raise StackNotStartedError("the stack is not started")
        return self._codeartifact

    @property
    def ca_path(self) -> Path:
        """PEM of the CA behind the CodeCommit certificate (``GIT_SSL_CAINFO``)."""
        return self.root / "ca.pem"

    # Accounts.

    def admin_credentials(self, account: str) -> dict[str, str]:
        """Return an admin session of ``account`` as AWS_* environment variables."""
        credentials = self._admin_session_credentials(account)
        return {
            "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": credentials["aws_session_token"],
        }

    def session(
        self, account: str = DOMAIN_ACCOUNT, region: str | None = None
    ) -> SandboxSession:
        """Return a boto3 session with admin rights in ``account``, aimed at moto."""
        return self.credentials_session(
            self._admin_session_credentials(account), region
        )

    def credentials_session(
        self, credentials: dict[str, str], region: str | None = None
    ) -> SandboxSession:
        """Return a boto3 session aimed at moto with the given credentials.

        ``credentials`` has boto3's keyword names: ``aws_access_key_id``,
        ``aws_secret_access_key`` and optionally ``aws_session_token``.
        """
        return make_session(
            credentials,
            endpoint_url=self.endpoint_url,
            region=region or self.region,
            config_file=self.root / "aws-config",
        )

    def _admin_session_credentials(self, account: str) -> dict[str, str]:
        with self._admin_lock:
            cached = self._admin_credentials.get(account)
            if cached is None:
                cached = self._assume_admin_role(account)
                self._admin_credentials[account] = cached
            return cached

    def _assume_admin_role(self, account: str) -> dict[str, str]:
        if not (account.isdigit() and len(account) == 12):
            raise ValueError(f"invalid account {account!r}: expected 12 digits")
        sts = self.credentials_session(BASE_CREDENTIALS).client("sts")
        response = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE_NAME}",
            RoleSessionName="sandbox-admin",
            DurationSeconds=ADMIN_SESSION_SECONDS,
        )
        logger.debug("assumed %s in account %s", ADMIN_ROLE_NAME, account)
        return _boto3_credentials(response["Credentials"])

    # IAM.

    def create_execution_role(self, name: str = "StudioExecutionRole") -> str:
        """Create (or reuse) the execution role in account B and serve it.

        The container-credentials endpoint serves this role from now on.
        """
        trust = _trust_policy({"Service": "sagemaker.amazonaws.com"})
        permissions = _allow(
            "sts:AssumeRole", f"arn:aws:iam::{REPOSITORY_ACCOUNT}:role/*"
        )
        arn = self._ensure_role(DOMAIN_ACCOUNT, name, trust, permissions)
        self.execution_role_arn = arn
        self.credentials.role_arn = arn
        return arn

    def create_repo_role(
        self,
        name: str = "CrossAccountRepoRole",
        trusted_arns: list[str] | tuple[str, ...] = (),
    ) -> str:
        """Create (or update) the repository role in account A and return its ARN.

        Its trust policy names ``trusted_arns`` as the principals that may
        assume it.
        """
        if not trusted_arns:
            raise ValueError("create_repo_role needs at least one trusted ARN")
        trust = _trust_policy({"AWS": list(trusted_arns)})
        permissions = _allow(
            ["codecommit:GitPull", "codecommit:GitPush"],
            f"arn:aws:codecommit:*:{REPOSITORY_ACCOUNT}:*",
        )
        return self._ensure_role(REPOSITORY_ACCOUNT, name, trust, permissions)

    def _ensure_role(
        self, account: str, name: str, trust: str, permissions: str
    ) -> str:
        iam = self.session(account).client("iam")
        try:
            role = iam.get_role(RoleName=name)["Role"]
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
            logger.debug("role %s exists in %s, trust policy updated", name, account)
        except iam.exceptions.NoSuchEntityException:
            role = iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=trust,
                MaxSessionDuration=REPO_ROLE_MAX_SESSION_SECONDS,
            )["Role"]
            logger.debug("created role %s in %s", name, account)
        iam.put_role_policy(
            RoleName=name, PolicyName="sandbox", PolicyDocument=permissions
        )
        return str(role["Arn"])

    # Callbacks of the endpoints.

    def _issue_execution_credentials(self, role_arn: str) -> IssuedCredentials:
        sts = self.session(DOMAIN_ACCOUNT).client("sts")
        response = sts.assume_role(
            RoleArn=role_arn,
            RoleSessionName="SageMaker",
            DurationSeconds=EXECUTION_SESSION_SECONDS,
        )
        credentials = response["Credentials"]
        expiration: datetime.datetime = credentials["Expiration"]
        return IssuedCredentials(
            access_key_id=credentials["AccessKeyId"],
            secret_access_key=credentials["SecretAccessKey"],
            session_token=credentials["SessionToken"],
            expiration=expiration,
            role_arn=role_arn,
        )

    def _create_moto_repository(self, repository: Repository) -> None:
        client = self.session(repository.account, repository.region).client(
            "codecommit"
        )
        try:
            client.create_repository(repositoryName=repository.name)
        except client.exceptions.RepositoryNameExistsException:
            # moto's state is shared by every stack of this process.
            logger.debug("moto already has repository %s", repository.name)


def _boto3_credentials(credentials: dict[str, Any]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def _trust_policy(principal: dict[str, Any]) -> str:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _allow(actions: str | list[str], resource: str) -> str:
    statement = {"Effect": "Allow", "Action": actions, "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})
