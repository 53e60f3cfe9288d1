"""Samples of wall-clock times and their summary."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Samples:
    """Wall-clock times of repeated runs, in seconds."""

    values: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def minimum(self) -> float:
        return min(self.values)

    @property
    def maximum(self) -> float:
        return max(self.values)

    def __len__(self) -> int:
        return len(self.values)


def timed(function: Callable[[], T]) -> tuple[float, T]:
    """Call a function and return its wall-clock time in seconds and its result."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result
