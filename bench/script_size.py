"""Size of the rendered lifecycle script against the limit of the API."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from bench.configs import example_data
from bootstrap.config import parse_config
from bootstrap.render import (
    CONTENT_LIMIT,
    RenderedScript,
    compress,
    minify,
    pack,
    render_all,
    script_parts,
)

REPOSITORY_COUNTS = (1, 5, 10, 20)


@dataclass(frozen=True)
class ScriptSize:
    """Sizes of the largest script of the four app types, for one repository count."""

    repositories: int
    source_bytes: int
    packed_bytes: int
    base64_characters: int

    @property
    def fits(self) -> bool:
        return self.base64_characters <= CONTENT_LIMIT


def repository_table(count: int) -> list[dict[str, str]]:
    """Return ``count`` repository tables with names of a realistic length.

    Each gets its own role and branch, so that no value is shared and the
    script grows as a real config with that many repositories would.
    """
    return [
        {
            "name": f"team-analytics-models-{index:02d}",
            "account_id": "111111111111",
            "role": f"StudioRepoReader{index:02d}",
            "branch": "main",
            "transport": "codecommit",
        }
        for index in range(1, count + 1)
    ]


def largest_script(repositories: int) -> RenderedScript:
    """Render the four app types for a repository count; return the largest."""
    data = example_data()
    data["repositories"] = repository_table(repositories)
    scripts = render_all(parse_config(data))
    return max(scripts, key=lambda script: len(script.encoded))


def measure_sizes() -> list[ScriptSize]:
    sizes = []
    for count in REPOSITORY_COUNTS:
        largest = largest_script(count)
        sizes.append(
            ScriptSize(
                repositories=count,
                source_bytes=len(largest.source.encode()),
                packed_bytes=len(largest.content),
                base64_characters=len(largest.encoded),
            )
        )
    return sizes


@dataclass(frozen=True)
class PartCost:
    """The base64 characters a part of the script costs once packed."""

    name: str
    source_bytes: int
    base64_characters: int


def measure_part_costs(repositories: int, count: int = 8) -> list[PartCost]:
    """Pack the largest script without each part in turn; return the costliest.

    A part's cost is how many base64 characters the packed script loses
    when that part is cut out, so it counts what gzip cannot share with the
    rest of the program.
    """
    source = largest_script(repositories).source
    full = _encoded_length(source)
    costs = []
    for name, start, end in script_parts(source):
        without = source[:start] + source[end:]
        costs.append(PartCost(name, end - start, full - _encoded_length(without)))
    costs.sort(key=lambda cost: -cost.base64_characters)
    return costs[:count]


def _encoded_length(source: str) -> int:
    return len(base64.b64encode(pack(source, strict=False).encode()))


@dataclass(frozen=True)
class Packing:
    """The make-up of the packed script of one config, in bytes and characters."""

    minified_bytes: int
    gzip_bytes: int
    payload_characters: int
    script_bytes: int
    base64_characters: int


def measure_packing(repositories: int) -> Packing:
    """Measure each stage: minify, gzip, base64 in the script, base64 for the API."""
    script = largest_script(repositories)
    minified = minify(script.source).encode()
    compressed = compress(minified)
    return Packing(
        minified_bytes=len(minified),
        gzip_bytes=len(compressed),
        payload_characters=len(base64.b64encode(compressed)),
        script_bytes=len(script.content),
        base64_characters=len(script.encoded),
    )
