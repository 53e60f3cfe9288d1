"""Config loading and validation: every rule names its field, rule and value."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bootstrap.cli import main
from bootstrap.config import load_config, parse_config
from bootstrap.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bootstrap.example.toml"


@pytest.fixture
def example_data() -> dict[str, Any]:
    import tomllib

    with EXAMPLE.open("rb") as handle:
        return tomllib.load(handle)


def issues_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test.toml")
    return [str(issue) for issue in caught.value.issues]


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    repository = config.repositories[0]
    assert config.domain.id == "d-xxxxxxxxxxxx"
    assert repository.role_arn == "arn:aws:iam::111111111111:role/CrossAccountRepoRole"
    assert (
        repository.codecommit_url == "codecommit::eu-west-1://repo-account@example-repo"
    )
    assert config.app_types == (
        "JupyterLab",
        "CodeEditor",
        "JupyterServer",
        "KernelGateway",
    )


def test_defaults_derive_from_name(example_data: dict[str, Any]) -> None:
    repository = example_data["repositories"][0]
    for key in ("profile", "path", "region", "transport", "https_fallback"):
        repository.pop(key)
    config = parse_config(example_data)
    assert config.repositories[0].profile == "codecommit-example-repo"
    assert config.repositories[0].path == "example-repo"
    assert config.repositories[0].region == "eu-west-1"
    assert config.repositories[0].transport == "codecommit"
    assert config.prefix == "studio-bootstrap"
    assert config.strict is False


BAD_VALUES = [
    ("domain.id", ("domain", "id"), "domain-1", "domain id"),
    ("domain.region", ("domain", "region"), "Europe", "region name"),
    ("account_id short", ("repositories", 0, "account_id"), "1234", "12 digits"),
    (
        "account_id letters",
        ("repositories", 0, "account_id"),
        "11111111111a",
        "12 digits",
    ),
    ("name chars", ("repositories", 0, "name"), "my repo", "1 to 100"),
    ("name too long", ("repositories", 0, "name"), "r" * 101, "1 to 100"),
    ("name .git", ("repositories", 0, "name"), "repo.git", "'.git'"),
    ("role name", ("repositories", 0, "role"), "bad role!", "IAM role name"),
    ("role arn", ("repositories", 0, "role"), "arn:aws:iam::1:role/x", "role ARN"),
    (
        "role other account",
        ("repositories", 0, "role"),
        "arn:aws:iam::333333333333:role/CrossAccountRepoRole",
        "account_id 111111111111",
    ),
    (
        "profile chars",
        ("repositories", 0, "profile"),
        "repo account",
        "letter or digit",
    ),
    ("profile default", ("repositories", 0, "profile"), "default", "'default'"),
    ("path absolute", ("repositories", 0, "path"), "/etc/repo", "relative"),
    ("path home", ("repositories", 0, "path"), "~/repo", "relative"),
    ("path parent", ("repositories", 0, "path"), "a/../../etc", "'..'"),
    ("path reserved", ("repositories", 0, "path"), ".aws/repo", "must not be inside"),
    ("path empty", ("repositories", 0, "path"), "", "empty"),
    ("branch", ("repositories", 0, "branch"), "a..b", "branch name"),
    ("branch dash", ("repositories", 0, "branch"), "-x", "branch name"),
    ("transport", ("repositories", 0, "transport"), "ssh", "codecommit, https"),
    ("prefix underscore", ("prefix",), "studio_bootstrap", "single hyphens"),
    ("prefix too long", ("prefix",), "p" * 41, "1 to 40"),
    ("control NUL", ("repositories", 0, "path"), "repo\x00x", "control characters"),
    ("control CR", ("repositories", 0, "name"), "repo\r", "control characters"),
    ("control newline", ("domain", "id"), "d-abc\nx", "control characters"),
    ("strict type", ("strict",), "yes", "true or false"),
]


@pytest.mark.parametrize(
    ("location", "value", "expected"),
    [case[1:] for case in BAD_VALUES],
    ids=[case[0] for case in BAD_VALUES],
)
def test_invalid_value_is_reported(
    example_data: dict[str, Any], location: tuple[Any, ...], value: str, expected: str
) -> None:
    target: Any = example_data
    for key in location[:-1]:
        target = target[key]
    target[location[-1]] = value
    issues = issues_of(example_data)
    assert any(expected in issue for issue in issues), issues
    assert any(repr(value) in issue for issue in issues), issues


def test_every_issue_is_reported(example_data: dict[str, Any]) -> None:
    example_data["domain"]["region"] = "nowhere"
    example_data["repositories"][0]["account_id"] = "12"
    example_data["repositories"][0]["name"] = "a b"
    example_data["typo"] = 1
    issues = issues_of(example_data)
    fields = [issue.split(":")[0] for issue in issues]
    assert "domain.region" in fields
    assert "repositories[0].account_id" in fields
    assert "repositories[0].name" in fields
    assert "typo" in fields


def test_duplicate_profile_and_path(example_data: dict[str, Any]) -> None:
    second = copy.deepcopy(example_data["repositories"][0])
    second["name"] = "other-repo"
    example_data["repositories"].append(second)
    issues = issues_of(example_data)
    assert any(issue.startswith("repositories[1].profile") for issue in issues)
    assert any(issue.startswith("repositories[1].path") for issue in issues)


def test_nested_clone_paths_rejected(example_data: dict[str, Any]) -> None:
    second = copy.deepcopy(example_data["repositories"][0])
    second.update(name="inner", profile="inner", path="example-repo/inner")
    example_data["repositories"].append(second)
    issues = issues_of(example_data)
    assert any("contain each other" in issue for issue in issues)


def test_unknown_app_type(example_data: dict[str, Any]) -> None:
    example_data["app_types"] = ["JupyterLab", "RStudioServerPro"]
    issues = issues_of(example_data)
    assert any(issue.startswith("app_types[1]") for issue in issues)


def test_config_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bootstrap.toml"
    text = EXAMPLE.read_text().replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_config(path).repositories[0].name == "example-repo"


def test_cli_exits_2_listing_each_issue(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "bad.toml"
    text = EXAMPLE.read_text().replace('"111111111111"', '"1111"')
    path.write_text(text.replace('"eu-west-1"', '"EU"', 1))
    output = tmp_path / "out"
    status = main(["--config", str(path), "render", "--output", str(output)])
    errors = capsys.readouterr().err.splitlines()
    assert status == 2
    assert len(errors) == 2
    assert any("domain.region" in line and "'EU'" in line for line in errors)
    assert any("repositories[0].account_id" in line for line in errors)
    assert not output.exists()


def test_cli_missing_config_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bootstrap",
            "--config",
            str(tmp_path / "x.toml"),
            "render",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "config file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_toml_exits_2(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[domain\nid = 1\n")
    assert main(["--config", str(path), "render"]) == 2
    assert "invalid TOML" in capsys.readouterr().err
