"""State of the local Studio resources of one account and region.

The store hangs off moto's SageMaker backend for that account and region,
so moto's reset (``/moto-api/reset`` included) clears it with the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import time
from collections.abc import Iterator
from typing import Any

from ._studio_control import update_delay
from ._studio_errors import ResourceNotFoundError, ValidationError
from ._studio_records import (
    App,
    Domain,
    LifecycleConfig,
    Settings,
    Space,
    Tags,
    UserProfile,
    make_arn,
)
from ._studio_settings import lifecycle_config_references
from ._studio_validation import max_length

# The ARN resource types whose tags the store keeps; tags of other types
# stay with moto.
TAGGED_RESOURCE_TYPES = (
    "studio-lifecycle-config",
    "domain",
    "user-profile",
    "space",
    "app",
)

# Home folder owner IDs on the domain's EFS start here, as in Studio.
_FIRST_HOME_UID = 200000

AppKey = tuple[str, str, str, str, str]


def name_key(domain_id: str, name: str) -> tuple[str, str]:
    # User profile names are not case sensitive (API reference of
    # CreateUserProfile); space names are treated the same way.
    return domain_id, name.lower()


def app_key(
    domain_id: str, user: str | None, space: str | None, app_type: str, name: str
) -> AppKey:
    return domain_id, (user or "").lower(), (space or "").lower(), app_type, name


class StoreBase:
    """Resources, lookups and checks shared by the operations."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._sequence = itertools.count(1)
        self.lifecycle_configs: dict[str, LifecycleConfig] = {}
        self.domains: dict[str, Domain] = {}
        self.user_profiles: dict[tuple[str, str], UserProfile] = {}
        self.spaces: dict[tuple[str, str], Space] = {}
        self.apps: dict[AppKey, App] = {}

    def next_seq(self) -> int:
        return next(self._sequence)

    def arn(self, resource: str) -> str:
        return make_arn(self.region, self.account_id, resource)

    def home_uid(self, seq: int) -> str:
        return str(_FIRST_HOME_UID + seq)

    def ready_at(self) -> float:
        """Return when a resource updated now leaves status ``Updating``."""
        return time.monotonic() + update_delay()

    def new_domain_id(self, name: str, seq: int) -> str:
        # Deterministic IDs in the form the DomainId pattern accepts, so
        # test runs repeat exactly.
        seed = f"{self.account_id}:{self.region}:{name}:{seq}"
        return "d-" + hashlib.sha256(seed.encode()).hexdigest()[:12]

    def domain(self, domain_id: str) -> Domain:
        found = self.domains.get(domain_id)
        if found is None:
            raise ResourceNotFoundError(f"Domain {domain_id} does not exist.")
        return found

    def user_profile(self, domain_id: str, name: str) -> UserProfile:
        self.domain(domain_id)
        found = self.user_profiles.get(name_key(domain_id, name))
        if found is None:
            raise ResourceNotFoundError(
                f"User profile {name} does not exist in domain {domain_id}."
            )
        return found

    def space(self, domain_id: str, name: str) -> Space:
        self.domain(domain_id)
        found = self.spaces.get(name_key(domain_id, name))
        if found is None:
            raise ResourceNotFoundError(
                f"Space {name} does not exist in domain {domain_id}."
            )
        return found

    def lifecycle_config(self, name: str) -> LifecycleConfig:
        found = self.lifecycle_configs.get(name)
        if found is None:
            raise ResourceNotFoundError(
                f"Studio lifecycle configuration {name} does not exist."
            )
        return found

    def lifecycle_config_by_arn(self, arn: str) -> LifecycleConfig:
        prefix = self.arn("studio-lifecycle-config/")
        found = None
        if arn.startswith(prefix):
            found = self.lifecycle_configs.get(arn.removeprefix(prefix))
        if found is None:
            raise ResourceNotFoundError(
                f"Studio lifecycle configuration {arn} does not exist in account "
                f"{self.account_id}, region {self.region}. Create it before "
                "referencing it."
            )
        return found

    def decoded_script(self, arn: str) -> bytes:
        return base64.b64decode(self.lifecycle_config_by_arn(arn).content)

    def check_lifecycle_config_arn(self, arn: str, app_type: str, path: str) -> None:
        """Check that the LCC at ``arn`` exists and serves ``app_type``."""
        found = self.lifecycle_config_by_arn(arn)
        if found.app_type != app_type:
            raise ValidationError(
                f"Lifecycle configuration {arn} at {path} has app type "
                f"{found.app_type}, but {path} takes LCCs of app type {app_type}. "
                f"Create an LCC with StudioLifecycleConfigAppType {app_type}."
            )

    def check_settings_references(self, settings: Settings | None, owner: str) -> None:
        """Check every LCC that a settings object sent by a request references."""
        for reference in lifecycle_config_references(settings):
            path = f"{owner}.{reference.path}"
            self.check_lifecycle_config_arn(reference.arn, reference.app_type, path)

    def lifecycle_config_user(self, arn: str) -> str | None:
        """Return a description of one resource that uses the LCC, or None."""
        for where, settings in self._all_settings():
            for reference in lifecycle_config_references(settings):
                if reference.arn == arn:
                    return f"{where}.{reference.path}"
        for app in self.apps.values():
            if app.is_running and arn in app.lifecycle_config_arns:
                owner = app.space_name or app.user_profile_name
                return (
                    f"{app.status} {app.app_type} app {app.app_name} of {owner} "
                    f"in domain {app.domain_id}"
                )
        return None

    def _all_settings(self) -> Iterator[tuple[str, Settings | None]]:
        for domain in self.domains.values():
            where = f"domain {domain.domain_id}"
            yield f"{where} DefaultUserSettings", domain.default_user_settings
            yield f"{where} DefaultSpaceSettings", domain.default_space_settings
        for profile in self.user_profiles.values():
            where = f"user profile {profile.name} of domain {profile.domain_id}"
            yield f"{where} UserSettings", profile.settings
        for space in self.spaces.values():
            where = f"space {space.name} of domain {space.domain_id}"
            yield f"{where} SpaceSettings", space.settings

    def running_apps(self, domain_id: str) -> Iterator[App]:
        for app in self.apps.values():
            if app.domain_id == domain_id and app.is_running:
                yield app

    # Tags

    def owns_arn(self, arn: str) -> bool:
        """Return whether tags of ``arn`` are kept here rather than by moto."""
        parts = arn.split(":", 5)
        return len(parts) == 6 and parts[5].split("/", 1)[0] in TAGGED_RESOURCE_TYPES

    def add_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = self._tagged_resource(params["ResourceArn"])
        new_tags = checked_tags(params["Tags"])
        merged = {tag["Key"]: tag["Value"] for tag in resource.tags}
        merged.update({tag["Key"]: tag["Value"] for tag in new_tags})
        limit = max_length("TagList")
        if len(merged) > limit:
            raise ValidationError(
                f"Resource {params['ResourceArn']} would have {len(merged)} tags; "
                f"a resource takes at most {limit}. Delete tags first."
            )
        resource.tags = [{"Key": key, "Value": value} for key, value in merged.items()]
        return {"Tags": list(resource.tags)}

    def list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        # A resource has at most 50 tags and MaxResults is at least 50, so
        # every response contains all tags.
        resource = self._tagged_resource(params["ResourceArn"])
        return {"Tags": [dict(tag) for tag in resource.tags]}

    def delete_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = self._tagged_resource(params["ResourceArn"])
        keys = set(params["TagKeys"])
        resource.tags = [tag for tag in resource.tags if tag["Key"] not in keys]
        return {}

    def _tagged_resource(
        self, arn: str
    ) -> LifecycleConfig | Domain | UserProfile | Space | App:
        resource_type = arn.split(":", 5)[5].split("/", 1)[0]
        resources_by_type: dict[str, dict[Any, Any]] = {
            "studio-lifecycle-config": self.lifecycle_configs,
            "domain": self.domains,
            "user-profile": self.user_profiles,
            "space": self.spaces,
            "app": self.apps,
        }
        for resource in resources_by_type[resource_type].values():
            if resource.arn == arn:
                return resource
        raise ResourceNotFoundError(f"Resource {arn} does not exist.")


def checked_tags(tags: Tags | None) -> Tags:
    """Return a copy of ``tags``, rejecting a key given twice."""
    seen: set[str] = set()
    for tag in tags or []:
        if tag["Key"] in seen:
            raise ValidationError(
                f"Tag key {tag['Key']} appears twice; tag keys must be unique "
                "per resource."
            )
        seen.add(tag["Key"])
    return [dict(tag) for tag in tags or []]


def check_base64(content: str) -> None:
    """Reject LCC content that is not one strict base64 string."""
    try:
        base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(
            "StudioLifecycleConfigContent is not valid base64: encode the "
            "script as one base64 string without line breaks."
        ) from exc
