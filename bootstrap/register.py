"""Create the lifecycle configurations and attach them where they will run.

Probe, then act. ``discover`` reads the domain, its user profiles, spaces,
apps and our lifecycle configurations. ``plan_register`` and
``plan_unregister`` compute every change as data, and ``apply`` makes only
those calls, so a second run with the same config plans nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bootstrap import __version__, studio
from bootstrap.aws import SageMaker
from bootstrap.config import APP_SLUGS, HASH_LENGTH
from bootstrap.errors import AwsError, BootstrapError, ConflictError
from bootstrap.render import RenderedScript, check_size

logger = logging.getLogger(__name__)

TAG_SHA = "studio-bootstrap:sha256"
TAG_VERSION = "studio-bootstrap:version"
TAG_REPLACES = "studio-bootstrap:replaces"
TAG_COMPOSED = "studio-bootstrap:composed"
# The domain an LCC was created for. An LCC without it predates the tag and
# counts as every domain's.
TAG_DOMAIN = "studio-bootstrap:domain"
# One tag per settings object whose default we took: the ARN that was there.
TAG_PREVIOUS = "studio-bootstrap:previous-default:"
MAX_TAG_VALUE = 256
RUNNING = ("InService", "Pending")
PARALLEL_CALLS = 8


@dataclass(frozen=True)
class Location:
    """A settings object that can carry lifecycle configurations."""

    kind: str  # "domain", "domain-space", "user" or "space"
    name: str = ""

    @property
    def label(self) -> str:
        return {
            "domain": "domain (all users)",
            "domain-space": "domain (shared spaces)",
            "user": f"user {self.name}",
            "space": f"space {self.name}",
        }[self.kind]

    @property
    def tag_id(self) -> str:
        return self.kind if not self.name else f"{self.kind}/{self.name}"


@dataclass
class Lcc:
    """A lifecycle configuration that this tool created."""

    name: str
    arn: str
    app_type: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class State:
    """The current state of a domain, as discover read it."""

    domain_id: str
    domain: dict[str, Any]
    users: dict[str, dict[str, Any]]
    spaces: dict[str, dict[str, Any]]
    apps: list[dict[str, Any]]
    ours: dict[str, Lcc]
    prefix: str

    @property
    def account(self) -> str:
        return str(self.domain["DomainArn"]).split(":")[4]

    @property
    def region(self) -> str:
        return str(self.domain["DomainArn"]).split(":")[3]

    def arn(self, name: str) -> str:
        prefix = f"arn:aws:sagemaker:{self.region}:{self.account}"
        return f"{prefix}:studio-lifecycle-config/{name}"

    def is_ours(self, arn: str) -> bool:
        return our_name(arn.rsplit("/", 1)[-1], self.prefix) is not None

    def settings(self, location: Location) -> dict[str, Any]:
        if location.kind == "domain":
            return dict(self.domain.get("DefaultUserSettings") or {})
        if location.kind == "domain-space":
            return dict(self.domain.get("DefaultSpaceSettings") or {})
        if location.kind == "user":
            return dict(self.users[location.name])
        return dict(self.spaces[location.name])


@dataclass
class Change:
    """One planned call, described for the plan table and JSON output."""

    action: str  # create, attach, detach, delete, tag
    target: str
    app_type: str
    detail: str
    run: Callable[[SageMaker], None] | None = None
    mutating: bool = True

    def as_dict(self) -> dict[str, str]:
        return {
            "action": self.action,
            "target": self.target,
            "app_type": self.app_type,
            "detail": self.detail,
        }


@dataclass
class Plan:
    """Every change register or unregister would make, and what it reports."""

    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verify: list[tuple[Location, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"changes": [c.as_dict() for c in self.changes], "notes": self.notes}


def our_name(name: str, prefix: str) -> str | None:
    """Return the app slug when name is PREFIX-SLUG-HASH, else None."""
    slugs = "|".join(APP_SLUGS.values())
    pattern = rf"{re.escape(prefix)}-({slugs})-[0-9a-f]{{{HASH_LENGTH}}}"
    match = re.fullmatch(pattern, name)
    return match.group(1) if match else None


# --- discover --------------------------------------------------------------


def discover(sagemaker: SageMaker, domain_id: str, prefix: str) -> State:
    """Read everything that register, unregister and status decide on."""
    domain = sagemaker.call("DescribeDomain", f"domain {domain_id}", DomainId=domain_id)
    user_names = [
        item["UserProfileName"]
        for item in sagemaker.pages(
            "ListUserProfiles",
            f"domain {domain_id}",
            "UserProfiles",
            DomainIdEquals=domain_id,
        )
    ]
    space_names = [
        item["SpaceName"]
        for item in sagemaker.pages(
            "ListSpaces", f"domain {domain_id}", "Spaces", DomainIdEquals=domain_id
        )
    ]

    def describe_user(name: str) -> dict[str, Any]:
        response = sagemaker.call(
            "DescribeUserProfile",
            f"user profile {name}",
            DomainId=domain_id,
            UserProfileName=name,
        )
        return dict(response.get("UserSettings") or {})

    def describe_space(name: str) -> dict[str, Any]:
        response = sagemaker.call(
            "DescribeSpace", f"space {name}", DomainId=domain_id, SpaceName=name
        )
        return dict(response.get("SpaceSettings") or {})

    with ThreadPoolExecutor(PARALLEL_CALLS) as pool:
        users = dict(zip(user_names, pool.map(describe_user, user_names), strict=True))
        spaces = dict(
            zip(space_names, pool.map(describe_space, space_names), strict=True)
        )

    apps = [
        app
        for app in sagemaker.pages(
            "ListApps", f"domain {domain_id}", "Apps", DomainIdEquals=domain_id
        )
        if app.get("Status") in RUNNING
    ]
    ours = _list_ours(sagemaker, prefix, domain_id)
    return State(domain_id, domain, users, spaces, apps, ours, prefix)


def _list_ours(sagemaker: SageMaker, prefix: str, domain_id: str) -> dict[str, Lcc]:
    """List our LCCs of the domain: those created for it, and untagged ones.

    Another domain's versions are left out, so that retiring and unregistering
    never touch them.
    """
    ours: dict[str, Lcc] = {}
    configs = sagemaker.pages(
        "ListStudioLifecycleConfigs",
        f"lifecycle configurations {prefix}-*",
        "StudioLifecycleConfigs",
        NameContains=prefix,
    )
    for item in configs:
        name = item["StudioLifecycleConfigName"]
        if our_name(name, prefix) is None:
            continue
        arn = item["StudioLifecycleConfigArn"]
        tags = {
            tag["Key"]: tag["Value"]
            for tag in sagemaker.pages(
                "ListTags", f"lifecycle configuration {name}", "Tags", ResourceArn=arn
            )
        }
        if tags.get(TAG_DOMAIN, domain_id) != domain_id:
            continue
        ours[name] = Lcc(name, arn, item["StudioLifecycleConfigAppType"], tags)
    return ours


def locations(state: State, app_type: str) -> list[Location]:
    """Return the domain-level settings objects to attach this app type to.

    UpdateDomain cannot remove a settings object once it exists, so the
    shared-space settings are used only where the domain already has them;
    DefaultUserSettings is always used, because every user profile without
    its own settings runs what it names.
    """
    found = [Location("domain")]
    key = studio.SETTINGS_KEYS[app_type]
    shared = state.settings(Location("domain-space"))
    if app_type in studio.SPACE_DEFAULT_APP_TYPES and key in shared:
        found.append(Location("domain-space"))
    return found


# --- plan register -----------------------------------------------------------


@dataclass
class Options:
    """Choices of the admin for register."""

    compose: bool = False
    replace_default: bool = False
    user_profiles: str | list[str] = "all"  # "all", "none" or names


def plan_register(
    state: State,
    scripts: dict[str, RenderedScript],
    options: Options,
    compose_with: Callable[[str, str], RenderedScript] | None = None,
) -> Plan:
    """Plan creating, attaching and retiring versions for each app type."""
    plan = Plan()
    domain_patch: dict[str, dict[str, Any]] = {"domain": {}, "domain-space": {}}
    user_patches: dict[str, dict[str, Any]] = {}
    previous_tags: dict[str, dict[str, str]] = {}
    conflicts: list[studio.Conflict] = []
    current: dict[str, str] = {}

    for app_type, script in scripts.items():
        key = studio.SETTINGS_KEYS[app_type]
        arn, script = _choose_script(state, app_type, script, options, compose_with)
        current[app_type] = arn
        if script.lcc_name not in state.ours:
            tags = _tags(state, app_type, script)
            previous_tags[script.lcc_name] = tags
            plan.changes.append(_create_change(state, script, tags))

        for location in locations(state, app_type):
            settings = state.settings(location).get(key)
            updated, slot, conflict = studio.attach(
                app_type, settings, arn, state.is_ours, _may_take(options)
            )
            if conflict:
                conflicts.append(studio.Conflict(location.label, app_type, conflict))
                continue
            assert slot is not None
            if slot.displaced:
                _record_displaced(
                    state, plan, previous_tags, script, location, slot.displaced
                )
            if updated != (settings or {}):
                domain_patch[location.kind][key] = updated
                plan.changes.append(
                    Change(
                        "attach", location.label, app_type, _slot_detail(slot, settings)
                    )
                )
            plan.verify.append((location, key, arn))

        _plan_users(
            state,
            app_type,
            arn,
            options,
            user_patches,
            previous_tags,
            conflicts,
            plan,
            script,
        )
        _report_spaces(state, app_type, arn, plan)

    if conflicts:
        raise ConflictError(_conflict_message(state, conflicts))
    _attach_calls(state, domain_patch, user_patches, plan)
    _plan_retire(state, current, plan)
    return plan


def _record_displaced(
    state: State,
    plan: Plan,
    new_tags: dict[str, dict[str, str]],
    script: RenderedScript,
    location: Location,
    displaced: str,
) -> None:
    """Keep the default we displace in a tag, so that unregister restores it."""
    key = TAG_PREVIOUS + location.tag_id
    if script.lcc_name in new_tags:
        new_tags[script.lcc_name][key] = displaced
        return
    existing = state.ours[script.lcc_name]
    if existing.tags.get(key) == displaced:
        return

    def run(sagemaker: SageMaker) -> None:
        sagemaker.call(
            "AddTags",
            f"lifecycle configuration {script.lcc_name}",
            ResourceArn=existing.arn,
            Tags=[{"Key": key, "Value": displaced}],
        )

    detail = f"record displaced default {_short(displaced)} of {location.label}"
    plan.changes.append(
        Change("tag", f"lcc {script.lcc_name}", script.app_type, detail, run)
    )


def _may_take(options: Options) -> bool:
    return options.compose or options.replace_default


def _choose_script(
    state: State,
    app_type: str,
    script: RenderedScript,
    options: Options,
    compose_with: Callable[[str, str], RenderedScript] | None,
) -> tuple[str, RenderedScript]:
    """Return our ARN for this app type, composed with a foreign default when asked."""
    if options.compose and compose_with is not None:
        key = studio.SETTINGS_KEYS[app_type]
        settings = state.settings(Location("domain")).get(key)
        default = studio.default_of(settings)
        if (
            default
            and not state.is_ours(default)
            and not studio.uses_built_in(app_type, settings, state.is_ours)
        ):
            script = compose_with(app_type, default)
            check_size(script)
    return state.arn(script.lcc_name), script


def _tags(state: State, app_type: str, script: RenderedScript) -> dict[str, str]:
    replaced = sorted(
        lcc.name for lcc in state.ours.values() if lcc.app_type == app_type
    )
    tags = {
        TAG_SHA: hashlib.sha256(script.content).hexdigest(),
        TAG_VERSION: __version__,
        TAG_REPLACES: _fit(" ".join(replaced) or "none"),
        TAG_DOMAIN: state.domain_id,
    }
    if script.composed_with:
        tags[TAG_COMPOSED] = script.composed_with
    return tags


def _fit(value: str) -> str:
    if len(value) <= MAX_TAG_VALUE:
        return value
    return value[: MAX_TAG_VALUE - 4].rsplit(" ", 1)[0] + " ..."


def _create_change(
    state: State, script: RenderedScript, tags: dict[str, str]
) -> Change:
    def run(sagemaker: SageMaker) -> None:
        sagemaker.call(
            "CreateStudioLifecycleConfig",
            f"lifecycle configuration {script.lcc_name}",
            StudioLifecycleConfigName=script.lcc_name,
            StudioLifecycleConfigContent=script.encoded,
            StudioLifecycleConfigAppType=script.app_type,
            Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        )

    detail = f"{len(script.content):,} bytes, {len(script.encoded):,} base64 characters"
    return Change("create", f"lcc {script.lcc_name}", script.app_type, detail, run)


def _slot_detail(slot: studio.Slot, before: dict[str, Any] | None) -> str:
    if slot.kind == "built-in":
        was = studio.built_in_of(before)
        return f"built-in (was {_short(was)})"
    was = studio.default_of(before)
    detail = f"default and allowed list (default was {_short(was)})"
    if slot.displaced:
        detail += "; the displaced default stays in the list"
    return detail


def _short(arn: str | None) -> str:
    return arn.rsplit("/", 1)[-1] if arn else "none"


def _plan_users(
    state: State,
    app_type: str,
    arn: str,
    options: Options,
    user_patches: dict[str, dict[str, Any]],
    previous_tags: dict[str, dict[str, str]],
    conflicts: list[studio.Conflict],
    plan: Plan,
    script: RenderedScript,
) -> None:
    """Update user profiles whose own settings would keep our script from running."""
    key = studio.SETTINGS_KEYS[app_type]
    domain_settings = _after_domain(state, app_type, arn)
    for name, user_settings in sorted(state.users.items()):
        settings = user_settings.get(key)
        if not settings or studio.runs(app_type, arn, settings, domain_settings):
            continue
        if not _selected(name, options.user_profiles):
            plan.notes.append(
                f"user {name} overrides the domain's {app_type} settings and was "
                "left alone, so our script will not run for them"
            )
            continue
        updated, slot, conflict = studio.attach(
            app_type, settings, arn, state.is_ours, _may_take(options)
        )
        if conflict:
            conflicts.append(studio.Conflict(f"user {name}", app_type, conflict))
            continue
        assert slot is not None
        if slot.displaced:
            location = Location("user", name)
            _record_displaced(
                state, plan, previous_tags, script, location, slot.displaced
            )
        user_patches.setdefault(name, {})[key] = updated
        plan.changes.append(
            Change("attach", f"user {name}", app_type, _slot_detail(slot, settings))
        )
        plan.verify.append((Location("user", name), key, arn))


def _after_domain(state: State, app_type: str, arn: str) -> dict[str, Any] | None:
    key = studio.SETTINGS_KEYS[app_type]
    settings = state.settings(Location("domain")).get(key)
    updated, _, conflict = studio.attach(app_type, settings, arn, state.is_ours, True)
    return settings if conflict else updated


def _selected(name: str, choice: str | list[str]) -> bool:
    if choice == "all":
        return True
    if choice == "none":
        return False
    return name in choice


def _report_spaces(state: State, app_type: str, arn: str, plan: Plan) -> None:
    key = studio.SETTINGS_KEYS[app_type]
    for name, settings in sorted(state.spaces.items()):
        default = studio.default_of(settings.get(key))
        if default and default != arn and app_type not in studio.BUILT_IN_APP_TYPES:
            plan.notes.append(
                f"space {name} sets its own {app_type} default "
                f"({_short(default)}), which runs instead of ours there"
            )


def _conflict_message(state: State, conflicts: list[studio.Conflict]) -> str:
    lines = [
        f"{c.location}: the {c.app_type} default is {_short(c.arn)}, "
        "a lifecycle configuration that is not ours"
        for c in conflicts
    ]
    return (
        "nothing was changed, because taking these default slots would stop "
        "those scripts from running:\n  "
        + "\n  ".join(lines)
        + "\nRerun with --compose to run both scripts from one lifecycle "
        "configuration, or --replace-default to take the slot; both keep the "
        "other ARN in the allowed list, and unregister puts it back."
    )


def _attach_calls(
    state: State,
    domain_patch: dict[str, dict[str, Any]],
    user_patches: dict[str, dict[str, Any]],
    plan: Plan,
) -> None:
    """Turn the patches into calls: one UpdateDomain, then user profiles."""
    request: dict[str, Any] = {}
    if domain_patch["domain"]:
        request["DefaultUserSettings"] = domain_patch["domain"]
    if domain_patch["domain-space"]:
        request["DefaultSpaceSettings"] = domain_patch["domain-space"]
    if request:
        plan.changes.append(
            Change(
                "update",
                f"domain {state.domain_id}",
                "-",
                "UpdateDomain",
                _update_domain(state.domain_id, request),
            )
        )
    for name, patch in sorted(user_patches.items()):
        plan.changes.append(
            Change(
                "update",
                f"user {name}",
                "-",
                "UpdateUserProfile",
                _update_user(state.domain_id, name, patch),
            )
        )


def _update_domain(
    domain_id: str, request: dict[str, Any]
) -> Callable[[SageMaker], None]:
    def run(sagemaker: SageMaker) -> None:
        wait_in_service(sagemaker, domain_id)
        sagemaker.call(
            "UpdateDomain", f"domain {domain_id}", DomainId=domain_id, **request
        )
        wait_in_service(sagemaker, domain_id)

    return run


def _update_user(
    domain_id: str, name: str, patch: dict[str, Any]
) -> Callable[[SageMaker], None]:
    def run(sagemaker: SageMaker) -> None:
        sagemaker.call(
            "UpdateUserProfile",
            f"user profile {name}",
            DomainId=domain_id,
            UserProfileName=name,
            UserSettings=patch,
        )

    return run


def _plan_retire(state: State, current: dict[str, str], plan: Plan) -> None:
    """Delete our superseded versions that nothing but these updates reference."""
    keep = set(current.values())
    for lcc in sorted(state.ours.values(), key=lambda item: item.name):
        if lcc.arn in keep or lcc.app_type not in current:
            continue
        holders = _holders(state, lcc.arn, include_attached=False)
        if holders:
            plan.notes.append(f"{lcc.name} is kept: {', '.join(holders)}")
            continue
        plan.changes.append(
            Change(
                "delete", f"lcc {lcc.name}", lcc.app_type, "superseded", _delete(lcc)
            )
        )


def _holders(state: State, arn: str, include_attached: bool) -> list[str]:
    """Name the running apps (and, when asked, settings) that use an ARN."""
    holders = []
    for app in state.apps:
        spec = app.get("ResourceSpec") or {}
        if spec.get("LifecycleConfigArn") == arn:
            owner = app.get("UserProfileName") or app.get("SpaceName") or "?"
            holders.append(
                f"held by running app {app.get('AppType')}/{app.get('AppName')} "
                f"of {owner} "
                "until it stops"
            )
    if include_attached:
        for name, settings in state.spaces.items():
            for key in studio.SETTINGS_KEYS.values():
                if studio.default_of(settings.get(key)) == arn:
                    holders.append(f"set as default by space {name}")
    return holders


def _delete(lcc: Lcc) -> Callable[[SageMaker], None]:
    def run(sagemaker: SageMaker) -> None:
        try:
            sagemaker.call(
                "DeleteStudioLifecycleConfig",
                f"lifecycle configuration {lcc.name}",
                StudioLifecycleConfigName=lcc.name,
            )
        except AwsError as exc:
            if exc.code != "ResourceInUse":
                raise
            raise InUseError(lcc.name) from exc

    return run


class InUseError(BootstrapError):
    """Raised when a lifecycle configuration cannot be deleted while in use."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"{name} is still in use (a running app or a setting)")


# --- plan unregister -----------------------------------------------------------


def plan_unregister(state: State, app_types: Iterable[str]) -> Plan:
    """Plan detaching every version of ours, restoring displaced defaults, deleting.

    Only versions of the configured app types are deleted: LCCs belong to the
    account, and another domain may use the same version.
    """
    configured = set(app_types)
    plan = Plan()
    previous = _previous_defaults(state)
    domain_request: dict[str, dict[str, Any]] = {}
    for kind, field_name in (
        ("domain", "DefaultUserSettings"),
        ("domain-space", "DefaultSpaceSettings"),
    ):
        patch = _detach_all(state, Location(kind), previous, plan)
        if patch:
            domain_request[field_name] = patch
    if domain_request:
        plan.changes.append(
            Change(
                "update",
                f"domain {state.domain_id}",
                "-",
                "UpdateDomain",
                _update_domain(state.domain_id, domain_request),
            )
        )
    for name in sorted(state.users):
        patch = _detach_all(state, Location("user", name), previous, plan)
        if patch:
            plan.changes.append(
                Change(
                    "update",
                    f"user {name}",
                    "-",
                    "UpdateUserProfile",
                    _update_user(state.domain_id, name, patch),
                )
            )
    for name in sorted(state.spaces):
        patch = _detach_all(state, Location("space", name), previous, plan)
        if patch:
            plan.changes.append(
                Change(
                    "update",
                    f"space {name}",
                    "-",
                    "UpdateSpace",
                    _update_space(state.domain_id, name, patch),
                )
            )
    for lcc in sorted(state.ours.values(), key=lambda item: item.name):
        if lcc.app_type not in configured:
            continue
        holders = _holders(state, lcc.arn, include_attached=False)
        if holders:
            plan.notes.append(f"{lcc.name} cannot be deleted yet: {', '.join(holders)}")
            continue
        plan.changes.append(
            Change(
                "delete", f"lcc {lcc.name}", lcc.app_type, "unregister", _delete(lcc)
            )
        )
    return plan


def _previous_defaults(state: State) -> dict[str, str]:
    previous: dict[str, str] = {}
    for lcc in state.ours.values():
        for key, value in lcc.tags.items():
            if key.startswith(TAG_PREVIOUS):
                previous[f"{key[len(TAG_PREVIOUS) :]}|{lcc.app_type}"] = value
    return previous


def _detach_all(
    state: State, location: Location, previous: dict[str, str], plan: Plan
) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    settings = state.settings(location)
    for app_type, key in studio.SETTINGS_KEYS.items():
        restore = previous.get(f"{location.tag_id}|{app_type}")
        updated = studio.detach(settings.get(key), state.is_ours, restore)
        if updated is None:
            continue
        patch[key] = updated
        detail = f"restore default {_short(restore)}" if restore else "remove ours"
        plan.changes.append(Change("detach", location.label, app_type, detail))
    return patch


def _update_space(
    domain_id: str, name: str, patch: dict[str, Any]
) -> Callable[[SageMaker], None]:
    def run(sagemaker: SageMaker) -> None:
        sagemaker.call(
            "UpdateSpace",
            f"space {name}",
            DomainId=domain_id,
            SpaceName=name,
            SpaceSettings=patch,
        )

    return run


# --- apply -----------------------------------------------------------------------


@dataclass
class Outcome:
    """The changes apply made, and the versions it left for a later run."""

    done: list[Change] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def apply(sagemaker: SageMaker, plan: Plan, report: Callable[[str], None]) -> Outcome:
    """Make the planned calls: the rest in order, then user profiles, then deletes.

    Creates and the domain update come first, so a user profile never names an
    LCC that does not exist yet. User profiles are then updated in parallel.
    Deletes come last, once nothing of ours references the old versions. An AWS
    failure stops the run and names what was done. A re-run plans from the
    state this left, so it finishes the job.
    """
    outcome = Outcome()
    pending = [change for change in plan.changes if change.run is not None]
    users = [
        c for c in pending if c.action == "update" and c.target.startswith("user ")
    ]
    deletes = [c for c in pending if c.action == "delete"]
    ordered = [c for c in pending if not any(c is other for other in users + deletes)]
    try:
        for change in ordered:
            _run(sagemaker, change, outcome, report)
        if users:
            _run_parallel(sagemaker, users, outcome, report)
        for change in deletes:
            try:
                _run(sagemaker, change, outcome, report)
            except InUseError as exc:
                outcome.kept.append(
                    f"{exc.name} is kept: another domain, user profile, space "
                    "or running app still uses it; a later run deletes it"
                )
    except AwsError:
        report(
            f"stopped after {len(outcome.done)} of {len(pending)} changes; "
            "run again to finish"
        )
        raise
    return outcome


def _run(
    sagemaker: SageMaker,
    change: Change,
    outcome: Outcome,
    report: Callable[[str], None],
) -> None:
    assert change.run is not None
    change.run(sagemaker)
    outcome.done.append(change)
    report(f"done: {change.action} {change.target} ({change.detail})")


def _run_parallel(
    sagemaker: SageMaker,
    changes: list[Change],
    outcome: Outcome,
    report: Callable[[str], None],
) -> None:
    with ThreadPoolExecutor(PARALLEL_CALLS) as pool:
        futures = [
            (change, pool.submit(change.run, sagemaker))
            for change in changes
            if change.run
        ]
        errors = []
        for change, future in futures:
            try:
                future.result()
            except AwsError as exc:
                errors.append(exc)
                continue
            outcome.done.append(change)
            report(f"done: {change.action} {change.target} ({change.detail})")
    if errors:
        raise errors[0]


def wait_in_service(
    sagemaker: SageMaker, domain_id: str, interval: float = 0.5
) -> None:
    """Poll DescribeDomain until the domain is InService (there is no waiter)."""
    timeout = sagemaker.wait_timeout
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        status = sagemaker.call(
            "DescribeDomain", f"domain {domain_id}", DomainId=domain_id
        )["Status"]
        if status == "InService":
            return
        if status not in ("Updating", "Pending"):
            raise BootstrapError(
                f"domain {domain_id} is {status}, not InService; "
                "nothing more was changed"
            )
        left = deadline - time.monotonic()
        if left <= 0:
            raise BootstrapError(
                f"domain {domain_id} is still {status} after {timeout:.0f}s; "
                "run again once it is InService"
            )
        # The last sleep is cut short so that the last look is at the deadline.
        time.sleep(min(delay, left))
        delay = min(delay * 2, 10.0)


def verify(sagemaker: SageMaker, state: State, plan: Plan) -> list[str]:
    """Re-read what was attached and return every problem found.

    Each default must be in its allowed list, or every app launch fails, and
    each slot we set must hold our ARN.
    """
    problems: list[str] = []
    fresh = discover_settings(sagemaker, state, plan)
    for location, key, arn in plan.verify:
        settings = (fresh.get(location) or {}).get(key)
        if not studio.default_in_list(settings):
            problems.append(
                f"{location.label}: {key} default "
                f"{_short(studio.default_of(settings))} "
                "is not in its LifecycleConfigArns"
            )
        if arn not in (studio.built_in_of(settings), studio.default_of(settings)):
            problems.append(f"{location.label}: {key} does not run {_short(arn)}")
    return problems


def discover_settings(
    sagemaker: SageMaker, state: State, plan: Plan
) -> dict[Location, dict[str, Any]]:
    fresh: dict[Location, dict[str, Any]] = {}
    domain = sagemaker.call(
        "DescribeDomain", f"domain {state.domain_id}", DomainId=state.domain_id
    )
    for location, _, _ in plan.verify:
        if location in fresh:
            continue
        if location.kind == "domain":
            fresh[location] = dict(domain.get("DefaultUserSettings") or {})
        elif location.kind == "domain-space":
            fresh[location] = dict(domain.get("DefaultSpaceSettings") or {})
        elif location.kind == "user":
            response = sagemaker.call(
                "DescribeUserProfile",
                f"user profile {location.name}",
                DomainId=state.domain_id,
                UserProfileName=location.name,
            )
            fresh[location] = dict(response.get("UserSettings") or {})
    return fresh


def script_map(scripts: Iterable[RenderedScript]) -> dict[str, RenderedScript]:
    return {script.app_type: script for script in scripts}
