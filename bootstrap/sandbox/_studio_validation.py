"""Request checks driven by botocore's SageMaker service model.

botocore checks only required members, types and minimums before it sends a
request, so maximums, patterns and enums are checked here, with the limits
read from the service model rather than copied into this code. Messages
follow the form the SageMaker API uses for constraint failures.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape

from ._studio_errors import ValidationError

# Longer values are cut in messages, so a rejected 16 KiB script does not
# fill the error response.
_MAX_SHOWN_VALUE = 80

# Java regular expressions in the model use Unicode categories, which
# Python's re module lacks. These are the ones the model uses.
_UNICODE_CLASS = re.compile(r"\\p\{([LNZ])\}")


@functools.cache
def service_model() -> ServiceModel:
    """Return the SageMaker service model of the installed botocore."""
    return botocore.session.get_session().get_service_model("sagemaker")


def shape(name: str) -> Shape:
    """Return the service model shape called ``name``."""
    return service_model().shape_for(name)


def max_length(shape_name: str) -> int:
    """Return the maximum length the model sets for a string or list shape."""
    return int(shape(shape_name).metadata["max"])


def enum_values(shape_name: str) -> list[str]:
    """Return the values of an enum shape in model order."""
    return list(shape(shape_name).enum)


def matches_pattern(shape_name: str, value: str) -> bool:
    """Return whether ``value`` matches the whole pattern of a string shape."""
    pattern = shape(shape_name).metadata.get("pattern")
    return pattern is None or _compile(pattern).fullmatch(value) is not None


def validate_request(operation: str, params: Mapping[str, Any]) -> None:
    """Check ``params`` against the input shape of ``operation``.

    Raises ValidationError naming every failed constraint, as SageMaker
    does, so one response lists all problems of a request.
    """
    input_shape = service_model().operation_model(operation).input_shape
    if input_shape is None:
        return
    failures: list[str] = []
    _check_structure(input_shape, params, "", failures)
    if failures:
        noun = "error" if len(failures) == 1 else "errors"
        raise ValidationError(
            f"{len(failures)} validation {noun} detected: " + "; ".join(failures)
        )


def _check(shape_: Shape, value: Any, path: str, failures: list[str]) -> None:
    if isinstance(shape_, StructureShape):
        _check_structure(shape_, value, path, failures)
    elif isinstance(shape_, ListShape):
        _check_list(shape_, value, path, failures)
    elif isinstance(shape_, MapShape):
        _check_map(shape_, value, path, failures)
    elif shape_.type_name == "string":
        _check_string(shape_, value, path, failures)
    elif shape_.type_name in ("integer", "long"):
        _check_number(shape_, value, path, failures)


def _check_structure(
    shape_: StructureShape, value: Any, path: str, failures: list[str]
) -> None:
    if not isinstance(value, Mapping):
        failures.append(_failure(value, path, "Member must be a structure"))
        return
    for name in shape_.required_members:
        if value.get(name) is None:
            failures.append(
                f"Value null at '{_join(path, name)}' failed to satisfy "
                "constraint: Member must not be null"
            )
    for name, member_shape in shape_.members.items():
        if value.get(name) is not None:
            _check(member_shape, value[name], _join(path, name), failures)


def _check_list(shape_: ListShape, value: Any, path: str, failures: list[str]) -> None:
    if not isinstance(value, list):
        failures.append(_failure(value, path, "Member must be a list"))
        return
    _check_length(shape_, value, path, failures)
    for index, item in enumerate(value, start=1):
        _check(shape_.member, item, f"{path}.{index}.member", failures)


def _check_map(shape_: MapShape, value: Any, path: str, failures: list[str]) -> None:
    if not isinstance(value, Mapping):
        failures.append(_failure(value, path, "Member must be a map"))
        return
    _check_length(shape_, value, path, failures)
    for key, item in value.items():
        _check(shape_.key, key, f"{path}.key", failures)
        _check(shape_.value, item, f"{path}.{key}", failures)


def _check_string(shape_: Shape, value: Any, path: str, failures: list[str]) -> None:
    if not isinstance(value, str):
        failures.append(_failure(value, path, "Member must be a string"))
        return
    _check_length(shape_, value, path, failures)
    if shape_.enum and value not in shape_.enum:
        constraint = f"Member must satisfy enum value set: [{', '.join(shape_.enum)}]"
        failures.append(_failure(value, path, constraint))
    pattern = shape_.metadata.get("pattern")
    if pattern is not None and _compile(pattern).fullmatch(value) is None:
        constraint = f"Member must satisfy regular expression pattern: {pattern}"
        failures.append(_failure(value, path, constraint))


def _check_number(shape_: Shape, value: Any, path: str, failures: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        failures.append(_failure(value, path, "Member must be an integer"))
        return
    minimum = shape_.metadata.get("min")
    maximum = shape_.metadata.get("max")
    if minimum is not None and value < minimum:
        constraint = f"Member must have value greater than or equal to {minimum}"
        failures.append(_failure(value, path, constraint))
    if maximum is not None and value > maximum:
        constraint = f"Member must have value less than or equal to {maximum}"
        failures.append(_failure(value, path, constraint))


def _check_length(shape_: Shape, value: Any, path: str, failures: list[str]) -> None:
    minimum = shape_.metadata.get("min")
    maximum = shape_.metadata.get("max")
    if minimum is not None and len(value) < minimum:
        constraint = f"Member must have length greater than or equal to {minimum}"
        failures.append(_failure(value, path, constraint))
    if maximum is not None and len(value) > maximum:
        constraint = f"Member must have length less than or equal to {maximum}"
        failures.append(_failure(value, path, constraint))


def _failure(value: Any, path: str, constraint: str) -> str:
    text = str(value)
    if len(text) > _MAX_SHOWN_VALUE:
        text = f"{text[:_MAX_SHOWN_VALUE]}... ({len(text)} characters)"
    return f"Value '{text}' at '{path}' failed to satisfy constraint: {constraint}"


def _join(path: str, member: str) -> str:
    # SageMaker names members in lower camel case in its messages.
    name = member[:1].lower() + member[1:]
    return f"{path}.{name}" if path else name


@functools.cache
def _compile(pattern: str) -> re.Pattern[str]:
    translated = _UNICODE_CLASS.sub(
        lambda match: _category_ranges(match.group(1)), pattern
    )
    return re.compile(translated)


@functools.cache
def _category_ranges(category: str) -> str:
    """Return a character class body matching Unicode general ``category``.

    Scanning every code point takes about 0.2 s, once per category.
    """
    ranges: list[str] = []
    start: int | None = None
    for code_point in range(sys.maxunicode + 2):
        inside = (
            code_point <= sys.maxunicode
            and unicodedata.category(chr(code_point))[0] == category
        )
        if inside and start is None:
            start = code_point
        elif not inside and start is not None:
            ranges.append(f"{_escape(start)}-{_escape(code_point - 1)}")
            start = None
    return "".join(ranges)


def _escape(code_point: int) -> str:
    return f"\\U{code_point:08x}"
