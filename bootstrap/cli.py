"""The studio-bootstrap command line: parses options and maps errors to exit codes.

Exit codes: 0 success, 1 runtime or AWS failure, 2 invalid usage or config.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bootstrap import __version__
from bootstrap.config import DEFAULT_CONFIG, load_config
from bootstrap.errors import EXIT_USAGE, BootstrapError, ConfigError
from bootstrap.render import CONTENT_LIMIT, check_size, render_all, write_scripts

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT = "lifecycle"


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
        help=f"folder for the scripts (default: {DEFAULT_OUTPUT})",
    )
    render.set_defaults(handler=run_render)
    return parser


def run_render(args: argparse.Namespace) -> int:
    """Render, check every script against the size limit, then write them."""
    config = load_config(args.config)
    scripts = render_all(config)
    for script in scripts:
        check_size(script)
    write_scripts(scripts, Path(args.output))
    for script in scripts:
        print(
            f"{Path(args.output) / script.filename}: {len(script.content):,} bytes, "
            f"{len(script.encoded):,} of {CONTENT_LIMIT:,} base64 characters "
            f"(source {len(script.source.encode()):,} bytes)"
        )
    return 0


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
