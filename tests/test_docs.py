"""The README documents every command and option of the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bootstrap.cli import build_parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    return dict(action.choices)


def options_of(parser: argparse.ArgumentParser) -> list[str]:
    return [
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_readme_names_command(command: str) -> None:
    assert f"| `{command}" in README


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_readme_names_each_option(command: str) -> None:
    for option in options_of(subcommands()[command]):
        assert f"`{option}" in README or f"{option}`" in README, option


def test_readme_names_global_options() -> None:
    for option in options_of(build_parser()):
        assert f"`{option}" in README, option


def test_readme_set_up_commands() -> None:
    assert "make demo" in README
    assert "make test" in README
