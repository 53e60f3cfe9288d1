"""Exceptions of the local Studio sandbox."""

from __future__ import annotations


class SandboxError(Exception):
    """Base class of the errors the sandbox raises."""


class StackNotStartedError(SandboxError):
    """Raised when a LocalStack is used before start() or after stop()."""


class RepositoryNotFoundError(SandboxError, LookupError):
    """Raised when the local CodeCommit endpoint has no repository of that name."""


class GitAuthenticationError(SandboxError):
    """Raised when a request's AWS credentials, signature or permissions fail a check.

    The local CodeCommit Git endpoint and the local CodeArtifact API share
    these checks (``git_auth``).
    """


class StudioImageError(SandboxError):
    """Raised when the toolchain that uid 1000 runs cannot be built or found."""


class BackgroundWorkTimeoutError(SandboxError, TimeoutError):
    """Raised when processes of a sandbox home are still alive after a timeout."""
