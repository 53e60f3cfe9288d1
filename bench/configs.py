"""Configs for the benchmarks, built from the example config that the tests load."""

from __future__ import annotations

import copy
import sys
from functools import cache
from pathlib import Path
from typing import Any

from bootstrap.config import Config, parse_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bootstrap.example.toml"


@cache
def _example() -> dict[str, Any]:
    with EXAMPLE.open("rb") as handle:
        return tomllib.load(handle)


def example_data() -> dict[str, Any]:
    """Return a fresh copy of the example config as parsed TOML."""
    return copy.deepcopy(_example())


def single_repository(name: str, role: str, **changes: Any) -> Config:
    """Return the example config for one repository cloned into ~/NAME."""
    data = example_data()
    data["repositories"][0].update(name=name, path=name, role=role, **changes)
    return parse_config(data)
