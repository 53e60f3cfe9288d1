"""Test controls of the local SageMaker: call log, injected errors, timing.

All controls are process-wide, like moto's backends: every moto server
started in this process shares them.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

from moto.sagemaker.models import sagemaker_backends

from ._studio_validation import service_model

# One lock serialises every SageMaker request, app start result and control
# change, because moto's backends are not thread-safe and the threaded
# server handles requests concurrently.
STATE_LOCK = threading.RLock()

DEFAULT_UPDATE_DELAY = 0.3

# Operations whose names start with these prefixes only read state; every
# other operation, including AddTags and DeleteTags, counts as mutating.
_READ_PREFIXES = ("Describe", "List", "Get", "Search", "Query")


@dataclass(frozen=True)
class CallLog:
    """Counts of SageMaker requests received, split into mutating and reads."""

    mutating: dict[str, int] = field(default_factory=dict)
    reads: dict[str, int] = field(default_factory=dict)

    @property
    def mutating_total(self) -> int:
        return sum(self.mutating.values())

    @property
    def reads_total(self) -> int:
        return sum(self.reads.values())

    def count(self, operation: str) -> int:
        """Return how many requests for ``operation`` were received."""
        return self.mutating.get(operation, 0) + self.reads.get(operation, 0)

    def to_json(self) -> dict[str, object]:
        return {
            "mutating": dict(self.mutating),
            "reads": dict(self.reads),
            "mutating_total": self.mutating_total,
            "reads_total": self.reads_total,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> CallLog:
        mutating = data.get("mutating", {})
        reads = data.get("reads", {})
        if not isinstance(mutating, dict) or not isinstance(reads, dict):
            raise ValueError(f"invalid call log document: {data!r}")
        return cls(
            mutating={str(k): int(v) for k, v in mutating.items()},
            reads={str(k): int(v) for k, v in reads.items()},
        )


@dataclass(frozen=True)
class InjectedError:
    """An AWS error that the next request for ``operation`` returns."""

    operation: str
    code: str
    message: str
    http_status: int

    def to_json(self) -> dict[str, object]:
        return {
            "operation": self.operation,
            "code": self.code,
            "message": self.message,
            "http_status": self.http_status,
        }


_calls: Counter[str] = Counter()
_injected: dict[str, deque[InjectedError]] = {}
_held_domains: set[str] = set()
_update_delay = DEFAULT_UPDATE_DELAY


def is_mutating(operation: str) -> bool:
    return not operation.startswith(_READ_PREFIXES)


def record_call(operation: str) -> None:
    with STATE_LOCK:
        _calls[operation] += 1


def call_log() -> CallLog:
    """Return the counts of SageMaker requests received since the last reset."""
    with STATE_LOCK:
        mutating = {op: n for op, n in sorted(_calls.items()) if is_mutating(op)}
        reads = {op: n for op, n in sorted(_calls.items()) if not is_mutating(op)}
    return CallLog(mutating=mutating, reads=reads)


def reset_call_log() -> None:
    """Forget every counted request."""
    with STATE_LOCK:
        _calls.clear()


def inject_error(
    operation: str,
    code: str,
    message: str = "Error injected by the local SageMaker.",
    times: int = 1,
    http_status: int = 400,
) -> None:
    """Make the next ``times`` requests for ``operation`` fail with ``code``.

    ``operation`` is the API name, such as ``UpdateDomain``. Errors queue in
    order, so two calls inject two batches that apply one after the other.
    botocore retries ``ThrottlingException`` sent with HTTP 400, and any code
    sent with HTTP 500, 502, 503 or 504.
    """
    if operation not in service_model().operation_names:
        raise ValueError(
            f"unknown SageMaker operation {operation!r}: expected an API name "
            "such as 'UpdateDomain'"
        )
    if times < 1:
        raise ValueError(f"times must be at least 1, got {times}")
    if not 400 <= http_status <= 599:
        raise ValueError(f"http_status must be from 400 to 599, got {http_status}")
    error = InjectedError(operation, code, message, http_status)
    with STATE_LOCK:
        _injected.setdefault(operation, deque()).extend([error] * times)


def take_injected_error(operation: str) -> InjectedError | None:
    with STATE_LOCK:
        queue = _injected.get(operation)
        if not queue:
            return None
        return queue.popleft()


def pending_injected_errors() -> list[InjectedError]:
    """Return the injected errors not yet returned, in order."""
    with STATE_LOCK:
        return [error for queue in _injected.values() for error in queue]


def clear_injected_errors() -> None:
    with STATE_LOCK:
        _injected.clear()


def hold_domain_updating(domain_id: str) -> None:
    """Keep ``domain_id`` in status ``Updating`` until it is released.

    The hold applies to a domain created later with that ID too.
    """
    with STATE_LOCK:
        _held_domains.add(domain_id)


def release_domain_updating(domain_id: str) -> None:
    """End a hold, so the domain reaches ``InService`` as after any update."""
    with STATE_LOCK:
        _held_domains.discard(domain_id)


def is_domain_held(domain_id: str) -> bool:
    with STATE_LOCK:
        return domain_id in _held_domains


def set_update_delay(seconds: float) -> float:
    """Set how long an updated resource stays ``Updating``; return the old value."""
    global _update_delay
    if seconds < 0:
        raise ValueError(f"the update delay must not be negative, got {seconds}")
    with STATE_LOCK:
        previous, _update_delay = _update_delay, float(seconds)
    return previous


def update_delay() -> float:
    with STATE_LOCK:
        return _update_delay


def clear_controls() -> None:
    """Clear the call log, injected errors and domain holds."""
    with STATE_LOCK:
        _calls.clear()
        _injected.clear()
        _held_domains.clear()


def reset() -> None:
    """Delete every SageMaker resource in this process and clear the controls.

    Other moto services keep their state. The app start hook and the update
    delay are configuration, not state, so they stay as set.
    """
    with STATE_LOCK:
        # BackendDict.reset() is a class method that resets every moto
        # service, so reset the SageMaker backends of each account instead.
        for account_backends in list(sagemaker_backends.values()):
            account_backends.reset()
        clear_controls()
