"""Limits and patterns of the SageMaker API, read from botocore's service model.

botocore checks only minimums on the client, so maximums and patterns are
checked here before any call.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from botocore.loaders import Loader


@functools.cache
def _shapes() -> dict[str, Any]:
    model = Loader().load_service_model("sagemaker", "service-2")
    return dict(model["shapes"])


def max_length(shape: str) -> int:
    """Return the maximum length of a string shape of the SageMaker model."""
    return int(_shapes()[shape]["max"])


def pattern(shape: str) -> re.Pattern[str]:
    """Return the pattern of a string shape, anchored to match the whole value."""
    return re.compile(rf"(?:{_shapes()[shape]['pattern']})\Z")


def enum(shape: str) -> list[str]:
    """Return the allowed values of an enum shape."""
    return list(_shapes()[shape]["enum"])
