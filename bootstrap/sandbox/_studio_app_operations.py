"""SageMaker operations on apps, and the store that serves every operation."""

from __future__ import annotations

from typing import Any

from ._studio_apps import AppStart, LifecycleScript, launch
from ._studio_errors import (
    ResourceInUseError,
    ResourceNotFoundError,
    StudioApiError,
    ValidationError,
)
from ._studio_operations import (
    Request,
    ResourceOperations,
    Response,
    page_response,
)
from ._studio_paging import paginate
from ._studio_records import App, Domain, Space, UserProfile, utc_now
from ._studio_settings import (
    NO_LIFECYCLE_CONFIG,
    LifecycleChoice,
    SettingsLevel,
    app_settings_key,
    choose_lifecycle_configs,
)
from ._studio_store import app_key, checked_tags

# App types that run only in a space (Studio); the Studio Classic types run
# for a user profile or in a space.
SPACE_APP_TYPES = ("JupyterLab", "CodeEditor")

# Studio Classic names the JupyterServer app of a user "default".
JUPYTER_SERVER_APP_NAME = "default"

_STORE_ATTRIBUTE = "_studio_bootstrap_store"


class StudioStore(ResourceOperations):
    """Every Studio operation of one account and region."""

    def create_app(self, params: Request) -> Response:
        domain = self.domain(params["DomainId"])
        app_type, app_name = params["AppType"], params["AppName"]
        profile, space = self._app_owner(domain, params)
        key = app_key(
            domain.domain_id,
            profile.name if profile else None,
            space.name if space else None,
            app_type,
            app_name,
        )
        existing = self.apps.get(key)
        if existing is not None and existing.status != "Deleted":
            raise ResourceInUseError(
                f"App {app_name} of type {app_type} already exists with status "
                f"{existing.status}. Delete it before creating it again."
            )
        if space is not None:
            self._check_space_idle(space)
        choice = self._choose(domain, profile, space, params)

        app = App(
            domain_id=domain.domain_id,
            user_profile_name=profile.name if profile else None,
            space_name=space.name if space else None,
            app_type=app_type,
            app_name=app_name,
            arn=self._app_arn(domain, profile, space, app_type, app_name),
            creation_time=utc_now(),
            seq=self.next_seq(),
            resource_spec=choice.resource_spec or None,
            built_in_lifecycle_config_arn=choice.built_in,
            lifecycle_config_arns=choice.run_order,
            recovery_mode=params.get("RecoveryMode"),
            tags=checked_tags(params.get("Tags")),
        )
        self.apps[key] = app
        self._launch(app, _start_user(profile, space), choice)
        return {"AppArn": app.arn}

    def describe_app(self, params: Request) -> Response:
        return self._app(params).describe()

    def delete_app(self, params: Request) -> Response:
        app = self._app(params)
        if app.status == "Deleted":
            raise ResourceNotFoundError(f"App {app.arn} is already deleted.")
        # Deleting stops the app at once here; Studio passes through
        # Deleting first.
        app.status = "Deleted"
        return {}

    def list_apps(self, params: Request) -> Response:
        user = params.get("UserProfileNameEquals")
        space = params.get("SpaceNameEquals")
        if user and space:
            raise ValidationError(
                "Set at most one of UserProfileNameEquals and SpaceNameEquals."
            )
        apps = [
            app
            for app in self.apps.values()
            if params.get("DomainIdEquals") in (None, app.domain_id)
            and (user is None or (app.user_profile_name or "").lower() == user.lower())
            and (space is None or (app.space_name or "").lower() == space.lower())
        ]
        page, token = paginate(
            apps,
            lambda app: (app.creation_time.timestamp(), app.seq),
            params.get("SortOrder") == "Descending",
            params.get("MaxResults"),
            params.get("NextToken"),
        )
        return page_response("Apps", [app.details() for app in page], token)

    def _app(self, params: Request) -> App:
        self.domain(params["DomainId"])
        key = app_key(
            params["DomainId"],
            params.get("UserProfileName"),
            params.get("SpaceName"),
            params["AppType"],
            params["AppName"],
        )
        found = self.apps.get(key)
        if found is None:
            raise ResourceNotFoundError(
                f"App {params['AppName']} of type {params['AppType']} does not "
                f"exist in domain {params['DomainId']}."
            )
        return found

    def _app_owner(
        self, domain: Domain, params: Request
    ) -> tuple[UserProfile | None, Space | None]:
        app_type, app_name = params["AppType"], params["AppName"]
        user_name, space_name = params.get("UserProfileName"), params.get("SpaceName")
        if bool(user_name) == bool(space_name):
            raise ValidationError(
                "Set exactly one of UserProfileName and SpaceName for CreateApp."
            )
        if app_type in SPACE_APP_TYPES and not space_name:
            raise ValidationError(
                f"{app_type} apps run in a space: set SpaceName for CreateApp."
            )
        if app_type == "JupyterServer" and app_name != JUPYTER_SERVER_APP_NAME:
            raise ValidationError(
                f"A JupyterServer app must be named {JUPYTER_SERVER_APP_NAME!r}, "
                f"got {app_name!r}."
            )
        if user_name:
            return self.user_profile(domain.domain_id, user_name), None

        space = self.space(domain.domain_id, str(space_name))
        space_type = (space.settings or {}).get("AppType")
        if space_type and space_type != app_type:
            raise ValidationError(
                f"Space {space.name} is for {space_type} apps, not {app_type}."
            )
        return None, space

    def _check_space_idle(self, space: Space) -> None:
        for app in self.running_apps(space.domain_id):
            if (app.space_name or "").lower() == space.name.lower():
                raise ResourceInUseError(
                    f"Space {space.name} already runs {app.app_type} app "
                    f"{app.app_name}; a space runs one app at a time. Delete it first."
                )

    def _choose(
        self,
        domain: Domain,
        profile: UserProfile | None,
        space: Space | None,
        params: Request,
    ) -> LifecycleChoice:
        """Choose the LCCs and resource spec of a CreateApp request."""
        app_type = params["AppType"]
        requested = params.get("ResourceSpec")
        requested_arn = (requested or {}).get("LifecycleConfigArn")
        if requested_arn and requested_arn != NO_LIFECYCLE_CONFIG:
            self.check_lifecycle_config_arn(
                requested_arn, app_type, "ResourceSpec.LifecycleConfigArn"
            )
        levels = self._settings_levels(domain, profile, space, app_type)
        choice = choose_lifecycle_configs(app_type, levels, requested)

        # The API reference of CreateApp: a KernelGateway app without an
        # InstanceType in any of the resource specs fails validation.
        if app_type == "KernelGateway" and not choice.resource_spec.get("InstanceType"):
            raise ValidationError(
                "A KernelGateway app needs an InstanceType: set it in "
                "ResourceSpec or in the DefaultResourceSpec of "
                "KernelGatewayAppSettings."
            )
        return choice

    def _launch(self, app: App, user: str | None, choice: LifecycleChoice) -> None:
        """Hand the app and its decoded scripts to the app start thread."""
        failure_reason = choice.failure_reason
        scripts: list[LifecycleScript] = []
        if failure_reason is None:
            try:
                scripts = [
                    LifecycleScript(arn, self.decoded_script(arn))
                    for arn in choice.run_order
                ]
            except StudioApiError as exc:
                failure_reason = exc.message
        start = AppStart(
            domain_id=app.domain_id,
            user_profile_name=user,
            space_name=app.space_name,
            app_type=app.app_type,
            app_name=app.app_name,
            scripts=tuple(scripts),
        )
        launch(app, start, failure_reason)

    def _settings_levels(
        self,
        domain: Domain,
        profile: UserProfile | None,
        space: Space | None,
        app_type: str,
    ) -> list[SettingsLevel]:
        """Return the app settings that apply to an app, most specific first.

        A private space takes its owner's user settings and the domain's
        DefaultUserSettings. A shared space takes the domain's
        DefaultSpaceSettings where they have settings for the app type, else
        DefaultUserSettings.
        NOTE: the levels of shared spaces follow the shapes of the service
        model; how Studio combines them is unverified.
        """
        key = app_settings_key(app_type)
        levels: list[SettingsLevel] = []
        owner = profile
        if space is not None:
            levels.append(
                SettingsLevel(
                    f"space {space.name}", dict((space.settings or {}).get(key) or {})
                )
            )
            if not space.is_shared and space.owner:
                owner = self.user_profile(domain.domain_id, space.owner)
        if owner is not None:
            levels.append(
                SettingsLevel(
                    f"user profile {owner.name}",
                    dict((owner.settings or {}).get(key) or {}),
                )
            )
        space_defaults = domain.default_space_settings or {}
        if space is not None and space.is_shared and key in space_defaults:
            where, settings = "DefaultSpaceSettings", space_defaults
        else:
            where, settings = "DefaultUserSettings", domain.default_user_settings
        levels.append(
            SettingsLevel(
                f"domain {domain.domain_id} {where}", dict(settings.get(key) or {})
            )
        )
        return levels

    def _app_arn(
        self,
        domain: Domain,
        profile: UserProfile | None,
        space: Space | None,
        app_type: str,
        app_name: str,
    ) -> str:
        if profile is not None:
            owner = profile.name
        else:
            owner = space.name if space is not None else ""
        return self.arn(f"app/{domain.domain_id}/{owner}/{app_type.lower()}/{app_name}")


def _start_user(profile: UserProfile | None, space: Space | None) -> str | None:
    if profile is not None:
        return profile.name
    if space is not None and not space.is_shared:
        return space.owner
    return None


def store_for(backend: Any) -> StudioStore:
    """Return the Studio store kept on a moto SageMaker backend, creating it."""
    store = backend.__dict__.get(_STORE_ATTRIBUTE)
    if store is None:
        store = StudioStore(backend.account_id, backend.region_name)
        backend.__dict__[_STORE_ATTRIBUTE] = store
    return store
