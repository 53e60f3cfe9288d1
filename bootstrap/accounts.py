"""Credentials per account: the repository accounts (A) and the domain's (B).

``--profile-a`` takes a profile for every repository account, or
``ACCOUNT=PROFILE`` pairs when the repositories live in several accounts.
``--profile-b`` names the profile of the domain's account. Without a
profile, the standard credential chain is used. Before the first call in an
account, STS GetCallerIdentity confirms that the credentials belong to it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import boto3

from bootstrap.aws import AwsClient, make_session
from bootstrap.errors import UsageError, WrongAccountError

logger = logging.getLogger(__name__)

_PAIR_RE = re.compile(r"(?P<account>[0-9]{12})=(?P<profile>.+)\Z")


@dataclass
class Accounts:
    """Sessions per side of the chain, with each account checked once.

    When one account owns repositories and the domain, each side still uses
    its own profile.
    """

    repository_profiles: dict[str, str | None]
    domain_profile: str | None = None
    endpoint_url: str | None = None
    # Profiles of domain accounts that have their own, by account.
    domain_profiles: dict[str, str | None] = field(default_factory=dict)
    _sessions: dict[str | None, boto3.Session] = field(default_factory=dict)
    _checked: set[tuple[str | None, str]] = field(default_factory=set)

    def repository_client(self, account: str, service: str, region: str) -> AwsClient:
        """Return a client in a repository account, once its account is confirmed."""
        profile = self.repository_profiles.get(account)
        return self._client(profile, "--profile-a", account, service, region)

    def domain_client(self, account: str, service: str, region: str) -> AwsClient:
        """Return a client in the domain's account, once its account is confirmed."""
        profile = self.domain_profiles.get(account, self.domain_profile)
        return self._client(profile, "--profile-b", account, service, region)

    def _client(
        self,
        profile: str | None,
        option: str,
        account: str,
        service: str,
        region: str,
    ) -> AwsClient:
        session = self._session(profile)
        if (profile, account) not in self._checked:
            self._check(session, profile, option, account, region)
            self._checked.add((profile, account))
        return AwsClient(session, service, region, self.endpoint_url)

    def _session(self, profile: str | None) -> boto3.Session:
        if profile not in self._sessions:
            self._sessions[profile] = make_session(profile)
        return self._sessions[profile]

    def _check(
        self,
        session: boto3.Session,
        profile: str | None,
        option: str,
        account: str,
        region: str,
    ) -> None:
        """Raise WrongAccountError unless the credentials are in the account."""
        sts = AwsClient(session, "sts", region, self.endpoint_url)
        identity = sts.call("GetCallerIdentity", f"account {account}")
        actual = str(identity.get("Account"))
        if actual != account:
            source = f"profile {profile}" if profile else "the default credentials"
            raise WrongAccountError(
                f"{source} is in account {actual}, not {account}; give the "
                f"profile of account {account} with {option}"
            )
        logger.debug("credentials for account %s confirmed", account)


def build_accounts(
    profile_a: Sequence[str] | None,
    profile_b: str | None,
    repository_accounts: Iterable[str],
    endpoint_url: str | None,
) -> Accounts:
    """Map each repository account to its profile from the options."""
    accounts = list(dict.fromkeys(repository_accounts))
    default_a: str | None = None
    specific: dict[str, str] = {}
    for value in profile_a or []:
        match = _PAIR_RE.match(value)
        if match is None:
            if default_a is not None:
                raise UsageError(
                    f"--profile-a {value}: a profile for every repository account "
                    f"is already given ({default_a}); use ACCOUNT=PROFILE for each"
                )
            default_a = value
            continue
        if match["account"] not in accounts:
            raise UsageError(
                f"--profile-a {value}: account {match['account']} owns none of "
                f"the configured repositories ({', '.join(accounts)})"
            )
        specific[match["account"]] = match["profile"]
    profiles = {account: specific.get(account, default_a) for account in accounts}
    return Accounts(profiles, profile_b, endpoint_url)
