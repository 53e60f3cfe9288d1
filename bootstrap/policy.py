"""Read IAM policy documents and decide what they allow, as the doctor needs.

This evaluates identity policies, permissions boundaries and trust policies
one request at a time: an explicit Deny wins, then any Allow. It matches
actions (case-insensitively) and resources with IAM's ``*`` and ``?``
wildcards, handles NotAction and NotResource, AWS principals (role ARNs,
account roots and ids, and ``*``) and the string condition operators.

A condition on a key outside the request context the caller describes is
not guessed: a matching Allow under such a condition is reported as
conditional, and a Deny under it is ignored and reported the same way.
Service control policies, resource policies and session policies are out of
reach of a reader of IAM, so they are not evaluated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

ROLE_ARN_RE = re.compile(
    r"arn:(?P<partition>[a-z-]+):iam::(?P<account>[0-9]{12}):role/(?:.*/)?(?P<name>[^/]+)\Z"
)
# Condition operators on strings, with whether they match wildcards and case.
_STRING_OPERATORS = {
    "StringEquals": (False, False),
    "StringLike": (True, False),
    "StringEqualsIgnoreCase": (False, True),
    "ArnEquals": (False, False),
    "ArnLike": (True, False),
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike"}
_LIST_KEYS = ("Action", "NotAction", "Resource", "NotResource")


@dataclass(frozen=True)
class Request:
    """One request to evaluate: the action, the resource and the principal.

    ``context`` contains the condition keys whose values the request is
    known to carry, and a key in ``known_absent`` is known to be missing.
    """

    action: str
    resource: str = "*"
    principal: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    known_absent: frozenset[str] = frozenset()


@dataclass
class Decision:
    """The decision of a set of policies on one request."""

    allowed: bool = False
    denied_by: list[str] = field(default_factory=list)
    conditional: list[str] = field(default_factory=list)

    @property
    def granted(self) -> bool:
        return self.allowed and not self.denied_by


def parse_document(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """Return a policy document as a dict, from JSON text or URL-encoded JSON."""
    if isinstance(document, Mapping):
        return dict(document)
    text = document if document.lstrip().startswith("{") else unquote(document)
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise ValueError("a policy document must be a JSON object")
    return parsed


def statements(document: str | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the statements of a document, always as a list."""
    found = parse_document(document).get("Statement") or []
    return [found] if isinstance(found, dict) else list(found)


def normalize(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """Return a document in a canonical form, for comparing two documents.

    Single values become one-item lists and lists are sorted, as IAM treats
    them as sets.
    """
    parsed = parse_document(document)
    return {
        "Version": parsed.get("Version"),
        "Statement": sorted(
            (_normalize_statement(s) for s in statements(parsed)),
            key=lambda s: json.dumps(s, sort_keys=True),
        ),
    }


def _normalize_statement(statement: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in statement.items():
        if key in _LIST_KEYS:
            result[key] = sorted(_as_list(value))
        elif key in ("Principal", "NotPrincipal") and isinstance(value, Mapping):
            result[key] = {k: sorted(_as_list(v)) for k, v in value.items()}
        elif key == "Condition" and isinstance(value, Mapping):
            result[key] = {
                operator: {k: sorted(_as_list(v)) for k, v in keys.items()}
                for operator, keys in value.items()
            }
        else:
            result[key] = value
    return result


def evaluate(documents: Iterable[tuple[str, Any]], request: Request) -> Decision:
    """Decide a request against named documents: a Deny wins, then an Allow."""
    decision = Decision()
    for name, document in documents:
        for statement in statements(document):
            if not _applies(statement, request):
                continue
            met = _conditions_met(statement.get("Condition") or {}, request)
            effect = statement.get("Effect")
            if met is None:
                decision.conditional.append(
                    f"{name}: {effect} under condition {_describe(statement)}"
                )
            elif met and effect == "Deny":
                decision.denied_by.append(name)
            elif met and effect == "Allow":
                decision.allowed = True
    return decision


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not _any_match(statement["Action"], request.action, ignore_case=True):
            return False
    elif "NotAction" in statement:
        if _any_match(statement["NotAction"], request.action, ignore_case=True):
            return False
    else:
        return False
    if "Resource" in statement:
        if not _any_match(statement["Resource"], request.resource):
            return False
    elif "NotResource" in statement and _any_match(
        statement["NotResource"], request.resource
    ):
        return False
    if request.principal is not None:
        return principal_matches(statement, request.principal)
    return True


def principal_matches(statement: Mapping[str, Any], principal: str) -> bool:
    """Return whether a trust statement's Principal names a role ARN.

    An account root or bare account id admits every role of that account,
    as IAM then defers to the account's own policies.
    """
    given = statement.get("Principal")
    if given == "*":
        return True
    if not isinstance(given, Mapping):
        return False
    match = ROLE_ARN_RE.match(principal)
    account = match["account"] if match else None
    partition = match["partition"] if match else "aws"
    for value in _as_list(given.get("AWS")):
        if value in ("*", principal):
            return True
        if account and value in (account, f"arn:{partition}:iam::{account}:root"):
            return True
    return False


def limits_principal_arn(statement: Mapping[str, Any]) -> bool:
    """Return whether a statement's conditions name the principal's ARN.

    Such a statement admits named roles even when its Principal is "*" or a
    whole account, as trusts scoped to an organization are.
    """
    conditions = statement.get("Condition") or {}
    if not isinstance(conditions, Mapping):
        return False
    return any(
        isinstance(keys, Mapping)
        and operator.removesuffix("IfExists")
        in ("ArnEquals", "ArnLike", "StringEquals", "StringLike")
        and any(key.lower() == "aws:principalarn" for key in keys)
        for operator, keys in conditions.items()
    )


def admits_whole_account(statement: Mapping[str, Any], account: str) -> bool:
    """Return whether a trust statement admits a whole account or everyone."""
    given = statement.get("Principal")
    if given == "*":
        return True
    if not isinstance(given, Mapping):
        return False
    roots = ("*", account)
    return any(
        value in roots or str(value).endswith(f":iam::{account}:root")
        for value in _as_list(given.get("AWS"))
    )


def _conditions_met(conditions: Mapping[str, Any], request: Request) -> bool | None:
    """Return True or False, or None when a key's value is not known."""
    result: bool | None = True
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            met = _condition_met(operator, key, _as_list(expected), request)
            if met is False:
                return False
            if met is None:
                result = None
    return result


def _condition_met(
    operator: str, key: str, expected: list[Any], request: Request
) -> bool | None:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    present = key in request.context
    if not present and key not in request.known_absent:
        return None
    if base == "Null":
        # Null "true" requires the key to be missing, "false" to be present.
        return any(str(item).lower() == str(not present).lower() for item in expected)
    if not present:
        # A missing key fails every other operator but the IfExists ones.
        return if_exists
    value = request.context[key]
    negate = base in _NEGATED
    base = _NEGATED.get(base, base)
    if base not in _STRING_OPERATORS:
        return None
    wildcards, ignore_case = _STRING_OPERATORS[base]
    matched = any(
        wildcard_match(str(item), value, ignore_case)
        if wildcards
        else (str(item).lower() == value.lower() if ignore_case else item == value)
        for item in expected
    )
    return not matched if negate else matched


def _describe(statement: Mapping[str, Any]) -> str:
    return json.dumps(statement.get("Condition"), sort_keys=True)


def _any_match(patterns: Any, value: str, ignore_case: bool = False) -> bool:
    return any(wildcard_match(str(p), value, ignore_case) for p in _as_list(patterns))


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """Match a value against an IAM pattern, where * and ? are wildcards."""
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern
    )
    flags = re.IGNORECASE if ignore_case else 0
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
