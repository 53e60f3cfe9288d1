"""boto3 sessions and calls, with AWS failures turned into one-line errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config as BotocoreConfig

from bootstrap.errors import AwsError, BootstrapError

logger = logging.getLogger(__name__)

# Calls whose names start with these change something.
MUTATING_PREFIXES = ("Create", "Update", "Delete", "Add", "Put", "Attach", "Detach")


@dataclass
class AwsOptions:
    """Where to send calls: the standard options of AWS command lines."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None


@dataclass
class CallCounter:
    """Counts the calls made by this process, mutating and reading."""

    calls: list[str] = field(default_factory=list)

    @property
    def mutating(self) -> list[str]:
        return [name for name in self.calls if name.startswith(MUTATING_PREFIXES)]

    @property
    def reading(self) -> list[str]:
        return [name for name in self.calls if not name.startswith(MUTATING_PREFIXES)]


class SageMaker:
    """A SageMaker client whose failures raise AwsError naming the resource."""

    def __init__(self, options: AwsOptions, default_region: str) -> None:
        try:
            session = boto3.Session(profile_name=options.profile)
        except botocore.exceptions.ProfileNotFound as exc:
            raise BootstrapError(f"AWS profile not found: {options.profile}") from exc
        config = BotocoreConfig(
            retries={"mode": "standard", "max_attempts": 8},
            user_agent_extra="studio-bootstrap",
        )
        self.region = options.region or session.region_name or default_region
        self.client = session.client(
            "sagemaker",
            region_name=self.region,
            endpoint_url=options.endpoint_url,
            config=config,
        )
        self.counter = CallCounter()

    def call(self, operation: str, resource: str, **kwargs: Any) -> dict[str, Any]:
        """Call an operation by its API name; raise AwsError when it fails."""
        method: Callable[..., dict[str, Any]] = getattr(
            self.client, _snake_case(operation)
        )
        self.counter.calls.append(operation)
        logger.debug("%s %s", operation, resource)
        try:
            return method(**kwargs)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise AwsError(
                operation,
                resource,
                str(error.get("Code", "Unknown")),
                str(error.get("Message", "")),
            ) from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise AwsError(operation, resource, "NoCredentials", str(exc)) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise AwsError(operation, resource, type(exc).__name__, str(exc)) from exc

    def pages(
        self, operation: str, resource: str, key: str, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Yield the items under key of every page of a list operation."""
        token = None
        while True:
            page_args = dict(kwargs, NextToken=token) if token else kwargs
            page = self.call(operation, resource, **page_args)
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return


def _snake_case(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
