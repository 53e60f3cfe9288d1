"""Warnings for domains whose apps have no internet (AppNetworkAccessType VpcOnly).

In a VpcOnly domain, Studio apps reach AWS only through the VPC's endpoints,
and PyPI not at all. These checks compare the config with the settings
of the domain and its user profiles, before anything is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bootstrap.config import Config

VPC_ONLY = "VpcOnly"


@dataclass(frozen=True)
class VpcWarning:
    """One gap in a VpcOnly setup: what is missing, and the config that fixes it."""

    subject: str
    message: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return {"subject": self.subject, "message": self.message, "fix": self.fix}


def vpc_only(domain: dict[str, Any]) -> bool:
    """Return whether a DescribeDomain response puts the apps in a VPC only."""
    return domain.get("AppNetworkAccessType") == VPC_ONLY


def vpc_warnings(
    config: Config, domain: dict[str, Any], users: dict[str, dict[str, Any]]
) -> list[VpcWarning]:
    """Return the gaps of a VpcOnly domain; none for a domain with internet.

    ``domain`` is a DescribeDomain response and ``users`` maps each user
    profile name to its UserSettings.
    """
    if not vpc_only(domain):
        return []
    found: list[VpcWarning] = []
    subject = f"domain {config.domain.id} (VpcOnly)"
    if set(config.helper.sources) <= {"pypi"}:
        found.append(
            VpcWarning(
                subject,
                "git-remote-codecommit installs only from PyPI, which apps "
                "without internet cannot reach; images without it cannot clone",
                'set helper.sources to "s3", "index" or "wheelhouse"',
            )
        )
    sources = config.helper.sources
    if "pypi" in sources and sources[-1] != "pypi" and set(sources) != {"pypi"}:
        later = ", ".join(sources[sources.index("pypi") + 1 :])
        found.append(
            VpcWarning(
                subject,
                f"pypi comes before {later} in helper.sources; without internet "
                "each install first waits for pip to give up on PyPI",
                "move pypi to the end of helper.sources, or remove it",
            )
        )
    https = [r.name for r in config.repositories if r.transport == "https"]
    if https and set(sources) - {"s3"} <= {"pypi"}:
        found.append(
            VpcWarning(
                subject,
                f"the https transport of {', '.join(https)} needs the AWS CLI, "
                "which installs only from PyPI when the image lacks it "
                "(the s3 source carries git-remote-codecommit alone)",
                'add "index" or "wheelhouse" to helper.sources, or use an image '
                "with the AWS CLI",
            )
        )
    if config.network.sts_endpoint_url is None:
        found.append(
            VpcWarning(
                subject,
                "no STS endpoint is configured; assuming the repository role "
                "works only if the VPC has an STS interface endpoint with "
                "private DNS",
                "set network.sts_endpoint_url to the VPC endpoint's URL",
            )
        )
    regions = sorted({r.region for r in config.repositories})
    missing = [
        region for region in regions if config.network.git_endpoint(region) is None
    ]
    if missing:
        found.append(
            VpcWarning(
                subject,
                f"no CodeCommit Git endpoint is configured for {', '.join(missing)}; "
                "cloning works only if the VPC has a git-codecommit interface "
                "endpoint with private DNS there",
                "set network.git_endpoints to the endpoint's DNS name per region",
            )
        )
    pinned = [
        r.name
        for r in config.repositories
        if r.transport == "codecommit" and config.network.git_endpoint(r.region)
    ]
    if pinned:
        found.append(
            VpcWarning(
                subject,
                "git-remote-codecommit takes the Git endpoint only from "
                "CODE_COMMIT_ENDPOINT, which the lifecycle script sets for its "
                "own clone and fetch but terminals and the Git UI do not; their "
                f"fetches of {', '.join(pinned)} go to the public host unless "
                "the endpoint has private DNS",
                'set transport = "https" for these repositories, which the '
                "credential settings in ~/.gitconfig send through the endpoint",
            )
        )
    if "s3" in config.helper.sources and config.network.s3_endpoint_url is None:
        found.append(
            VpcWarning(
                subject,
                "the helper is fetched from S3 but no S3 endpoint is configured; "
                "this works only through an S3 gateway endpoint or an interface "
                "endpoint with private DNS",
                "set network.s3_endpoint_url, or add an S3 gateway endpoint",
            )
        )
    default_groups = (domain.get("DefaultUserSettings") or {}).get("SecurityGroups")
    bare = sorted(
        name for name, settings in users.items() if not settings.get("SecurityGroups")
    )
    if not default_groups and (bare or not users):
        if bare:
            listed = ", ".join(bare[:5])
            if len(bare) > 5:
                listed += f" and {len(bare) - 5} more"
            who = f"these user profiles have none of their own: {listed}"
        else:
            who = "the domain has no user profile yet"
        found.append(
            VpcWarning(
                subject,
                f"the domain sets no security groups for its user profiles, and "
                f"{who}; security groups decide whether apps reach the VPC endpoints",
                "set DefaultUserSettings.SecurityGroups on the domain, or "
                "SecurityGroups on each user profile",
            )
        )
    return found
