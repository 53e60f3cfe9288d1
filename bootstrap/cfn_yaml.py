"""Write CloudFormation templates as YAML, byte for byte the same on every run.

The templates hold only mappings, lists, strings, integers, booleans and the
short forms of ``Ref`` and ``Fn::GetAtt``, so a small writer covers them and
the tool needs no YAML library. Every string is double-quoted with JSON's
escapes, which YAML's double-quoted style also reads, so no value can turn
into a number, a date, a boolean or a tag. A ``Literal`` (inline code) is
written as a literal block instead, which YAML reads byte for byte. Mapping
keys are written plain when they are letters and digits and no YAML boolean
or null word, and quoted otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

INDENT = "  "
_PLAIN_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")
# Plain words that YAML 1.1 readers (PyYAML, CloudFormation's) turn into
# booleans or null, so a key spelled like one of them is quoted.
_RESERVED_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


@dataclass(frozen=True)
class Ref:
    """``!Ref NAME``: the physical id of a resource of the same template."""

    logical_id: str


@dataclass(frozen=True)
class GetAtt:
    """``!GetAtt NAME.ATTRIBUTE``: an attribute of a resource of the template."""

    logical_id: str
    attribute: str


@dataclass(frozen=True)
class Literal:
    """A multi-line string written as a YAML literal block (``|``), line for line.

    The text must end with one newline, contain no carriage return or other
    control character but tab, and not start with a space, so that the block
    needs neither a chomping nor an indentation indicator.
    """

    text: str

    def __post_init__(self) -> None:
        if not self.text.endswith("\n") or self.text.endswith("\n\n"):
            raise ValueError("a literal block must end with exactly one newline")
        if self.text.startswith((" ", "\n")):
            raise ValueError(
                "a literal block must not start with a space or blank line"
            )
        if any(ord(c) < 0x20 and c not in "\t\n" for c in self.text):
            raise ValueError("a literal block cannot contain control characters")


def dump(document: Mapping[str, object], header: Sequence[str] = ()) -> str:
    """Return the YAML text of a template, with header lines as comments."""
    lines = [f"# {line}".rstrip() for line in header]
    lines += _mapping(document, 0)
    return "\n".join(lines) + "\n"


def _mapping(mapping: Mapping[str, object], depth: int) -> list[str]:
    indent = INDENT * depth
    lines: list[str] = []
    for key, value in mapping.items():
        plain = _PLAIN_KEY.match(key) and key.lower() not in _RESERVED_WORDS
        name = key if plain else _quote(key)
        if isinstance(value, Literal):
            lines.append(f"{indent}{name}: |")
            lines += _block_lines(value, depth + 1)
        elif _is_scalar(value):
            lines.append(f"{indent}{name}: {_scalar(value)}")
        elif not value:
            lines.append(f"{indent}{name}: {'{}' if isinstance(value, dict) else '[]'}")
        elif isinstance(value, Mapping):
            lines.append(f"{indent}{name}:")
            lines += _mapping(value, depth + 1)
        else:
            lines.append(f"{indent}{name}:")
            lines += _sequence(_as_sequence(value), depth + 1)
    return lines


def _sequence(items: Sequence[object], depth: int) -> list[str]:
    indent = INDENT * depth
    lines: list[str] = []
    for item in items:
        if _is_scalar(item):
            lines.append(f"{indent}- {_scalar(item)}")
        elif isinstance(item, Mapping) and item:
            # The first key shares the line of the dash, and the rest align with it.
            nested = _mapping(item, depth + 1)
            lines.append(f"{indent}- {nested[0].lstrip()}")
            lines += nested[1:]
        else:
            raise TypeError(f"cannot write {item!r} as a list item")
    return lines


def _block_lines(block: Literal, depth: int) -> list[str]:
    # Blank lines stay empty: YAML reads them as newlines of the block.
    indent = INDENT * depth
    return [f"{indent}{line}" if line else "" for line in block.text[:-1].split("\n")]


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | bool | Ref | GetAtt)


def _as_sequence(value: object) -> Sequence[object]:
    if isinstance(value, list | tuple):
        return value
    raise TypeError(f"cannot write {value!r} in a template")


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Ref):
        return f"!Ref {value.logical_id}"
    if isinstance(value, GetAtt):
        return f"!GetAtt {value.logical_id}.{value.attribute}"
    return _quote(str(value))


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
