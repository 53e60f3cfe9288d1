"""Settings objects of domains, user profiles and spaces: updates, LCC
references, and the choice of lifecycle configurations at app start."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ._studio_errors import ValidationError

Settings = dict[str, Any]

APP_SETTINGS_SUFFIX = "AppSettings"

# The ARN pattern of the model accepts the literal "None" in place of an
# LCC ARN; here it means "no lifecycle configuration" at that level.
NO_LIFECYCLE_CONFIG = "None"


def app_settings_key(app_type: str) -> str:
    return f"{app_type}{APP_SETTINGS_SUFFIX}"


# UpdateDomain, UpdateUserProfile and UpdateSpace apply a settings object one
# level deep. Each member the request sends (JupyterLabAppSettings,
# ExecutionRole, SecurityGroups, ...) replaces the stored member whole, lists
# and nested objects included. Each member the request leaves out keeps its
# stored value.
# Source: the SageMaker developer guide, "Detach lifecycle configurations"
# (https://docs.aws.amazon.com/sagemaker/latest/dg/jl-lcc-delete.html),
# detaches every JupyterLab LCC of a domain with
#   update-domain --default-user-settings
#     '{"JupyterLabAppSettings": {"LifecycleConfigArns": []}}'
# so the list sent replaces the stored list. Replacing DefaultUserSettings
# whole would also clear the domain's ExecutionRole, and the page gives no
# such warning, so members left out are kept.
# NOTE: whether AWS merges inside an app settings object (keeping a
# DefaultResourceSpec that the request leaves out) is unverified. Replacing
# it whole is the stricter choice: code that relies on a deeper merge fails
# here instead of in AWS.
def merge_settings(stored: Settings | None, sent: Settings | None) -> Settings | None:
    """Return ``stored`` updated with the members of ``sent``, as a new object."""
    if sent is None:
        return copy.deepcopy(stored)
    merged = copy.deepcopy(stored) if stored else {}
    for member, value in sent.items():
        merged[member] = copy.deepcopy(value)
    return merged


def domain_settings_from_update(for_update: Settings) -> Settings:
    """Map UpdateDomain's DomainSettingsForUpdate onto DomainSettings members."""
    renamed = dict(for_update)
    rstudio = renamed.pop("RStudioServerProDomainSettingsForUpdate", None)
    if rstudio is not None:
        renamed["RStudioServerProDomainSettings"] = rstudio
    return renamed


@dataclass(frozen=True)
class LifecycleConfigReference:
    """One LCC ARN inside a settings object."""

    app_type: str
    path: str
    arn: str


def lifecycle_config_references(
    settings: Settings | None,
) -> Iterator[LifecycleConfigReference]:
    """Yield every LCC ARN in the app settings objects of ``settings``.

    The app type comes from the member name, so ``JupyterLabAppSettings``
    yields references of type ``JupyterLab``. The literal "None" is skipped.
    """
    for member, app_settings in (settings or {}).items():
        if not member.endswith(APP_SETTINGS_SUFFIX):
            continue
        if not isinstance(app_settings, dict):
            continue
        app_type = member.removesuffix(APP_SETTINGS_SUFFIX)
        listed = app_settings.get("LifecycleConfigArns") or []
        for index, arn in enumerate(listed):
            if arn != NO_LIFECYCLE_CONFIG:
                path = f"{member}.LifecycleConfigArns[{index}]"
                yield LifecycleConfigReference(app_type, path, arn)
        spec = app_settings.get("DefaultResourceSpec") or {}
        default = spec.get("LifecycleConfigArn")
        if default and default != NO_LIFECYCLE_CONFIG:
            path = f"{member}.DefaultResourceSpec.LifecycleConfigArn"
            yield LifecycleConfigReference(app_type, path, default)
        built_in = app_settings.get("BuiltInLifecycleConfigArn")
        if built_in and built_in != NO_LIFECYCLE_CONFIG:
            path = f"{member}.BuiltInLifecycleConfigArn"
            yield LifecycleConfigReference(app_type, path, built_in)


@dataclass(frozen=True)
class SettingsLevel:
    """The app settings object of one app type at one level, such as a user."""

    description: str
    app_settings: Settings


@dataclass(frozen=True)
class LifecycleChoice:
    """The LCCs an app start runs and, when it cannot start, the reason."""

    built_in: str | None
    selected: str | None
    resource_spec: Settings
    failure_reason: str | None = None

    @property
    def run_order(self) -> tuple[str, ...]:
        return tuple(arn for arn in (self.built_in, self.selected) if arn)


def choose_lifecycle_configs(
    app_type: str, levels: Sequence[SettingsLevel], requested: Settings | None
) -> LifecycleChoice:
    """Choose the LCCs an app runs at start, the way Studio does.

    ``levels`` go from the most specific (space, then user profile) to the
    domain. The built-in LCC of the most specific level that sets one runs
    first. Then the LCC of ``requested`` (CreateApp's ResourceSpec) runs,
    which must be in the allowed list, else the default of the most specific
    level that sets one. The allowed list is the LifecycleConfigArns of the
    most specific level that has that member. A default missing from the
    allowed list makes the app fail, as a requested one fails the request.
    """
    allowed, allowed_from = _allowed_list(levels)
    requested_arn = (requested or {}).get("LifecycleConfigArn")
    selected: str | None
    failure_reason = None

    if requested_arn == NO_LIFECYCLE_CONFIG:
        selected = None
    elif requested_arn:
        if requested_arn not in allowed:
            raise ValidationError(
                f"Lifecycle configuration {requested_arn} is not in "
                f"{_list_description(app_type, allowed_from)}. Add it to that "
                "list before starting an app with it."
            )
        selected = requested_arn
    else:
        selected, default_from = _default(levels)
        if selected and selected not in allowed:
            failure_reason = (
                f"The default lifecycle configuration {selected} of "
                f"{default_from} is not in "
                f"{_list_description(app_type, allowed_from)}, so the app cannot "
                "start. Add it to the list or choose another default."
            )

    resource_spec = _default_resource_spec(levels)
    resource_spec.update(copy.deepcopy(requested or {}))
    if selected:
        resource_spec["LifecycleConfigArn"] = selected
    return LifecycleChoice(
        built_in=_built_in(levels),
        selected=selected,
        resource_spec=resource_spec,
        failure_reason=failure_reason,
    )


def _allowed_list(levels: Sequence[SettingsLevel]) -> tuple[list[str], str | None]:
    for level in levels:
        if "LifecycleConfigArns" in level.app_settings:
            return list(level.app_settings["LifecycleConfigArns"]), level.description
    return [], None


def _list_description(app_type: str, allowed_from: str | None) -> str:
    key = app_settings_key(app_type)
    if allowed_from is None:
        return f"any LifecycleConfigArns of {key}, because no level sets one"
    return f"the LifecycleConfigArns of {key} of {allowed_from}"


def _default(levels: Sequence[SettingsLevel]) -> tuple[str | None, str]:
    for level in levels:
        spec = level.app_settings.get("DefaultResourceSpec") or {}
        arn = spec.get("LifecycleConfigArn")
        if arn == NO_LIFECYCLE_CONFIG:
            return None, level.description
        if arn:
            return arn, level.description
    return None, "any level"


def _built_in(levels: Sequence[SettingsLevel]) -> str | None:
    for level in levels:
        arn = level.app_settings.get("BuiltInLifecycleConfigArn")
        if arn == NO_LIFECYCLE_CONFIG:
            return None
        if arn:
            return str(arn)
    return None


def _default_resource_spec(levels: Sequence[SettingsLevel]) -> Settings:
    """Merge the DefaultResourceSpec members of all levels, specific ones winning.

    In CreateApp's API reference, the InstanceType of CreateApp's
    ResourceSpec overrides the one of the user profile or domain. The other
    members are taken to combine the same way.
    """
    resource_spec: Settings = {}
    for level in reversed(levels):
        resource_spec.update(
            copy.deepcopy(level.app_settings.get("DefaultResourceSpec") or {})
        )
    resource_spec.pop("LifecycleConfigArn", None)
    return resource_spec
