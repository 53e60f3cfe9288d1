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
Update also detaches what the old properties attached and the new ones no
longer cover. Delete detaches every LCC of ours and puts back each default
we displaced, which a domain tag records. Every request gets a response at
ResponseURL before the Lambda timeout: SUCCESS, or FAILED with a one-line
reason.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.request
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
# Work stops this long before the Lambda timeout (a shorter invocation keeps a
# quarter of its time), which covers one SageMaker call in progress (at most
# 3 attempts of 5 s connect and 10 s read, plus backoff) and the response.
RESPONSE_MARGIN_SECONDS = 90.0
FIRST_POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 10.0
# The reason and data must fit the 4,096-byte response of a custom resource.
MAX_REASON_CHARS = 1000
MAX_DATA_CHARS = 1000
RESPONSE_TIMEOUT_SECONDS = 15.0
RESPONSE_ATTEMPTS = 3
CLIENT_CONFIG = BotoConfig(
    connect_timeout=5,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 3},
)


class HandlerError(Exception):
    """A failure whose message is the one-line reason sent to CloudFormation."""


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
                page = self.client.list_domains(
                    **({"NextToken": token} if token else {})
                )
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
                self.client.describe_domain(DomainId=domain_id)
            except ClientError as exc:
                if _error_code(exc) != "ResourceNotFound":
                    raise
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


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# --- plans -------------------------------------------------------------------


def plan_attach(
    domain: dict[str, Any],
    tags: dict[str, str],
    requested: Properties,
    is_ours: Ownership,
    detach_types: set[str],
    conflicts: list[str],
) -> DomainChange:
    """Plan attaching each ARN and detaching the app types no longer requested.

    The slot rules are studio.attach's: the built-in slot of JupyterLab and
    CodeEditor when free or ours, else the allowed list plus the default.
    A default held by another LCC is a conflict unless ReplaceDefault.
    """
    domain_id = str(domain["DomainId"])
    change = DomainChange(domain_id, str(domain["DomainArn"]))
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
            updated, slot, conflict = studio.attach(
                app_type, current, arn, is_ours, requested.replace_default
            )
            if conflict:
                conflicts.append(
                    f"domain {domain_id} {field_name} {app_type}: default "
                    f"{conflict.rsplit('/', 1)[-1]} is not ours"
                )
                continue
            if slot is not None and slot.displaced:
                change.add_tags[previous_tag(kind, app_type)] = slot.displaced
            if updated != (current or {}):
                patch[key] = updated
        for app_type in sorted(detach_types):
            _plan_detach_one(kind, settings, app_type, tags, is_ours, patch, change)
        if patch:
            change.request[field_name] = patch
    return change


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


def attach_all(
    domains: Domains,
    new: Properties,
    old: Properties | None,
) -> list[str]:
    """Handle Create (old is None) and Update; return the domains attached to.

    Every domain is planned before any call changes one, so a conflict
    changes nothing.
    """
    patterns = [new.owned_name] + ([old.owned_name] if old else [])
    is_ours = Ownership(patterns)
    targets = domains.resolve(new.domain_ids, strict=True)
    removed = set(old.arns) - set(new.arns) if old else set()
    previous_targets = domains.resolve(old.domain_ids, strict=False) if old else []

    changes: list[DomainChange] = []
    conflicts: list[str] = []
    for domain_id in targets:
        domain = domains.describe(domain_id)
        tags = domains.tags(str(domain["DomainArn"]))
        changes.append(plan_attach(domain, tags, new, is_ours, removed, conflicts))
    for domain_id in previous_targets:
        if domain_id in targets:
            continue
        domain = domains.describe(domain_id)
        tags = domains.tags(str(domain["DomainArn"]))
        changes.append(plan_detach(domain, tags, is_ours))
    if conflicts:
        raise HandlerError(
            "nothing was changed: "
            + "; ".join(conflicts)
            + ". Set ReplaceDefault to true to take the default slot; the other "
            "LCC stays in the allowed list and is restored on delete"
        )
    for change in changes:
        if change.empty:
            logger.info("domain %s: up to date", change.domain_id)
            continue
        domains.apply(change)
    return targets


def detach_all(domains: Domains, properties: dict[str, Any] | None) -> list[str]:
    """Handle Delete: detach ours from each domain the properties name.

    Properties that do not parse come from a Create that failed before any
    change, so there is nothing to detach.
    """
    try:
        parsed = Properties.parse(properties)
    except HandlerError as exc:
        logger.info("nothing to detach, the properties are invalid: %s", exc)
        return []
    is_ours = Ownership([parsed.owned_name])
    targets = domains.resolve(parsed.domain_ids, strict=False)
    for domain_id in targets:
        domain = domains.describe(domain_id)
        tags = domains.tags(str(domain["DomainArn"]))
        change = plan_detach(domain, tags, is_ours)
        if change.empty:
            logger.info("domain %s: nothing of ours attached", domain_id)
            continue
        domains.apply(change)
    return targets


def dispatch(event: dict[str, Any], domains: Domains) -> list[str]:
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
    status, reason, data = "SUCCESS", "", {}
    try:
        client = boto3.client("sagemaker", config=CLIENT_CONFIG)
        attached = dispatch(event, Domains(client, deadline))
        data = {"Domains": _fit(",".join(attached), MAX_DATA_CHARS)}
        reason = f"domains: {data['Domains'] or 'none'}"
    except HandlerError as exc:
        status, reason = "FAILED", str(exc)
    except (ClientError, BotoCoreError) as exc:
        status, reason = "FAILED", f"AWS call failed: {exc}"
    except Exception as exc:
        # Every failure, expected or not, must reach CloudFormation.
        logger.exception("unexpected error")
        status, reason = "FAILED", f"unexpected error: {type(exc).__name__}: {exc}"
    if status == "FAILED":
        logger.error("FAILED: %s", reason)
        log_stream = getattr(context, "log_stream_name", None)
        if log_stream:
            reason = f"{reason} (log stream {log_stream})"
    send_response(event, status, _one_line(reason), physical_id, data)


def send_response(
    event: dict[str, Any],
    status: str,
    reason: str,
    physical_id: str,
    data: dict[str, str],
) -> None:
    """PUT the response to the presigned ResponseURL, retrying a failed send twice."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": physical_id,
            "StackId": event.get("StackId"),
            "RequestId": event.get("RequestId"),
            "LogicalResourceId": event.get("LogicalResourceId"),
            "Data": data,
        }
    ).encode("utf-8")
    # The presigned URL is signed for an empty content type.
    request = urllib.request.Request(
        str(event["ResponseURL"]),
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
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
    return _fit(" ".join(text.split()), MAX_REASON_CHARS)


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 4] + " ..."
