"""The IAM commands of the CLI: iam (render, and deploy with --deploy) and doctor."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bootstrap import iam
from bootstrap import register as reg
from bootstrap.accounts import Accounts, build_accounts
from bootstrap.aws import AwsOptions, SageMaker
from bootstrap.config import Config, Rollout, load_rollout
from bootstrap.deploy import Deployer
from bootstrap.doctor import FAIL, WARN, Check, Doctor, summary
from bootstrap.domains import Outcome, Output, run_each, select
from bootstrap.network import vpc_warnings
from bootstrap.render import render_all


def _accounts(args: argparse.Namespace, config: Config) -> Accounts:
    return build_accounts(
        args.profile_a,
        args.profile_b or config.domain.profile,
        [repository.account_id for repository in config.repositories],
        args.endpoint_url,
    )


def _discover(args: argparse.Namespace, config: Config) -> reg.State:
    """Read the domain, its user profiles, spaces and our LCCs in account B."""
    profile = args.profile_b or config.domain.profile
    options = AwsOptions(profile, None, args.endpoint_url)
    sagemaker = SageMaker(options, config.domain.region)
    return reg.discover(sagemaker, config.domain.id, config.prefix)


def run_iam(args: argparse.Namespace) -> int:
    """Render the templates, and with --deploy create or update their stacks."""
    rollout = load_rollout(args.config)
    if rollout.several:
        return _run_iam_domains(args, rollout)
    config = rollout.configs[0]
    select(rollout, args.domain)  # rejects a name that is not this domain's
    accounts = _accounts(args, config)
    templates = iam.render_templates(config, _chain(args, config))
    paths = iam.write_templates(templates, Path(args.output))
    _show(paths, templates)
    return _deploy(args, accounts, templates)


def _run_iam_domains(args: argparse.Namespace, rollout: Rollout) -> int:
    """Render shared repository roles for every domain, and each domain's own.

    The repository roles are built from every domain of the config, so a role
    that several domains share trusts the execution roles of each. --domain
    picks the domains whose account-B templates are written and deployed.
    """
    chains = [(config, _chain(args, config)) for config in rollout.configs]
    shared, own = iam.render_domains_templates(chains)
    paths = iam.write_templates(shared, Path(args.output))
    _show(paths, shared)
    templates = list(shared)
    for config in select(rollout, args.domain):
        label = config.domain.label
        paths = iam.write_templates(own[label], Path(args.output) / label)
        _show(paths, own[label])
        templates += own[label]
    accounts = build_accounts(
        args.profile_a,
        args.profile_b,
        [r.account_id for c in rollout.configs for r in c.repositories],
        args.endpoint_url,
    )
    for config, chain in chains:
        if config.domain.profile and not args.profile_b:
            accounts.domain_profiles[chain.account] = config.domain.profile
    return _deploy(args, accounts, templates)


def _chain(args: argparse.Namespace, config: Config) -> iam.Chain:
    """Return the domain's execution roles, from the config or read from the domain."""
    chain = iam.configured_chain(config)
    if chain is None:
        state = _discover(args, config)
        chain = iam.discovered_chain(config, state)
        roles = ", ".join(chain.execution_roles)
        _say(f"execution roles of domain {config.domain.id}: {roles}")
    return chain


def _show(paths: list[Path], templates: list[iam.Template]) -> None:
    for path, template in zip(paths, templates, strict=True):
        print(
            f"{path}: stack {template.stack_name} in account {template.account} "
            f"({template.region}), {_count(len(template.resources), 'resource')}"
        )


def _deploy(
    args: argparse.Namespace, accounts: Accounts, templates: list[iam.Template]
) -> int:
    if not args.deploy:
        return 0
    confirm = _always_yes if args.yes else _ask
    outcome = Deployer(accounts, confirm, print).deploy_all(templates)
    for problem in outcome.problems:
        print(f"error: {problem}", file=sys.stderr)
    for template in outcome.declined:
        print(f"error: stack {template.stack_name} was not deployed", file=sys.stderr)
    return 1 if outcome.problems or outcome.declined else 0


def run_doctor(args: argparse.Namespace) -> int:
    """Check every link of the chain, and return 1 when any check fails."""
    rollout = load_rollout(args.config)

    def action(config: Config, out: Output) -> Outcome:
        return doctor_domain(args, config, out)

    return run_each(
        rollout, args.domain, "checking", args.output == "json", action, args.jobs
    )


def doctor_domain(args: argparse.Namespace, config: Config, out: Output) -> Outcome:
    """Check one domain and the roles of its repositories."""
    scripts = render_all(config)
    accounts = _accounts(args, config)
    state = _discover(args, config)
    checks = Doctor(config, accounts, state, scripts).run()
    checks += [
        Check(WARN, warning.subject, warning.message, warning.fix)
        for warning in vpc_warnings(config, state.domain, state.users)
    ]
    failed = [check for check in checks if check.status == FAIL]
    outcome = Outcome(
        "failed" if failed else "ok",
        summary(checks),
        failed=bool(failed),
    )
    if out.json_mode:
        out.data([check.as_dict() for check in checks])
        return outcome
    for check in checks:
        out.say(f"{check.status.upper():<5} {check.subject}: {check.message}")
        if check.fix:
            out.say(f"      fix: {check.fix}")
    out.say(summary(checks))
    return outcome


def _always_yes(question: str) -> bool:
    print(f"{question} yes (--yes)", file=sys.stderr)
    return True


def _ask(question: str) -> bool:
    """Ask on stderr and read one line of stdin, where only y or yes agrees."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _say(line: str) -> None:
    print(line, file=sys.stderr)
