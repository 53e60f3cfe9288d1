"""The AWS commands of the CLI: register, plan, unregister and status."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from bootstrap import register as reg
from bootstrap import studio
from bootstrap.aws import AwsOptions, SageMaker
from bootstrap.config import Config, load_config
from bootstrap.errors import BootstrapError
from bootstrap.render import (
    RenderedScript,
    check_size,
    compose,
    render_all,
    write_scripts,
)


def _prepare(
    args: argparse.Namespace,
) -> tuple[Config, list[RenderedScript], SageMaker]:
    """Validate and render before any AWS call, then build the client."""
    config = load_config(args.config)
    scripts = render_all(config)
    for script in scripts:
        check_size(script)
    return config, scripts, _sagemaker(args, config)


def _sagemaker(args: argparse.Namespace, config: Config) -> SageMaker:
    options = AwsOptions(
        args.profile, args.region, args.endpoint_url, args.wait_timeout
    )
    return SageMaker(options, config.domain.region)


def _options(args: argparse.Namespace) -> reg.Options:
    choice: str | list[str] = list(args.user_profiles)
    if choice in (["all"], ["none"]):
        choice = choice[0]
    return reg.Options(args.compose, args.replace_default, choice)


def register(args: argparse.Namespace) -> int:
    """Plan the changes, then (unless a dry run) apply and verify them."""
    config, scripts, sagemaker = _prepare(args)
    if not args.dry_run:
        write_scripts(scripts, Path("lifecycle"))
    state = reg.discover(sagemaker, config.domain.id, config.prefix)

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
    _print_plan(plan, args.output)
    if args.dry_run:
        return 0
    if not any(change.run for change in plan.changes):
        _say(args, f"domain {config.domain.id}: up to date, nothing to change")
        return 0

    outcome = reg.apply(sagemaker, plan, lambda line: _say(args, line))
    for line in plan.notes + outcome.kept:
        _say(args, f"note: {line}")
    if any(c.action in ("update",) for c in outcome.done):
        problems = reg.verify(sagemaker, state, plan)
        if problems:
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            return 1
    _say(args, f"domain {config.domain.id}: registered")
    return 0


def unregister(args: argparse.Namespace) -> int:
    """Detach every version of ours, restore displaced defaults, and delete."""
    config = load_config(args.config)
    sagemaker = _sagemaker(args, config)
    state = reg.discover(sagemaker, config.domain.id, config.prefix)
    plan = reg.plan_unregister(state, config.app_types)
    _print_plan(plan, args.output)
    if args.dry_run:
        return 0
    outcome = reg.apply(sagemaker, plan, lambda line: _say(args, line))
    for line in plan.notes + outcome.kept:
        _say(args, f"not deleted yet: {line}")
    _say(args, f"domain {config.domain.id}: unregistered")
    return 0


def status(args: argparse.Namespace) -> int:
    """Print where each version is attached, who overrides, and what is current."""
    config, scripts, sagemaker = _prepare(args)
    state = reg.discover(sagemaker, config.domain.id, config.prefix)
    report = status_report(state, scripts)
    if args.output == "json":
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    for app_type, entry in report["app_types"].items():
        current = "registered" if entry["current_registered"] else "NOT registered"
        print(f"{app_type}: rendered {entry['rendered']} ({current})")
        for where, name in entry["attached"].items():
            print(f"  {where}: {name}")
        for user in entry["overriding_users"]:
            print(f"  user {user} overrides the domain")
    for name in report["registered"]:
        print(f"registered: {name}")
    return 0


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


def _print_plan(plan: reg.Plan, output: str) -> None:
    if output == "json":
        print(json.dumps(plan.as_dict(), indent=2))
        return
    rows = [("ACTION", "WHERE", "APP TYPE", "DETAIL")]
    rows += [(c.action, c.target, c.app_type, c.detail) for c in plan.changes]
    if len(rows) == 1:
        print("no changes")
    else:
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(3)]
            print("  ".join([*cells, row[3]]).rstrip())
    for note in plan.notes:
        print(f"note: {note}")


def _say(args: argparse.Namespace, line: str) -> None:
    """Print progress to stdout, or to stderr when stdout carries JSON."""
    stream = sys.stderr if args.output == "json" else sys.stdout
    print(line, file=stream)


__all__ = ["BootstrapError", "register", "status", "unregister"]
