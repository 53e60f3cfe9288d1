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
    """The destination of calls: the standard options of AWS command lines."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    # Seconds to wait for a domain to be InService again after an update.
    wait_timeout: float = 900.0


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


def make_session(profile: str | None) -> boto3.Session:
    """Build a boto3 session for a named profile, or the default chain."""
    try:
        return boto3.Session(profile_name=profile)
    except botocore.exceptions.ProfileNotFound as exc:
        raise BootstrapError(f"AWS profile not found: {profile}") from exc


class AwsClient:
    """A client of one AWS service whose failures raise AwsError naming the resource."""

    def __init__(
        self,
        session: boto3.Session,
        service: str,
        region: str,
        endpoint_url: str | None = None,
    ) -> None:
        config = BotocoreConfig(
            retries={"mode": "standard", "max_attempts": 8},
            user_agent_extra="studio-bootstrap",
        )
        self.region = region
        self.client = session.client(
            service, region_name=region, endpoint_url=endpoint_url, config=config
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
        """Yield the items under key of every page of a NextToken list operation."""
        token = None
        while True:
            page_args = dict(kwargs, NextToken=token) if token else kwargs
            page = self.call(operation, resource, **page_args)
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return

    def marker_pages(
        self, operation: str, resource: str, key: str, **kwargs: Any
    ) -> Iterator[Any]:
        """Yield the items under key of every page of an IAM list operation.

        IAM pages with ``Marker`` and ``IsTruncated`` rather than ``NextToken``.
        """
        marker = None
        while True:
            page_args = dict(kwargs, Marker=marker) if marker else kwargs
            page = self.call(operation, resource, **page_args)
            yield from page.get(key, [])
            marker = page.get("Marker")
            if not page.get("IsTruncated") or not marker:
                return


class SageMaker(AwsClient):
    """The SageMaker client of the domain's account and region."""

    def __init__(self, options: AwsOptions, default_region: str) -> None:
        session = make_session(options.profile)
        region = options.region or session.region_name or default_region
        super().__init__(session, "sagemaker", region, options.endpoint_url)
        self.wait_timeout = options.wait_timeout


def _snake_case(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
