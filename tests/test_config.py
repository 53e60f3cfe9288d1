"""Config loading and validation: every rule names its field, rule and value."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bootstrap.cli import main
from bootstrap.config import load_config, parse_config, parse_rollout
from bootstrap.errors import ConfigError
from bootstrap.sandbox.helper_wheel import minimal_wheel

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


# --- several domains, network and helper ------------------------------------


def rollout_issues(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_rollout(data, "test.toml")
    return [str(issue) for issue in caught.value.issues]


def domains_data(
    example_data: dict[str, Any], *tables: dict[str, Any]
) -> dict[str, Any]:
    """The example with [[domains]] tables in place of its [domain]."""
    data = copy.deepcopy(example_data)
    del data["domain"]
    data["domains"] = [dict(table) for table in tables]
    return data


FIRST = {"name": "research", "id": "d-aaaaaaaaaaaa", "region": "eu-west-1"}
SECOND = {"name": "risk", "id": "d-bbbbbbbbbbbb", "region": "us-east-1"}


def test_domains_take_shared_or_own_repositories(example_data: dict[str, Any]) -> None:
    own = {
        **SECOND,
        "repositories": [
            {"name": "risk-models", "account_id": "111111111111", "role": "R"}
        ],
    }
    rollout = parse_rollout(domains_data(example_data, FIRST, own))
    research, risk = rollout.configs
    assert [r.name for r in research.repositories] == ["example-repo"]
    assert [r.name for r in risk.repositories] == ["risk-models"]
    # A repository without a region takes its own domain's.
    assert risk.repositories[0].region == "us-east-1"
    assert rollout.several
    assert [c.domain.label for c in rollout.select(["risk"])] == ["risk"]
    assert [c.domain.label for c in rollout.select(["d-aaaaaaaaaaaa"])] == ["research"]


def test_load_config_rejects_several_domains(example_data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(domains_data(example_data, FIRST, SECOND), "test.toml")
    assert "domains: names several domains; choose one with --domain" in str(
        caught.value.issues[0]
    )


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (
            {**SECOND, "name": "RESEARCH"},
            "domains[1].name: same name as domains[0], ignoring case",
        ),
        (
            {**SECOND, "name": "d-aaaaaaaaaaaa"},
            "domains[1].name: is the id of domains[0]; choose another name",
        ),
        (
            {**SECOND, "name": "iam"},
            "domains[1].name: must not be iam or stackset",
        ),
        (
            {**SECOND, "id": "d-aaaaaaaaaaaa", "region": "eu-west-1"},
            "domains[1].id: same domain as domains[0]",
        ),
        (
            {**SECOND, "name": "../x"},
            "domains[1].name: must be 1 to 63 letters",
        ),
    ],
)
def test_domain_names_must_be_unambiguous(
    example_data: dict[str, Any], second: dict[str, Any], expected: str
) -> None:
    issues = rollout_issues(domains_data(example_data, FIRST, second))
    assert any(issue.startswith(expected) for issue in issues), issues


def test_broken_domain_is_reported_once(example_data: dict[str, Any]) -> None:
    broken = {**FIRST, "id": "d-XYZ", "region": "nowhere"}
    issues = rollout_issues(domains_data(example_data, broken))
    assert [issue.split(":")[0] for issue in issues] == [
        "domains[0].id",
        "domains[0].region",
    ]


def test_domain_and_domains_are_exclusive(example_data: dict[str, Any]) -> None:
    data = domains_data(example_data, FIRST)
    data["domain"] = example_data["domain"]
    issues = rollout_issues(data)
    assert issues[0].startswith("domain: use either one [domain] or [[domains]]")


def test_rewrite_public_git_urls_is_boolean(example_data: dict[str, Any]) -> None:
    data = copy.deepcopy(example_data)
    assert not parse_config(data).network.rewrite_public_git_urls
    data["network"] = {"rewrite_public_git_urls": True}
    assert parse_config(data).network.rewrite_public_git_urls
    data["network"] = {"rewrite_public_git_urls": "yes"}
    issues = rollout_issues(data)
    assert any(
        i.startswith("network.rewrite_public_git_urls: must be true or false")
        for i in issues
    )


def test_network_fields_are_checked(example_data: dict[str, Any]) -> None:
    data = copy.deepcopy(example_data)
    data["network"] = {
        "git_endpoints": {"eu-west-1": "https://host/path", "nowhere": "h"},
        "sts_endpoint_url": "http://sts.eu-west-1.amazonaws.com",
        "s3_endpoint_url": "https://user@s3.example.com",
    }
    issues = rollout_issues(data)
    assert any(
        i.startswith("network.git_endpoints.eu-west-1: must be a host") for i in issues
    )
    assert any(
        i.startswith("network.git_endpoints.nowhere (key): must be a region")
        for i in issues
    )
    assert any(
        i.startswith("network.sts_endpoint_url: must use https://") for i in issues
    )
    assert any(
        i.startswith("network.s3_endpoint_url: must not contain credentials")
        for i in issues
    )


def test_loopback_endpoints_may_use_http(example_data: dict[str, Any]) -> None:
    data = copy.deepcopy(example_data)
    data["network"] = {
        "git_endpoints": {"eu-west-1": "127.0.0.1:8443"},
        "sts_endpoint_url": "http://127.0.0.1:5000",
    }
    config = parse_config(data)
    assert config.network.git_endpoint("eu-west-1") == "127.0.0.1:8443"
    assert config.network.git_endpoint("us-east-1") is None
    assert config.network.sts_endpoint_url == "http://127.0.0.1:5000"


def test_helper_sources_need_their_fields(example_data: dict[str, Any]) -> None:
    data = copy.deepcopy(example_data)
    data["helper"] = {"sources": ["s3", "index", "wheelhouse", "s3"]}
    issues = rollout_issues(data)
    assert "helper.sources[3]: listed twice (got 's3')" in issues
    data["helper"] = {"sources": ["s3", "index", "wheelhouse"]}
    issues = rollout_issues(data)
    for field in ("bucket", "wheel", "index_url", "wheelhouse"):
        assert any(
            i.startswith(f"helper.{field}: required when sources") for i in issues
        ), field


def test_helper_wheel_must_exist_beside_the_config(
    example_data: dict[str, Any], tmp_path: Path
) -> None:
    data = copy.deepcopy(example_data)
    data["helper"] = {
        "sources": ["s3"],
        "bucket": "wheels",
        "wheel": "w/git_remote_codecommit-1.17-py3-none-any.whl",
    }
    with pytest.raises(ConfigError) as caught:
        parse_rollout(data, "test.toml", tmp_path)
    assert "file not found" in str(caught.value.issues[0])
    wheel = minimal_wheel(tmp_path / "w")
    config = parse_rollout(data, "test.toml", tmp_path).configs[0]
    assert config.helper.wheel == str(wheel)
    assert (
        config.helper.key
        == "studio-bootstrap/git_remote_codecommit-1.17-py3-none-any.whl"
    )
    assert config.helper.bucket_region == "eu-west-1"


def test_domain_helper_overrides_the_shared_one(example_data: dict[str, Any]) -> None:
    data = domains_data(
        example_data,
        FIRST,
        {
            **SECOND,
            "helper": {
                "sources": ["index"],
                "index_url": "https://pypi.internal/simple",
            },
        },
    )
    data["helper"] = {"sources": ["wheelhouse"], "wheelhouse": "/opt/wheels"}
    research, risk = parse_rollout(data).configs
    assert research.helper.sources == ("wheelhouse",)
    assert risk.helper.sources == ("index",)
    assert risk.helper.wheelhouse == "/opt/wheels"


CODEARTIFACT_URL = (
    "https://ml-tools-111122223333.d.codeartifact.eu-central-1.amazonaws.com"
    "/pypi/python-mirror/simple/"
)
CODEARTIFACT_VPCE_URL = (
    "https://vpce-0123456789abcdef0-abcdefgh.d.codeartifact.eu-west-1"
    ".vpce.amazonaws.com/pypi/d/ml-tools-111122223333/python-mirror/simple/"
)


def test_codeartifact_from_public_host(example_data: dict[str, Any]) -> None:
    data = copy.deepcopy(example_data)
    data["helper"] = {"sources": ["index"], "index_url": CODEARTIFACT_URL}
    helper = parse_config(data).helper
    assert helper.codeartifact
    assert helper.codeartifact_domain == "ml-tools"
    assert helper.codeartifact_owner == "111122223333"
    assert helper.codeartifact_region == "eu-central-1"
    assert helper.codeartifact_repository == "python-mirror"


def test_codeartifact_from_vpc_endpoint_path(example_data: dict[str, Any]) -> None:
    data = copy.deepcopy(example_data)
    data["helper"] = {"sources": ["index"], "index_url": CODEARTIFACT_VPCE_URL}
    helper = parse_config(data).helper
    assert helper.codeartifact_domain == "ml-tools"
    assert helper.codeartifact_owner == "111122223333"
    assert helper.codeartifact_region == "eu-west-1"
    assert helper.codeartifact_repository == "python-mirror"


def test_codeartifact_fields_replace_host(example_data: dict[str, Any]) -> None:
    data = copy.deepcopy(example_data)
    data["helper"] = {
        "sources": ["index"],
        "index_url": "http://127.0.0.1:8080/pypi/tools/simple/",
        "codeartifact_domain": "local-tools",
        "codeartifact_owner": "222222222222",
    }
    data["network"] = {"codeartifact_endpoint_url": "http://127.0.0.1:8081"}
    config = parse_config(data)
    assert config.helper.codeartifact
    assert config.helper.codeartifact_region == "eu-west-1"
    assert config.helper.codeartifact_repository == "tools"
    assert config.network.codeartifact_endpoint_url == "http://127.0.0.1:8081"


def test_plain_index_is_not_codeartifact(example_data: dict[str, Any]) -> None:
    data = copy.deepcopy(example_data)
    data["helper"] = {
        "sources": ["index"],
        "index_url": "https://pypi.internal/simple/",
    }
    assert not parse_config(data).helper.codeartifact


def test_codeartifact_fields_are_checked(example_data: dict[str, Any]) -> None:
    data = copy.deepcopy(example_data)
    data["helper"] = {
        "sources": ["index"],
        "index_url": "https://pypi.internal/simple/",
        "codeartifact_domain": "Bad_Domain",
        "codeartifact_owner": "12345",
        "codeartifact_region": "europe",
    }
    data["network"] = {"codeartifact_endpoint_url": "http://codeartifact.example.com"}
    issues = rollout_issues(data)
    assert any(
        i.startswith("helper.codeartifact_domain: must be a CodeArtifact domain name")
        for i in issues
    ), issues
    assert any(
        i.startswith("helper.codeartifact_owner: must be an AWS account id")
        for i in issues
    ), issues
    assert any(
        i.startswith("helper.codeartifact_region: must be a region") for i in issues
    ), issues
    assert any(
        i.startswith("network.codeartifact_endpoint_url: must use https://")
        for i in issues
    ), issues


def test_codeartifact_domain_needs_owner(example_data: dict[str, Any]) -> None:
    data = copy.deepcopy(example_data)
    data["helper"] = {
        "sources": ["index"],
        "index_url": "https://pypi.internal/simple/",
        "codeartifact_domain": "ml-tools",
    }
    issues = rollout_issues(data)
    assert any(
        i.startswith("helper.codeartifact_owner: required with codeartifact_domain")
        for i in issues
    ), issues
    data["helper"] = {
        "sources": ["index"],
        "index_url": "https://pypi.internal/simple/",
        "codeartifact_owner": "111122223333",
    }
    issues = rollout_issues(data)
    assert any(
        i.startswith("helper.codeartifact_domain: required with codeartifact_owner")
        for i in issues
    ), issues


def s3_helper_data(example_data: dict[str, Any], wheel: Path) -> dict[str, Any]:
    data = copy.deepcopy(example_data)
    data["helper"] = {"sources": ["s3"], "bucket": "wheels", "wheel": str(wheel)}
    return data


def test_helper_wheel_content_is_checked(
    example_data: dict[str, Any], tmp_path: Path
) -> None:
    name = "git_remote_codecommit-1.17-py3-none-any.whl"
    text = tmp_path / "text" / name
    text.parent.mkdir()
    text.write_text("a private note\n")
    assert (
        "must be a wheel, a zip archive"
        in rollout_issues(s3_helper_data(example_data, text))[0]
    )
    link = tmp_path / "link" / "git_remote_codecommit-1.18-py3-none-any.whl"
    link.parent.mkdir()
    link.symlink_to(minimal_wheel(tmp_path / "real"))
    assert (
        "metadata has version '1.17', but the file name has 1.18"
        in rollout_issues(s3_helper_data(example_data, link))[0]
    )
    folder = tmp_path / "folder" / name
    folder.mkdir(parents=True)
    assert (
        "must be a file, not a folder"
        in rollout_issues(s3_helper_data(example_data, folder))[0]
    )


def test_domains_sharing_a_wheel_object_need_one_wheel(
    example_data: dict[str, Any], tmp_path: Path
) -> None:
    first = minimal_wheel(tmp_path / "a", extra=b"one")
    second = minimal_wheel(tmp_path / "b", extra=b"two")
    data = domains_data(
        example_data,
        {
            **FIRST,
            "helper": {"sources": ["s3"], "bucket": "wheels", "wheel": str(first)},
        },
        {
            **SECOND,
            "helper": {"sources": ["s3"], "bucket": "wheels", "wheel": str(second)},
        },
    )
    issues = rollout_issues(data)
    assert issues[0].startswith(
        "domains[1].helper.wheel: s3://wheels/studio-bootstrap/"
        "git_remote_codecommit-1.17-py3-none-any.whl is also the wheel of domains[0]"
    )
    data["domains"][1]["helper"]["wheel"] = str(first)
    assert len(parse_rollout(data).configs) == 2


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://user:secret@sts.example.com", "must not contain credentials"),
        ("https://sts.example.com/?a=b", "must not contain a query or fragment"),
        ("HTTPS://sts.example.com", "must start with https://"),
        ("https://sts.example.com:99999", "port must be 1 to 65535"),
        ("http://sts.example.com", "must use https://"),
    ],
)
def test_endpoint_url_rules_are_named(
    example_data: dict[str, Any], url: str, rule: str
) -> None:
    data = copy.deepcopy(example_data)
    data["network"] = {"sts_endpoint_url": url}
    issues = rollout_issues(data)
    assert issues[0].startswith(f"network.sts_endpoint_url: {rule}"), issues


@pytest.mark.parametrize(
    ("field", "value"),
    [("bucket", "192.168.1.1"), ("bucket", "wheels-s3alias"), ("key_prefix", "a/../")],
)
def test_s3_names_follow_s3_rules(
    example_data: dict[str, Any], tmp_path: Path, field: str, value: str
) -> None:
    data = s3_helper_data(example_data, minimal_wheel(tmp_path))
    data["helper"][field] = value
    assert rollout_issues(data)[0].startswith(f"helper.{field}: must not")
