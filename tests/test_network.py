"""The warnings for VpcOnly domains, from DescribeDomain and UserSettings data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iam_support import example_data

from bootstrap.config import Config, parse_config
from bootstrap.network import vpc_warnings
from bootstrap.sandbox.helper_wheel import minimal_wheel

VPC_ONLY = {
    "AppNetworkAccessType": "VpcOnly",
    "DefaultUserSettings": {"SecurityGroups": ["sg-0123456789abcdef0"]},
}


def config_with(transport: str = "codecommit", **tables: Any) -> Config:
    data = example_data()
    data["repositories"][0]["transport"] = transport
    for name, table in tables.items():
        data[name] = table
    return parse_config(data)


def messages(config: Config, domain: dict[str, Any], users: Any = None) -> str:
    return "\n".join(w.message for w in vpc_warnings(config, domain, users or {}))


def complete() -> dict[str, Any]:
    """Tables that leave nothing to warn about for an https repository."""
    wheelhouse = {"sources": ["wheelhouse"], "wheelhouse": "/opt/wheels"}
    network = {
        "sts_endpoint_url": "https://vpce-1.sts.eu-west-1.vpce.amazonaws.com",
        "git_endpoints": {
            "eu-west-1": "vpce-1.git-codecommit.eu-west-1.vpce.amazonaws.com"
        },
    }
    return {"helper": wheelhouse, "network": network}


def test_warnings_none_with_internet() -> None:
    config = config_with()
    domain = {"AppNetworkAccessType": "PublicInternetOnly"}
    assert vpc_warnings(config, domain, {"ana": {}}) == []


def test_warnings_none_for_complete_setup() -> None:
    config = config_with("https", **complete())
    assert vpc_warnings(config, VPC_ONLY, {"ana": {}}) == []


def test_warnings_name_each_gap_and_fix() -> None:
    config = config_with()
    domain = {"AppNetworkAccessType": "VpcOnly"}
    found = vpc_warnings(
        config, domain, {"ana": {}, "bo": {"SecurityGroups": ["sg-1"]}}
    )
    text = "\n".join(w.message for w in found)
    assert "installs only from PyPI" in text
    assert "no STS endpoint" in text
    assert "no CodeCommit Git endpoint is configured for eu-west-1" in text
    assert "these user profiles have none of their own: ana;" in text
    assert all(w.fix for w in found)
    assert len(found) == 4


def test_warnings_codecommit_transport_behind_endpoint() -> None:
    config = config_with("codecommit", **complete())
    text = messages(config, VPC_ONLY)
    assert "terminals and the Git UI do not" in text
    assert "example-repo" in text


def test_warnings_s3_source_without_endpoint(tmp_path: Path) -> None:
    wheel = minimal_wheel(tmp_path)
    tables = complete()
    tables["helper"] = {
        "sources": ["s3", "wheelhouse"],
        "wheel": str(wheel),
        "bucket": "wheels",
        "wheelhouse": "/opt/wheels",
    }
    config = config_with("https", **tables)
    assert "no S3 endpoint is configured" in messages(config, VPC_ONLY)
    tables["network"]["s3_endpoint_url"] = "https://s3.eu-west-1.amazonaws.com"
    config = config_with("https", **tables)
    assert messages(config, VPC_ONLY) == ""


def test_warnings_domain_without_security_groups() -> None:
    config = config_with("https", **complete())
    domain = {"AppNetworkAccessType": "VpcOnly", "DefaultUserSettings": {}}
    assert "the domain has no user profile yet" in messages(config, domain)


def test_warnings_pypi_before_other_sources() -> None:
    tables = complete()
    tables["helper"] = {"sources": ["pypi", "wheelhouse"], "wheelhouse": "/opt/w"}
    config = config_with("https", **tables)
    assert "pypi comes before wheelhouse" in messages(config, VPC_ONLY)


def test_warnings_https_transport_without_cli_source(tmp_path: Path) -> None:
    tables = complete()
    tables["helper"] = {
        "sources": ["s3"],
        "wheel": str(minimal_wheel(tmp_path)),
        "bucket": "wheels",
    }
    tables["network"]["s3_endpoint_url"] = "https://s3.eu-west-1.amazonaws.com"
    text = messages(config_with("https", **tables), VPC_ONLY)
    assert "needs the AWS CLI, which installs only from PyPI" in text
    tables["helper"]["sources"] = ["s3", "wheelhouse"]
    tables["helper"]["wheelhouse"] = "/opt/wheels"
    assert messages(config_with("https", **tables), VPC_ONLY) == ""
