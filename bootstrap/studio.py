"""Selection of the lifecycle configurations that an app runs, from Studio settings.

Pure functions over the dictionaries that DescribeDomain, DescribeUserProfile
and DescribeSpace return. Attaching reads a settings object and returns a
changed copy, keeping every field it does not own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

# The settings object of each app type, in user, domain and space settings.
SETTINGS_KEYS = {
    "JupyterServer": "JupyterServerAppSettings",
    "KernelGateway": "KernelGatewayAppSettings",
    "JupyterLab": "JupyterLabAppSettings",
    "CodeEditor": "CodeEditorAppSettings",
}
# Only these app types have BuiltInLifecycleConfigArn, which runs on every
# start before the default and which users cannot deselect.
BUILT_IN_APP_TYPES = ("JupyterLab", "CodeEditor")
# DefaultSpaceSettings (shared spaces) has no CodeEditor settings.
SPACE_DEFAULT_APP_TYPES = ("JupyterServer", "KernelGateway", "JupyterLab")

Settings = dict[str, Any]


@dataclass(frozen=True)
class Slot:
    """The slot of our script in one settings object."""

    kind: str  # "built-in" or "default"
    displaced: str | None  # a default of another LCC that our ARN replaced


@dataclass(frozen=True)
class Conflict:
    """A default held by an LCC that is not ours, with no option to take it."""

    location: str
    app_type: str
    arn: str


def default_of(settings: Settings | None) -> str | None:
    if not settings:
        return None
    spec = settings.get("DefaultResourceSpec") or {}
    arn = spec.get("LifecycleConfigArn")
    return str(arn) if arn else None


def built_in_of(settings: Settings | None) -> str | None:
    if not settings:
        return None
    arn = settings.get("BuiltInLifecycleConfigArn")
    return str(arn) if arn else None


def allowed_of(settings: Settings | None) -> list[str]:
    if not settings:
        return []
    return [str(arn) for arn in settings.get("LifecycleConfigArns") or []]


def uses_built_in(app_type: str, settings: Settings | None, is_ours: Any) -> bool:
    """Return whether our script can take the built-in slot of this settings object."""
    if app_type not in BUILT_IN_APP_TYPES:
        return False
    current = built_in_of(settings)
    return current is None or is_ours(current)


def attach(
    app_type: str,
    settings: Settings | None,
    arn: str,
    is_ours: Any,
    take_default: bool,
) -> tuple[Settings, Slot | None, str | None]:
    """Return the settings with our ARN attached, the slot used, and a conflict.

    Studio app types use the built-in slot when it is free or ours. Otherwise
    the ARN goes into LifecycleConfigArns and becomes the default, always
    both. A default held by another LCC is a conflict unless take_default,
    in which case the displaced ARN is returned in the slot and stays listed.
    Older versions of ours are replaced in place.
    """
    result: Settings = copy.deepcopy(settings) if settings else {}
    if uses_built_in(app_type, result, is_ours):
        result["BuiltInLifecycleConfigArn"] = arn
        _drop_ours(result, is_ours, keep=None)
        return result, Slot("built-in", None), None

    current = default_of(result)
    displaced = None
    if current and not is_ours(current):
        if not take_default:
            return result, None, current
        displaced = current

    arns = allowed_of(result)
    ours_index = next((i for i, a in enumerate(arns) if is_ours(a)), None)
    arns = [a for a in arns if not is_ours(a)]
    arns.insert(len(arns) if ours_index is None else ours_index, arn)
    if displaced and displaced not in arns:
        arns.append(displaced)
    result["LifecycleConfigArns"] = arns
    spec = dict(result.get("DefaultResourceSpec") or {})
    spec["LifecycleConfigArn"] = arn
    result["DefaultResourceSpec"] = spec
    return result, Slot("default", displaced), None


def _drop_ours(settings: Settings, is_ours: Any, keep: str | None) -> None:
    """Remove our ARNs other than keep from the list and the default."""
    arns = allowed_of(settings)
    if any(is_ours(a) and a != keep for a in arns):
        settings["LifecycleConfigArns"] = [
            a for a in arns if not is_ours(a) or a == keep
        ]
    current = default_of(settings)
    if current and is_ours(current) and current != keep:
        spec = dict(settings["DefaultResourceSpec"])
        del spec["LifecycleConfigArn"]
        settings["DefaultResourceSpec"] = spec


def detach(
    settings: Settings | None, is_ours: Any, restore_default: str | None
) -> Settings | None:
    """Return the settings without any ARN of ours, or None when none is there.

    A default of ours goes back to restore_default, the LCC that held it
    before, or is removed. A built-in of ours is removed.
    """
    if not settings:
        return None
    result = copy.deepcopy(settings)
    changed = False
    built_in = built_in_of(result)
    if built_in and is_ours(built_in):
        del result["BuiltInLifecycleConfigArn"]
        changed = True
    current = default_of(result)
    if current and is_ours(current):
        spec = dict(result["DefaultResourceSpec"])
        if restore_default:
            spec["LifecycleConfigArn"] = restore_default
        else:
            del spec["LifecycleConfigArn"]
        if spec:
            result["DefaultResourceSpec"] = spec
        else:
            del result["DefaultResourceSpec"]
        changed = True
    arns = allowed_of(result)
    if any(is_ours(a) for a in arns):
        kept = [a for a in arns if not is_ours(a)]
        if restore_default and restore_default not in kept:
            kept.append(restore_default)
        if kept:
            result["LifecycleConfigArns"] = kept
        else:
            del result["LifecycleConfigArns"]
        changed = True
    return result if changed else None


def runs(
    app_type: str,
    arn: str,
    user: Settings | None,
    domain: Settings | None,
) -> bool:
    """Return whether an app of this type runs the ARN by itself, without a pick.

    Studio resolves the built-in (user level, then domain level) first, then
    the default (user, then domain), which must be in the allowed list (the
    user's list when it has one, else the domain's).
    """
    if app_type in BUILT_IN_APP_TYPES:
        built_in = built_in_of(user) or built_in_of(domain)
        if built_in == arn:
            return True
    default = default_of(user) or default_of(domain)
    allowed = (
        allowed_of(user)
        if user and "LifecycleConfigArns" in user
        else allowed_of(domain)
    )
    return default == arn and arn in allowed


def default_in_list(settings: Settings | None) -> bool:
    """Return whether the default of a settings object is also in its allowed list."""
    default = default_of(settings)
    return default is None or default in allowed_of(settings)
