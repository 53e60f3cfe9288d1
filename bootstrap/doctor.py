"""Check the whole chain in both accounts, reading only, without cloning.

For each repository role in account A: the role exists, its trust admits
every execution role of the domain, and its policies (within its
permissions boundary) grant each configured action on each repository ARN.
For each execution role in account B: it exists and may assume each role.
For each app type: the rendered script is the registered one, and the
domain, every user profile that overrides it, and every space run it.

Each failed check names what is wrong and what to change. The evaluation is
the one of ``bootstrap.policy``: service control policies, session policies
and resource policies are not read.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bootstrap import helper_upload, iam, studio
from bootstrap import register as reg
from bootstrap.accounts import Accounts
from bootstrap.aws import AwsClient
from bootstrap.config import Config, Repository
from bootstrap.errors import AwsError, BootstrapError
from bootstrap.policy import (
    ROLE_ARN_RE,
    Request,
    admits_whole_account,
    evaluate,
    limits_principal_arn,
    parse_document,
    principal_matches,
    statements,
)
from bootstrap.render import RenderedScript

logger = logging.getLogger(__name__)

OK = "ok"
WARN = "warn"
FAIL = "fail"
DEPLOY = "run studio-bootstrap iam --deploy"
REDEPLOY = f"{DEPLOY}, or change the role to match"
REGISTER = "run studio-bootstrap register"


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was checked, what is wrong, the fix."""

    status: str
    subject: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "status": self.status,
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass
class RoleFacts:
    """A role as IAM stores it: its trust, its policies and its boundary."""

    arn: str
    trust: dict[str, Any]
    policies: list[tuple[str, Any]] = field(default_factory=list)
    boundary: tuple[str, Any] | None = None


def read_role(client: AwsClient, arn: str) -> RoleFacts | None:
    """Read a role's trust, inline and attached policies and boundary."""
    name = _role_name(arn)
    try:
        role = client.call("GetRole", f"role {name}", RoleName=name)["Role"]
    except AwsError as exc:
        if exc.code == "NoSuchEntity":
            return None
        raise
    facts = RoleFacts(
        str(role["Arn"]), parse_document(role["AssumeRolePolicyDocument"])
    )
    inline = client.marker_pages(
        "ListRolePolicies", f"role {name}", "PolicyNames", RoleName=name
    )
    for policy_name in inline:
        document = client.call(
            "GetRolePolicy",
            f"policy {policy_name} of role {name}",
            RoleName=name,
            PolicyName=policy_name,
        )["PolicyDocument"]
        facts.policies.append((f"inline policy {policy_name}", document))
    attached = client.marker_pages(
        "ListAttachedRolePolicies", f"role {name}", "AttachedPolicies", RoleName=name
    )
    for item in attached:
        arn_of_policy = str(item["PolicyArn"])
        facts.policies.append((arn_of_policy, _managed_document(client, arn_of_policy)))
    boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if boundary:
        facts.boundary = (str(boundary), _managed_document(client, str(boundary)))
    return facts


def _managed_document(client: AwsClient, arn: str) -> Any:
    policy = client.call("GetPolicy", f"policy {arn}", PolicyArn=arn)["Policy"]
    version = client.call(
        "GetPolicyVersion",
        f"policy {arn}",
        PolicyArn=arn,
        VersionId=policy["DefaultVersionId"],
    )
    return version["PolicyVersion"]["Document"]


class Doctor:
    """The checks of every link of the chain for one config."""

    def __init__(
        self,
        config: Config,
        accounts: Accounts,
        state: reg.State,
        scripts: list[RenderedScript],
    ) -> None:
        self.config = config
        self.accounts = accounts
        self.state = state
        self.scripts = scripts
        self._execution_facts: dict[str, RoleFacts | None] = {}

    def run(self) -> list[Check]:
        checks: list[Check] = []
        execution_roles = self.execution_roles()
        for role in iam.repository_roles(self.config):
            checks += self.check_role(role, execution_roles)
        for script in self.scripts:
            checks += self.check_lifecycle(script)
        checks += self.check_helper_wheel()
        return checks

    def check_helper_wheel(self) -> list[Check]:
        """Check that the wheel of the "s3" source is in S3 with the rendered sha256."""
        helper = self.config.helper
        if not helper_upload.uses_s3(self.config) or not helper.bucket:
            return []
        subject = f"helper wheel s3://{helper.bucket}/{helper.key}"
        region = helper.bucket_region or self.config.domain.region
        client = self.accounts.domain_client(self.state.account, "s3", region)
        try:
            plan = helper_upload.plan_upload(client, self.config)
        except BootstrapError as exc:
            return [Check(FAIL, subject, str(exc), "fix the bucket, then " + REGISTER)]
        if plan is None or plan.action == helper_upload.KEEP:
            message = "contains the wheel whose sha256 the script checks"
            return [Check(OK, subject, message)]
        if plan.action == helper_upload.UPLOAD:
            message = "is missing, so the s3 source cannot install the helper"
        else:
            message = (
                f"contains another wheel ({plan.detail}), which the script rejects"
            )
        return [Check(FAIL, subject, message, REGISTER)]

    def execution_roles(self) -> list[str]:
        """Return the configured execution roles and every one the domain names."""
        found = list(self.config.domain.execution_roles)
        for arn in iam.execution_roles_of(self.state):
            if arn not in found:
                found.append(arn)
        return found

    # --- account A -----------------------------------------------------------------

    def check_role(self, role: iam.Role, execution_roles: list[str]) -> list[Check]:
        subject = f"role {role.arn}"
        region = role.repositories[0].region
        client = self.accounts.repository_client(role.account, "iam", region)
        facts = read_role(client, role.arn)
        if facts is None:
            return [
                Check(
                    FAIL,
                    subject,
                    f"does not exist in account {role.account}",
                    f"create it: {DEPLOY}",
                )
            ]
        checks = [Check(OK, subject, f"exists in account {role.account}")]
        for execution_role in execution_roles:
            checks.append(self.check_trust(facts, execution_role))
            if self.needs_source_identity():
                checks.append(self.check_source_identity(facts, execution_role))
        for repository in role.repositories:
            checks.append(self.check_grants(facts, repository))
        for execution_role in execution_roles:
            checks.append(self.check_assume_grant(role, execution_role))
        return checks

    def check_trust(self, facts: RoleFacts, execution_role: str) -> Check:
        subject = f"role {facts.arn}"
        external_id = self.config.iam.external_id
        context = {"aws:PrincipalArn": execution_role}
        if external_id:
            context["sts:ExternalId"] = external_id
        # NOTE: the organization is the config's; whether account B belongs
        # to it is not read from AWS Organizations.
        organization = self.config.iam.organization_id
        if organization:
            context["aws:PrincipalOrgID"] = organization
        request = Request(
            "sts:AssumeRole",
            facts.arn,
            principal=execution_role,
            context=context,
            known_absent=frozenset() if external_id else frozenset({"sts:ExternalId"}),
        )
        decision = evaluate([("trust policy", facts.trust)], request)
        if decision.denied_by:
            return Check(
                FAIL,
                subject,
                f"trust policy denies sts:AssumeRole to {execution_role}",
                "remove the Deny statement from the trust policy",
            )
        if decision.granted:
            whole = [
                s
                for s in statements(facts.trust)
                if admits_whole_account(s, _account_of(execution_role))
                and not limits_principal_arn(s)
            ]
            if whole:
                return Check(
                    WARN,
                    subject,
                    f"trust admits {execution_role} only by trusting its whole account",
                    f"name {execution_role} in Principal.AWS instead of the account",
                )
            return Check(OK, subject, f"trust admits {execution_role}")
        if decision.conditional:
            return Check(
                WARN,
                subject,
                f"trust admits {execution_role} only under conditions this check "
                f"cannot evaluate: {'; '.join(decision.conditional)}",
                "confirm that Studio sessions meet those conditions",
            )
        return Check(
            FAIL, subject, *self._trust_failure(facts, execution_role, external_id)
        )

    def _trust_failure(
        self, facts: RoleFacts, execution_role: str, external_id: str | None
    ) -> tuple[str, str]:
        named = [
            s
            for s in statements(facts.trust)
            if s.get("Effect") == "Allow" and principal_matches(s, execution_role)
        ]
        if named and any("sts:ExternalId" in str(s.get("Condition")) for s in named):
            if external_id is None:
                return (
                    "trust requires an sts:ExternalId, but the config sets none",
                    "set iam.external_id to the trust policy's value, then render "
                    "and register again",
                )
            return (
                f"trust requires an sts:ExternalId other than {external_id!r}",
                f"{REDEPLOY}, or set iam.external_id to the trust policy's value",
            )
        admitted = sorted(
            {
                str(value)
                for s in statements(facts.trust)
                if s.get("Effect") == "Allow" and isinstance(s.get("Principal"), dict)
                for value in _as_list(s["Principal"].get("AWS"))
            }
        )
        return (
            f"trust does not admit {execution_role} "
            f"(it admits {', '.join(admitted) or 'no AWS principal'})",
            f"add {execution_role} to Principal.AWS of the trust policy: {REDEPLOY}",
        )

    def needs_source_identity(self) -> bool:
        if self.config.iam.source_identity is False:
            return False
        return self.config.iam.source_identity is True or iam.uses_source_identity(
            self.state
        )

    def check_source_identity(self, facts: RoleFacts, execution_role: str) -> Check:
        # NOTE: unverified whether Studio needs this permission (see iam.py).
        subject = f"role {facts.arn}"
        request = Request("sts:SetSourceIdentity", facts.arn, principal=execution_role)
        decision = evaluate([("trust policy", facts.trust)], request)
        if decision.granted:
            return Check(OK, subject, f"trust lets {execution_role} keep the identity")
        return Check(
            WARN,
            subject,
            "the domain sets ExecutionRoleIdentityConfig, and the trust does not "
            f"allow sts:SetSourceIdentity to {execution_role} (unverified whether "
            "Studio needs it)",
            f"set iam.source_identity = true, then {REDEPLOY}",
        )

    def check_grants(self, facts: RoleFacts, repository: Repository) -> Check:
        subject = f"role {facts.arn}"
        missing = []
        for action in repository.access:
            if not self._grants(facts, action, repository.arn):
                missing.append(action)
        if not missing:
            return Check(
                OK, subject, f"grants {repository.access_name} on {repository.arn}"
            )
        named = sorted(self._codecommit_resources(facts))
        return Check(
            FAIL,
            subject,
            f"does not grant {_some(missing, repository.access_name)} on "
            f"{repository.arn} "
            f"(its CodeCommit statements name {', '.join(named) or 'no resource'})",
            f"grant them on {repository.arn}: {REDEPLOY}",
        )

    def _grants(self, facts: RoleFacts, action: str, resource: str) -> bool:
        request = Request(action, resource)
        if not evaluate(facts.policies, request).granted:
            return False
        if facts.boundary is None:
            return True
        return evaluate([facts.boundary], request).granted

    def _codecommit_resources(self, facts: RoleFacts) -> set[str]:
        found: set[str] = set()
        for _, document in facts.policies:
            for statement in statements(document):
                if "codecommit" in str(statement.get("Action", "")).lower():
                    found.update(str(r) for r in _as_list(statement.get("Resource")))
        return found

    # --- account B -----------------------------------------------------------------

    def check_assume_grant(self, role: iam.Role, execution_role: str) -> Check:
        subject = f"execution role {execution_role}"
        facts = self._execution_role(execution_role)
        if facts is None:
            return Check(
                FAIL,
                subject,
                f"does not exist in account {_account_of(execution_role)}",
                "correct domain.execution_roles or the domain's settings",
            )
        request = Request("sts:AssumeRole", role.arn)
        decision = evaluate(facts.policies, request)
        within = facts.boundary is None or evaluate([facts.boundary], request).granted
        if decision.granted and within:
            return Check(OK, subject, f"may assume {role.arn}")
        reason = "no policy allows it"
        if decision.denied_by:
            reason = f"denied by {', '.join(decision.denied_by)}"
        elif decision.granted:
            reason = f"outside its permissions boundary {facts.boundary[0]}"  # type: ignore[index]
        return Check(
            FAIL,
            subject,
            f"may not sts:AssumeRole {role.arn}: {reason}",
            "deploy the account-B template (studio-bootstrap iam --deploy), or "
            f"allow sts:AssumeRole on {role.arn} in a policy of the role",
        )

    def _execution_role(self, arn: str) -> RoleFacts | None:
        if arn not in self._execution_facts:
            client = self.accounts.domain_client(
                _account_of(arn), "iam", self.config.domain.region
            )
            self._execution_facts[arn] = read_role(client, arn)
        return self._execution_facts[arn]

    # --- lifecycle configurations ----------------------------------------------------

    def check_lifecycle(self, script: RenderedScript) -> list[Check]:
        app_type = script.app_type
        subject = f"{app_type} lifecycle configuration"
        registered = self.state.ours.get(script.lcc_name)
        if registered is None:
            versions = sorted(
                lcc.name for lcc in self.state.ours.values() if lcc.app_type == app_type
            )
            return [
                Check(
                    FAIL,
                    subject,
                    f"the rendered script {script.lcc_name} is not registered "
                    f"(registered: {', '.join(versions) or 'none'})",
                    REGISTER,
                )
            ]
        checks = [self._check_content(script, registered)]
        arn = registered.arn
        checks += list(self._check_runs(app_type, arn, script.lcc_name))
        return checks

    def _check_content(self, script: RenderedScript, lcc: reg.Lcc) -> Check:
        subject = f"{script.app_type} lifecycle configuration"
        digest = hashlib.sha256(script.content).hexdigest()
        recorded = lcc.tags.get(reg.TAG_SHA)
        if recorded not in (None, digest):
            return Check(
                FAIL,
                subject,
                f"{lcc.name} is tagged with another content hash than the "
                "rendered script",
                f"delete {lcc.name} (studio-bootstrap unregister), then {REGISTER}",
            )
        return Check(OK, subject, f"{lcc.name} is the rendered script")

    def _check_runs(self, app_type: str, arn: str, name: str) -> Iterator[Check]:
        key = studio.SETTINGS_KEYS[app_type]
        domain = self.state.settings(reg.Location("domain")).get(key)
        slot = (
            "built-in or default"
            if app_type in studio.BUILT_IN_APP_TYPES
            else "default"
        )
        if studio.runs(app_type, arn, None, domain):
            yield Check(
                OK, f"domain {self.state.domain_id}", f"runs {name} ({app_type})"
            )
        else:
            yield Check(
                FAIL,
                f"domain {self.state.domain_id}",
                f"does not run {name} for {app_type}: it is not the {slot} "
                f"lifecycle configuration of DefaultUserSettings.{key}",
                f"{REGISTER} (with --compose or --replace-default when another "
                "LCC is the default)",
            )
        shared = self.state.settings(reg.Location("domain-space")).get(key)
        shared_type = app_type in studio.SPACE_DEFAULT_APP_TYPES
        if shared and shared_type and not studio.runs(app_type, arn, None, shared):
            yield Check(
                FAIL,
                f"domain {self.state.domain_id} (shared spaces)",
                f"does not run {name}: DefaultSpaceSettings.{key} has another {slot}",
                REGISTER,
            )
        for user, settings in sorted(self.state.users.items()):
            own = settings.get(key)
            if own and not studio.runs(app_type, arn, own, domain):
                yield Check(
                    FAIL,
                    f"user profile {user}",
                    f"overrides the domain's {key} and does not run {name}",
                    f"{REGISTER} --user-profiles {user}",
                )
        for space, settings in sorted(self.state.spaces.items()):
            # A built-in runs before any default, so a space's own default
            # keeps ours from running only where ours is not the built-in.
            default = studio.default_of(settings.get(key))
            built_in = studio.built_in_of(domain) == arn
            if default and default != arn and not built_in:
                yield Check(
                    FAIL,
                    f"space {space}",
                    f"sets its own {app_type} default "
                    f"({default.rsplit('/', 1)[-1]}), which runs instead of {name}",
                    f"remove the space's default (UpdateSpace) or set it to {arn}",
                )


def _some(actions: list[str], access_name: str, shown: int = 3) -> str:
    """Name the first few actions and count the rest."""
    if len(actions) <= shown + 1:
        return ", ".join(actions)
    rest = len(actions) - shown
    return f"{', '.join(actions[:shown])} and {rest} more {access_name} actions"


def _role_name(arn: str) -> str:
    match = ROLE_ARN_RE.match(arn)
    if match is None:
        raise ValueError(f"invalid role ARN {arn!r}")
    return match["name"]


def _account_of(arn: str) -> str:
    return arn.split(":")[4]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def summary(checks: list[Check]) -> str:
    """Count the checks by outcome, for the last line of the report."""
    counts = {
        status: sum(c.status == status for c in checks) for status in (OK, WARN, FAIL)
    }
    return (
        f"{len(checks)} checks: {counts[OK]} ok, {counts[WARN]} warnings, "
        f"{counts[FAIL]} failed"
    )
