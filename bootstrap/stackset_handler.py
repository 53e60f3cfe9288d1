"""Custom resource that attaches the StackSet's lifecycle configurations to domains.

This module runs in AWS Lambda as the inline code of the template that
``studio-bootstrap stackset`` writes. The template builds that code from
bootstrap/studio.py followed by this module, with the ``studio`` import
below turned into a reference to the combined module, so the attachment
rules are the ones ``register`` applies. It needs only the standard library
and boto3.

Resource properties:

- ``LifecycleConfigArns``: app type to the ARN of our lifecycle configuration.
- ``DomainIds``: domain ids of this account and region; empty (or ``[""]``)
  means every domain that ListDomains returns.
- ``ReplaceDefault``: ``"true"`` to take a default slot that another LCC holds.
- ``OwnedNamePattern``: the regular expression that our LCC names match.

Create and Update attach the ARNs to DefaultUserSettings of each domain, and
to DefaultSpaceSettings where the domain already has that app type there.
A default held by another LCC fails a Create unless ReplaceDefault. An
Update leaves such a default alone and lists our ARN next to it, because
CloudFormation sends its rollback as an Update too, and a rollback that
fails leaves the stack in UPDATE_ROLLBACK_FAILED. Update also detaches what
the old properties attached and the new ones no longer cover. Delete
detaches every LCC of ours and puts back each default we displaced, which a
domain tag records. Every request gets a response at ResponseURL before the
Lambda timeout: SUCCESS, or FAILED with a one-line reason that names the
domains, the cause and the log stream.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from bootstrap import studio

logger = logging.getLogger("studio_bootstrap_attach")
logger.setLevel(logging.INFO)

# A domain tag per settings object and app type whose default we took: the
# ARN that was there. Register uses the same prefix on its LCC tags.
PREVIOUS_TAG_PREFIX = "studio-bootstrap:previous-default:"
# The settings objects of a domain, by the location names register uses.
DOMAIN_FIELDS = {
    "domain": "DefaultUserSettings",
    "domain-space": "DefaultSpaceSettings",
}
# Domains in these states are attached to (after waiting for InService).
ACTIVE_STATUSES = ("InService", "Updating", "Pending")
# Work stops this long before the Lambda timeout, or a quarter of a shorter
# invocation's time. The margin covers one SageMaker call in progress (at most
# 3 attempts of 5 s connect and 10 s read, plus backoff) and the response.
RESPONSE_MARGIN_SECONDS = 90.0
FIRST_POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 10.0
# CloudFormation rejects a response body over 4,096 bytes ("Custom resource
# response objects", CloudFormation User Guide). The reason gets what the
# other fields leave, and each Data value is capped so that it leaves enough.
RESPONSE_BODY_LIMIT = 4096
MAX_DATA_CHARS = 1000
RESPONSE_TIMEOUT_SECONDS = 15.0
RESPONSE_ATTEMPTS = 3
CLIENT_CONFIG = BotoConfig(
    connect_timeout=5,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 3},
)


class HandlerError(Exception):
    """A failure whose message is the one-line reason sent to CloudFormation.

    The reason is the summary, then one detail per domain, then the advice.
    When the response body has no room for every detail, the last ones give
    way to "... and N more domains", and the summary and advice stay.
    """

    def __init__(
        self, summary: str, details: Sequence[str] = (), advice: str = ""
    ) -> None:
        self.summary = summary
        self.details = tuple(details)
        self.advice = advice
        super().__init__(self.reason(len(self.details)))

    def reason(self, shown: int) -> str:
        """Return the reason with the first ``shown`` details."""
        text = self.summary
        if self.details:
            parts = list(self.details[:shown])
            hidden = len(self.details) - len(parts)
            if hidden:
                parts.append(f"... and {hidden} more domain{'s' if hidden > 1 else ''}")
            text = f"{text}: {'; '.join(parts)}"
        if self.advice:
            text = f"{text}. {self.advice}"
        return text

    def with_progress(self, updated: list[str], not_reached: list[str]) -> HandlerError:
        """Return this error with the domains changed before it and those skipped."""
        notes = [self.advice] if self.advice else []
        if updated:
            notes.append(f"Already updated: {', '.join(updated)}.")
        if not_reached:
            notes.append(f"Not reached: {', '.join(not_reached)}.")
        return HandlerError(self.summary, self.details, " ".join(notes))


@dataclass(frozen=True)
class Properties:
    """The resource properties of one request, checked."""

    arns: dict[str, str]
    domain_ids: tuple[str, ...]
    replace_default: bool
    owned_name: re.Pattern[str]

    @classmethod
    def parse(cls, properties: dict[str, Any] | None) -> Properties:
        properties = properties or {}
        arns = properties.get("LifecycleConfigArns") or {}
        if not isinstance(arns, dict):
            raise HandlerError("LifecycleConfigArns must map app types to ARNs")
        unknown = sorted(set(arns) - set(studio.SETTINGS_KEYS))
        if unknown:
            raise HandlerError(f"LifecycleConfigArns has unknown app types {unknown}")
        domain_ids = properties.get("DomainIds") or []
        if isinstance(domain_ids, str):
            domain_ids = domain_ids.split(",")
        ids = tuple(item.strip() for item in domain_ids if item.strip())
        replace = str(properties.get("ReplaceDefault", "false")).lower()
        if replace not in ("true", "false"):
            raise HandlerError(f"ReplaceDefault must be true or false, not {replace!r}")
        pattern = properties.get("OwnedNamePattern")
        if not pattern:
            raise HandlerError("OwnedNamePattern is missing")
        try:
            owned_name = re.compile(str(pattern))
        except re.error as exc:
            raise HandlerError(f"OwnedNamePattern is invalid: {exc}") from exc
        return cls(
            {str(k): str(v) for k, v in sorted(arns.items())},
            ids,
            replace == "true",
            owned_name,
        )


@dataclass
class Ownership:
    """Decides which ARNs are ours: names that match any of the patterns."""

    patterns: list[re.Pattern[str]]

    def __call__(self, arn: str) -> bool:
        name = str(arn).rsplit("/", 1)[-1]
        return any(pattern.fullmatch(name) for pattern in self.patterns)


@dataclass
class AttachOutcome:
    """The findings of planning besides the calls: conflicts and kept defaults.

    keep_other_defaults is true on Update, where a default held by another
    LCC stays and our ARN is only listed, so the slot is not a conflict.
    """

    keep_other_defaults: bool
    conflicts: list[str] = field(default_factory=list)
    other_defaults: list[str] = field(default_factory=list)


@dataclass
class DomainChange:
    """The calls that bring one domain to the requested state."""

    domain_id: str
    domain_arn: str
    request: dict[str, dict[str, Any]] = field(default_factory=dict)
    add_tags: dict[str, str] = field(default_factory=dict)
    remove_tags: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.request or self.add_tags or self.remove_tags)


class Deadline:
    """The moment after which no SageMaker call starts, so the response is in time."""

    def __init__(self, remaining_seconds: float) -> None:
        margin = min(RESPONSE_MARGIN_SECONDS, remaining_seconds / 4)
        self.end = time.monotonic() + remaining_seconds - margin

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self, step: str) -> None:
        """Raise when no time is left to start another call."""
        if self.left() <= 0:
            raise HandlerError(f"timed out before {step}; retry the stack operation")


def previous_tag(kind: str, app_type: str) -> str:
    return f"{PREVIOUS_TAG_PREFIX}{kind}/{app_type}"


# --- SageMaker ---------------------------------------------------------------


class Domains:
    """The SageMaker calls of the handler, each bounded by the deadline."""

    def __init__(self, client: Any, deadline: Deadline) -> None:
        self.client = client
        self.deadline = deadline

    def resolve(self, domain_ids: tuple[str, ...], strict: bool) -> list[str]:
        """Return the domains to act on: the given ids, or every active domain.

        A given id that does not exist raises when strict, and is skipped
        otherwise (Delete must not fail on a domain that is gone).
        """
        if not domain_ids:
            found = []
            token = None
            while True:
                try:
                    page = self.client.list_domains(
                        **({"NextToken": token} if token else {})
                    )
                except (ClientError, BotoCoreError) as exc:
                    raise HandlerError(
                        "AWS call failed while listing the domains of this account "
                        f"and region: {exc}"
                    ) from exc
                for item in page.get("Domains", []):
                    if item.get("Status") in ACTIVE_STATUSES:
                        found.append(str(item["DomainId"]))
                    else:
                        logger.info(
                            "skipping domain %s: it is %s",
                            item.get("DomainId"),
                            item.get("Status"),
                        )
                token = page.get("NextToken")
                if not token:
                    return sorted(found)
        existing = []
        for domain_id in domain_ids:
            try:
                with domain_step(domain_id, "reading it"):
                    self.client.describe_domain(DomainId=domain_id)
            except DomainNotFound as exc:
                if strict:
                    raise HandlerError(
                        f"domain {domain_id} was not found in this account and region; "
                        "fix the DomainIds parameter"
                    ) from exc
                logger.info("skipping domain %s: not found", domain_id)
                continue
            existing.append(domain_id)
        return existing

    def describe(self, domain_id: str) -> dict[str, Any]:
        self.deadline.check(f"reading domain {domain_id}")
        return dict(self.client.describe_domain(DomainId=domain_id))

    def tags(self, domain_arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        token = None
        while True:
            kwargs: dict[str, Any] = {"ResourceArn": domain_arn}
            if token:
                kwargs["NextToken"] = token
            page = self.client.list_tags(**kwargs)
            for tag in page.get("Tags", []):
                tags[str(tag["Key"])] = str(tag["Value"])
            token = page.get("NextToken")
            if not token:
                return tags

    def wait_in_service(self, domain_id: str) -> None:
        """Poll DescribeDomain until InService, or raise before the deadline."""
        delay = FIRST_POLL_SECONDS
        while True:
            status = self.describe(domain_id)["Status"]
            if status == "InService":
                return
            if status not in ("Updating", "Pending"):
                raise HandlerError(
                    f"domain {domain_id} is {status}, not InService; "
                    "nothing more was changed"
                )
            if self.deadline.left() < delay:
                raise HandlerError(
                    f"timed out: domain {domain_id} is still {status}; "
                    "retry the stack operation once it is InService"
                )
            time.sleep(delay)
            delay = min(delay * 2, MAX_POLL_SECONDS)

    def apply(self, change: DomainChange) -> None:
        """Record displaced defaults, update the domain, then drop stale records.

        The record is written before the update, so that a failure in
        between leaves the displaced ARN known to a later Delete.
        """
        self.deadline.check(f"updating domain {change.domain_id}")
        if change.add_tags:
            self.client.add_tags(
                ResourceArn=change.domain_arn,
                Tags=[
                    {"Key": k, "Value": v} for k, v in sorted(change.add_tags.items())
                ],
            )
        if change.request:
            self.wait_in_service(change.domain_id)
            self.client.update_domain(DomainId=change.domain_id, **change.request)
            logger.info("updated domain %s: %s", change.domain_id, change.request)
            self.wait_in_service(change.domain_id)
        if change.remove_tags:
            self.client.delete_tags(
                ResourceArn=change.domain_arn, TagKeys=sorted(change.remove_tags)
            )


class DomainNotFound(HandlerError):
    """A SageMaker call returned ResourceNotFound for the domain."""

    def __init__(self, domain_id: str) -> None:
        super().__init__(f"domain {domain_id} was not found in this account and region")
        self.domain_id = domain_id


@contextmanager
def domain_step(domain_id: str, step: str) -> Iterator[None]:
    """Turn an error of one domain's step into a HandlerError that names the domain.

    ResourceNotFound becomes DomainNotFound, so that callers decide whether a
    missing domain fails the request.
    """
    try:
        yield
    except HandlerError:
        raise
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFound":
            raise DomainNotFound(domain_id) from exc
        raise HandlerError(
            f"AWS call failed on domain {domain_id} while {step}: {exc}"
        ) from exc
    except BotoCoreError as exc:
        raise HandlerError(
            f"AWS call failed on domain {domain_id} while {step}: {exc}"
        ) from exc
    except Exception as exc:
        logger.exception("unexpected error on domain %s", domain_id)
        raise HandlerError(
            f"unexpected error on domain {domain_id} while {step}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# --- plans -------------------------------------------------------------------


def plan_attach(
    domain: dict[str, Any],
    tags: dict[str, str],
    requested: Properties,
    is_ours: Ownership,
    detach_types: set[str],
    outcome: AttachOutcome,
) -> DomainChange:
    """Plan attaching each ARN and detaching the app types no longer requested.

    The slot rules are studio.attach's: the built-in slot of JupyterLab and
    CodeEditor when free or ours, else the allowed list plus the default.
    A default held by another LCC, without ReplaceDefault, is a conflict on
    Create. On Update, our ARN goes into the allowed list in place of our
    older version and the other default stays.
    """
    domain_id = str(domain["DomainId"])
    change = DomainChange(domain_id, str(domain["DomainArn"]))
    conflicts: list[str] = []
    for kind, field_name in DOMAIN_FIELDS.items():
        settings = dict(domain.get(field_name) or {})
        patch: dict[str, Any] = {}
        for app_type, arn in requested.arns.items():
            key = studio.SETTINGS_KEYS[app_type]
            if kind == "domain-space" and (
                app_type not in studio.SPACE_DEFAULT_APP_TYPES or key not in settings
            ):
                continue
            current = settings.get(key)
            tag = previous_tag(kind, app_type)
            updated, slot, conflict = studio.attach(
                app_type, current, arn, is_ours, requested.replace_default
            )
            if conflict:
                other = f"{field_name} {app_type} default {conflict.rsplit('/', 1)[-1]}"
                if not outcome.keep_other_defaults:
                    conflicts.append(f"{other} is not ours")
                    continue
                updated = list_beside_other_default(current, arn, is_ours)
                outcome.other_defaults.append(f"{domain_id} {other}")
                # No default of ours is left to give back on Delete.
                if tag in tags:
                    change.remove_tags.append(tag)
            elif slot is not None and slot.displaced:
                change.add_tags[tag] = slot.displaced
            if updated != (current or {}):
                patch[key] = updated
        for app_type in sorted(detach_types):
            _plan_detach_one(kind, settings, app_type, tags, is_ours, patch, change)
        if patch:
            change.request[field_name] = patch
    if conflicts:
        outcome.conflicts.append(f"domain {domain_id}: {', '.join(conflicts)}")
    return change


def list_beside_other_default(
    settings: dict[str, Any] | None, arn: str, is_ours: Ownership
) -> dict[str, Any]:
    """Return the settings with arn in the allowed list and the default unchanged.

    arn takes the place of the first ARN of ours in LifecycleConfigArns, or
    goes last when none is there. Other ARNs of ours leave the list.
    """
    result = copy.deepcopy(settings) if settings else {}
    arns = studio.allowed_of(result)
    ours_index = next((i for i, a in enumerate(arns) if is_ours(a)), len(arns))
    allowed = [a for a in arns[:ours_index] if not is_ours(a)]
    allowed.append(arn)
    allowed.extend(a for a in arns[ours_index:] if not is_ours(a))
    result["LifecycleConfigArns"] = allowed
    return result


def plan_detach(
    domain: dict[str, Any], tags: dict[str, str], is_ours: Ownership
) -> DomainChange:
    """Plan removing every ARN of ours and restoring each displaced default."""
    change = DomainChange(str(domain["DomainId"]), str(domain["DomainArn"]))
    for kind, field_name in DOMAIN_FIELDS.items():
        settings = dict(domain.get(field_name) or {})
        patch: dict[str, Any] = {}
        for app_type in studio.SETTINGS_KEYS:
            _plan_detach_one(kind, settings, app_type, tags, is_ours, patch, change)
        if patch:
            change.request[field_name] = patch
    return change


def _plan_detach_one(
    kind: str,
    settings: dict[str, Any],
    app_type: str,
    tags: dict[str, str],
    is_ours: Ownership,
    patch: dict[str, Any],
    change: DomainChange,
) -> None:
    key = studio.SETTINGS_KEYS[app_type]
    tag = previous_tag(kind, app_type)
    updated = studio.detach(settings.get(key), is_ours, tags.get(tag))
    if updated is not None:
        patch[key] = updated
    if tag in tags:
        change.remove_tags.append(tag)


# --- requests ----------------------------------------------------------------


@dataclass
class Result:
    """The domains a successful request acted on and the defaults it left to others."""

    domains: list[str]
    other_defaults: list[str] = field(default_factory=list)


def attach_all(
    domains: Domains,
    new: Properties,
    old: Properties | None,
) -> Result:
    """Handle Create (old is None) and Update.

    Every domain is planned before any call changes one, so a conflict
    changes nothing. Update has no conflicts (see plan_attach), so it fails
    only on AWS errors, timeouts, a missing domain and invalid properties.
    """
    patterns = [new.owned_name] + ([old.owned_name] if old else [])
    is_ours = Ownership(patterns)
    targets = domains.resolve(new.domain_ids, strict=True)
    removed = set(old.arns) - set(new.arns) if old else set()
    previous_targets = domains.resolve(old.domain_ids, strict=False) if old else []

    changes: list[DomainChange] = []
    outcome = AttachOutcome(keep_other_defaults=old is not None)
    for domain_id in targets:
        with domain_step(domain_id, "reading it"):
            domain = domains.describe(domain_id)
            tags = domains.tags(str(domain["DomainArn"]))
        changes.append(plan_attach(domain, tags, new, is_ours, removed, outcome))
    for domain_id in previous_targets:
        if domain_id in targets:
            continue
        try:
            with domain_step(domain_id, "reading it"):
                domain = domains.describe(domain_id)
                tags = domains.tags(str(domain["DomainArn"]))
        except DomainNotFound:
            logger.info("skipping domain %s: not found", domain_id)
            continue
        changes.append(plan_detach(domain, tags, is_ours))
    if outcome.conflicts:
        raise HandlerError(
            "nothing was changed, because another LCC is the default",
            outcome.conflicts,
            "Set ReplaceDefault to true to take the default slot; the other "
            "LCC stays in the allowed list and is restored on delete",
        )
    for note in outcome.other_defaults:
        logger.info("%s is not ours: ours is only in the allowed list", note)
    apply_all(domains, changes)
    return Result(targets, outcome.other_defaults)


def detach_all(domains: Domains, properties: dict[str, Any] | None) -> Result:
    """Handle Delete: detach ours from each domain the properties name.

    Properties that do not parse come from a Create that failed before any
    change, so there is nothing to detach.
    """
    try:
        parsed = Properties.parse(properties)
    except HandlerError as exc:
        logger.info("nothing to detach, the properties are invalid: %s", exc)
        return Result([])
    is_ours = Ownership([parsed.owned_name])
    targets = domains.resolve(parsed.domain_ids, strict=False)
    changes = []
    for domain_id in targets:
        try:
            with domain_step(domain_id, "reading it"):
                domain = domains.describe(domain_id)
                tags = domains.tags(str(domain["DomainArn"]))
        except DomainNotFound:
            logger.info("skipping domain %s: not found", domain_id)
            continue
        changes.append(plan_detach(domain, tags, is_ours))
    apply_all(domains, changes, skip_missing=True)
    return Result([change.domain_id for change in changes])


def apply_all(
    domains: Domains, changes: list[DomainChange], skip_missing: bool = False
) -> None:
    """Apply each change in order, naming on failure the domains done and not reached.

    With skip_missing (Delete), a domain deleted since it was read is skipped.
    """
    updated: list[str] = []
    for index, change in enumerate(changes):
        if change.empty:
            logger.info("domain %s: up to date", change.domain_id)
            continue
        try:
            with domain_step(change.domain_id, "updating it"):
                domains.apply(change)
        except DomainNotFound:
            if not skip_missing:
                raise
            logger.info("skipping domain %s: not found", change.domain_id)
            continue
        except HandlerError as exc:
            not_reached = [c.domain_id for c in changes[index + 1 :] if not c.empty]
            raise exc.with_progress(updated, not_reached) from exc
        updated.append(change.domain_id)


def dispatch(event: dict[str, Any], domains: Domains) -> Result:
    request_type = event.get("RequestType")
    if request_type == "Create":
        return attach_all(
            domains, Properties.parse(event.get("ResourceProperties")), None
        )
    if request_type == "Update":
        new = Properties.parse(event.get("ResourceProperties"))
        try:
            old = Properties.parse(event.get("OldResourceProperties"))
        except HandlerError:
            old = None
        return attach_all(domains, new, old)
    if request_type == "Delete":
        return detach_all(domains, event.get("ResourceProperties"))
    raise HandlerError(f"unknown RequestType {request_type!r}")


# --- entry point ---------------------------------------------------------------


def handler(event: dict[str, Any], context: Any) -> None:
    """Handle one custom-resource request and always send its response."""
    deadline = Deadline(context.get_remaining_time_in_millis() / 1000)
    logger.info(
        "%s %s (request %s): %s",
        event.get("RequestType"),
        event.get("LogicalResourceId"),
        event.get("RequestId"),
        json.dumps(event.get("ResourceProperties"), sort_keys=True),
    )
    logical_id = event.get("LogicalResourceId", "attachment")
    region = os.environ.get("AWS_REGION", "")
    physical_id = str(event.get("PhysicalResourceId") or f"{logical_id}-{region}")

    status, data = "SUCCESS", {}
    error: HandlerError | None = None
    try:
        client = boto3.client("sagemaker", config=CLIENT_CONFIG)
        result = dispatch(event, Domains(client, deadline))
        data = {
            "Domains": _fit_list(result.domains, ",", MAX_DATA_CHARS),
            "OtherDefaults": _fit_list(result.other_defaults, "; ", MAX_DATA_CHARS),
        }
        error = success_reason(result)
    except HandlerError as exc:
        status, error = "FAILED", exc
    except (ClientError, BotoCoreError) as exc:
        status, error = "FAILED", HandlerError(f"AWS call failed: {exc}")
    except Exception as exc:
        # Every failure, expected or not, must reach CloudFormation.
        logger.exception("unexpected error")
        status = "FAILED"
        error = HandlerError(f"unexpected error: {type(exc).__name__}: {exc}")

    suffix = ""
    if status == "FAILED":
        logger.error("FAILED: %s", error)
        log_stream = getattr(context, "log_stream_name", None)
        if log_stream:
            suffix = f" (log stream {_one_line(str(log_stream))})"

    send_response(event, response_body(event, status, error, suffix, physical_id, data))


def success_reason(result: Result) -> HandlerError:
    """Return the reason of a SUCCESS response in the form that fit_reason takes."""
    summary = f"domains: {','.join(result.domains) or 'none'}"
    if not result.other_defaults:
        return HandlerError(summary)
    return HandlerError(
        f"{summary}; another LCC stays the default, ours is in the allowed list",
        result.other_defaults,
    )


def response_body(
    event: dict[str, Any],
    status: str,
    error: HandlerError,
    suffix: str,
    physical_id: str,
    data: dict[str, str],
) -> bytes:
    """Return the JSON response, with the reason shortened to fit the body limit."""
    fields = {
        "Status": status,
        "Reason": "",
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "Data": data,
    }
    budget = RESPONSE_BODY_LIMIT - len(json.dumps(fields).encode("utf-8"))
    fields["Reason"] = fit_reason(error, suffix, budget)
    return json.dumps(fields).encode("utf-8")


def fit_reason(error: HandlerError, suffix: str, budget: int) -> str:
    """Return the one-line reason plus suffix in at most budget bytes of JSON.

    Details give way first, from the last, to "... and N more domains".
    When the summary alone is too long, its middle gives way to " ... ".
    The suffix (the log stream) stays unless it alone exceeds the budget.
    """
    for shown in range(len(error.details), 0, -1):
        text = _one_line(error.reason(shown)) + suffix
        if _json_size(text) <= budget:
            return text
    text = _one_line(error.reason(0))
    room = budget - _json_size(suffix)
    if room < len(ELLIPSIS):
        return _cut_middle(text + suffix, budget)
    return _cut_middle(text, room) + suffix


ELLIPSIS = " ... "


def _cut_middle(text: str, budget: int) -> str:
    """Return text with its middle replaced by " ... " to fit budget bytes of JSON."""
    if _json_size(text) <= budget:
        return text
    room = budget - len(ELLIPSIS)
    if room <= 0:
        return ""
    # json.dumps escapes non-ASCII characters, so a character takes 1 to 12
    # bytes. Cutting whole characters and measuring again keeps the bound.
    head, tail = text[: room - room // 3], text[len(text) - room // 3 :]
    while _json_size(head + ELLIPSIS + tail) > budget:
        if len(head) >= len(tail):
            head = head[:-1]
        else:
            tail = tail[1:]
    return head + ELLIPSIS + tail


def _json_size(text: str) -> int:
    """Return the bytes text takes as a JSON string value, quotes excluded."""
    return len(json.dumps(text)) - 2


def send_response(event: dict[str, Any], body: bytes) -> None:
    """PUT the response to the presigned ResponseURL, retrying a failed send twice."""
    # The presigned URL is signed for an empty content type.
    request = urllib.request.Request(
        str(event["ResponseURL"]),
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    status = json.loads(body)["Status"]
    for attempt in range(1, RESPONSE_ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_SECONDS):
                logger.info("sent %s for request %s", status, event.get("RequestId"))
                return
        except OSError as exc:
            logger.error("sending the response failed (attempt %d): %s", attempt, exc)
            if attempt < RESPONSE_ATTEMPTS:
                time.sleep(attempt)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fit_list(items: list[str], separator: str, limit: int) -> str:
    """Join items, with "... (N more)" in place of those past limit characters."""
    text = separator.join(items)
    if len(text) <= limit:
        return text
    for shown in range(len(items) - 1, -1, -1):
        more = f"... ({len(items) - shown} more)"
        text = separator.join([*items[:shown], more])
        if len(text) <= limit:
            return text
    return text[:limit]
