"""SageMaker operations on lifecycle configurations, domains, user profiles
and spaces. Each method takes the parsed request and returns the response.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from ._studio_errors import ResourceInUseError, ValidationError
from ._studio_paging import SortKey, paginate
from ._studio_records import (
    Domain,
    LifecycleConfig,
    Space,
    UserProfile,
    utc_now,
)
from ._studio_settings import domain_settings_from_update, merge_settings
from ._studio_store import StoreBase, check_base64, checked_tags, name_key

Request = dict[str, Any]
Response = dict[str, Any]


class ResourceOperations(StoreBase):
    """Operations on every Studio resource except apps."""

    # Studio lifecycle configurations

    def create_studio_lifecycle_config(self, params: Request) -> Response:
        name = params["StudioLifecycleConfigName"]
        if name in self.lifecycle_configs:
            raise ResourceInUseError(
                f"Studio lifecycle configuration {name} already exists. LCCs "
                "cannot be updated: create one under a new name."
            )
        content = params["StudioLifecycleConfigContent"]
        check_base64(content)
        seq = self.next_seq()
        config = LifecycleConfig(
            name=name,
            arn=self.arn(f"studio-lifecycle-config/{name}"),
            content=content,
            app_type=params["StudioLifecycleConfigAppType"],
            creation_time=utc_now(),
            tags=checked_tags(params.get("Tags")),
            seq=seq,
        )
        self.lifecycle_configs[name] = config
        return {"StudioLifecycleConfigArn": config.arn}

    def describe_studio_lifecycle_config(self, params: Request) -> Response:
        return self.lifecycle_config(params["StudioLifecycleConfigName"]).describe()

    def delete_studio_lifecycle_config(self, params: Request) -> Response:
        config = self.lifecycle_config(params["StudioLifecycleConfigName"])
        user = self.lifecycle_config_user(config.arn)
        if user is not None:
            raise ResourceInUseError(
                f"Studio lifecycle configuration {config.name} is in use by "
                f"{user}. Detach it from every domain, user profile and space, "
                "and stop the apps that run it, before deleting it."
            )
        del self.lifecycle_configs[config.name]
        return {}

    def list_studio_lifecycle_configs(self, params: Request) -> Response:
        configs = [
            config
            for config in self.lifecycle_configs.values()
            if _contains(config.name, params.get("NameContains"))
            and params.get("AppTypeEquals") in (None, config.app_type)
            and _within(
                config.creation_time,
                params.get("CreationTimeAfter"),
                params.get("CreationTimeBefore"),
            )
            and _within(
                config.creation_time,
                params.get("ModifiedTimeAfter"),
                params.get("ModifiedTimeBefore"),
            )
        ]
        sort_by = params.get("SortBy", "CreationTime")

        def sort_key(config: LifecycleConfig) -> SortKey:
            if sort_by == "Name":
                return config.name, config.seq
            return config.creation_time.timestamp(), config.seq

        # ListStudioLifecycleConfigs sorts in descending order by default,
        # unlike the other List operations here.
        page, token = paginate(
            configs,
            sort_key,
            params.get("SortOrder", "Descending") == "Descending",
            params.get("MaxResults"),
            params.get("NextToken"),
        )
        details = [config.details() for config in page]
        return page_response("StudioLifecycleConfigs", details, token)

    # Domains

    def create_domain(self, params: Request) -> Response:
        name = params["DomainName"]
        # NOTE: unique domain names follow moto's CreateDomain; whether AWS
        # requires them is unverified.
        if any(domain.name == name for domain in self.domains.values()):
            raise ResourceInUseError(
                f"Domain {name} already exists. Choose a different name."
            )
        self.check_settings_references(
            params["DefaultUserSettings"], "DefaultUserSettings"
        )
        self.check_settings_references(
            params.get("DefaultSpaceSettings"), "DefaultSpaceSettings"
        )
        seq = self.next_seq()
        domain_id = self.new_domain_id(name, seq)
        domain = Domain(
            domain_id=domain_id,
            name=name,
            arn=self.arn(f"domain/{domain_id}"),
            url=f"https://{domain_id}.studio.{self.region}.sagemaker.aws",
            auth_mode=params["AuthMode"],
            default_user_settings=copy.deepcopy(params["DefaultUserSettings"]),
            creation_time=utc_now(),
            seq=seq,
            home_efs_file_system_id="fs-" + domain_id.removeprefix("d-").ljust(17, "0"),
            default_space_settings=copy.deepcopy(params.get("DefaultSpaceSettings")),
            domain_settings=copy.deepcopy(params.get("DomainSettings")),
            subnet_ids=copy.deepcopy(params.get("SubnetIds")),
            vpc_id=params.get("VpcId"),
            app_network_access_type=params.get(
                "AppNetworkAccessType", "PublicInternetOnly"
            ),
            app_security_group_management=params.get("AppSecurityGroupManagement"),
            kms_key_id=params.get("KmsKeyId"),
            home_efs_file_system_kms_key_id=params.get("HomeEfsFileSystemKmsKeyId")
            or params.get("KmsKeyId"),
            tag_propagation=params.get("TagPropagation", "DISABLED"),
            tags=checked_tags(params.get("Tags")),
        )
        self.domains[domain_id] = domain
        return {"DomainArn": domain.arn, "DomainId": domain_id, "Url": domain.url}

    def describe_domain(self, params: Request) -> Response:
        return self.domain(params["DomainId"]).describe()

    def update_domain(self, params: Request) -> Response:
        domain = self.domain(params["DomainId"])
        # NOTE: the error code for an update of a domain that is still
        # Updating is unverified; ResourceInUse is the modeled error of
        # UpdateDomain that fits.
        if domain.status == "Updating":
            raise ResourceInUseError(
                f"Domain {domain.domain_id} is Updating. Wait until "
                "DescribeDomain reports InService, then retry the update."
            )
        self.check_settings_references(
            params.get("DefaultUserSettings"), "DefaultUserSettings"
        )
        self.check_settings_references(
            params.get("DefaultSpaceSettings"), "DefaultSpaceSettings"
        )
        _update_domain_fields(domain, params)
        domain.last_modified_time = utc_now()
        domain.ready_at = self.ready_at()
        return {"DomainArn": domain.arn}

    def delete_domain(self, params: Request) -> Response:
        domain = self.domain(params["DomainId"])
        members = [
            *(f"user profile {p.name}" for p in self._profiles_of(domain)),
            *(f"space {s.name}" for s in self._spaces_of(domain)),
        ]
        if members:
            raise ResourceInUseError(
                f"Domain {domain.domain_id} still has {', '.join(members[:3])}"
                f"{' and more' if len(members) > 3 else ''}. Delete its apps, "
                "spaces and user profiles first."
            )
        del self.domains[domain.domain_id]
        for key in [key for key in self.apps if key[0] == domain.domain_id]:
            del self.apps[key]
        return {}

    def list_domains(self, params: Request) -> Response:
        page, token = paginate(
            self.domains.values(),
            lambda d: (d.creation_time.timestamp(), d.seq),
            False,
            params.get("MaxResults"),
            params.get("NextToken"),
        )
        return page_response("Domains", [domain.details() for domain in page], token)

    # User profiles

    def create_user_profile(self, params: Request) -> Response:
        domain = self.domain(params["DomainId"])
        name = params["UserProfileName"]
        if name_key(domain.domain_id, name) in self.user_profiles:
            raise ResourceInUseError(
                f"User profile {name} already exists in domain {domain.domain_id}."
            )
        _check_single_sign_on(domain, params)
        self.check_settings_references(params.get("UserSettings"), "UserSettings")
        seq = self.next_seq()
        profile = UserProfile(
            domain_id=domain.domain_id,
            name=name,
            arn=self.arn(f"user-profile/{domain.domain_id}/{name}"),
            settings=copy.deepcopy(params.get("UserSettings")),
            creation_time=utc_now(),
            seq=seq,
            home_efs_file_system_uid=self.home_uid(seq),
            single_sign_on_user_identifier=params.get("SingleSignOnUserIdentifier"),
            single_sign_on_user_value=params.get("SingleSignOnUserValue"),
            tags=checked_tags(params.get("Tags")),
        )
        self.user_profiles[name_key(domain.domain_id, name)] = profile
        return {"UserProfileArn": profile.arn}

    def describe_user_profile(self, params: Request) -> Response:
        profile = self.user_profile(params["DomainId"], params["UserProfileName"])
        return profile.describe()

    def update_user_profile(self, params: Request) -> Response:
        # NOTE: unlike UpdateDomain, an update of a user profile that is
        # still Updating is accepted, because whether AWS rejects it is
        # unverified.
        profile = self.user_profile(params["DomainId"], params["UserProfileName"])
        self.check_settings_references(params.get("UserSettings"), "UserSettings")
        profile.settings = merge_settings(profile.settings, params.get("UserSettings"))
        profile.last_modified_time = utc_now()
        profile.ready_at = self.ready_at()
        return {"UserProfileArn": profile.arn}

    def delete_user_profile(self, params: Request) -> Response:
        profile = self.user_profile(params["DomainId"], params["UserProfileName"])
        running = [
            app.app_name
            for app in self.running_apps(profile.domain_id)
            if app.space_name is None
            and (app.user_profile_name or "").lower() == profile.name.lower()
        ]
        owned = [
            space.name
            for space in self.spaces.values()
            if space.domain_id == profile.domain_id
            and (space.owner or "").lower() == profile.name.lower()
        ]
        if running or owned:
            raise ResourceInUseError(
                f"User profile {profile.name} still has running apps {running} "
                f"and spaces {owned}. Delete them first."
            )
        del self.user_profiles[name_key(profile.domain_id, profile.name)]
        self._forget_apps(profile.domain_id, user=profile.name)
        return {}

    def list_user_profiles(self, params: Request) -> Response:
        profiles = [
            profile
            for profile in self.user_profiles.values()
            if params.get("DomainIdEquals") in (None, profile.domain_id)
            and _contains(profile.name, params.get("UserProfileNameContains"))
        ]
        page, token = paginate(
            profiles,
            _time_sort_key(params.get("SortBy")),
            params.get("SortOrder") == "Descending",
            params.get("MaxResults"),
            params.get("NextToken"),
        )
        details = [profile.details() for profile in page]
        return page_response("UserProfiles", details, token)

    # Spaces

    def create_space(self, params: Request) -> Response:
        domain = self.domain(params["DomainId"])
        name = params["SpaceName"]
        if name_key(domain.domain_id, name) in self.spaces:
            raise ResourceInUseError(
                f"Space {name} already exists in domain {domain.domain_id}."
            )
        self._check_space_ownership(domain, params)
        self.check_settings_references(params.get("SpaceSettings"), "SpaceSettings")
        seq = self.next_seq()
        space = Space(
            domain_id=domain.domain_id,
            name=name,
            arn=self.arn(f"space/{domain.domain_id}/{name}"),
            settings=copy.deepcopy(params.get("SpaceSettings")),
            creation_time=utc_now(),
            seq=seq,
            home_efs_file_system_uid=self.home_uid(seq),
            ownership=copy.deepcopy(params.get("OwnershipSettings")),
            sharing=copy.deepcopy(params.get("SpaceSharingSettings")),
            display_name=params.get("SpaceDisplayName"),
            tags=checked_tags(params.get("Tags")),
        )
        self.spaces[name_key(domain.domain_id, name)] = space
        return {"SpaceArn": space.arn}

    def describe_space(self, params: Request) -> Response:
        return self.space(params["DomainId"], params["SpaceName"]).describe()

    def update_space(self, params: Request) -> Response:
        space = self.space(params["DomainId"], params["SpaceName"])
        sent = params.get("SpaceSettings")
        stored_type = (space.settings or {}).get("AppType")
        sent_type = (sent or {}).get("AppType")
        # The API reference of UpdateSpace: the app type of a space cannot
        # be edited.
        if stored_type and sent_type and sent_type != stored_type:
            raise ValidationError(
                f"Space {space.name} has AppType {stored_type}; updating the "
                "AppType of a space is not supported. Create a new space."
            )
        self.check_settings_references(sent, "SpaceSettings")
        space.settings = merge_settings(space.settings, sent)
        if params.get("SpaceDisplayName") is not None:
            space.display_name = params["SpaceDisplayName"]
        space.last_modified_time = utc_now()
        space.ready_at = self.ready_at()
        return {"SpaceArn": space.arn}

    def delete_space(self, params: Request) -> Response:
        space = self.space(params["DomainId"], params["SpaceName"])
        running = [
            app.app_name
            for app in self.running_apps(space.domain_id)
            if (app.space_name or "").lower() == space.name.lower()
        ]
        if running:
            raise ResourceInUseError(
                f"Space {space.name} still runs apps {running}. Delete them first."
            )
        del self.spaces[name_key(space.domain_id, space.name)]
        self._forget_apps(space.domain_id, space=space.name)
        return {}

    def list_spaces(self, params: Request) -> Response:
        spaces = [
            space
            for space in self.spaces.values()
            if params.get("DomainIdEquals") in (None, space.domain_id)
            and _contains(space.name, params.get("SpaceNameContains"))
        ]
        page, token = paginate(
            spaces,
            _time_sort_key(params.get("SortBy")),
            params.get("SortOrder") == "Descending",
            params.get("MaxResults"),
            params.get("NextToken"),
        )
        return page_response("Spaces", [space.details() for space in page], token)

    # Helpers

    def _check_space_ownership(self, domain: Domain, params: Request) -> None:
        sharing = (params.get("SpaceSharingSettings") or {}).get("SharingType")
        owner = (params.get("OwnershipSettings") or {}).get("OwnerUserProfileName")
        if sharing == "Private" and owner is None:
            raise ValidationError(
                "A private space needs OwnershipSettings.OwnerUserProfileName."
            )
        if sharing == "Private" and not (params.get("SpaceSettings") or {}).get(
            "AppType"
        ):
            raise ValidationError(
                "SpaceSettings.AppType must be provided for creating a private space."
            )
        if owner is not None:
            self.user_profile(domain.domain_id, owner)

    def _profiles_of(self, domain: Domain) -> list[UserProfile]:
        profiles = self.user_profiles.values()
        return [p for p in profiles if p.domain_id == domain.domain_id]

    def _spaces_of(self, domain: Domain) -> list[Space]:
        return [s for s in self.spaces.values() if s.domain_id == domain.domain_id]

    def _forget_apps(
        self, domain_id: str, user: str | None = None, space: str | None = None
    ) -> None:
        """Drop the stopped app records of a deleted user profile or space."""
        user_key = (user or "").lower()
        space_key = (space or "").lower()
        for key in list(self.apps):
            if key[0] == domain_id and key[1] == user_key and key[2] == space_key:
                del self.apps[key]


def _update_domain_fields(domain: Domain, params: Request) -> None:
    domain.default_user_settings = (
        merge_settings(domain.default_user_settings, params.get("DefaultUserSettings"))
        or {}
    )
    domain.default_space_settings = merge_settings(
        domain.default_space_settings, params.get("DefaultSpaceSettings")
    )
    for_update = params.get("DomainSettingsForUpdate")
    if for_update is not None:
        domain.domain_settings = merge_settings(
            domain.domain_settings, domain_settings_from_update(for_update)
        )
    if params.get("SubnetIds") is not None:
        domain.subnet_ids = list(params["SubnetIds"])
    if params.get("VpcId") is not None:
        domain.vpc_id = params["VpcId"]
    if params.get("AppNetworkAccessType") is not None:
        domain.app_network_access_type = params["AppNetworkAccessType"]
    if params.get("AppSecurityGroupManagement") is not None:
        domain.app_security_group_management = params["AppSecurityGroupManagement"]
    if params.get("TagPropagation") is not None:
        domain.tag_propagation = params["TagPropagation"]


def _check_single_sign_on(domain: Domain, params: Request) -> None:
    # CreateUserProfile's API reference: the single sign-on fields are
    # required for domains in IAM Identity Center mode and rejected otherwise.
    has_user_value = params.get("SingleSignOnUserValue") is not None
    if domain.auth_mode == "SSO" and not has_user_value:
        raise ValidationError(
            f"Domain {domain.domain_id} uses AuthMode SSO: pass "
            "SingleSignOnUserIdentifier and SingleSignOnUserValue."
        )
    if domain.auth_mode != "SSO" and has_user_value:
        raise ValidationError(
            f"Domain {domain.domain_id} uses AuthMode {domain.auth_mode}: "
            "SingleSignOnUserValue applies only to AuthMode SSO."
        )


def _contains(name: str, fragment: str | None) -> bool:
    # NOTE: the API reference does not say whether the *Contains filters are
    # case sensitive; matching without case returns the larger set.
    return fragment is None or fragment.lower() in name.lower()


def _within(moment: datetime, after: datetime | None, before: datetime | None) -> bool:
    """Return whether ``moment`` lies between ``after`` and ``before``, inclusive."""
    if after is not None and moment < _aware(after):
        return False
    return before is None or moment <= _aware(before)


def _aware(moment: datetime) -> datetime:
    # moto's request parser returns naive datetimes in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _time_sort_key(sort_by: str | None) -> Any:
    def sort_key(resource: UserProfile | Space) -> SortKey:
        if sort_by == "LastModifiedTime":
            moment = resource.last_modified_time or resource.creation_time
        else:
            moment = resource.creation_time
        return moment.timestamp(), resource.seq

    return sort_key


def page_response(
    member: str, items: list[dict[str, Any]], token: str | None
) -> Response:
    response: Response = {member: items}
    if token is not None:
        response["NextToken"] = token
    return response
