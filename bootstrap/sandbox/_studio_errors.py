"""Errors that the local SageMaker returns to clients, one class per AWS code.

Each class carries the error code of the SageMaker API reference in ``code``.
The codes that the service model declares (``ResourceInUse``,
``ResourceNotFound``, ``ResourceLimitExceeded``) reach boto3 as the modeled
exceptions, for example ``client.exceptions.ResourceInUse``.
"""

from __future__ import annotations


class StudioApiError(Exception):
    """Raised by a local SageMaker operation to return an AWS error response."""

    code = "InternalFailure"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(StudioApiError):
    """Raised when a request breaks a constraint of the API."""

    code = "ValidationException"


class ResourceNotFoundError(StudioApiError):
    """Raised when a request names a resource that does not exist."""

    code = "ResourceNotFound"


class ResourceInUseError(StudioApiError):
    """Raised when a resource exists already, is referenced, or is busy."""

    code = "ResourceInUse"


class ResourceLimitExceededError(StudioApiError):
    """Raised when a request would exceed a quota of the account."""

    code = "ResourceLimitExceeded"
