"""A local CodeCommit Git endpoint: bare repositories served over HTTPS.

Clients reach it as git-remote-codecommit does with ``CODE_COMMIT_ENDPOINT``
set to ``host``: ``https://HOST/v1/repos/REPO``. Requests are served only
with CodeCommit Git credentials of an STS session whose role the repository
allows. That role's IAM policies must also allow ``codecommit:GitPull`` on
the repository's ARN, or ``codecommit:GitPush`` for a push (see ``git_auth``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path, PurePosixPath

from bootstrap.sandbox.aws import DEFAULT_REGION, REPOSITORY_ACCOUNT
from bootstrap.sandbox.errors import RepositoryNotFoundError, SandboxError
from bootstrap.sandbox.git_http import CodeCommitRequestHandler
from bootstrap.sandbox.servers import LOOPBACK, LoopbackHTTPServer

logger = logging.getLogger(__name__)

CODECOMMIT_FAULTS = (None, "403", "500", "reset", "stall")

# Repository names as CodeCommit allows them: letters, digits, ".", "_", "-".
_REPOSITORY_NAME = re.compile(r"[\w.-]{1,100}", re.ASCII)

# A stalled response is held open at most this long if the client stays.
DEFAULT_STALL_SECONDS = 300.0

# Commits made by commit() carry this identity and date, so their SHAs
# depend only on content, message and parent.
COMMIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Sandbox Author",
    "GIT_AUTHOR_EMAIL": "author@sandbox.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "Sandbox Author",
    "GIT_COMMITTER_EMAIL": "author@sandbox.invalid",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+0000",
}


@dataclass
class Repository:
    """A repository of the endpoint and who may use it."""

    name: str
    region: str
    account: str
    path: Path
    allowed_role_arns: set[str] = field(default_factory=set)
    fault: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:codecommit:{self.region}:{self.account}:{self.name}"


@dataclass(frozen=True)
class CodeCommitRequest:
    """One request the endpoint received. It contains no secret.

    ``status`` is None when the connection was reset without a response.
    ``role_arn`` is the role of the STS session whose access key was sent,
    once that key was found.
    """

    repository: str | None
    method: str
    service: str | None
    access_key_id: str | None
    role_arn: str | None
    status: int | None
    reason: str | None
    fault: str | None


class LocalCodeCommit:
    """Bare repositories under ``root`` and the HTTPS server in front of them.

    ``on_create(repository)``, when given, is called for each new repository
    (the stack uses it to create the repository in moto as well).
    """

    def __init__(
        self,
        root: Path,
        tls_context: ssl.SSLContext,
        *,
        on_create: Callable[[Repository], None] | None = None,
    ) -> None:
        self.root = root
        self.stall_seconds = DEFAULT_STALL_SECONDS
        self.requests: list[CodeCommitRequest] = []
        self._on_create = on_create
        self._repositories: dict[str, Repository] = {}
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._git = _find_git()
        self._home = root / "git-home"
        self._server = LoopbackHTTPServer(_handler_for(self), tls_context)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, for ``CODE_COMMIT_ENDPOINT``."""
        return f"{LOOPBACK}:{self._server.port}"

    @property
    def closing(self) -> threading.Event:
        return self._server.closing

    def start(self) -> None:
        (self.root / "repos").mkdir(parents=True, exist_ok=True)
        self._home.mkdir(parents=True, exist_ok=True)
        self._server.start()
        logger.debug("codecommit endpoint listening at https://%s", self.host)

    def close(self) -> None:
        self.closing.set()
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            process.kill()
        self._server.close()

    # Repositories.

    def create_repository(
        self,
        name: str,
        region: str = DEFAULT_REGION,
        allowed_role_arns: list[str] | tuple[str, ...] = (),
        account: str = REPOSITORY_ACCOUNT,
    ) -> Repository:
        """Create an empty bare repository whose default branch is ``main``."""
        if not _REPOSITORY_NAME.fullmatch(name) or name in (".", ".."):
            raise ValueError(
                f"invalid repository name {name!r}: expected 1 to 100 letters, "
                "digits, '.', '_' or '-'"
            )
        path = self.root / "repos" / name
        repository = Repository(name, region, account, path, set(allowed_role_arns))
        with self._lock:
            if name in self._repositories:
                raise ValueError(f"repository {name} already exists")
            self._repositories[name] = repository
        try:
            self._run_git(
                ["init", "--quiet", "--bare", "--initial-branch=main", str(path)]
            )
        except SandboxError:
            with self._lock:
                del self._repositories[name]
            raise
        if self._on_create is not None:
            self._on_create(repository)
        logger.debug("created repository %s in %s", name, region)
        return repository

    def repository(self, name: str) -> Repository:
        repository = self.find_repository(name)
        if repository is None:
            raise RepositoryNotFoundError(f"repository {name} not found")
        return repository

    def find_repository(self, name: str) -> Repository | None:
        with self._lock:
            return self._repositories.get(name)

    def path(self, name: str) -> Path:
        return self.repository(name).path

    def allow_role(self, name: str, role_arn: str) -> None:
        self.repository(name).allowed_role_arns.add(role_arn)

    def set_fault(self, name: str, fault: str | None) -> None:
        """Break one repository on purpose: "403", "500", "reset" or "stall".

        "reset" closes the connection with a TCP reset after the credentials
        check. "stall" sends the response up to the start of a pack, then
        keeps the connection open until the client leaves or
        ``stall_seconds`` pass. None restores normal service.
        """
        if fault not in CODECOMMIT_FAULTS:
            raise ValueError(
                f"invalid CodeCommit fault {fault!r}: expected one of "
                f"{CODECOMMIT_FAULTS}"
            )
        self.repository(name).fault = fault

    def commit(
        self,
        name: str,
        files: Mapping[str, str | bytes],
        message: str,
        branch: str = "main",
    ) -> str:
        """Commit files on top of ``branch`` in the bare repository and return the SHA.

        Files not named keep their content from the branch's last commit.
        """
        git_dir = self.path(name)
        parent = self._resolve(git_dir, f"refs/heads/{branch}")
        with tempfile.TemporaryDirectory(dir=self.root) as scratch:
            work_tree = Path(scratch) / "work"
            work_tree.mkdir()
            environment = {
                "GIT_DIR": str(git_dir),
                "GIT_WORK_TREE": str(work_tree),
                "GIT_INDEX_FILE": str(Path(scratch) / "index"),
                **COMMIT_IDENTITY,
            }
            if parent is not None:
                self._run_git(["read-tree", parent], environment)
            _write_files(work_tree, files)
            self._run_git(["add", "--force", "--", *files], environment, work_tree)
            tree = self._run_git(["write-tree"], environment)
            parents = ["-p", parent] if parent is not None else []
            sha = self._run_git(
                ["commit-tree", tree, *parents, "-m", message], environment
            )
        old = parent if parent is not None else "0" * 40
        self._run_git(
            ["update-ref", f"refs/heads/{branch}", sha, old], {"GIT_DIR": str(git_dir)}
        )
        logger.debug("committed %s on %s of %s", sha, branch, name)
        return sha

    def head(self, name: str, branch: str = "main") -> str:
        """Return the SHA that ``branch`` points to."""
        sha = self._resolve(self.path(name), f"refs/heads/{branch}")
        if sha is None:
            raise RepositoryNotFoundError(f"repository {name} has no branch {branch}")
        return sha

    def _resolve(self, git_dir: Path, ref: str) -> str | None:
        result = subprocess.run(
            [self._git, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            env={**self._git_environment(), "GIT_DIR": str(git_dir)},
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else None

    def _run_git(
        self,
        arguments: list[str],
        extra_environment: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> str:
        result = subprocess.run(
            [self._git, *arguments],
            env={**self._git_environment(), **(extra_environment or {})},
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SandboxError(
                f"git {arguments[0]} failed with exit code {result.returncode}: "
                f"{result.stderr.strip()}"
            )
        return result.stdout.strip()

    def _git_environment(self) -> dict[str, str]:
        """Return an environment free of the developer's Git and AWS settings."""
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self._home),
            "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    # Used by the request handler.

    def record(self, **fields: object) -> None:
        self.requests.append(CodeCommitRequest(**fields))  # type: ignore[arg-type]

    def cgi_environment(
        self,
        *,
        repository: Repository,
        path_info: str,
        method: str,
        query: str,
        headers: Message,
        remote_user: str,
    ) -> dict[str, str]:
        """Return the CGI variables for ``git http-backend``."""
        environment = {
            **self._git_environment(),
            "GIT_PROJECT_ROOT": str(repository.path.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            # Pushes are allowed because the handler has checked the credentials.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": method,
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "REMOTE_USER": remote_user,
            "REMOTE_ADDR": LOOPBACK,
            "CONTENT_TYPE": headers.get("Content-Type", ""),
        }
        if headers.get("Content-Length"):
            environment["CONTENT_LENGTH"] = headers["Content-Length"]
        # git http-backend inflates gzip bodies itself and reads the protocol
        # version (v2) from the Git-Protocol header.
        for header in ("Content-Encoding", "Git-Protocol"):
            if headers.get(header):
                name = "HTTP_" + header.upper().replace("-", "_")
                environment[name] = headers[header]
        return environment

    @contextlib.contextmanager
    def backend_process(
        self, environment: Mapping[str, str]
    ) -> Iterator[subprocess.Popen[bytes]]:
        """Run ``git http-backend``, which close() kills if it still runs."""
        process = subprocess.Popen(
            [self._git, "http-backend"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(environment),
        )
        with self._lock:
            self._processes.add(process)
        try:
            yield process
        finally:
            with self._lock:
                self._processes.discard(process)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


def _handler_for(endpoint: LocalCodeCommit) -> type[CodeCommitRequestHandler]:
    class Handler(CodeCommitRequestHandler):
        pass

    Handler.endpoint = endpoint
    return Handler


def _find_git() -> str:
    git = shutil.which("git", path="/usr/local/bin:/usr/bin:/bin")
    if git is None:
        raise SandboxError("git not found in /usr/local/bin, /usr/bin or /bin")
    return git


def _write_files(work_tree: Path, files: Mapping[str, str | bytes]) -> None:
    for name, content in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"invalid file path {name!r}: expected a relative path")
        target = work_tree / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        target.write_bytes(content)
