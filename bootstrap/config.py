"""Load and validate the TOML config that describes the domain and repositories.

Every rule is checked before anything is rendered or sent, and every broken
rule is reported, not only the first.
"""

from __future__ import annotations

import hashlib
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from bootstrap import servicemodel
from bootstrap.access import DEFAULT_ACCESS, PRESETS, check_actions
from bootstrap.errors import ConfigError, ConfigIssue

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_CONFIG = "bootstrap.toml"
DEFAULT_PREFIX = "studio-bootstrap"
TRANSPORTS = ("codecommit", "https")

# Short, lowercase forms of the app types, used in LCC names and file names.
APP_SLUGS = {
    "JupyterServer": "jupyterserver",
    "KernelGateway": "kernelgateway",
    "JupyterLab": "jupyterlab",
    "CodeEditor": "codeeditor",
}
CLASSIC_APP_TYPES = ("JupyterServer", "KernelGateway")

# LCC names are PREFIX-APP-HASH: the longest app slug and an 8-digit hash leave
# this much of the 63-character name limit for the prefix.
HASH_LENGTH = 8
MAX_PREFIX = 63 - len("-jupyterserver-") - HASH_LENGTH

ACCOUNT_RE = re.compile(r"[0-9]{12}\Z")
# Region names such as eu-west-1, us-gov-west-1, cn-north-1, us-isob-east-1.
REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}\Z")
# CodeCommit repository names: 1 to 100 letters, digits, '.', '_' or '-'.
REPOSITORY_RE = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")
# IAM role names: 1 to 64 of letters, digits and +=,.@_-.
ROLE_NAME_RE = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}\Z")
ROLE_ARN_RE = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):iam::"
    r"(?P<account>[0-9]{12}):role/(?P<path>(?:[\x21-\x7e]+/)*)"
    r"(?P<name>[A-Za-z0-9+=,.@_-]{1,64})\Z"
)
# Profile names reach a git URL and a shell command line, so they are kept to
# a safe set: a letter or digit, then letters, digits, '.', '_' or '-'.
PROFILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
PREFIX_RE = re.compile(rf"[a-zA-Z0-9](-*[a-zA-Z0-9]){{0,{MAX_PREFIX - 1}}}\Z")
# Folders in the home that the lifecycle script itself manages.
RESERVED_PATHS = (".studio-bootstrap", ".aws", ".git", ".ssh")
MAX_PATH_BYTES = 1024
MAX_COMPONENT_BYTES = 255
# sts:ExternalId values: 2 to 1224 of letters, digits and +=,.@:/-_.
EXTERNAL_ID_RE = re.compile(r"[A-Za-z0-9_+=,.@:/-]{2,1224}\Z")
# AWS Organizations ids, as aws:PrincipalOrgID carries them.
ORGANIZATION_ID_RE = re.compile(r"o-[a-z0-9]{10,32}\Z")
# A permissions boundary: a managed policy ARN, or a policy name with an
# optional path, which names the policy of that name in each role's account.
POLICY_ARN_RE = re.compile(
    r"arn:(?:aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):iam::(?P<account>[0-9]{12}|aws):"
    r"policy/(?:[\x21-\x7e]+/)*[A-Za-z0-9+=,.@_-]{1,128}\Z"
)
POLICY_NAME_RE = re.compile(r"(?:[A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,128}\Z")
# IAM tags: at most 50, with keys of 1 to 128 and values of up to 256
# letters, digits, spaces and _.:/=+-@. AWS reserves keys starting with aws:.
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
TAG_PUNCTUATION = " _.:/=+-@"
# Domain names label a domain on the command line and name its folder.
DOMAIN_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
# Folders under lifecycle/ that other commands write to.
RESERVED_DOMAIN_NAMES = ("iam", "stackset")
# The default region of repositories whose domain has no valid region: the
# config is rejected, and the repositories are checked all the same.
VALIDATION_REGION = "us-east-1"
# AWS profiles of the admin's own config: any name without spaces or brackets.
ADMIN_PROFILE_RE = re.compile(r"[A-Za-z0-9_.@+=,:/-]{1,128}\Z")
# A host name or IPv4 address with an optional port: what git-remote-codecommit
# takes in CODE_COMMIT_ENDPOINT and what a VPC endpoint's DNS name looks like.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_RE = re.compile(
    rf"(?=[^:]{{1,253}}(?::|\Z)){_LABEL}(?:\.{_LABEL})*"
    r"(?::(?P<port>[0-9]{1,5}))?\Z"
)
URL_RE = re.compile(r"(?P<scheme>https?)://(?P<host>[^/?#@\s]+)(?P<path>/[^?#\s]*)?\Z")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
# S3 bucket names: 3 to 63 of lowercase letters, digits, '.' and '-'.
BUCKET_RE = re.compile(r"(?!xn--|sthree-)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
# Key prefixes of the uploaded helper: safe characters, ending in '/' or empty.
KEY_PREFIX_RE = re.compile(r"(?:[A-Za-z0-9!_.*'()-]+/)*\Z")
# git-remote-codecommit versions as PyPI spells them.
VERSION_RE = re.compile(r"[0-9]+(?:\.[0-9]+){0,3}\Z")
# A wheel file name: NAME-VERSION(-BUILD)?-PY-ABI-PLATFORM.whl.
WHEEL_RE = re.compile(
    r"(?P<name>git_remote_codecommit)-(?P<version>[0-9][A-Za-z0-9.+!]*)"
    r"(?:-[0-9][A-Za-z0-9_.]*)?-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+\.whl\Z"
)
# The sources of git-remote-codecommit for images without it: a folder of
# wheels in the home, the wheel that register uploads to S3, a private
# package index, and PyPI.
HELPER_SOURCES = ("wheelhouse", "s3", "index", "pypi")
DEFAULT_KEY_PREFIX = "studio-bootstrap/"
# CodeArtifact names, as botocore 1.43's service model (codeartifact
# 2018-09-22) constrains DomainName and RepositoryName.
CODEARTIFACT_DOMAIN_RE = re.compile(r"[a-z][a-z0-9-]{0,48}[a-z0-9]\Z")
CODEARTIFACT_REPOSITORY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,99}\Z")
# CodeArtifact PyPI index URLs name the domain, its owner and the region in
# one of two forms (CodeArtifact User Guide, "Use CodeArtifact from a VPC"):
#   https://DOMAIN-OWNER.d.codeartifact.REGION.amazonaws.com/pypi/REPO/simple/
#   https://VPCE.d.codeartifact.REGION.vpce.amazonaws.com/pypi/d/DOMAIN-OWNER/REPO/simple/
# The second is the repositories VPC endpoint without private DNS.
_CODEARTIFACT_NAME = r"(?P<domain>[a-z][a-z0-9-]{0,48}[a-z0-9])-(?P<owner>[0-9]{12})"
CODEARTIFACT_HOST_RE = re.compile(
    rf"(?:{_CODEARTIFACT_NAME}|[A-Za-z0-9-]+)\.d\.codeartifact\.(?P<region>[a-z0-9-]+)"
    r"\.(?:vpce\.)?amazonaws\.com(?:\.cn)?(?::[0-9]+)?\Z"
)
CODEARTIFACT_PATH_RE = re.compile(
    rf"/pypi/(?:d/{_CODEARTIFACT_NAME}/)?(?P<repository>[^/]+)/simple/?\Z"
)


@dataclass(frozen=True)
class Domain:
    """The Studio domain in account B.

    ``execution_roles`` are the role ARNs that the repository roles trust.
    When it is empty, the ``iam`` command reads them from the domain.
    """

    id: str
    region: str
    execution_roles: tuple[str, ...] = ()
    # The label on the command line and in output; the id when not given.
    name: str = ""
    # The admin's AWS profile for the domain's account, when it has its own.
    profile: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class Network:
    """The endpoints that the lifecycle script uses in a VPC without internet.

    ``git_endpoints`` maps a region to the host (and port) of its CodeCommit
    Git endpoint; the endpoint URLs replace the public STS and S3 endpoints.
    """

    git_endpoints: tuple[tuple[str, str], ...] = ()
    sts_endpoint_url: str | None = None
    s3_endpoint_url: str | None = None
    # The CodeArtifact API endpoint, for GetAuthorizationToken.
    codeartifact_endpoint_url: str | None = None
    # Whether ~/.studio-bootstrap/gitconfig sends the public CodeCommit HTTPS
    # URLs of a region with a Git endpoint to that endpoint (url.insteadOf).
    rewrite_public_git_urls: bool = False

    def git_endpoint(self, region: str) -> str | None:
        """Return the Git endpoint host of a region, or None for the public one."""
        return dict(self.git_endpoints).get(region)


@dataclass(frozen=True)
class Helper:
    """The sources from which the lifecycle script installs git-remote-codecommit.

    The script first uses a copy on PATH, then tries ``sources`` in order.
    """

    sources: tuple[str, ...] = ("pypi",)
    # Pins the version installed from an index ("1.17"); None takes the newest.
    version: str | None = None
    # The wheel that register uploads for the "s3" source, and where to.
    wheel: str | None = None
    bucket: str | None = None
    bucket_region: str | None = None
    key_prefix: str = DEFAULT_KEY_PREFIX
    # A private package index (a PEP 503 simple index URL).
    index_url: str | None = None
    # A folder of wheels: relative to the home, or absolute.
    wheelhouse: str | None = None
    # The CodeArtifact domain behind index_url, its owner account and region.
    # Taken from index_url's host when it is CodeArtifact's public name;
    # a set field replaces the value from the host. The script then gets an
    # authorization token for the index.
    codeartifact_domain: str | None = None
    codeartifact_owner: str | None = None
    codeartifact_region: str | None = None

    @property
    def codeartifact(self) -> bool:
        """Whether the "index" source is a CodeArtifact repository."""
        return "index" in self.sources and self.codeartifact_domain is not None

    @property
    def codeartifact_repository(self) -> str | None:
        """The CodeArtifact repository that index_url names, if its path does."""
        match = URL_RE.match(self.index_url or "")
        path = CODEARTIFACT_PATH_RE.match(match["path"] or "") if match else None
        if path is None:
            return None
        repository = path["repository"]
        return repository if CODEARTIFACT_REPOSITORY_RE.match(repository) else None

    @property
    def wheel_name(self) -> str | None:
        return PurePosixPath(self.wheel).name if self.wheel else None

    @property
    def key(self) -> str | None:
        """The S3 object key of the uploaded wheel."""
        return f"{self.key_prefix}{self.wheel_name}" if self.wheel else None


def wheel_sha256(helper: Helper) -> str | None:
    """Return the hex sha256 of the local wheel file, or None without a wheel.

    The lifecycle script checks the wheel it downloads from S3 against this
    digest, and register stores it in the object's metadata.
    """
    if helper.wheel is None:
        return None
    return hashlib.sha256(Path(helper.wheel).read_bytes()).hexdigest()


@dataclass(frozen=True)
class IamSettings:
    """Options of the IAM templates that apply to every repository role."""

    external_id: str | None = None
    # "auto" follows the domain's ExecutionRoleIdentityConfig when it is read.
    source_identity: str | bool = "auto"
    permissions_boundary: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    # Trust the execution roles' names in every account of this organization,
    # rather than the listed ARNs alone.
    organization_id: str | None = None


@dataclass(frozen=True)
class Repository:
    """A CodeCommit repository in account A and where it is cloned."""

    name: str
    region: str
    account_id: str
    role_arn: str
    profile: str
    path: str
    branch: str | None
    transport: str
    https_fallback: bool = True
    # The CodeCommit actions the role grants on this repository, and the
    # preset they come from ("read", "contribute"), or "custom".
    access: tuple[str, ...] = PRESETS[DEFAULT_ACCESS]
    access_name: str = DEFAULT_ACCESS
    # Written to the profile when the role's trust requires sts:ExternalId.
    external_id: str | None = None

    @property
    def arn(self) -> str:
        """The repository ARN that IAM policies name."""
        return f"arn:aws:codecommit:{self.region}:{self.account_id}:{self.name}"

    @property
    def codecommit_url(self) -> str:
        """The git-remote-codecommit URL, which always carries the region."""
        return f"codecommit::{self.region}://{self.profile}@{self.name}"


@dataclass(frozen=True)
class Config:
    """A validated config."""

    domain: Domain
    repositories: tuple[Repository, ...]
    app_types: tuple[str, ...]
    prefix: str
    strict: bool
    source: str
    iam: IamSettings = IamSettings()
    network: Network = Network()
    helper: Helper = Helper()


@dataclass(frozen=True)
class Rollout:
    """Every domain of a config, each as a Config of its own.

    ``several`` is true when the file uses [[domains]] with more than one
    domain; each domain's files then go to a folder named after it.
    """

    configs: tuple[Config, ...]
    source: str

    @property
    def several(self) -> bool:
        return len(self.configs) > 1

    def select(self, names: list[str] | None) -> tuple[Config, ...]:
        """Return the domains named by label or id, in config order; all for None."""
        if not names:
            return self.configs
        known = {c.domain.label for c in self.configs} | {
            c.domain.id for c in self.configs
        }
        unknown = [name for name in names if name not in known]
        if unknown:
            labels = ", ".join(c.domain.label for c in self.configs)
            issues = [
                ConfigIssue("--domain", f"no such domain; the config has {labels}", n)
                for n in unknown
            ]
            raise ConfigError(self.source, issues)
        return tuple(
            c for c in self.configs if c.domain.label in names or c.domain.id in names
        )


def load_config(path: str | Path) -> Config:
    """Read and validate a config of one domain, raising ConfigError on any problem."""
    return _only(load_rollout(path))


def load_rollout(path: str | Path) -> Rollout:
    """Read and validate a config of one or more domains."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError as exc:
        issue = ConfigIssue("(file)", "config file not found; copy the example", source)
        raise ConfigError(source, [issue]) from exc
    except OSError as exc:
        issue = ConfigIssue("(file)", f"cannot read: {exc.strerror}", source)
        raise ConfigError(source, [issue]) from exc

    # A BOM or CRLF line endings from an editor are harmless in TOML.
    text = raw.decode("utf-8-sig", errors="replace").replace("\r\n", "\n")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        issue = ConfigIssue("(syntax)", f"invalid TOML: {exc}", source)
        raise ConfigError(source, [issue]) from exc
    return parse_rollout(data, source, Path(path).parent)


def parse_config(data: dict[str, Any], source: str = DEFAULT_CONFIG) -> Config:
    """Validate parsed TOML data of one domain and build a Config from it."""
    return _only(parse_rollout(data, source))


def parse_rollout(
    data: dict[str, Any], source: str = DEFAULT_CONFIG, base: Path | None = None
) -> Rollout:
    """Validate parsed TOML data and build a Config for each domain.

    ``base`` is the folder that relative local paths (helper.wheel) start from.
    """
    checker = _Checker(base or Path.cwd())
    checker.control_characters(data, "")
    configs = checker.rollout(data, source)
    if checker.issues or configs is None:
        raise ConfigError(source, checker.issues)
    return Rollout(configs, source)


def _only(rollout: Rollout) -> Config:
    if rollout.several:
        labels = ", ".join(c.domain.label for c in rollout.configs)
        rule = "names several domains; choose one with --domain"
        raise ConfigError(rollout.source, [ConfigIssue("domains", rule, labels)])
    return rollout.configs[0]


class _Checker:
    """Collects every broken rule while building the config."""

    def __init__(self, base: Path) -> None:
        self.issues: list[ConfigIssue] = []
        self.base = base

    def fail(self, field: str, rule: str, value: object) -> None:
        self.issues.append(ConfigIssue(field, rule, value))

    def control_characters(self, value: object, field: str) -> None:
        """Reject control characters, CR and NUL included, in every string."""
        if isinstance(value, dict):
            for key, item in value.items():
                name = f"{field}.{key}" if field else str(key)
                self.control_characters(key, f"{name} (key)")
                self.control_characters(item, name)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.control_characters(item, f"{field}[{index}]")
        elif isinstance(value, str) and _has_control(value):
            self.fail(field, "must not contain control characters", value)

    def unknown_keys(self, table: dict[str, Any], allowed: set[str], at: str) -> None:
        for key in table:
            if key not in allowed:
                field = f"{at}.{key}" if at else key
                rule = f"unknown field; expected one of {', '.join(sorted(allowed))}"
                self.fail(field, rule, table[key])

    def string(
        self,
        table: dict[str, Any],
        key: str,
        at: str,
        check: Callable[[str], str | None],
        default: str | None = None,
    ) -> str | None:
        """Read a string field and apply a check that returns a broken rule."""
        field = f"{at}.{key}" if at else key
        value = table.get(key, default)
        if value is None:
            self.fail(field, "missing required field", None)
            return None
        if not isinstance(value, str):
            self.fail(field, "must be a string", value)
            return None
        if _has_control(value):
            return None  # already reported for the whole document
        rule = check(value)
        if rule:
            self.fail(field, rule, value)
            return None
        return value

    def rollout(self, data: dict[str, Any], source: str) -> tuple[Config, ...] | None:
        allowed = {"domain", "domains", "repositories", "app_types", "prefix"}
        allowed |= {"strict", "iam", "network", "helper"}
        self.unknown_keys(data, allowed, "")
        prefix = self.string(data, "prefix", "", _check_prefix, DEFAULT_PREFIX)
        strict = data.get("strict", False)
        if not isinstance(strict, bool):
            self.fail("strict", "must be true or false", strict)
        app_types = self.app_types(data.get("app_types", list(APP_SLUGS)))
        iam = self.iam(data.get("iam", {}))
        network = self.network_fields(data.get("network", {}), "network")
        helper = self.helper_fields(data.get("helper", {}), "helper")
        tables = self.domain_tables(data)
        configs = []
        for at, table in tables:
            config = self.domain_config(at, table, data, network, helper)
            if config is not None:
                configs.append(config)
        self.unique_domains(configs)
        self.shared_wheels(configs)
        if prefix is None or app_types is None or iam is None:
            return None
        if not isinstance(strict, bool) or len(configs) != len(tables) or not tables:
            return None
        return tuple(
            replace(c, app_types=app_types, prefix=prefix, strict=strict, source=source)
            for c in self.with_iam(configs, iam)
        )

    def domain_tables(self, data: dict[str, Any]) -> list[tuple[str, Any]]:
        """Return the domain tables with their field names."""
        if "domains" not in data:
            return [("domain", data.get("domain"))]
        if "domain" in data:
            rule = "use either one [domain] or [[domains]] tables, not both"
            self.fail("domain", rule, data["domain"])
        value = data["domains"]
        if not isinstance(value, list) or not value:
            self.fail("domains", "must have at least one [[domains]] table", value)
            return []
        return [(f"domains[{index}]", table) for index, table in enumerate(value)]

    def domain_config(
        self,
        at: str,
        table: object,
        data: dict[str, Any],
        network: dict[str, Any] | None,
        helper: dict[str, Any] | None,
    ) -> Config | None:
        """Build one domain's Config; app types, prefix and IAM come later."""
        issues_before = len(self.issues)
        domain = self.domain(table, at)
        if not isinstance(table, dict):
            return None
        # A broken domain region is reported once, above. The repositories are
        # still checked, against a stand-in region, and the config is dropped.
        region = domain.region if domain else VALIDATION_REGION
        if "repositories" in table:
            value, repositories_at = table["repositories"], f"{at}.repositories"
        else:
            value, repositories_at = data.get("repositories"), "repositories"
        repositories = self.repositories(value, region, repositories_at)
        own_network = self.network_fields(table.get("network", {}), f"{at}.network")
        own_helper = self.helper_fields(table.get("helper", {}), f"{at}.helper")
        if repositories is not None:
            self.role_paths(repositories, repositories_at)
        if len(self.issues) > issues_before:
            return None
        if domain is None or repositories is None or network is None:
            return None
        if helper is None or own_network is None or own_helper is None:
            return None
        helper_at = f"{at}.helper" if "helper" in table else "helper"
        built = self.helper({**helper, **own_helper}, helper_at, domain.region)
        if built is None:
            return None
        return Config(
            domain,
            repositories,
            (),
            DEFAULT_PREFIX,
            False,
            "",
            network=Network(**{**network, **own_network}),
            helper=built,
        )

    def with_iam(self, configs: list[Config], iam: IamSettings) -> list[Config]:
        """Check the boundary against each domain's roles; add the external id."""
        result = []
        for config in configs:
            self.boundary_accounts(iam, config.repositories)
            repositories = config.repositories
            if iam.external_id is not None:
                repositories = tuple(
                    replace(r, external_id=iam.external_id) for r in repositories
                )
            result.append(replace(config, repositories=repositories, iam=iam))
        return result

    def unique_domains(self, configs: list[Config]) -> None:
        """Require distinct labels, and each domain (id and region) once.

        Labels name folders, so they are compared ignoring case, and a label
        may not be another domain's id, which --domain also accepts.
        """
        labels: dict[str, int] = {}
        places: dict[tuple[str, str], int] = {}
        ids = {config.domain.id: index for index, config in enumerate(configs)}
        for index, config in enumerate(configs):
            domain = config.domain
            label = domain.label.lower()
            if label in labels:
                other = labels[label]
                rule = (
                    f"same name as domains[{other}], ignoring case; names must differ"
                )
                self.fail(f"domains[{index}].name", rule, domain.label)
            labels.setdefault(label, index)
            if ids.get(domain.label, index) != index:
                rule = f"is the id of domains[{ids[domain.label]}]; choose another name"
                self.fail(f"domains[{index}].name", rule, domain.label)
            place = (domain.id, domain.region)
            if place in places:
                rule = f"same domain as domains[{places[place]}]"
                self.fail(f"domains[{index}].id", rule, domain.id)
            places.setdefault(place, index)

    def shared_wheels(self, configs: list[Config]) -> None:
        """Require one wheel per S3 object: each domain's script checks its sha256."""
        seen: dict[tuple[str, str], tuple[int, str]] = {}
        for index, config in enumerate(configs):
            helper = config.helper
            if "s3" not in helper.sources or not helper.bucket or not helper.key:
                continue
            place = (helper.bucket, helper.key)
            digest = wheel_sha256(helper) or ""
            other, other_digest = seen.setdefault(place, (index, digest))
            if other_digest != digest:
                rule = (
                    f"s3://{place[0]}/{place[1]} is also the wheel of "
                    f"domains[{other}], with other bytes; use the same wheel, or "
                    "another bucket or key_prefix"
                )
                self.fail(f"domains[{index}].helper.wheel", rule, helper.wheel)

    def domain(self, table: object, at: str) -> Domain | None:
        if not isinstance(table, dict):
            self.fail(at, "missing table with id and region", table)
            return None
        allowed = {"id", "region", "execution_roles", "name", "profile"}
        if at != "domain":
            allowed |= {"repositories", "network", "helper"}
        self.unknown_keys(table, allowed, at)
        domain_id = self.string(table, "id", at, _check_domain_id)
        region = self.string(table, "region", at, _check_region)
        roles = self.execution_roles(
            table.get("execution_roles", []), f"{at}.execution_roles"
        )
        name = ""
        if "name" in table:
            name = self.string(table, "name", at, _check_domain_name) or ""
        profile = None
        if "profile" in table:
            profile = self.string(table, "profile", at, _check_admin_profile)
        if domain_id is None or region is None or roles is None:
            return None
        return Domain(domain_id, region, roles, name, profile)

    def execution_roles(self, value: object, field: str) -> tuple[str, ...] | None:
        """Require role ARNs of one account, each listed once."""
        if not isinstance(value, list):
            self.fail(field, "must be a list of IAM role ARNs", value)
            return None
        issues_before = len(self.issues)
        accounts: dict[str, int] = {}
        for index, item in enumerate(value):
            at = f"{field}[{index}]"
            match = ROLE_ARN_RE.match(item) if isinstance(item, str) else None
            if match is None:
                rule = (
                    "must be an IAM role ARN such as "
                    "arn:aws:iam::222222222222:role/StudioExecutionRole"
                )
                self.fail(at, rule, item)
            elif item in value[:index]:
                self.fail(at, "listed twice", item)
            elif accounts and match["account"] not in accounts:
                first = next(iter(accounts))
                rule = (
                    f"must be in the domain's account, as the first role is ({first})"
                )
                self.fail(at, rule, item)
            else:
                accounts.setdefault(match["account"], index)
        if len(self.issues) > issues_before:
            return None
        return tuple(value)

    def iam(self, table: object) -> IamSettings | None:
        if not isinstance(table, dict):
            self.fail("iam", "must be a table", table)
            return None
        allowed = {"external_id", "source_identity", "permissions_boundary", "tags"}
        allowed.add("organization_id")
        self.unknown_keys(table, allowed, "iam")
        issues_before = len(self.issues)
        external_id = None
        if "external_id" in table:
            external_id = self.string(table, "external_id", "iam", _check_external_id)
        source_identity = table.get("source_identity", "auto")
        if source_identity != "auto" and not isinstance(source_identity, bool):
            rule = 'must be "auto", true or false'
            self.fail("iam.source_identity", rule, source_identity)
        boundary = None
        if "permissions_boundary" in table:
            boundary = self.string(
                table, "permissions_boundary", "iam", _check_permissions_boundary
            )
        tags = self.tags(table.get("tags", {}))
        organization = None
        if "organization_id" in table:
            organization = self.string(
                table, "organization_id", "iam", _check_organization_id
            )
        if len(self.issues) > issues_before or tags is None:
            return None
        return IamSettings(external_id, source_identity, boundary, tags, organization)

    def tags(self, table: object) -> tuple[tuple[str, str], ...] | None:
        if not isinstance(table, dict):
            self.fail("iam.tags", "must be a table of tag names and values", table)
            return None
        if len(table) > MAX_TAGS:
            self.fail("iam.tags", f"must have at most {MAX_TAGS} tags", len(table))
            return None
        issues_before = len(self.issues)
        for key, value in table.items():
            at = f"iam.tags.{key}"
            rule = _check_tag(key, MAX_TAG_KEY, minimum=1)
            if rule is None and key.lower().startswith("aws:"):
                rule = "must not start with aws:, which AWS reserves"
            if rule is not None:
                self.fail(f"{at} (key)", rule, key)
            if not isinstance(value, str):
                self.fail(at, "must be a string", value)
                continue
            rule = _check_tag(value, MAX_TAG_VALUE, minimum=0)
            if rule is not None:
                self.fail(at, rule, value)
        if len(self.issues) > issues_before:
            return None
        return tuple(sorted(table.items()))

    def role_paths(self, repositories: tuple[Repository, ...], field: str) -> None:
        """Require one path per role name in each account."""
        arns: dict[tuple[str, str], str] = {}
        for index, repository in enumerate(repositories):
            match = ROLE_ARN_RE.match(repository.role_arn)
            assert match is not None  # built or checked by role_arn()
            key = (match["account"], match["name"])
            other = arns.setdefault(key, repository.role_arn)
            if other != repository.role_arn:
                rule = f"role {match['name']} is also named with another path ({other})"
                self.fail(f"{field}[{index}].role", rule, repository.role_arn)

    def boundary_accounts(
        self, iam: IamSettings, repositories: tuple[Repository, ...]
    ) -> None:
        """Require a boundary ARN to be in every role's account (or AWS managed)."""
        boundary = POLICY_ARN_RE.match(iam.permissions_boundary or "")
        if boundary is None or boundary["account"] == "aws":
            return
        for account in sorted({r.account_id for r in repositories}):
            if account != boundary["account"]:
                rule = (
                    f"must be a policy in every role's account, but a role is in "
                    f"{account}; give the policy name alone to name the policy "
                    "of that name in each account"
                )
                self.fail("iam.permissions_boundary", rule, iam.permissions_boundary)

    def network_fields(self, table: object, at: str) -> dict[str, Any] | None:
        """Check a [network] table; return the fields it sets."""
        if not isinstance(table, dict):
            self.fail(at, "must be a table", table)
            return None
        endpoint_urls = (
            "sts_endpoint_url",
            "s3_endpoint_url",
            "codeartifact_endpoint_url",
        )
        allowed = {"git_endpoints", "rewrite_public_git_urls", *endpoint_urls}
        self.unknown_keys(table, allowed, at)
        issues_before = len(self.issues)
        fields: dict[str, Any] = {}
        if "rewrite_public_git_urls" in table:
            rewrite = table["rewrite_public_git_urls"]
            if isinstance(rewrite, bool):
                fields["rewrite_public_git_urls"] = rewrite
            else:
                field = f"{at}.rewrite_public_git_urls"
                self.fail(field, "must be true or false", rewrite)
        if "git_endpoints" in table:
            fields["git_endpoints"] = self.git_endpoints(
                table["git_endpoints"], f"{at}.git_endpoints"
            )
        for key in endpoint_urls:
            if key in table:
                fields[key] = self.string(table, key, at, _check_endpoint_url)
        if len(self.issues) > issues_before:
            return None
        return fields

    def git_endpoints(self, table: object, field: str) -> tuple[tuple[str, str], ...]:
        if not isinstance(table, dict):
            rule = 'must be a table of region = "host", such as "eu-west-1" = "..."'
            self.fail(field, rule, table)
            return ()
        for region, host in table.items():
            region_rule = _check_region(region)
            if region_rule is not None:
                self.fail(f"{field}.{region} (key)", region_rule, region)
            if not isinstance(host, str):
                self.fail(f"{field}.{region}", "must be a string", host)
            elif (host_rule := _check_host(host)) is not None:
                self.fail(f"{field}.{region}", host_rule, host)
        return tuple(sorted(table.items()))

    def helper_fields(self, table: object, at: str) -> dict[str, Any] | None:
        """Check a [helper] table field by field; return the fields it sets."""
        if not isinstance(table, dict):
            self.fail(at, "must be a table", table)
            return None
        checks: dict[str, Callable[[str], str | None]] = {
            "version": _check_version,
            "bucket": _check_bucket,
            "bucket_region": _check_region,
            "key_prefix": _check_key_prefix,
            "index_url": _check_endpoint_url,
            "wheelhouse": _check_wheelhouse,
            "wheel": self.check_wheel,
            "codeartifact_domain": _check_codeartifact_domain,
            "codeartifact_owner": _check_account,
            "codeartifact_region": _check_region,
        }
        self.unknown_keys(table, {"sources", *checks}, at)
        issues_before = len(self.issues)
        fields: dict[str, Any] = {}
        if "sources" in table:
            fields["sources"] = self.helper_sources(table["sources"], f"{at}.sources")
        for key, check in checks.items():
            if key in table:
                fields[key] = self.string(table, key, at, check)
        if "wheel" in table and fields.get("wheel") is not None:
            fields["wheel"] = str(self.base / fields["wheel"])
        if len(self.issues) > issues_before:
            return None
        return fields

    def helper_sources(self, value: object, field: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            rule = f"must be a non-empty list of {', '.join(HELPER_SOURCES)}"
            self.fail(field, rule, value)
            return ()
        for index, item in enumerate(value):
            if item not in HELPER_SOURCES:
                rule = f"must be one of {', '.join(HELPER_SOURCES)}"
                self.fail(f"{field}[{index}]", rule, item)
            elif item in value[:index]:
                self.fail(f"{field}[{index}]", "listed twice", item)
        return tuple(value)

    def helper(self, fields: dict[str, Any], at: str, region: str) -> Helper | None:
        """Build the helper settings of a domain and check what each source needs."""
        fields = {"bucket_region": region, **fields}
        fields.update(self.codeartifact(fields, at, region))
        helper = Helper(**fields)
        needs = {
            "s3": ("bucket", "wheel"),
            "index": ("index_url",),
            "wheelhouse": ("wheelhouse",),
        }
        issues_before = len(self.issues)
        for source in helper.sources:
            for key in needs.get(source, ()):
                if getattr(helper, key) is None:
                    rule = f'required when sources has "{source}"'
                    self.fail(f"{at}.{key}", rule, None)
        if len(self.issues) > issues_before:
            return None
        return helper

    def codeartifact(
        self, fields: dict[str, Any], at: str, region: str
    ) -> dict[str, str]:
        """Return the CodeArtifact domain, owner and region of the index.

        Each comes from its field, else from index_url when that is a
        CodeArtifact URL (see CODEARTIFACT_HOST_RE). The region falls back
        to the domain's. Without a CodeArtifact domain, the index is a
        plain one and nothing is returned.
        """
        match = URL_RE.match(fields.get("index_url") or "")
        host = CODEARTIFACT_HOST_RE.match(match["host"]) if match else None
        path = CODEARTIFACT_PATH_RE.match(match["path"] or "") if match else None
        resolved: dict[str, str] = {}
        if host is not None:
            resolved["codeartifact_region"] = host["region"]
            named = host if host["domain"] else path
            if named is not None and named["domain"]:
                resolved["codeartifact_domain"] = named["domain"]
                resolved["codeartifact_owner"] = named["owner"]
        for key in ("codeartifact_domain", "codeartifact_owner", "codeartifact_region"):
            if fields.get(key) is not None:
                resolved[key] = fields[key]
        if resolved.get("codeartifact_domain") is None:
            if resolved.get("codeartifact_owner") is not None:
                rule = (
                    "required with codeartifact_owner unless index_url is a "
                    "CodeArtifact URL that names the domain"
                )
                self.fail(f"{at}.codeartifact_domain", rule, None)
            return {}
        if resolved.get("codeartifact_owner") is None:
            rule = (
                "required with codeartifact_domain unless index_url is a "
                "CodeArtifact URL that names the owner"
            )
            self.fail(f"{at}.codeartifact_owner", rule, None)
            return {}
        resolved.setdefault("codeartifact_region", region)
        return resolved

    def check_wheel(self, value: str) -> str | None:
        """Check a local wheel of git-remote-codecommit, relative to the config.

        register uploads the file and the script installs it, so its content
        is checked too: a zip archive whose metadata names the distribution
        and version of its file name.
        """
        match = WHEEL_RE.match(PurePosixPath(value).name)
        if match is None:
            return (
                "must be a wheel of git-remote-codecommit, such as "
                "wheels/git_remote_codecommit-1.17-py3-none-any.whl"
            )
        path = self.base / value
        if not path.exists():
            return f"file not found (relative paths start at {self.base})"
        if not path.is_file():
            return "must be a file, not a folder or a device"
        return _check_wheel_content(path, match["version"])

    def app_types(self, value: object) -> tuple[str, ...] | None:
        if not isinstance(value, list) or not value:
            self.fail("app_types", "must be a non-empty list of app types", value)
            return None
        found: list[str] = []
        for index, item in enumerate(value):
            if item not in APP_SLUGS:
                rule = f"must be one of {', '.join(APP_SLUGS)}"
                self.fail(f"app_types[{index}]", rule, item)
            elif item in found:
                self.fail(f"app_types[{index}]", "listed twice", item)
            else:
                found.append(item)
        return tuple(found) if len(found) == len(value) else None

    def repositories(
        self, value: object, default_region: str | None, field: str
    ) -> tuple[Repository, ...] | None:
        if not isinstance(value, list) or not value:
            rule = f"must have at least one [[{field}]] table"
            self.fail(field, rule, value)
            return None
        repositories = []
        for index, table in enumerate(value):
            at = f"{field}[{index}]"
            if not isinstance(table, dict):
                self.fail(at, "must be a table", table)
                continue
            repository = self.repository(table, at, default_region)
            if repository is not None:
                repositories.append(repository)
        self.unique(repositories, field)
        if len(repositories) != len(value):
            return None
        return tuple(repositories)

    def repository(
        self, table: dict[str, Any], at: str, default_region: str | None
    ) -> Repository | None:
        allowed = {"name", "region", "account_id", "role", "profile", "path"}
        allowed |= {"branch", "transport", "https_fallback", "access"}
        self.unknown_keys(table, allowed, at)
        issues_before = len(self.issues)
        name = self.string(table, "name", at, _check_repository_name)
        region = self.string(table, "region", at, _check_region, default_region)
        account_id = self.string(table, "account_id", at, _check_account)
        role = self.string(table, "role", at, _check_role)
        # Defaults derive from the name; a broken name is reported once, above.
        default_profile = f"codecommit-{name or 'repository'}"
        profile = self.string(table, "profile", at, _check_profile, default_profile)
        path = self.string(table, "path", at, _check_path, name or "repository")
        branch = None
        if "branch" in table:
            branch = self.string(table, "branch", at, _check_branch)
        transport = self.string(table, "transport", at, _check_transport, TRANSPORTS[0])
        https_fallback = table.get("https_fallback", True)
        if not isinstance(https_fallback, bool):
            self.fail(f"{at}.https_fallback", "must be true or false", https_fallback)
        access = self.access(table.get("access", DEFAULT_ACCESS), f"{at}.access")
        values = (name, region, account_id, role, profile, path, transport, access)
        if len(self.issues) > issues_before or None in values:
            return None
        assert access is not None
        assert name and region and account_id and role and profile and path
        assert transport
        role_arn = self.role_arn(role, account_id, f"{at}.role")
        if role_arn is None:
            return None
        path = str(PurePosixPath(path))
        return Repository(
            name,
            region,
            account_id,
            role_arn,
            profile,
            path,
            branch,
            transport,
            bool(https_fallback),
            access[1],
            access[0],
        )

    def access(self, value: object, field: str) -> tuple[str, tuple[str, ...]] | None:
        """Return the preset name (or "custom") and the actions it grants."""
        if isinstance(value, str):
            if value in PRESETS:
                return value, PRESETS[value]
            rule = f"must be one of {', '.join(PRESETS)}, or a list of actions"
            self.fail(field, rule, value)
            return None
        if not isinstance(value, list):
            rule = f"must be one of {', '.join(PRESETS)}, or a list of actions"
            self.fail(field, rule, value)
            return None
        problems = check_actions(value)
        for index, rule, item in problems:
            self.fail(field if index is None else f"{field}[{index}]", rule, item)
        if problems:
            return None
        return "custom", tuple(value)

    def role_arn(self, role: str, account_id: str, field: str) -> str | None:
        match = ROLE_ARN_RE.match(role)
        if match is None:
            return f"arn:aws:iam::{account_id}:role/{role}"
        if match["account"] != account_id:
            rule = f"role ARN must be in account_id {account_id}"
            self.fail(field, rule, role)
            return None
        return role

    def unique(self, repositories: list[Repository], field: str) -> None:
        """Require distinct profiles and clone paths, none inside another."""
        profiles: dict[str, int] = {}
        paths: dict[str, int] = {}
        for index, repository in enumerate(repositories):
            at = f"{field}[{index}]"
            if repository.profile in profiles:
                other = profiles[repository.profile]
                rule = f"same profile as {field}[{other}]; profiles must differ"
                self.fail(f"{at}.profile", rule, repository.profile)
            profiles.setdefault(repository.profile, index)
            for other_path, other in paths.items():
                if _overlaps(repository.path, other_path):
                    rule = (
                        f"overlaps the path of {field}[{other}] ({other_path}); "
                        "clone paths must differ and not contain each other"
                    )
                    self.fail(f"{at}.path", rule, repository.path)
            paths.setdefault(repository.path, index)


def _has_control(value: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value) or any(
        c in value for c in "\u2028\u2029"
    )


def _check_domain_name(value: str) -> str | None:
    if value.lower() in RESERVED_DOMAIN_NAMES:
        return (
            f"must not be {' or '.join(RESERVED_DOMAIN_NAMES)}, "
            "which name output folders under lifecycle/"
        )
    if DOMAIN_NAME_RE.match(value) is None:
        return (
            "must be 1 to 63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return None


def _check_admin_profile(value: str) -> str | None:
    if ADMIN_PROFILE_RE.match(value) is None:
        return "must be an AWS profile name without spaces or brackets"
    return None


def _check_wheel_content(path: Path, version: str) -> str | None:
    """Check that a wheel contains git-remote-codecommit of its file name's version."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            metadata = [n for n in names if n.endswith(".dist-info/METADATA")]
            if len(metadata) != 1 or "git_remote_codecommit/__init__.py" not in names:
                return (
                    "must be a wheel of git-remote-codecommit (its files are missing)"
                )
            text = archive.read(metadata[0]).decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile) as exc:
        return f"must be a wheel, a zip archive ({exc})"
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    if fields.get("Name", "").lower().replace("_", "-") != "git-remote-codecommit":
        return f"metadata names {fields.get('Name')!r}, not git-remote-codecommit"
    if fields.get("Version") != version:
        found = fields.get("Version")
        return f"metadata has version {found!r}, but the file name has {version}"
    return None


def _check_host(value: str) -> str | None:
    match = HOST_RE.match(value)
    if match is None:
        return "must be a host name with an optional :port, without a scheme or path"
    if match["port"] is not None and not 1 <= int(match["port"]) <= 65535:
        return "port must be 1 to 65535"
    return None


def _check_endpoint_url(value: str) -> str | None:
    scheme, separator, rest = value.partition("://")
    if not separator or scheme not in ("https", "http"):
        return "must start with https:// (http:// only for 127.0.0.1 or localhost)"
    if any(c in rest for c in "?#"):
        return "must not contain a query or fragment"
    host = rest.split("/", 1)[0]
    if "@" in host:
        return "must not contain credentials"
    match = URL_RE.match(value)
    rule = _check_host(host)
    if match is None or rule is not None:
        return rule or "must be an https:// URL of a host and an optional path"
    if scheme == "http" and host.split(":")[0] not in LOOPBACK_HOSTS:
        return "must use https:// (http:// only for 127.0.0.1 or localhost)"
    return None


def _check_bucket(value: str) -> str | None:
    if BUCKET_RE.match(value) is None or ".." in value:
        return (
            "must be an S3 bucket name: 3 to 63 of lowercase letters, "
            "digits, '.' and '-'"
        )
    if re.fullmatch(r"[0-9]+(\.[0-9]+){3}", value):
        return "must not be formatted as an IP address"
    if value.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3")):
        return "must not end in a suffix that S3 reserves for access points"
    return None


def _check_key_prefix(value: str) -> str | None:
    if len(value) > 512 or KEY_PREFIX_RE.match(value) is None:
        return "must be empty or end in '/', with letters, digits and !_.*'()- between"
    if any(part in (".", "..") for part in value.split("/")):
        return "must not contain '.' or '..' components"
    return None


def _check_codeartifact_domain(value: str) -> str | None:
    if CODEARTIFACT_DOMAIN_RE.match(value) is None:
        return (
            "must be a CodeArtifact domain name: 2 to 50 lowercase letters, "
            "digits and '-', starting with a letter"
        )
    return None


def _check_version(value: str) -> str | None:
    if VERSION_RE.match(value) is None:
        return "must be a release number such as 1.17"
    return None


def _check_wheelhouse(value: str) -> str | None:
    if value.startswith("/"):
        parts = value.strip("/").split("/")
        if value == "/" or any(part in ("", ".", "..") for part in parts):
            return "must be a folder such as /opt/wheels, without '.' or '..'"
        return None
    return _check_path(value)


def _check_domain_id(value: str) -> str | None:
    if servicemodel.pattern("DomainId").match(value) is None:
        return "must be a domain id such as d-xxxxxxxxxxxx"
    return None


def _check_region(value: str) -> str | None:
    if REGION_RE.match(value) is None:
        return "must be a region name such as eu-west-1"
    return None


def _check_account(value: str) -> str | None:
    if ACCOUNT_RE.match(value) is None:
        return "must be an AWS account id of 12 digits"
    return None


def _check_repository_name(value: str) -> str | None:
    if REPOSITORY_RE.match(value) is None:
        return "must be 1 to 100 letters, digits, '.', '_' or '-'"
    if value.endswith(".git"):
        return "must not end in '.git'"
    return None


def _check_role(value: str) -> str | None:
    if value.startswith("arn:"):
        if ROLE_ARN_RE.match(value) is None:
            return "must be an IAM role ARN such as arn:aws:iam::111111111111:role/Name"
        return None
    if ROLE_NAME_RE.match(value) is None:
        return "must be an IAM role name (1 to 64 of letters, digits and +=,.@_-)"
    return None


def _check_profile(value: str) -> str | None:
    if PROFILE_RE.match(value) is None:
        return "must start with a letter or digit, then letters, digits, '.', '_', '-'"
    if value == "default":
        return "must not be 'default', which holds the user's own credentials"
    return None


def _check_external_id(value: str) -> str | None:
    if EXTERNAL_ID_RE.match(value) is None:
        return "must be 2 to 1224 of letters, digits and +=,.@:/-_"
    return None


def _check_organization_id(value: str) -> str | None:
    if ORGANIZATION_ID_RE.match(value) is None:
        return "must be an organization id: o- and 10 to 32 lowercase letters or digits"
    return None


def _check_permissions_boundary(value: str) -> str | None:
    if value.startswith("arn:"):
        if POLICY_ARN_RE.match(value) is None:
            return (
                "must be a managed policy ARN such as "
                "arn:aws:iam::111111111111:policy/Boundary, or a policy name"
            )
        return None
    if POLICY_NAME_RE.match(value) is None:
        return "must be a managed policy name (letters, digits and +=,.@_-) or ARN"
    return None


def _check_tag(value: object, maximum: int, minimum: int) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if not minimum <= len(value) <= maximum:
        return f"must be {minimum} to {maximum} characters"
    if any(not c.isalnum() and c not in TAG_PUNCTUATION for c in value):
        return "must contain only letters, digits, spaces and _.:/=+-@"
    return None


def _check_prefix(value: str) -> str | None:
    if PREFIX_RE.match(value) is None:
        return (
            f"must be 1 to {MAX_PREFIX} letters, digits and single hyphens, "
            "starting and ending with a letter or digit"
        )
    return None


def _check_transport(value: str) -> str | None:
    if value not in TRANSPORTS:
        return f"must be one of {', '.join(TRANSPORTS)}"
    return None


def _check_path(value: str) -> str | None:
    if value.startswith(("/", "~")):
        return "must be relative to the home folder"
    if len(value.encode()) > MAX_PATH_BYTES:
        return f"must be at most {MAX_PATH_BYTES} bytes"
    parts = value.split("/")
    if parts[-1] == "":
        parts.pop()  # one trailing slash is harmless
    for part in parts:
        if part in ("", ".", ".."):
            return "must not contain empty, '.' or '..' components"
        if len(part.encode()) > MAX_COMPONENT_BYTES:
            return f"each component must be at most {MAX_COMPONENT_BYTES} bytes"
        if part.startswith("-"):
            return "components must not start with '-'"
    if not parts:
        return "must not be empty"
    if parts[0] in RESERVED_PATHS or ".git" in parts:
        return f"must not be inside {', '.join(RESERVED_PATHS)}"
    return None


def _check_branch(value: str) -> str | None:
    """Apply git's rules for branch names (git check-ref-format --branch)."""
    if not value or value.startswith(("-", "/")) or value.endswith(("/", ".", ".lock")):
        return "must be a valid git branch name"
    if value == "@" or any(bad in value for bad in ("..", "@{", "//", "/.")):
        return "must be a valid git branch name"
    if any(c in value for c in " ~^:?*[\\") or value.startswith("."):
        return "must be a valid git branch name"
    if any(part.endswith(".lock") for part in value.split("/")):
        return "must be a valid git branch name"
    return None


def _overlaps(path: str, other: str) -> bool:
    first, second = PurePosixPath(path).parts, PurePosixPath(other).parts
    shorter = min(len(first), len(second))
    return first[:shorter] == second[:shorter]


def iter_app_slugs(config: Config) -> Iterator[tuple[str, str]]:
    """Yield each configured app type with its short name."""
    for app_type in config.app_types:
        yield app_type, APP_SLUGS[app_type]
