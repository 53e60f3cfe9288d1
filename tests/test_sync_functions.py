"""Functions of the sync run alone in bash: pip isolation, deadline, leftovers.

Each test renders the script, loads its functions into a bash that does not
run ``main``, and calls one function with stubs on PATH. pip is the Studio
image's, against package indexes on 127.0.0.1 that the test starts.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bootstrap.config import parse_config
from bootstrap.render import render_script
from bootstrap.sandbox.helper_wheel import build_helper_wheels, helper_wheel
from bootstrap.sandbox.image import SYSTEM_PATH, studio_image

TOKEN = "codeartifact-token-0123456789"
APP_TYPE = "JupyterLab"


class Index:
    """A simple index of one wheel; with ``token``, it requires aws:TOKEN."""

    def __init__(self, wheel: Path, token: str | None = None) -> None:
        self.wheel = wheel
        self.token = token
        self.authorizations: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/simple/"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                header = self.headers.get("Authorization", "")
                index.authorizations.append(header)
                if index.token is not None:
                    expected = base64.b64encode(f"aws:{index.token}".encode())
                    if header != "Basic " + expected.decode():
                        self.reply(401, b"unauthorized\n")
                        return
                name = index.wheel.name
                if self.path.rstrip("/") == "/simple/git-remote-codecommit":
                    self.reply(200, f'<a href="/files/{name}">{name}</a>\n'.encode())
                elif self.path == f"/files/{name}":
                    self.reply(200, index.wheel.read_bytes())
                else:
                    self.reply(404, b"not found\n")

            def reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """A TCP port on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.connections: list[socket.socket] = []
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])

    def accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.socket.close()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return helper_wheel(build_helper_wheels(tmp_path_factory.mktemp("wheels")))


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def functions(
    tmp_path: Path, helper: dict[str, object], app_type: str = APP_TYPE
) -> Path:
    """Write the rendered program without its call of main; return its path."""
    data = {
        "domain": {"id": "d-functions0001", "region": "eu-west-1"},
        "app_types": [app_type],
        "helper": helper,
        "repositories": [
            {
                "name": "functions-repo",
                "account_id": "111111111111",
                "role": "arn:aws:iam::111111111111:role/repo-reader",
                "profile": "repo-account",
            }
        ],
    }
    source = render_script(parse_config(data), app_type).source
    assert source.endswith('main "$@"\n')
    path = tmp_path / "functions.sh"
    path.write_text(source.removesuffix('main "$@"\n'))
    return path


def hostile_pip_conf(home: Path, silent: SilentServer) -> None:
    """Stage the user pip.conf that broke every non-pypi source."""
    folder = home / ".config" / "pip"
    folder.mkdir(parents=True)
    (folder / "pip.conf").write_text(
        "[global]\n"
        "no-index = true\n"
        f"extra-index-url = http://127.0.0.1:{silent.port}/simple/\n"
        "timeout = 100\n"
        "[install]\n"
        "user = true\n"
    )


def run(
    tmp_path: Path, script: Path, call: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one call after loading the functions, with HOME in tmp_path."""
    home = tmp_path / "home"
    environment = {
        "HOME": str(home),
        "PATH": f"{tmp_path / 'stubs'}:{studio_image().bin}:{SYSTEM_PATH}",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LANG": "C.UTF-8",
        **(env or {}),
    }
    program = (
        f"source {script}\n"
        'SB_DIR="$HOME/.studio-bootstrap"\n'
        "SB_DEADLINE_AT=$((SECONDS + SB_DEADLINE))\n"
        f"{call}\n"
        'rc=$?\nprintf "rc=%s error=%s\\n" "$rc" "${SB_ERROR:-}"\n'
    )
    return subprocess.run(
        ["bash", "-c", program],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stub(tmp_path: Path, name: str, body: str) -> None:
    folder = tmp_path / "stubs"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)


def installed(home: Path) -> bool:
    return (home / ".studio-bootstrap/lib/x/git_remote_codecommit").is_dir()


def install_call(source: str) -> str:
    target = '"$SB_DIR/lib/x"'
    return (
        f'mkdir -p "$SB_DIR/lib" && sb_pip_{source} git-remote-codecommit "" {target}'
    )


def test_index_ignores_user_pip_config(
    tmp_path: Path, wheel: Path, silent: SilentServer
) -> None:
    index = Index(wheel)
    try:
        script = functions(tmp_path, {"sources": ["index"], "index_url": index.url})
        hostile_pip_conf(tmp_path / "home", silent)
        started = time.monotonic()
        env = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple/", "PIP_USER": "1"}
        result = run(tmp_path, script, install_call("index"), env)
        elapsed = time.monotonic() - started
    finally:
        index.close()
    assert "rc=0 " in result.stdout, result.stdout + result.stderr
    assert installed(tmp_path / "home")
    assert silent.connections == []
    assert elapsed < 60


def test_wheelhouse_ignores_user_pip_config(
    tmp_path: Path, wheel: Path, silent: SilentServer
) -> None:
    home = tmp_path / "home"
    (home / "wheels").mkdir(parents=True)
    (home / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    hostile_pip_conf(home, silent)
    script = functions(tmp_path, {"sources": ["wheelhouse"], "wheelhouse": "wheels"})
    result = run(tmp_path, script, install_call("wheelhouse"))
    assert "rc=0 " in result.stdout, result.stdout + result.stderr
    assert installed(home)
    assert silent.connections == []


def test_pypi_keeps_config_but_not_user(tmp_path: Path, wheel: Path) -> None:
    index = Index(wheel)
    folder = tmp_path / "home" / ".config" / "pip"
    folder.mkdir(parents=True)
    # The index comes from the user's config, which pypi must still read.
    (folder / "pip.conf").write_text(
        f"[global]\nindex-url = {index.url}\n[install]\nuser = true\n"
    )
    try:
        script = functions(tmp_path, {"sources": ["pypi"]})
        result = run(tmp_path, script, install_call("pypi"))
    finally:
        index.close()
    assert "rc=0 " in result.stdout, result.stdout + result.stderr
    assert installed(tmp_path / "home")
    assert index.authorizations != []


def test_codeartifact_token_reaches_isolated_pip(
    tmp_path: Path, wheel: Path, silent: SilentServer
) -> None:
    index = Index(wheel, token=TOKEN)
    real_python = studio_image().bin / "python3"
    # GetAuthorizationToken is played by a python3 stub: "-c" prints the token.
    stub(
        tmp_path,
        "python3",
        f'if [[ $1 == -c ]]; then echo {TOKEN}; exit 0; fi\nexec {real_python} "$@"\n',
    )
    hostile_pip_conf(tmp_path / "home", silent)
    helper = {
        "sources": ["index"],
        "index_url": index.url.replace("/simple/", "/pypi/mirror/simple/"),
        "codeartifact_domain": "my-domain",
        "codeartifact_owner": "222222222222",
        "codeartifact_region": "eu-west-1",
    }
    try:
        script = functions(tmp_path, helper)
        source = script.read_text()
        assert "NETRC=" in source
        assert "PIP_INDEX_URL" not in source
        # The stub index serves /simple/ only; point the rendered URL there.
        script.write_text(source.replace("/pypi/mirror/simple/", "/simple/"))
        result = run(tmp_path, script, install_call("index"))
    finally:
        index.close()
    assert "rc=0 " in result.stdout, result.stdout + result.stderr
    assert installed(tmp_path / "home")
    expected = "Basic " + base64.b64encode(f"aws:{TOKEN}".encode()).decode()
    assert expected in index.authorizations
    assert TOKEN not in result.stdout + result.stderr
    assert list((tmp_path / "home/.studio-bootstrap/lib").glob("*.netrc")) == []
    assert silent.connections == []


def test_deadline_cuts_git_attempt(tmp_path: Path) -> None:
    stub(tmp_path, "git", "sleep 60\n")
    script = functions(tmp_path, {"sources": ["pypi"]})
    call = (
        "SB_DEADLINE_AT=$((SECONDS + 3))\n"
        'sb_retry "functions-repo: clone" sb_git 0 "$SB_CLONE_TIMEOUT" '
        'clone --quiet -- url "$HOME/clone"'
    )
    started = time.monotonic()
    result = run(tmp_path, script, call)
    elapsed = time.monotonic() - started
    assert elapsed < 20, result.stdout
    assert "functions-repo: git clone from git-codecommit.eu-west-1." in result.stdout
    assert "the sync deadline cuts the timeout from 600s to " in result.stdout
    assert "waiting for git-codecommit.eu-west-1.amazonaws.com" in result.stdout
    assert "rc=0 " not in result.stdout


def test_deadline_passed_skips_attempt(tmp_path: Path) -> None:
    stub(tmp_path, "git", 'touch "$HOME/git-ran"\n')
    script = functions(tmp_path, {"sources": ["pypi"]})
    call = 'SB_DEADLINE_AT=$SECONDS\nsb_git 0 "$SB_FETCH_TIMEOUT" -C x fetch'
    result = run(tmp_path, script, call)
    assert "rc=1 error=the sync deadline of 900s has passed" in result.stdout
    assert not (tmp_path / "home" / "git-ran").exists()


def leftovers(lib: Path, pid: int) -> list[Path]:
    paths = [
        lib / f"git-remote-codecommit.new.{pid}",
        lib / f"git-remote-codecommit.new.{pid}.wheel",
    ]
    for path in paths:
        path.mkdir(parents=True)
        (path / "file").write_text("partial\n")
    netrc = lib / f"git-remote-codecommit.new.{pid}.netrc"
    netrc.write_text("machine example login aws password x\n")
    return [*paths, netrc]


def dead_pid() -> int:
    process = subprocess.run(["bash", "-c", "echo $$"], capture_output=True, text=True)
    return int(process.stdout)


def test_clean_lib_removes_dead_leftovers(tmp_path: Path) -> None:
    lib = tmp_path / "home" / ".studio-bootstrap" / "lib"
    dead = leftovers(lib, dead_pid())
    live = leftovers(lib, os.getpid())
    kept = lib / "git-remote-codecommit"
    kept.mkdir()
    script = functions(tmp_path, {"sources": ["pypi"]})
    result = run(tmp_path, script, "sb_clean_lib")
    assert "rc=0 " in result.stdout, result.stdout + result.stderr
    assert [p for p in dead if p.exists()] == []
    assert all(p.exists() for p in live)
    assert kept.is_dir()


def test_clean_lib_waits_in_shared_home(tmp_path: Path) -> None:
    lib = tmp_path / "home" / ".studio-bootstrap" / "lib"
    recent = leftovers(lib, dead_pid())
    old = leftovers(lib, dead_pid())
    hour_ago = time.time() - 3600
    for path in old:
        os.utime(path, (hour_ago, hour_ago))
    script = functions(tmp_path, {"sources": ["pypi"]}, "JupyterServer")
    result = run(tmp_path, script, "sb_clean_lib")
    assert "rc=0 " in result.stdout, result.stdout + result.stderr
    assert all(p.exists() for p in recent)
    assert [p for p in old if p.exists()] == []
