"""Create or update the IAM stacks through change sets, then check the result.

For each template: read the stack, create a change set (CREATE for a new
stack, UPDATE otherwise), print its changes, ask before executing it, wait
for the stack, and read back every role and policy the template names to
confirm that IAM contains what the template says. CloudFormation does not see
changes made outside it, so that last step also reports drift.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bootstrap import iam
from bootstrap.accounts import Accounts
from bootstrap.aws import AwsClient
from bootstrap.cfn_yaml import Ref
from bootstrap.errors import AwsError, DeployError
from bootstrap.policy import normalize

logger = logging.getLogger(__name__)

CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
CHANGE_SET_PREFIX = "studio-bootstrap"
# CloudFormation's reasons for a change set that would change nothing.
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
CHANGE_SET_TIMEOUT_SECONDS = 300.0
STACK_TIMEOUT_SECONDS = 1800.0
POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 10.0
DONE_STATUSES = ("CREATE_COMPLETE", "UPDATE_COMPLETE")


@dataclass
class Outcome:
    """The result of deploy for each stack, and the problems it found."""

    results: list[tuple[iam.Template, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def declined(self) -> list[iam.Template]:
        return [template for template, result in self.results if result == "declined"]


class Deployer:
    """Deploys templates with the credentials of each account."""

    def __init__(
        self,
        accounts: Accounts,
        confirm: Callable[[str], bool],
        say: Callable[[str], None],
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.accounts = accounts
        self.confirm = confirm
        self.say = say
        self.poll_seconds = poll_seconds

    def deploy_all(self, templates: list[iam.Template]) -> Outcome:
        """Deploy each template in order, stopping at the first failure."""
        outcome = Outcome()
        for template in templates:
            result = self.deploy(template)
            outcome.results.append((template, result))
            if result != "declined":
                outcome.problems += self.verify(template)
        return outcome

    def client(self, template: iam.Template, service: str) -> AwsClient:
        if template.kind == iam.REPOSITORY:
            return self.accounts.repository_client(
                template.account, service, template.region
            )
        return self.accounts.domain_client(template.account, service, template.region)

    # --- change sets ---------------------------------------------------------

    def deploy(self, template: iam.Template) -> str:
        """Create or update one stack.

        Return "created", "updated", "unchanged" or "declined".
        """
        cfn = self.client(template, "cloudformation")
        where = _where(template)
        stack = _describe_stack(cfn, template.stack_name)
        status = stack["StackStatus"] if stack else None
        _check_status(where, status)
        change_type = "CREATE" if status in (None, "REVIEW_IN_PROGRESS") else "UPDATE"
        name = f"{CHANGE_SET_PREFIX}-{template.digest}"
        if stack is not None:
            _delete_change_set_if_any(cfn, template.stack_name, name)

        change_set = self._create_change_set(cfn, template, name, change_type)
        if change_set["Status"] == "FAILED":
            cfn.call(
                "DeleteChangeSet",
                where,
                StackName=template.stack_name,
                ChangeSetName=name,
            )
            reason = str(change_set.get("StatusReason", ""))
            if any(text in reason for text in NO_CHANGES):
                self.say(f"{where}: up to date")
                return "unchanged"
            raise DeployError(f"{where}: change set {name} failed: {reason}")

        self._show(cfn, template, name, change_type)
        if not self.confirm(f"Execute change set {name} on {where}?"):
            self._discard(cfn, template, name, change_type)
            return "declined"
        self._execute(cfn, template, name)
        return "created" if change_type == "CREATE" else "updated"

    def _create_change_set(
        self, cfn: AwsClient, template: iam.Template, name: str, change_type: str
    ) -> dict[str, Any]:
        where = _where(template)
        logger.debug("creating change set %s (%s) for %s", name, change_type, where)
        cfn.call(
            "CreateChangeSet",
            where,
            StackName=template.stack_name,
            ChangeSetName=name,
            ChangeSetType=change_type,
            TemplateBody=template.text,
            Capabilities=CAPABILITIES,
            Description=f"studio-bootstrap {template.kind} template",
        )
        return self._wait_change_set(cfn, template.stack_name, name, where)

    def _execute(self, cfn: AwsClient, template: iam.Template, name: str) -> None:
        where = _where(template)
        cfn.call(
            "ExecuteChangeSet", where, StackName=template.stack_name, ChangeSetName=name
        )
        stack = self._wait_stack(cfn, template.stack_name, where)
        if stack["StackStatus"] not in DONE_STATUSES:
            raise DeployError(_failure_message(cfn, template, stack, where))
        self.say(f"{where}: {stack['StackStatus']}")

    def _wait_change_set(
        self, cfn: AwsClient, stack_name: str, name: str, where: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + CHANGE_SET_TIMEOUT_SECONDS
        delay = self.poll_seconds
        while True:
            change_set = cfn.call(
                "DescribeChangeSet", where, StackName=stack_name, ChangeSetName=name
            )
            if change_set["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
                return change_set
            if time.monotonic() + delay > deadline:
                raise DeployError(
                    f"{where}: change set {name} is still {change_set['Status']} "
                    f"after {CHANGE_SET_TIMEOUT_SECONDS:.0f}s; run again later"
                )
            time.sleep(delay)
            delay = min(delay * 2, MAX_POLL_SECONDS)

    def _wait_stack(
        self, cfn: AwsClient, stack_name: str, where: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
        delay = self.poll_seconds
        while True:
            stack = _describe_stack(cfn, stack_name)
            if stack is None:
                raise DeployError(
                    f"{where}: the stack disappeared while it was updated"
                )
            if not str(stack["StackStatus"]).endswith("_IN_PROGRESS"):
                return stack
            if time.monotonic() + delay > deadline:
                raise DeployError(
                    f"{where}: still {stack['StackStatus']} after "
                    f"{STACK_TIMEOUT_SECONDS:.0f}s; check the stack's events"
                )
            time.sleep(delay)
            delay = min(delay * 2, MAX_POLL_SECONDS)

    def _show(
        self, cfn: AwsClient, template: iam.Template, name: str, change_type: str
    ) -> None:
        """Print the changes of a change set as a table."""
        where = _where(template)
        changes = cfn.pages(
            "DescribeChangeSet",
            where,
            "Changes",
            StackName=template.stack_name,
            ChangeSetName=name,
        )
        rows = [("ACTION", "LOGICAL ID", "TYPE", "REPLACEMENT")]
        for change in changes:
            resource = change.get("ResourceChange") or {}
            rows.append(
                (
                    str(resource.get("Action", "-")),
                    str(resource.get("LogicalResourceId", "-")),
                    str(resource.get("ResourceType", "-")),
                    str(resource.get("Replacement") or "-"),
                )
            )
        verb = "create" if change_type == "CREATE" else "update"
        self.say(f"{where}: change set {name} would {verb} the stack")
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(3)]
            self.say("  " + "  ".join([*cells, row[3]]).rstrip())

    def _discard(
        self, cfn: AwsClient, template: iam.Template, name: str, change_type: str
    ) -> None:
        """Delete a declined change set, and the empty stack a CREATE one made."""
        where = _where(template)
        cfn.call(
            "DeleteChangeSet", where, StackName=template.stack_name, ChangeSetName=name
        )
        if change_type == "CREATE":
            cfn.call("DeleteStack", where, StackName=template.stack_name)
        self.say(f"{where}: not changed, the change set was declined and deleted")

    # --- read back -------------------------------------------------------------

    def verify(self, template: iam.Template) -> list[str]:
        """Compare each role and policy of the template with what IAM contains."""
        client = self.client(template, "iam")
        resources = template.resources
        problems: list[str] = []
        for logical_id, resource in resources.items():
            kind = resource["Type"]
            properties = resource["Properties"]
            if kind == "AWS::IAM::Role":
                problems += _verify_role(client, properties)
            elif kind == "AWS::IAM::Policy":
                roles = [_role_name(resources, role) for role in properties["Roles"]]
                problems += _verify_inline(client, properties, roles)
            elif kind == "AWS::IAM::ManagedPolicy":
                problems += _verify_managed(client, template, properties)
            else:  # pragma: no cover - the templates hold only these types
                raise ValueError(f"{logical_id}: cannot verify {kind}")
        if not problems:
            self.say(f"stack {template.stack_name}: IAM matches the template")
        return problems


def _where(template: iam.Template) -> str:
    return (
        f"stack {template.stack_name} (account {template.account}, {template.region})"
    )


def _describe_stack(cfn: AwsClient, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.call("DescribeStacks", f"stack {stack_name}", StackName=stack_name)
    except AwsError as exc:
        # CloudFormation returns ValidationError for a stack that does not exist.
        if exc.code == "ValidationError" and "does not exist" in str(exc):
            return None
        raise
    found = stacks.get("Stacks") or []
    return dict(found[0]) if found else None


def _check_status(where: str, status: str | None) -> None:
    if status is None or status in ("REVIEW_IN_PROGRESS", *DONE_STATUSES):
        return
    if status in ("UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"):
        return
    if status.endswith("_IN_PROGRESS"):
        raise DeployError(f"{where} is {status}; wait until it ends, then run again")
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"{where} is ROLLBACK_COMPLETE: its creation failed and it cannot be "
            "updated; delete the stack, then run again"
        )
    raise DeployError(f"{where} is {status}; fix or delete the stack, then run again")


def _delete_change_set_if_any(cfn: AwsClient, stack_name: str, name: str) -> None:
    """Delete a change set of the same name that an earlier run left."""
    where = f"stack {stack_name}"
    summaries = cfn.pages("ListChangeSets", where, "Summaries", StackName=stack_name)
    for summary in summaries:
        if (
            summary.get("ChangeSetName") == name
            and summary.get("StackName", stack_name) == stack_name
        ):
            cfn.call("DeleteChangeSet", where, StackName=stack_name, ChangeSetName=name)
            return


def _failure_message(
    cfn: AwsClient, template: iam.Template, stack: dict[str, Any], where: str
) -> str:
    events = cfn.pages(
        "DescribeStackEvents", where, "StackEvents", StackName=template.stack_name
    )
    failed = []
    for event in events:
        if str(event.get("ResourceStatus", "")).endswith("_FAILED"):
            failed.append(
                f"{event.get('LogicalResourceId')}: {event.get('ResourceStatusReason')}"
            )
        if len(failed) == 5:
            break
    detail = "; ".join(failed) or stack.get("StackStatusReason") or "no reason given"
    return f"{where} ended {stack['StackStatus']}: {detail}"


def _role_name(resources: dict[str, Any], role: object) -> str:
    if isinstance(role, Ref):
        return str(resources[role.logical_id]["Properties"]["RoleName"])
    return str(role)


def _verify_role(client: AwsClient, properties: dict[str, Any]) -> list[str]:
    name = properties["RoleName"]
    try:
        role = client.call("GetRole", f"role {name}", RoleName=name)["Role"]
    except AwsError as exc:
        if exc.code == "NoSuchEntity":
            return [f"role {name} does not exist although the stack names it"]
        raise
    problems = _compare(
        f"role {name}: trust policy",
        properties["AssumeRolePolicyDocument"],
        role.get("AssumeRolePolicyDocument"),
    )
    duration = role.get("MaxSessionDuration")
    if duration != properties["MaxSessionDuration"]:
        problems.append(
            f"role {name}: MaxSessionDuration is {duration}, the template "
            f"says {properties['MaxSessionDuration']}"
        )
    boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if boundary != properties.get("PermissionsBoundary"):
        problems.append(
            f"role {name}: permissions boundary is {boundary}, the template "
            f"says {properties.get('PermissionsBoundary')}"
        )
    return problems


def _verify_inline(
    client: AwsClient, properties: dict[str, Any], roles: list[str]
) -> list[str]:
    policy_name = properties["PolicyName"]
    problems = []
    for role in roles:
        try:
            found = client.call(
                "GetRolePolicy",
                f"policy {policy_name} of role {role}",
                RoleName=role,
                PolicyName=policy_name,
            )["PolicyDocument"]
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                problems.append(f"role {role} has no inline policy {policy_name}")
                continue
            raise
        problems += _compare(
            f"role {role}: policy {policy_name}", properties["PolicyDocument"], found
        )
    return problems


def _verify_managed(
    client: AwsClient, template: iam.Template, properties: dict[str, Any]
) -> list[str]:
    name = properties["ManagedPolicyName"]
    arn = f"arn:{template.partition}:iam::{template.account}:policy/{name}"
    try:
        policy = client.call("GetPolicy", f"policy {name}", PolicyArn=arn)["Policy"]
    except AwsError as exc:
        if exc.code == "NoSuchEntity":
            return [f"managed policy {arn} does not exist although the stack names it"]
        raise
    version = client.call(
        "GetPolicyVersion",
        f"policy {name}",
        PolicyArn=arn,
        VersionId=policy["DefaultVersionId"],
    )["PolicyVersion"]
    return _compare(f"policy {name}", properties["PolicyDocument"], version["Document"])


def _compare(what: str, expected: Any, found: Any) -> list[str]:
    """Describe how a document in IAM differs from the template's, if it does."""
    if found is None:
        return [f"{what} is missing"]
    wanted = normalize(expected)
    actual = normalize(found)
    if wanted == actual:
        return []
    missing = [s for s in wanted["Statement"] if s not in actual["Statement"]]
    extra = [s for s in actual["Statement"] if s not in wanted["Statement"]]
    return [
        f"{what} differs from the template (CloudFormation does not see changes "
        f"made outside it): missing {json.dumps(missing, sort_keys=True)}, "
        f"unexpected {json.dumps(extra, sort_keys=True)}; make IAM match the "
        "template, or delete the stack and deploy again"
    ]
