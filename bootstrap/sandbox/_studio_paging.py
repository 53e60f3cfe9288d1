"""Pagination of List* responses with cursor tokens.

A token stores the sort key of the last item returned, not an offset, so
deleting items between two pages skips none of the remaining ones.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import TypeVar

from ._studio_errors import ValidationError

Item = TypeVar("Item")
SortKey = tuple[float | str, int]

# The documented default of MaxResults for the List operations here.
DEFAULT_MAX_RESULTS = 10


def paginate(
    items: Iterable[Item],
    sort_key: Callable[[Item], SortKey],
    descending: bool,
    max_results: int | None,
    next_token: str | None,
) -> tuple[list[Item], str | None]:
    """Return one page of ``items`` in sort order and the token of the next page.

    ``sort_key`` must be unique per item, so its last element is a sequence
    number. The token is None on the last page.
    """
    limit = max_results or DEFAULT_MAX_RESULTS
    ordered = sorted(items, key=sort_key, reverse=descending)
    if next_token:
        cursor = _decode(next_token)
        try:
            if descending:
                ordered = [item for item in ordered if sort_key(item) < cursor]
            else:
                ordered = [item for item in ordered if sort_key(item) > cursor]
        except TypeError as exc:
            raise ValidationError(_invalid_token_message(next_token)) from exc
    page = ordered[:limit]
    if len(ordered) <= limit:
        return page, None
    return page, _encode(sort_key(page[-1]))


def _encode(key: SortKey) -> str:
    raw = json.dumps(list(key)).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode(token: str) -> SortKey:
    try:
        value, seq = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise ValidationError(_invalid_token_message(token)) from exc
    if not isinstance(value, (int, float, str)) or not isinstance(seq, int):
        raise ValidationError(_invalid_token_message(token))
    return value, seq


def _invalid_token_message(token: str) -> str:
    return (
        f"Invalid NextToken '{token}': pass the NextToken of the previous "
        "response of the same request unchanged."
    )
