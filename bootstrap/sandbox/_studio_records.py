"""Stored Studio resources and the response documents built from them."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from moto.utilities.utils import get_partition

from ._studio_control import is_domain_held

# App statuses in which an app uses its lifecycle configurations and its
# space, so neither can be deleted.
RUNNING_APP_STATUSES = ("InService", "Pending")

Settings = dict[str, Any]
Tags = list[dict[str, str]]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def make_arn(region: str, account: str, resource: str) -> str:
    return f"arn:{get_partition(region)}:sagemaker:{region}:{account}:{resource}"


def compact(document: dict[str, Any]) -> dict[str, Any]:
    """Return ``document`` without its None values, deep-copied."""
    return {
        key: copy.deepcopy(value)
        for key, value in document.items()
        if value is not None
    }


def updating_status(ready_at: float | None, kept_updating: bool = False) -> str:
    """Return ``Updating`` until the monotonic time ``ready_at``, then ``InService``.

    ``kept_updating`` returns ``Updating`` regardless of the time.
    """
    if kept_updating or (ready_at is not None and time.monotonic() < ready_at):
        return "Updating"
    return "InService"


@dataclass
class LifecycleConfig:
    name: str
    arn: str
    content: str
    app_type: str
    creation_time: datetime
    tags: Tags
    seq: int

    def describe(self) -> dict[str, Any]:
        # LCCs are immutable, so the API reports LastModifiedTime equal to
        # CreationTime.
        return {
            "StudioLifecycleConfigArn": self.arn,
            "StudioLifecycleConfigName": self.name,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.creation_time,
            "StudioLifecycleConfigContent": self.content,
            "StudioLifecycleConfigAppType": self.app_type,
        }

    def details(self) -> dict[str, Any]:
        return {
            "StudioLifecycleConfigArn": self.arn,
            "StudioLifecycleConfigName": self.name,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.creation_time,
            "StudioLifecycleConfigAppType": self.app_type,
        }


@dataclass
class Domain:
    domain_id: str
    name: str
    arn: str
    url: str
    auth_mode: str
    default_user_settings: Settings
    creation_time: datetime
    seq: int
    home_efs_file_system_id: str
    default_space_settings: Settings | None = None
    domain_settings: Settings | None = None
    subnet_ids: list[str] | None = None
    vpc_id: str | None = None
    app_network_access_type: str = "PublicInternetOnly"
    app_security_group_management: str | None = None
    kms_key_id: str | None = None
    home_efs_file_system_kms_key_id: str | None = None
    tag_propagation: str = "DISABLED"
    tags: Tags = field(default_factory=list)
    last_modified_time: datetime | None = None
    ready_at: float | None = None

    @property
    def status(self) -> str:
        return updating_status(self.ready_at, is_domain_held(self.domain_id))

    def describe(self) -> dict[str, Any]:
        return compact(
            {
                "DomainArn": self.arn,
                "DomainId": self.domain_id,
                "DomainName": self.name,
                "HomeEfsFileSystemId": self.home_efs_file_system_id,
                "Status": self.status,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time or self.creation_time,
                "AuthMode": self.auth_mode,
                "DefaultUserSettings": self.default_user_settings,
                "DomainSettings": self.domain_settings,
                "AppNetworkAccessType": self.app_network_access_type,
                "HomeEfsFileSystemKmsKeyId": self.home_efs_file_system_kms_key_id,
                "SubnetIds": self.subnet_ids,
                "Url": self.url,
                "VpcId": self.vpc_id,
                "KmsKeyId": self.kms_key_id,
                "AppSecurityGroupManagement": self.app_security_group_management,
                "TagPropagation": self.tag_propagation,
                "DefaultSpaceSettings": self.default_space_settings,
            }
        )

    def details(self) -> dict[str, Any]:
        return {
            "DomainArn": self.arn,
            "DomainId": self.domain_id,
            "DomainName": self.name,
            "Status": self.status,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time or self.creation_time,
            "Url": self.url,
        }


@dataclass
class UserProfile:
    domain_id: str
    name: str
    arn: str
    settings: Settings | None
    creation_time: datetime
    seq: int
    home_efs_file_system_uid: str
    single_sign_on_user_identifier: str | None = None
    single_sign_on_user_value: str | None = None
    tags: Tags = field(default_factory=list)
    last_modified_time: datetime | None = None
    ready_at: float | None = None

    @property
    def status(self) -> str:
        return updating_status(self.ready_at)

    def describe(self) -> dict[str, Any]:
        return compact(
            {
                "DomainId": self.domain_id,
                "UserProfileArn": self.arn,
                "UserProfileName": self.name,
                "HomeEfsFileSystemUid": self.home_efs_file_system_uid,
                "Status": self.status,
                "LastModifiedTime": self.last_modified_time or self.creation_time,
                "CreationTime": self.creation_time,
                "SingleSignOnUserIdentifier": self.single_sign_on_user_identifier,
                "SingleSignOnUserValue": self.single_sign_on_user_value,
                "UserSettings": self.settings,
            }
        )

    def details(self) -> dict[str, Any]:
        return {
            "DomainId": self.domain_id,
            "UserProfileName": self.name,
            "Status": self.status,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified_time or self.creation_time,
        }


@dataclass
class Space:
    domain_id: str
    name: str
    arn: str
    settings: Settings | None
    creation_time: datetime
    seq: int
    home_efs_file_system_uid: str
    ownership: Settings | None = None
    sharing: Settings | None = None
    display_name: str | None = None
    tags: Tags = field(default_factory=list)
    last_modified_time: datetime | None = None
    ready_at: float | None = None

    @property
    def status(self) -> str:
        return updating_status(self.ready_at)

    @property
    def owner(self) -> str | None:
        return (self.ownership or {}).get("OwnerUserProfileName")

    @property
    def is_shared(self) -> bool:
        # A space without sharing settings is a shared space of the domain,
        # as spaces were before private spaces existed.
        return (self.sharing or {}).get("SharingType", "Shared") == "Shared"

    def describe(self) -> dict[str, Any]:
        return compact(
            {
                "DomainId": self.domain_id,
                "SpaceArn": self.arn,
                "SpaceName": self.name,
                "HomeEfsFileSystemUid": self.home_efs_file_system_uid,
                "Status": self.status,
                "LastModifiedTime": self.last_modified_time or self.creation_time,
                "CreationTime": self.creation_time,
                "SpaceSettings": self.settings,
                "OwnershipSettings": self.ownership,
                "SpaceSharingSettings": self.sharing,
                "SpaceDisplayName": self.display_name,
            }
        )

    def details(self) -> dict[str, Any]:
        settings = self.settings or {}
        summary = compact(
            {
                "AppType": settings.get("AppType"),
                "RemoteAccess": settings.get("RemoteAccess"),
                "SpaceStorageSettings": settings.get("SpaceStorageSettings"),
            }
        )
        return compact(
            {
                "DomainId": self.domain_id,
                "SpaceName": self.name,
                "Status": self.status,
                "CreationTime": self.creation_time,
                "LastModifiedTime": self.last_modified_time or self.creation_time,
                "SpaceSettingsSummary": summary or None,
                "SpaceSharingSettingsSummary": self.sharing,
                "OwnershipSettingsSummary": self.ownership,
                "SpaceDisplayName": self.display_name,
            }
        )


@dataclass
class App:
    domain_id: str
    user_profile_name: str | None
    space_name: str | None
    app_type: str
    app_name: str
    arn: str
    creation_time: datetime
    seq: int
    resource_spec: Settings | None = None
    built_in_lifecycle_config_arn: str | None = None
    # The LCCs this app ran at start, in run order; they stay in use while
    # the app runs.
    lifecycle_config_arns: tuple[str, ...] = ()
    recovery_mode: bool | None = None
    status: str = "Pending"
    failure_reason: str | None = None
    tags: Tags = field(default_factory=list)

    @property
    def is_running(self) -> bool:
        return self.status in RUNNING_APP_STATUSES

    def describe(self) -> dict[str, Any]:
        return compact(
            {
                "AppArn": self.arn,
                "AppType": self.app_type,
                "AppName": self.app_name,
                "DomainId": self.domain_id,
                "UserProfileName": self.user_profile_name,
                "SpaceName": self.space_name,
                "Status": self.status,
                "RecoveryMode": self.recovery_mode,
                "CreationTime": self.creation_time,
                "FailureReason": self.failure_reason,
                "ResourceSpec": self.resource_spec,
                "BuiltInLifecycleConfigArn": self.built_in_lifecycle_config_arn,
            }
        )

    def details(self) -> dict[str, Any]:
        return compact(
            {
                "DomainId": self.domain_id,
                "UserProfileName": self.user_profile_name,
                "SpaceName": self.space_name,
                "AppType": self.app_type,
                "AppName": self.app_name,
                "Status": self.status,
                "CreationTime": self.creation_time,
                "ResourceSpec": self.resource_spec,
            }
        )
