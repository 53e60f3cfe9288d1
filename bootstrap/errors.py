"""Exceptions of studio-bootstrap, each mapped to an exit code by the CLI."""

from __future__ import annotations

from dataclasses import dataclass

# Exit codes: 0 success, 1 runtime or AWS failure, 2 invalid usage or config.
EXIT_FAILURE = 1
EXIT_USAGE = 2


class BootstrapError(Exception):
    """Base class of the errors the CLI reports in one line, without a traceback."""

    exit_code = EXIT_FAILURE


@dataclass(frozen=True)
class ConfigIssue:
    """One broken rule in the config: the field path, the rule and the value."""

    field: str
    rule: str
    value: object

    def __str__(self) -> str:
        return f"{self.field}: {self.rule} (got {self.value!r})"


class ConfigError(BootstrapError):
    """Raised when the config file is missing, unreadable or breaks a rule."""

    exit_code = EXIT_USAGE

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        lines = [f"{source}: {issue}" for issue in issues]
        super().__init__("\n".join(lines))


class ScriptTooLargeError(BootstrapError):
    """Raised when a rendered script exceeds the lifecycle configuration limit."""

    exit_code = EXIT_USAGE


class AwsError(BootstrapError):
    """Raised when an AWS call fails: names the operation, resource and error code."""

    def __init__(self, operation: str, resource: str, code: str, message: str) -> None:
        self.operation = operation
        self.resource = resource
        self.code = code
        super().__init__(f"{operation} failed for {resource}: {code}: {message}")


class ConflictError(BootstrapError):
    """Raised when a default slot belongs to another lifecycle configuration."""


class UsageError(BootstrapError):
    """Raised when command-line options contradict each other or the config."""

    exit_code = EXIT_USAGE


class DeployError(BootstrapError):
    """Raised when a stack change fails or what it made differs from the template."""


class WrongAccountError(BootstrapError):
    """Raised when the credentials given for an account belong to another one."""
