"""The studio-bootstrap command line: parses options and maps errors to exit codes.

Exit codes: 0 success, 1 runtime or AWS failure, 2 invalid usage or config.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bootstrap import __version__
from bootstrap.config import DEFAULT_CONFIG, load_rollout
from bootstrap.domains import lifecycle_folder, select
from bootstrap.errors import EXIT_USAGE, BootstrapError, ConfigError
from bootstrap.render import CONTENT_LIMIT, check_size, render_all, write_scripts

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT = "lifecycle"
DEFAULT_IAM_OUTPUT = "lifecycle/iam"


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every command and option."""
    parser = argparse.ArgumentParser(
        prog="studio-bootstrap",
        description=(
            "Render, register and check SageMaker Studio lifecycle configurations "
            "that clone CodeCommit repositories from another AWS account."
        ),
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"path of the TOML config (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log each decision to stderr"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser(
        "render", help="write one lifecycle script per app type into lifecycle/"
    )
    render.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        help=f"folder for the scripts (default: {DEFAULT_OUTPUT}); with several "
        "domains, one folder per domain inside it",
    )
    _domain_option(render)
    render.set_defaults(handler=run_render)

    register = commands.add_parser(
        "register", help="create the lifecycle configurations and attach them"
    )
    _aws_options(register)
    _register_options(register)
    register.add_argument(
        "--dry-run", action="store_true", help="show the plan and change nothing"
    )
    register.set_defaults(handler=run_register)

    plan = commands.add_parser("plan", help="show what register would change")
    _aws_options(plan)
    _register_options(plan)
    plan.set_defaults(handler=run_register, dry_run=True)

    unregister = commands.add_parser(
        "unregister",
        help="detach this tool's lifecycle configurations everywhere and delete them",
    )
    _aws_options(unregister)
    unregister.add_argument(
        "--dry-run", action="store_true", help="show the plan and change nothing"
    )
    unregister.set_defaults(handler=run_unregister)

    status = commands.add_parser(
        "status", help="show which version is attached where, and who overrides"
    )
    _aws_options(status)
    status.set_defaults(handler=run_status)

    iam = commands.add_parser(
        "iam",
        help="write the CloudFormation templates of both accounts into "
        "lifecycle/iam/; with --deploy, create or update their stacks",
    )
    iam.add_argument(
        "--output",
        default=DEFAULT_IAM_OUTPUT,
        metavar="DIR",
        help=f"folder for the templates (default: {DEFAULT_IAM_OUTPUT})",
    )
    iam.add_argument(
        "--deploy",
        action="store_true",
        help="create or update each stack through a change set, after showing it",
    )
    iam.add_argument(
        "--yes",
        action="store_true",
        help="execute each change set without asking",
    )
    _account_options(iam)
    iam.set_defaults(handler=run_iam)

    doctor = commands.add_parser(
        "doctor",
        help="check roles, trust, grants and attached scripts in both accounts",
    )
    _account_options(doctor)
    _jobs_option(doctor)
    doctor.add_argument(
        "--output",
        choices=("table", "json"),
        default="table",
        help="format of the report (default: table)",
    )
    doctor.set_defaults(handler=run_doctor)

    stackset = commands.add_parser(
        "stackset",
        help="write the domain account's side as one CloudFormation StackSet "
        "template into lifecycle/stackset/",
    )
    stackset.add_argument(
        "--output",
        default="lifecycle/stackset",
        metavar="DIR",
        help="folder for the template (default: lifecycle/stackset)",
    )
    _domain_option(stackset)
    stackset.set_defaults(handler=run_stackset)
    return parser


def _domain_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--domain",
        action="append",
        metavar="NAME",
        help="act on this domain of the config only (its name or id); repeat "
        "for several (default: every domain)",
    )


def _jobs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=_positive,
        default=1,
        metavar="N",
        help="with several domains, act on N of them at the same time (default: 1)",
    )


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= 64:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 64, not {text!r}")
    return number


def _account_options(parser: argparse.ArgumentParser) -> None:
    _domain_option(parser)
    parser.add_argument(
        "--profile-a",
        action="append",
        metavar="[ACCOUNT=]PROFILE",
        help="AWS profile of the repository accounts; repeat ACCOUNT=PROFILE "
        "when the repositories are in several accounts",
    )
    parser.add_argument(
        "--profile-b", metavar="PROFILE", help="AWS profile of the domain's account"
    )
    parser.add_argument(
        "--endpoint-url", help="send every AWS call to this URL instead of AWS"
    )


def _aws_options(parser: argparse.ArgumentParser) -> None:
    _domain_option(parser)
    _jobs_option(parser)
    parser.add_argument(
        "--profile",
        help="AWS profile for the SageMaker calls (default: the domain's profile "
        "in the config, else the default chain); applies to every domain",
    )
    parser.add_argument(
        "--region",
        help="AWS region (default: the domain's region); applies to every domain",
    )
    parser.add_argument(
        "--endpoint-url", help="send SageMaker calls to this URL instead of AWS"
    )
    parser.add_argument(
        "--wait-timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="how long to wait for the domain to be InService after an update "
        "(default: 900)",
    )
    parser.add_argument(
        "--output",
        choices=("table", "json"),
        default="table",
        help="format of the plan or status (default: table)",
    )


def _register_options(parser: argparse.ArgumentParser) -> None:
    slot = parser.add_mutually_exclusive_group()
    slot.add_argument(
        "--compose",
        action="store_true",
        help="when another LCC is the default, run its script and ours from one LCC",
    )
    slot.add_argument(
        "--replace-default",
        action="store_true",
        help="when another LCC is the default, make ours the default instead",
    )
    parser.add_argument(
        "--user-profiles",
        nargs="+",
        default=["all"],
        metavar="NAME",
        help="user profiles that override the domain to update: all (default), "
        "none, or names",
    )


def run_render(args: argparse.Namespace) -> int:
    """Render, check every script against the size limit, then write them.

    Every selected domain is rendered and checked before any file is written.
    """
    rollout = load_rollout(args.config)
    configs = select(rollout, args.domain)
    rendered = [(config, render_all(config)) for config in configs]
    for _, scripts in rendered:
        for script in scripts:
            check_size(script)
    for config, scripts in rendered:
        folder = lifecycle_folder(config, rollout, Path(args.output))
        write_scripts(scripts, folder)
        for script in scripts:
            print(
                f"{folder / script.filename}: {len(script.content):,} bytes, "
                f"{len(script.encoded):,} of {CONTENT_LIMIT:,} base64 characters "
                f"(source {len(script.source.encode()):,} bytes)"
            )
    return 0


def run_register(args: argparse.Namespace) -> int:
    """Plan the changes; unless this is a dry run, apply and verify them."""
    from bootstrap import commands

    return commands.register(args)


def run_unregister(args: argparse.Namespace) -> int:
    """Detach and delete every version of ours, restoring what was there."""
    from bootstrap import commands

    return commands.unregister(args)


def run_iam(args: argparse.Namespace) -> int:
    """Render the IAM templates and, when asked, deploy them."""
    from bootstrap import iam_commands

    return iam_commands.run_iam(args)


def run_doctor(args: argparse.Namespace) -> int:
    """Check the chain from the execution role to the repository."""
    from bootstrap import iam_commands

    return iam_commands.run_doctor(args)


def run_stackset(args: argparse.Namespace) -> int:
    """Render the StackSet template of the domain account's side."""
    from bootstrap import stackset

    return stackset.run_stackset(args)


def run_status(args: argparse.Namespace) -> int:
    """Show where each version is attached and whether it is current."""
    from bootstrap import commands

    return commands.status(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"error: {exc.source}: {issue}", file=sys.stderr)
        return EXIT_USAGE
    except BootstrapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def run() -> int:
    """Run as a program: the console script and ``python -m bootstrap``."""
    # A reader that stops early, as in "render | head", ends the output quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return main()
