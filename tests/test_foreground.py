"""The foreground of the lifecycle script, run with real bash, awk and git.

These starts have no container credentials, so no background sync runs:
they check what the script does to the user's files.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import tomllib

from bootstrap.config import parse_config
from bootstrap.render import render_all

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bootstrap.example.toml"
BEGIN = "# >>> studio-bootstrap managed block: do not edit >>>"
END = "# <<< studio-bootstrap managed block <<<"
HOST_KEY = "credential.https://git-codecommit.eu-west-1.amazonaws.com"


def render(tmp_path: Path, **changes: Any) -> Path:
    with EXAMPLE.open("rb") as handle:
        data = tomllib.load(handle)
    data.update(changes)
    script = render_all(parse_config(data))[0]
    path = tmp_path / script.filename
    path.write_text(script.text)
    return path


@pytest.fixture
def script(tmp_path: Path) -> Path:
    return render(tmp_path)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def start(
    script: Path, home: Path, path: str = "/usr/bin:/bin", **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the script as an app start does, without container credentials."""
    environment = {
        "HOME": str(home),
        "PATH": path,
        "LANG": "C.UTF-8",
        "AWS_EC2_METADATA_DISABLED": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
        **env,
    }
    return subprocess.run(
        ["bash", str(script)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )


def without_block(text: str) -> str:
    lines = text.splitlines(keepends=True)
    out, inside = [], False
    for line in lines:
        plain = line.rstrip("\r\n")
        if plain == BEGIN:
            inside = True
        elif plain == END:
            inside = False
        elif not inside:
            out.append(line)
    return "".join(out)


def git_config(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "config", "--global", *args], env=env, capture_output=True, text=True
    )


def load_profile(home: Path, profile: str) -> dict[str, Any]:
    session = botocore.session.Session()
    session.set_config_variable("config_file", str(home / ".aws" / "config"))
    return dict(session.full_config["profiles"][profile])


# --- first start ---------------------------------------------------------------


def test_empty_home_gets_config_files(script: Path, home: Path) -> None:
    result = start(script, home)
    assert result.returncode == 0, result.stderr
    profile = load_profile(home, "repo-account")
    assert profile["credential_source"] == "EcsContainer"
    assert profile["role_arn"] == "arn:aws:iam::111111111111:role/CrossAccountRepoRole"
    assert profile["sts_regional_endpoints"] == "regional"
    assert stat.S_IMODE((home / ".aws" / "config").stat().st_mode) == 0o600
    assert len((home / ".bashrc").read_text().splitlines()) == 1
    assert (home / ".studio-bootstrap" / "sync.sh").exists()
    assert result.stderr == ""


def test_no_credentials_logs_and_skips(script: Path, home: Path) -> None:
    result = subprocess.run(
        ["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", "bash", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor" in result.stdout
    assert "repositories not synced" in result.stdout
    assert not (home / "example-repo").exists()
    assert (home / ".aws" / "config").exists()


def test_foreground_is_quick(script: Path, home: Path) -> None:
    # Behaviour only: no background work is left once the script returns.
    result = start(script, home)
    assert result.returncode == 0
    assert not list((home / ".studio-bootstrap" / "locks").iterdir())


# --- ~/.aws/config -------------------------------------------------------------

USER_CONFIG = (
    "# my settings\n"
    "[default]\n"
    "region = us-east-1\n"
    "output   =   json\n"
    "\n"
    "[profile dev]\n"
    "role_arn = arn:aws:iam::333333333333:role/Dev\n"
    "source_profile = default\n"
    "s3 =\n"
    "    max_concurrent_requests = 20\n"
    "; a comment\n"
    "[sso-session corp]\n"
    "sso_start_url = https://example.awsapps.com/start\n"
    "[services local]\n"
    "s3 =\n"
    "  endpoint_url = http://127.0.0.1:9000\n"
)

USER_VARIANTS = {
    "plain": USER_CONFIG,
    "crlf": USER_CONFIG.replace("\n", "\r\n"),
    "no final newline": USER_CONFIG.rstrip("\n"),
}


@pytest.mark.parametrize("variant", list(USER_VARIANTS), ids=list(USER_VARIANTS))
def test_user_config_survives_repeated_starts(
    script: Path, home: Path, variant: str
) -> None:
    original = USER_VARIANTS[variant]
    (home / ".aws").mkdir()
    config = home / ".aws" / "config"
    config.write_bytes(original.encode())
    for _ in range(3):
        assert start(script, home).returncode == 0
    text = config.read_bytes().decode()
    expected = original if original.endswith("\n") else original + "\n"
    assert without_block(text) == expected
    assert load_profile(home, "dev")["source_profile"] == "default"
    assert load_profile(home, "repo-account")["credential_source"] == "EcsContainer"


def test_unchanged_config_is_not_rewritten(script: Path, home: Path) -> None:
    assert start(script, home).returncode == 0
    config = home / ".aws" / "config"
    before = config.stat()
    time.sleep(0.01)
    assert start(script, home).returncode == 0
    after = config.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


@pytest.mark.parametrize("name", ["gitconfig", "sync.sh", "hook.sh"])
def test_unchanged_state_file_keeps_inode(script: Path, home: Path, name: str) -> None:
    assert start(script, home).returncode == 0
    path = home / ".studio-bootstrap" / name
    before = path.stat()
    time.sleep(0.01)
    assert start(script, home).returncode == 0
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert after.st_mode == before.st_mode


def test_changed_mode_of_state_file_is_restored(script: Path, home: Path) -> None:
    assert start(script, home).returncode == 0
    path = home / ".studio-bootstrap" / "sync.sh"
    path.chmod(0o644)
    assert start(script, home).returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_same_named_profile_is_taken_over(script: Path, home: Path) -> None:
    original = (
        "[default]\nregion = us-east-1\n"
        "[profile repo-account]\nregion = us-west-2\n"
        "role_arn = arn:aws:iam::1:role/Old\n"
        "[profile other]\nregion = eu-central-1\n"
    )
    (home / ".aws").mkdir()
    config = home / ".aws" / "config"
    config.write_text(original)
    result = start(script, home)
    assert result.returncode == 0
    text = config.read_text()
    assert text.index("[default]") < text.index(BEGIN) < text.index("[profile other]")
    assert text.count("[profile repo-account]") == 1
    backups = list((home / ".aws").glob("config.studio-bootstrap-backup.*"))
    assert len(backups) == 1
    assert backups[0].read_text() == original
    assert "took over [profile repo-account] from line 3" in result.stdout
    assert load_profile(home, "repo-account")["region"] == "eu-west-1"


def test_services_section_is_taken_over(tmp_path: Path, home: Path) -> None:
    network = {"sts_endpoint_url": "https://sts.vpce.example.com"}
    script = render(tmp_path, network=network)
    original = (
        "[default]\nregion = us-east-1\n"
        "[services studio-bootstrap]\ns3 =\n  endpoint_url = https://old\n"
        "[services mine]\nsts =\n  endpoint_url = https://mine\n"
    )
    (home / ".aws").mkdir()
    config = home / ".aws" / "config"
    config.write_text(original)
    result = start(script, home)
    assert result.returncode == 0
    text = config.read_text()
    assert "took over [services studio-bootstrap] from line 3" in result.stdout
    assert text.count("[services studio-bootstrap]") == 1
    assert "https://old" not in text
    assert "[services mine]\nsts =\n  endpoint_url = https://mine\n" in text
    assert "services = studio-bootstrap\n" in text
    session = botocore.session.Session(profile="repo-account")
    session.set_config_variable("config_file", str(config))
    services = session.full_config["services"]["studio-bootstrap"]
    assert services == {"sts": {"endpoint_url": "https://sts.vpce.example.com"}}
    assert session.get_scoped_config()["services"] == "studio-bootstrap"


INVALID_CONFIGS = {
    "duplicate section": (
        "[default]\na = 1\n[default]\nb = 2\n",
        "line 3: duplicate section",
    ),
    "option first": ("region = x\n[default]\n", "line 1: option before any section"),
    "stray text": ("[default]\njust words\n", "line 2: not a section header"),
    "duplicate option": ("[default]\na = 1\nA = 2\n", "line 3: duplicate option a"),
}


@pytest.mark.parametrize("name", list(INVALID_CONFIGS), ids=list(INVALID_CONFIGS))
def test_invalid_config_left_identical(script: Path, home: Path, name: str) -> None:
    original, message = INVALID_CONFIGS[name]
    (home / ".aws").mkdir()
    config = home / ".aws" / "config"
    config.write_text(original)
    result = start(script, home)
    assert result.returncode == 0
    assert config.read_text() == original
    assert message in result.stdout
    assert not list((home / ".aws").glob("*studio-bootstrap*"))


def test_symlinked_config_stays_a_symlink(script: Path, home: Path) -> None:
    dotfiles = home / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "aws-config").write_text("[default]\nregion = us-east-1\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "config").symlink_to(dotfiles / "aws-config")
    assert start(script, home).returncode == 0
    assert (home / ".aws" / "config").is_symlink()
    assert BEGIN in (dotfiles / "aws-config").read_text()


# --- ~/.gitconfig ----------------------------------------------------------------

USER_GITCONFIG = (
    "[credential]\n\thelper = cache --timeout=3600\n"
    "[user]\n\tname = Ada\n\temail = ada@example.com\n"
)


def test_git_credential_helper_comes_last(script: Path, home: Path) -> None:
    (home / ".gitconfig").write_text(USER_GITCONFIG)
    assert start(script, home).returncode == 0
    helpers = git_config(home, "--includes", "--get-all", f"{HOST_KEY}.helper")
    assert helpers.stdout.splitlines() == [
        "",
        '!f() { test "$1" = get || exit 0; '
        'aws codecommit credential-helper --profile repo-account "$@"; }; f',
    ]
    usehttppath = git_config(
        home, "--includes", "--bool", "--get", f"{HOST_KEY}.usehttppath"
    )
    assert usehttppath.stdout.strip() == "true"
    assert (
        git_config(home, "--get", "credential.helper").stdout.strip()
        == "cache --timeout=3600"
    )
    assert git_config(home, "--get", "user.name").stdout.strip() == "Ada"
    assert (home / ".gitconfig").read_text().startswith(USER_GITCONFIG)


def test_only_our_helper_runs_for_codecommit(script: Path, home: Path) -> None:
    (home / ".gitconfig").write_text(USER_GITCONFIG)
    assert start(script, home).returncode == 0
    bin_dir = home / "bin"
    bin_dir.mkdir()
    fake_aws = bin_dir / "aws"
    fake_aws.write_text('#!/bin/sh\necho "$@" >> "$HOME/aws-calls"\n')
    fake_aws.chmod(0o755)
    env = {
        "HOME": str(home),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_TRACE": "1",
    }
    request = (
        "protocol=https\nhost=git-codecommit.eu-west-1.amazonaws.com\n"
        "path=v1/repos/example-repo\n\n"
    )
    result = subprocess.run(
        ["git", "credential", "fill"],
        input=request,
        env=env,
        capture_output=True,
        text=True,
    )
    helpers = [line for line in result.stderr.splitlines() if "run_command" in line]
    assert len(helpers) == 1, result.stderr
    assert "aws codecommit credential-helper --profile repo-account" in helpers[0]
    assert "credential-cache" not in result.stderr
    assert (
        (home / "aws-calls")
        .read_text()
        .startswith("codecommit credential-helper --profile repo-account get")
    )


def test_include_moves_after_new_user_helper(script: Path, home: Path) -> None:
    assert start(script, home).returncode == 0
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(gitconfig.read_text() + "[credential]\n\thelper = store\n")
    assert start(script, home).returncode == 0
    text = gitconfig.read_text()
    assert text.index("helper = store") < text.index(BEGIN)
    assert text.count(BEGIN) == 1
    helpers = git_config(home, "--includes", "--get-all", f"{HOST_KEY}.helper")
    assert helpers.stdout.splitlines()[0] == ""


def test_invalid_gitconfig_left_identical(script: Path, home: Path) -> None:
    original = "[user\n\tname = broken\n"
    (home / ".gitconfig").write_text(original)
    result = start(script, home)
    assert result.returncode == 0
    assert (home / ".gitconfig").read_text() == original
    assert "~/.gitconfig was left unchanged: it does not parse" in result.stdout


def test_read_only_gitconfig_left_identical(script: Path, home: Path) -> None:
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(USER_GITCONFIG)
    gitconfig.chmod(0o444)
    result = start(script, home)
    assert result.returncode == 0
    assert gitconfig.read_text() == USER_GITCONFIG
    assert "read-only" in result.stdout


def test_gitconfig_with_includes_survives(script: Path, home: Path) -> None:
    original = (
        "[include]\n\tpath = ~/.gitconfig.local\n"
        '[includeIf "gitdir:~/work/"]\n\tpath = ~/.gitconfig.work\n'
    )
    (home / ".gitconfig").write_text(original)
    assert start(script, home).returncode == 0
    assert (home / ".gitconfig").read_text().startswith(original)
    assert git_config(home, "--includes", "--list").returncode == 0


def test_strict_mode_fails_the_start(tmp_path: Path, home: Path) -> None:
    strict_script = render(tmp_path, strict=True)
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(USER_GITCONFIG)
    gitconfig.chmod(0o444)
    result = start(strict_script, home)
    assert result.returncode == 1
    assert "strict mode is on" in result.stdout


# --- ~/.bashrc -----------------------------------------------------------------


def test_bashrc_line_added_once(script: Path, home: Path) -> None:
    (home / ".bashrc").write_text("export EDITOR=vim")
    for _ in range(3):
        assert start(script, home).returncode == 0
    lines = (home / ".bashrc").read_text().splitlines()
    assert lines[0] == "export EDITOR=vim"
    assert sum("studio-bootstrap" in line for line in lines) == 1


# --- failing tools -------------------------------------------------------------


def test_broken_git_and_aws_do_not_stop_the_start(
    script: Path, home: Path, tmp_path: Path
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    for name, status in (("git", 128), ("aws", 255)):
        tool = tools / name
        tool.write_text(f"#!/bin/sh\nexit {status}\n")
        tool.chmod(0o755)
    result = start(script, home, path=f"{tools}:/usr/bin:/bin")
    assert result.returncode == 0
    assert (home / ".aws" / "config").exists()
    assert (home / ".studio-bootstrap" / "gitconfig").exists()
    assert not (home / "example-repo").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to uid 1000 needs root")
@pytest.mark.parametrize("user", ["uid1000", "root"])
def test_files_land_under_home(tmp_path: Path, user: str) -> None:
    base = Path(os.environ.get("TMPDIR", "/tmp")) / f"sb-home-{os.getpid()}-{user}"
    base.mkdir(mode=0o755)
    try:
        home = base / ("sagemaker-user" if user == "uid1000" else "root")
        home.mkdir()
        script = home.parent / "script.sh"
        script.write_text(render(tmp_path).read_text())
        script.chmod(0o644)
        ids = (1000, 100) if user == "uid1000" else (0, 0)
        os.chown(home, *ids)
        result = subprocess.run(
            ["bash", str(script)],
            env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            user=ids[0],
            group=ids[1],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        for path in (home / ".aws" / "config", home / ".gitconfig", home / ".bashrc"):
            assert path.stat().st_uid == ids[0]
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=True)


def test_read_only_aws_config_left_identical(script: Path, home: Path) -> None:
    (home / ".aws").mkdir()
    config = home / ".aws" / "config"
    config.write_text("[default]\nregion = us-east-1\n")
    config.chmod(0o400)
    result = start(script, home)
    assert result.returncode == 0
    assert config.read_text() == "[default]\nregion = us-east-1\n"
    assert "~/.aws/config is read-only" in result.stdout
