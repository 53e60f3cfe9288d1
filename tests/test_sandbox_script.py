"""The rendered lifecycle scripts, run as Studio runs them, against the local stack.

Each start assumes the account-A role through the managed profile, clones
with the real git-remote-codecommit from the local CodeCommit endpoint, and
leaves its background sync to finish before the checks.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import tomllib

from bootstrap.config import parse_config
from bootstrap.render import render_all
from bootstrap.sandbox.runner import (
    APP_USERS,
    CAN_RUN_AS_STUDIO_USER,
    STUDIO_USER_SKIP_REASON,
    SandboxHome,
    interactive_shell,
    run_in_home,
    run_lifecycle,
    wait_idle,
)
from bootstrap.sandbox.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "bootstrap.example.toml"
APP_TYPES = ["JupyterServer", "KernelGateway", "JupyterLab", "CodeEditor"]
SYNC_SECONDS = 90
_names = itertools.count(1)

needs_studio_user = pytest.mark.skipif(
    not CAN_RUN_AS_STUDIO_USER, reason=STUDIO_USER_SKIP_REASON
)


@pytest.fixture
def repository(local_stack: LocalStack, repo_role: str) -> str:
    """A fresh repository in account A with one commit, readable by the A role."""
    name = f"repo-{next(_names)}"
    local_stack.codecommit.create_repository(name, allowed_role_arns=[repo_role])
    local_stack.codecommit.commit(name, {"README.md": f"# {name}\n"}, "Initial commit")
    return name


def scripts_for(
    tmp_path: Path, repository: str, role: str, **changes: Any
) -> dict[str, Path]:
    """Render the example config for one repository; return the scripts by app type."""
    with EXAMPLE.open("rb") as handle:
        data = tomllib.load(handle)
    data["repositories"][0].update(name=repository, path=repository, role=role)
    data["repositories"][0].update(changes)
    folder = tmp_path / f"lifecycle-{next(_names)}"
    folder.mkdir()
    paths = {}
    for script in render_all(parse_config(data)):
        path = folder / script.filename
        path.write_text(script.text)
        paths[script.app_type] = path
    return paths


def start(
    script: Path, home: SandboxHome, app_type: str = "JupyterLab", **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Start an app: run the script in the foreground, then let the sync finish."""
    user = kwargs.pop("user", None)
    if user is None and not CAN_RUN_AS_STUDIO_USER:
        user = "root"
    result = run_lifecycle(script, home, app_type=app_type, user=user, **kwargs)
    wait_idle(home, timeout=SYNC_SECONDS)
    return result


def sync_log(home: SandboxHome) -> str:
    path = home.path / ".studio-bootstrap" / "sync.log"
    return path.read_text() if path.exists() else ""


def git(home: SandboxHome, *args: str) -> str:
    result = run_in_home(home, ["git", *args], user=_user())
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _user() -> str:
    return "sagemaker-user" if CAN_RUN_AS_STUDIO_USER else "root"


def all_logs(home: SandboxHome, result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr + sync_log(home)


# --- first start, per app type -----------------------------------------------------


@pytest.mark.parametrize("app_type", APP_TYPES)
def test_first_start_clones(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    tmp_path: Path,
    app_type: str,
) -> None:
    if APP_USERS[app_type] != "root" and not CAN_RUN_AS_STUDIO_USER:
        pytest.skip(STUDIO_USER_SKIP_REASON)
    scripts = scripts_for(tmp_path, repository, repo_role)
    before = len(local_stack.codecommit.requests)
    result = run_lifecycle(scripts[app_type], sandbox_home, app_type=app_type)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "syncing 1 repositories in the background" in result.stdout
    wait_idle(sandbox_home, timeout=SYNC_SECONDS)

    readme = sandbox_home.path / repository / "README.md"
    assert readme.read_text() == f"# {repository}\n", sync_log(sandbox_home)
    served = [r for r in local_stack.codecommit.requests[before:] if r.status == 200]
    assert served
    assert {r.role_arn for r in served} == {repo_role}
    status = (
        sandbox_home.path / ".studio-bootstrap" / "status" / "repo-account"
    ).read_text()
    assert status.startswith("state=ok\n")


def test_later_start_fast_forwards(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    tmp_path: Path,
) -> None:
    script = scripts_for(tmp_path, repository, repo_role)["JupyterLab"]
    start(script, sandbox_home)
    new_head = local_stack.codecommit.commit(repository, {"NEW.md": "new\n"}, "Add NEW")
    start(script, sandbox_home)
    clone = sandbox_home.path / repository
    assert (clone / "NEW.md").read_text() == "new\n"
    assert git(sandbox_home, "-C", str(clone), "rev-parse", "HEAD") == new_head
    assert "fast-forwarded main" in sync_log(sandbox_home)


def test_user_files_survive_repeated_starts(
    sandbox_home: SandboxHome, repository: str, repo_role: str, tmp_path: Path
) -> None:
    aws_config = (
        "[default]\r\nregion = us-east-1\r\n[profile mine]\r\nregion = eu-west-2"
    )
    gitconfig = "[user]\n\tname = Ada\n[credential]\n\thelper = cache --timeout=3600\n"
    sandbox_home.write_file(".aws/config", aws_config)
    sandbox_home.write_file(".gitconfig", gitconfig)
    script = scripts_for(tmp_path, repository, repo_role)["JupyterLab"]
    for _ in range(3):
        start(script, sandbox_home)
    config_text = (sandbox_home.path / ".aws" / "config").read_bytes().decode()
    assert config_text.startswith(aws_config + "\n")
    assert (sandbox_home.path / ".gitconfig").read_text().startswith(gitconfig)
    assert (sandbox_home.path / repository / "README.md").exists()


def test_local_work_survives_sync(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    tmp_path: Path,
) -> None:
    script = scripts_for(tmp_path, repository, repo_role)["JupyterLab"]
    start(script, sandbox_home)
    clone = sandbox_home.path / repository
    sandbox_home.write_file(f"{repository}/notes.md", "draft\n")
    git(sandbox_home, "-C", str(clone), "add", "notes.md")
    git(
        sandbox_home,
        "-C",
        str(clone),
        "-c",
        "user.name=Ada",
        "-c",
        "user.email=a@example.com",
        "commit",
        "-qm",
        "Local notes",
    )
    local_head = git(sandbox_home, "-C", str(clone), "rev-parse", "HEAD")
    sandbox_home.write_file(f"{repository}/README.md", "edited, not committed\n")
    local_stack.codecommit.commit(repository, {"UPSTREAM.md": "x\n"}, "Upstream change")

    start(script, sandbox_home)
    assert git(sandbox_home, "-C", str(clone), "rev-parse", "HEAD") == local_head
    assert (clone / "README.md").read_text() == "edited, not committed\n"
    assert (clone / "notes.md").read_text() == "draft\n"
    assert "uncommitted changes" in sync_log(sandbox_home)
    upstream = git(sandbox_home, "-C", str(clone), "rev-parse", "origin/main")
    assert upstream == local_stack.codecommit.head(repository)


def test_diverged_branch_left_alone(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    tmp_path: Path,
) -> None:
    script = scripts_for(tmp_path, repository, repo_role)["JupyterLab"]
    start(script, sandbox_home)
    clone = sandbox_home.path / repository
    sandbox_home.write_file(f"{repository}/mine.md", "mine\n")
    git(sandbox_home, "-C", str(clone), "add", "mine.md")
    git(
        sandbox_home,
        "-C",
        str(clone),
        "-c",
        "user.name=Ada",
        "-c",
        "user.email=a@example.com",
        "commit",
        "-qm",
        "Mine",
    )
    local_head = git(sandbox_home, "-C", str(clone), "rev-parse", "HEAD")
    local_stack.codecommit.commit(repository, {"theirs.md": "theirs\n"}, "Theirs")
    start(script, sandbox_home)
    assert git(sandbox_home, "-C", str(clone), "rev-parse", "HEAD") == local_head
    assert "diverged from upstream" in sync_log(sandbox_home)


def test_foreign_folder_untouched(
    sandbox_home: SandboxHome, repository: str, repo_role: str, tmp_path: Path
) -> None:
    sandbox_home.write_file(f"{repository}/thesis.tex", "\\documentclass{article}\n")
    script = scripts_for(tmp_path, repository, repo_role)["JupyterLab"]
    result = start(script, sandbox_home)
    assert result.returncode == 0
    folder = sandbox_home.path / repository
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]
    assert "is not a clone of" in sync_log(sandbox_home)


def test_simultaneous_starts_give_one_clone(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    tmp_path: Path,
) -> None:
    script = scripts_for(tmp_path, repository, repo_role)["JupyterLab"]
    results: list[subprocess.CompletedProcess[str]] = []

    def run() -> None:
        user = None if CAN_RUN_AS_STUDIO_USER else "root"
        results.append(
            run_lifecycle(script, sandbox_home, app_type="JupyterLab", user=user)
        )

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_idle(sandbox_home, timeout=SYNC_SECONDS)
    assert [r.returncode for r in results] == [0, 0, 0, 0]
    clone = sandbox_home.path / repository
    assert (clone / "README.md").exists()
    assert git(sandbox_home, "-C", str(clone), "status", "--porcelain") == ""
    leftovers = [
        p.name
        for p in sandbox_home.path.iterdir()
        if "studio-bootstrap-clone" in p.name
    ]
    assert leftovers == []


def test_refused_role_leaves_nothing(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    execution_role: str,
    tmp_path: Path,
) -> None:
    name = f"locked-{next(_names)}"
    other_role = local_stack.create_repo_role(
        name="OtherRole", trusted_arns=[execution_role]
    )
    local_stack.codecommit.create_repository(
        name, allowed_role_arns=["arn:aws:iam::111111111111:role/Nobody"]
    )
    local_stack.codecommit.commit(name, {"README.md": "x\n"}, "Initial commit")
    script = scripts_for(tmp_path, name, other_role)["JupyterLab"]
    result = start(script, sandbox_home)
    assert result.returncode == 0
    assert not (sandbox_home.path / name).exists()
    assert not [
        p for p in sandbox_home.path.iterdir() if "studio-bootstrap-clone" in p.name
    ]
    log = sync_log(sandbox_home)
    assert re.search(r"failed: clone failed: .*(403|Authentication failed)", log), log
    secret_parts = _secrets(local_stack)
    everything = all_logs(sandbox_home, result)
    for secret in secret_parts:
        assert secret not in everything


def _secrets(stack: LocalStack) -> list[str]:
    """Secrets and tokens of every session moto has issued."""
    from moto.sts.models import sts_backends

    found = []
    for account in sts_backends.values():
        for backend in account.values():
            for role in backend.assumed_roles:
                found += [role.secret_access_key, role.session_token]
    return [secret for secret in found if secret]


def test_https_transport_uses_aws_cli_helper(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    tmp_path: Path,
) -> None:
    script = scripts_for(tmp_path, repository, repo_role, transport="https")[
        "JupyterLab"
    ]
    before = len(local_stack.codecommit.requests)
    result = start(script, sandbox_home)
    assert result.returncode == 0
    clone = sandbox_home.path / repository
    assert (clone / "README.md").exists(), sync_log(sandbox_home)
    origin = git(sandbox_home, "-C", str(clone), "config", "--get", "remote.origin.url")
    assert origin == f"https://{local_stack.codecommit_host}/v1/repos/{repository}"
    served = [r for r in local_stack.codecommit.requests[before:] if r.status == 200]
    assert {r.role_arn for r in served} == {repo_role}
    # The Git UI fetches with plain git, through the helper in ~/.gitconfig.
    fetch = run_in_home(sandbox_home, ["git", "-C", str(clone), "fetch"], user=_user())
    assert fetch.returncode == 0, fetch.stderr


HOSTILE = {
    "path": "$(touch CANARY)/`touch CANARY`/a'b\"c;touch CANARY",
    "branch": "$(touch${IFS}CANARY)",
}


@pytest.mark.parametrize("field", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_values_are_inert(
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    tmp_path: Path,
    field: str,
) -> None:
    value = HOSTILE[field]
    script = scripts_for(tmp_path, repository, repo_role, **{field: value})[
        "JupyterLab"
    ]
    result = start(script, sandbox_home)
    assert result.returncode == 0
    everywhere = list(sandbox_home.path.rglob("CANARY")) + list(
        Path.cwd().glob("CANARY")
    )
    assert everywhere == []
    if field == "path":
        assert (sandbox_home.path / value / "README.md").exists()


def test_hostile_values_are_rejected() -> None:
    with EXAMPLE.open("rb") as handle:
        data = tomllib.load(handle)
    data["repositories"][0]["profile"] = "x; touch CANARY"
    data["repositories"][0]["name"] = "$(id)"
    with pytest.raises(Exception) as caught:
        parse_config(data)
    assert "repositories[0].profile" in str(caught.value)
    assert "repositories[0].name" in str(caught.value)


# --- terminal hook -----------------------------------------------------------------


def test_hook_starts_sync_for_missing_repository(
    sandbox_home: SandboxHome, repository: str, repo_role: str, tmp_path: Path
) -> None:
    script = scripts_for(tmp_path, repository, repo_role)["JupyterLab"]
    start(script, sandbox_home)
    clone = sandbox_home.path / repository
    subprocess.run(["rm", "-rf", str(clone)], check=True)
    shell = interactive_shell(sandbox_home, "true", user=_user())
    assert shell.returncode == 0
    assert "studio-bootstrap" not in shell.stdout
    wait_idle(sandbox_home, timeout=SYNC_SECONDS)
    assert (clone / "README.md").exists(), sync_log(sandbox_home)


def test_hook_reports_failed_sync(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    tmp_path: Path,
) -> None:
    script = scripts_for(tmp_path, repository, repo_role)["JupyterLab"]
    local_stack.codecommit.set_fault(repository, "403")
    try:
        start(script, sandbox_home)
    finally:
        local_stack.codecommit.set_fault(repository, None)
    shell = interactive_shell(sandbox_home, "git --version", user=_user())
    assert f"the last sync of ~/{repository} failed" in shell.stdout
    wait_idle(sandbox_home, timeout=SYNC_SECONDS)


def test_hook_is_silent_when_all_is_well(
    sandbox_home: SandboxHome, repository: str, repo_role: str, tmp_path: Path
) -> None:
    script = scripts_for(tmp_path, repository, repo_role)["JupyterLab"]
    start(script, sandbox_home)
    shell = interactive_shell(
        sandbox_home, f"git --no-pager -C {repository} log -1 --format=%s", user=_user()
    )
    assert shell.stdout.strip().splitlines()[-1] == "Initial commit"
    assert "studio-bootstrap" not in shell.stdout


@needs_studio_user
def test_classic_apps_share_one_home(
    local_stack: LocalStack,
    sandbox_home: SandboxHome,
    repository: str,
    repo_role: str,
    tmp_path: Path,
) -> None:
    scripts = scripts_for(tmp_path, repository, repo_role)
    start(scripts["JupyterServer"], sandbox_home, app_type="JupyterServer")
    new_head = local_stack.codecommit.commit(repository, {"NEW.md": "new\n"}, "Add NEW")
    # KernelGateway runs as root on the same home; what it writes stays the user's.
    start(scripts["KernelGateway"], sandbox_home, app_type="KernelGateway", user="root")
    clone = sandbox_home.path / repository
    assert git(sandbox_home, "-C", str(clone), "rev-parse", "HEAD") == new_head
    root_owned = [
        str(path) for path in sandbox_home.path.rglob("*") if path.lstat().st_uid == 0
    ]
    assert root_owned == []
    shell = interactive_shell(sandbox_home, "true", user="sagemaker-user")
    assert "Permission denied" not in shell.stdout
