"""The AWS commands of the CLI: register, plan, unregister and status."""

from __future__ import annotations

import argparse
import base64
from pathlib import Path
from typing import Any

from bootstrap import helper_upload, studio
from bootstrap import register as reg
from bootstrap.aws import AwsOptions, SageMaker
from bootstrap.config import Config, Rollout, load_rollout
from bootstrap.domains import Outcome, Output, lifecycle_folder, run_each, write_error
from bootstrap.errors import BootstrapError
from bootstrap.network import VpcWarning, vpc_warnings
from bootstrap.render import (
    RenderedScript,
    check_size,
    compose,
    render_all,
    write_scripts,
)


def _prepare(
    args: argparse.Namespace, config: Config
) -> tuple[list[RenderedScript], SageMaker]:
    """Render and check before any AWS call, then build the client."""
    scripts = render_all(config)
    for script in scripts:
        check_size(script)
    return scripts, _sagemaker(args, config)


def _aws_options(args: argparse.Namespace, config: Config) -> AwsOptions:
    """Build the options of the domain's calls; --profile beats the domain's own."""
    return AwsOptions(
        args.profile or config.domain.profile,
        args.region,
        args.endpoint_url,
        args.wait_timeout,
    )


def _sagemaker(args: argparse.Namespace, config: Config) -> SageMaker:
    return SageMaker(_aws_options(args, config), config.domain.region)


def _options(args: argparse.Namespace) -> reg.Options:
    choice: str | list[str] = list(args.user_profiles)
    if choice in (["all"], ["none"]):
        choice = choice[0]
    return reg.Options(args.compose, args.replace_default, choice)


def register(args: argparse.Namespace) -> int:
    """Plan the changes, then (unless a dry run) apply and verify them."""
    rollout = load_rollout(args.config)
    verb = "planning" if args.dry_run else "registering"

    def action(config: Config, out: Output) -> Outcome:
        return register_domain(args, config, rollout, out)

    return run_each(
        rollout, args.domain, verb, args.output == "json", action, args.jobs
    )


def register_domain(
    args: argparse.Namespace, config: Config, rollout: Rollout, out: Output
) -> Outcome:
    """Register on one domain and describe what happened."""
    scripts, sagemaker = _prepare(args, config)
    if not args.dry_run:
        write_scripts(scripts, lifecycle_folder(config, rollout, Path("lifecycle")))
    state = reg.discover(sagemaker, config.domain.id, config.prefix)
    warnings = vpc_warnings(config, state.domain, state.users)
    _print_warnings(warnings, out)
    s3 = helper_upload.s3_client(_aws_options(args, config), config)
    wheel = helper_upload.plan_upload(s3, config) if s3 else None

    def compose_with(app_type: str, other_arn: str) -> RenderedScript:
        name = other_arn.rsplit("/", 1)[-1]
        other = sagemaker.call(
            "DescribeStudioLifecycleConfig",
            f"lifecycle configuration {name}",
            StudioLifecycleConfigName=name,
        )
        content = base64.b64decode(other["StudioLifecycleConfigContent"])
        ours = next(s for s in scripts if s.app_type == app_type)
        return compose(ours, other_arn, content, config.strict)

    plan = reg.plan_register(
        state, reg.script_map(scripts), _options(args), compose_with
    )
    _print_plan(plan, out, warnings, wheel)
    pending = sum(1 for change in plan.changes if change.run)
    pending += 1 if wheel and wheel.mutating else 0
    if args.dry_run:
        result = f"{_count(pending, 'call')} planned" if pending else "up to date"
        return Outcome(result, _warned(warnings))
    if not pending:
        out.say(f"domain {config.domain.id}: up to date, nothing to change")
        return Outcome("up to date", _warned(warnings))

    # The wheel goes first: a script that fetches it may start at once.
    if s3 and wheel and wheel.mutating:
        out.say(wheel.apply(s3))
    outcome = reg.apply(sagemaker, plan, out.say)
    for line in plan.notes + outcome.kept:
        out.say(f"note: {line}")
    if any(c.action in ("update",) for c in outcome.done):
        problems = reg.verify(sagemaker, state, plan)
        if problems:
            write_error([f"error: {problem}" for problem in problems])
            return Outcome("failed", problems[0], failed=True)
    out.say(f"domain {config.domain.id}: registered")
    done = len(outcome.done) + (1 if wheel and wheel.mutating else 0)
    return Outcome("registered", _count(done, "call"))


def unregister(args: argparse.Namespace) -> int:
    """Detach every version of ours, restore displaced defaults, and delete."""
    rollout = load_rollout(args.config)
    verb = "planning" if args.dry_run else "unregistering"

    def action(config: Config, out: Output) -> Outcome:
        others = [c for c in rollout.configs if c is not config]
        return unregister_domain(args, config, out, others)

    return run_each(
        rollout, args.domain, verb, args.output == "json", action, args.jobs
    )


def unregister_domain(
    args: argparse.Namespace,
    config: Config,
    out: Output,
    others: list[Config] | None = None,
) -> Outcome:
    """Unregister from one domain and describe what happened.

    The helper wheel in S3 stays while ``others`` (the config's other
    domains) still use it.
    """
    sagemaker = _sagemaker(args, config)
    state = reg.discover(sagemaker, config.domain.id, config.prefix)
    plan = reg.plan_unregister(state, config.app_types)
    s3 = helper_upload.s3_client(_aws_options(args, config), config)
    wheel = helper_upload.plan_removal(s3, config, others or []) if s3 else None
    _print_plan(plan, out, wheel=wheel)
    pending = sum(1 for change in plan.changes if change.run)
    pending += 1 if wheel and wheel.mutating else 0
    if args.dry_run:
        result = (
            f"{_count(pending, 'call')} planned" if pending else "nothing to remove"
        )
        return Outcome(result)
    outcome = reg.apply(sagemaker, plan, out.say)
    # The wheel goes last, once no script of ours is attached.
    if s3 and wheel and wheel.mutating:
        out.say(wheel.apply(s3))
    for line in plan.notes + outcome.kept:
        out.say(f"not deleted yet: {line}")
    out.say(f"domain {config.domain.id}: unregistered")
    kept = f", {len(outcome.kept)} kept" if outcome.kept else ""
    done = len(outcome.done) + (1 if wheel and wheel.mutating else 0)
    return Outcome("unregistered", _count(done, "call") + kept)


def status(args: argparse.Namespace) -> int:
    """Print where each version is attached, who overrides, and what is current."""
    rollout = load_rollout(args.config)

    def action(config: Config, out: Output) -> Outcome:
        return status_domain(args, config, out)

    return run_each(
        rollout, args.domain, "reading", args.output == "json", action, args.jobs
    )


def status_domain(args: argparse.Namespace, config: Config, out: Output) -> Outcome:
    """Show one domain's status."""
    scripts, sagemaker = _prepare(args, config)
    state = reg.discover(sagemaker, config.domain.id, config.prefix)
    report = status_report(state, scripts)
    warnings = vpc_warnings(config, state.domain, state.users)
    if warnings:
        report["warnings"] = [w.as_dict() for w in warnings]
    missing = [
        app_type
        for app_type, entry in report["app_types"].items()
        if not entry["current_registered"]
    ]
    result = "current" if not missing else "not registered"
    detail = ", ".join(missing)
    if args.output == "json":
        out.data(report)
        return Outcome(result, detail)
    _print_warnings(warnings, out)
    for app_type, entry in report["app_types"].items():
        current = "registered" if entry["current_registered"] else "NOT registered"
        out.say(f"{app_type}: rendered {entry['rendered']} ({current})")
        for where, name in entry["attached"].items():
            out.say(f"  {where}: {name}")
        for user in entry["overriding_users"]:
            out.say(f"  user {user} overrides the domain")
    for name in report["registered"]:
        out.say(f"registered: {name}")
    return Outcome(result, detail)


def status_report(state: reg.State, scripts: list[RenderedScript]) -> dict[str, Any]:
    """Describe, as data, which of our versions is attached at each location."""
    app_types: dict[str, Any] = {}
    for script in scripts:
        key = studio.SETTINGS_KEYS[script.app_type]
        attached: dict[str, str] = {}
        places = [reg.Location("domain"), reg.Location("domain-space")]
        places += [reg.Location("user", name) for name in sorted(state.users)]
        places += [reg.Location("space", name) for name in sorted(state.spaces)]
        for location in places:
            settings = state.settings(location).get(key)
            for slot, arn in (
                ("built-in", studio.built_in_of(settings)),
                ("default", studio.default_of(settings)),
            ):
                if arn and state.is_ours(arn):
                    attached[f"{location.label} {slot}"] = arn.rsplit("/", 1)[-1]
        overriding = [
            name
            for name, settings in sorted(state.users.items())
            if settings.get(key)
            and not studio.runs(
                script.app_type,
                state.arn(script.lcc_name),
                settings.get(key),
                state.settings(reg.Location("domain")).get(key),
            )
        ]
        app_types[script.app_type] = {
            "rendered": script.lcc_name,
            "current_registered": script.lcc_name in state.ours,
            "attached": attached,
            "overriding_users": overriding,
        }
    return {"app_types": app_types, "registered": sorted(state.ours)}


def _print_plan(
    plan: reg.Plan,
    out: Output,
    warnings: list[VpcWarning] | None = None,
    wheel: helper_upload.ObjectPlan | None = None,
) -> None:
    if out.json_mode:
        data = plan.as_dict()
        if warnings:
            data["warnings"] = [w.as_dict() for w in warnings]
        if wheel:
            data["helper_wheel"] = wheel.as_dict()
        out.data(data)
        return
    rows = [("ACTION", "WHERE", "APP TYPE", "DETAIL")]
    if wheel and wheel.mutating:
        rows.append((wheel.action, wheel.target, "-", wheel.detail))
    rows += [(c.action, c.target, c.app_type, c.detail) for c in plan.changes]
    if len(rows) == 1:
        out.say("no changes")
    else:
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(3)]
            out.say("  ".join([*cells, row[3]]).rstrip())
    for note in plan.notes:
        out.say(f"note: {note}")


def _print_warnings(warnings: list[VpcWarning], out: Output) -> None:
    lines = []
    for warning in warnings:
        lines += [f"warning: {warning.subject}: {warning.message}"]
        lines += [f"  fix: {warning.fix}"]
    if lines:
        write_error(lines)


def _warned(warnings: list[VpcWarning]) -> str:
    return _count(len(warnings), "warning") if warnings else ""


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


__all__ = ["BootstrapError", "register", "status", "unregister"]
