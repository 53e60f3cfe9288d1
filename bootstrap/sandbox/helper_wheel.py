"""Wheels of git-remote-codecommit and the AWS CLI built offline, and a package index.

The wheels are built from the copies in the studio image, so no package index
is asked. Tests install them from a folder of wheels, from S3 or from the
index.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import html
import io
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler
from importlib.metadata import Distribution, distributions
from pathlib import Path

from bootstrap.sandbox.image import studio_image
from bootstrap.sandbox.servers import LOOPBACK, LoopbackHTTPServer

HELPER_PROJECT = "git-remote-codecommit"
HELPER_VERSION = "1.17"

# pip reads no configuration file and reaches no index but a closed port.
OFFLINE_PIP = {
    "PIP_CONFIG_FILE": "/dev/null",
    "PIP_NO_INDEX": "1",
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
}


def build_helper_wheels(folder: Path) -> Path:
    """Build a wheel of the image's git-remote-codecommit into ``folder``/wheels.

    Returns the folder of wheels, mode 0755 with 0644 files so that uid 1000
    can read it. A folder that exists already is returned as it is.
    """
    wheels = folder / "wheels"
    if wheels.exists():
        return wheels
    packages = next(studio_image().root.glob("lib/python3*/site-packages"))
    source = folder / "helper-source"
    shutil.copytree(
        packages / "git_remote_codecommit",
        source / "git_remote_codecommit",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\n'
        'build-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{HELPER_PROJECT}"\nversion = "{HELPER_VERSION}"\n'
        '[tool.setuptools]\npackages = ["git_remote_codecommit"]\n'
    )
    subprocess.run(
        [
            "/usr/bin/python3",
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        env={"PATH": "/usr/bin:/bin", "HOME": str(folder), **OFFLINE_PIP},
        check=True,
        capture_output=True,
    )
    wheels.chmod(0o755)
    for wheel in wheels.iterdir():
        wheel.chmod(0o644)
    return wheels


def build_cli_wheels(folder: Path) -> Path:
    """Pack the image's AWS CLI and its dependencies into ``folder``/cli-wheels.

    Each installed distribution of the image except pip, setuptools and
    git-remote-codecommit (which are awscli 1.45.11 and the packages it
    requires) becomes a wheel of the files its RECORD lists inside
    site-packages, with the tag of its WHEEL file. Scripts outside
    site-packages and bytecode are left out. A folder that exists already is
    returned as it is.
    """
    wheels = folder / "cli-wheels"
    if wheels.exists():
        return wheels
    packages = next(studio_image().root.glob("lib/python3*/site-packages"))
    wheels.mkdir(mode=0o755, parents=True)
    for distribution in distributions(path=[str(packages)]):
        name = distribution.metadata["Name"]
        if _project(name) in _NOT_CLI_PROJECTS:
            continue
        path = _repack(distribution, packages, wheels)
        path.chmod(0o644)
    return wheels


# Distributions of the image that the AWS CLI does not need.
_NOT_CLI_PROJECTS = {"pip", "setuptools", HELPER_PROJECT}
# Files of an installed dist-info that a wheel does not carry.
_INSTALL_RECORDS = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}


def _repack(distribution: Distribution, packages: Path, wheels: Path) -> Path:
    name = distribution.metadata["Name"]
    version = distribution.version
    wheel_info = distribution.read_text("WHEEL") or ""
    tags = re.findall(r"^Tag: (\S+)$", wheel_info, re.MULTILINE)
    # The file name carries the compressed tag set, such as py2.py3-none-any.
    columns = zip(*(tag.split("-") for tag in tags), strict=True)
    tag = "-".join(".".join(dict.fromkeys(column)) for column in columns)
    path = wheels / f"{re.sub(r'[-_.]+', '_', name)}-{version}-{tag}.whl"
    records: list[tuple[str, str, str]] = []
    info_folder = ""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in distribution.files or []:
            relative = file.as_posix()
            parts = file.parts
            if parts[0] == ".." or "__pycache__" in parts or relative.endswith(".pyc"):
                continue
            if parts[0].endswith(".dist-info"):
                info_folder = parts[0]
                if parts[-1] in _INSTALL_RECORDS:
                    continue
            data = (packages / file).read_bytes()
            archive.writestr(relative, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
            records.append(
                (relative, f"sha256={digest.rstrip(b'=').decode()}", str(len(data)))
            )
        record_name = f"{info_folder}/RECORD"
        records.append((record_name, "", ""))
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(records)
        archive.writestr(record_name, text.getvalue())
    return path


def minimal_wheel(
    folder: Path, version: str = HELPER_VERSION, extra: bytes = b""
) -> Path:
    """Write a small wheel that passes the config's checks, without building.

    It contains an empty package and its metadata, and ``extra`` goes into a data
    file, so that wheels with different bytes can be made. Tests that only
    upload or hash a wheel use it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"git_remote_codecommit-{version}-py3-none-any.whl"
    info = f"git_remote_codecommit-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {HELPER_PROJECT}\nVersion: {version}\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in (
            ("git_remote_codecommit/__init__.py", b""),
            ("git_remote_codecommit/extra.txt", extra),
            (f"{info}/METADATA", metadata.encode()),
        ):
            # A fixed date keeps the bytes the same from run to run.
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return path


def helper_wheel(wheels: Path) -> Path:
    """Return the one git-remote-codecommit wheel of a folder."""
    (wheel,) = wheels.glob("git_remote_codecommit-*.whl")
    return wheel


class PackageIndex:
    """A PEP 503 simple index on 127.0.0.1 that serves the wheels of folders.

    ``url`` is the index URL for pip's ``--index-url``, ending in ``prefix``.
    ``requests`` lists the paths asked for, so a test can tell that pip used
    this index.

    With ``check_token``, every request needs HTTP Basic credentials
    ``aws:TOKEN``, as a CodeArtifact repository does: ``check_token(TOKEN)``
    returns None to accept the token, or the reason to reject it, and the
    request gets 401 otherwise. While it serves such a request, the index
    looks for the token in the command line of every process
    (/proc/PID/cmdline) and lists in ``token_in_cmdline`` the command lines
    that contain it, with the token replaced by ``***``.
    """

    def __init__(
        self,
        wheels: Path | Sequence[Path],
        *,
        prefix: str = "/simple/",
        check_token: Callable[[str], str | None] | None = None,
    ) -> None:
        self.folders = [wheels] if isinstance(wheels, Path) else list(wheels)
        self.prefix = prefix
        self.check_token = check_token
        self.requests: list[str] = []
        self.rejections: list[str] = []
        self.cmdline_scans = 0
        self.token_in_cmdline: list[str] = []
        self._server = LoopbackHTTPServer(_index_handler(self))

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.port}{self.prefix}"

    def __enter__(self) -> PackageIndex:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.close()

    def projects(self) -> dict[str, list[Path]]:
        """Return the wheels of each project, by normalized project name."""
        found: dict[str, list[Path]] = {}
        for folder in self.folders:
            for wheel in sorted(folder.glob("*.whl")):
                found.setdefault(_project(wheel.name.split("-")[0]), []).append(wheel)
        return found

    def page(self, path: str) -> tuple[int, str, bytes]:
        """Return the status, content type and body for a request path."""
        projects = self.projects()
        if path in (self.prefix, self.prefix.rstrip("/")):
            links = [f'<a href="{p}/">{p}</a>' for p in sorted(projects)]
            return 200, "text/html", ("\n".join(links) + "\n").encode()
        if path.startswith(self.prefix):
            project = _project(path.removeprefix(self.prefix).strip("/"))
            links = []
            for wheel in projects.get(project, []):
                digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
                name = html.escape(wheel.name)
                links.append(f'<a href="/files/{name}#sha256={digest}">{name}</a>')
            if links:
                return 200, "text/html", ("\n".join(links) + "\n").encode()
        if path.startswith("/files/"):
            name = path.removeprefix("/files/")
            for folder in self.folders:
                wheel = folder / name
                if wheel.parent == folder and wheel.is_file():
                    return 200, "application/octet-stream", wheel.read_bytes()
        return 404, "text/plain", b"not found\n"

    def authorize(self, header: str | None) -> str | None:
        """Return None when a request may be served, else the reason for 401."""
        if self.check_token is None:
            return None
        token = _basic_password(header, "aws")
        if token is None:
            return "no HTTP Basic credentials with user aws"
        self._scan_command_lines(token)
        return self.check_token(token)

    def _scan_command_lines(self, token: str) -> None:
        needle = token.encode()
        self.cmdline_scans += 1
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                data = cmdline.read_bytes()
            except OSError:
                continue  # The process has exited.
            if needle in data:
                shown = data.replace(needle, b"***").replace(b"\0", b" ")
                self.token_in_cmdline.append(shown.decode(errors="replace").strip())


def _project(name: str) -> str:
    """Return a project name normalized as PEP 503 does."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _basic_password(header: str | None, user: str) -> str | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, separator, password = decoded.partition(":")
    return password if separator and name == user and password else None


def _index_handler(index: PackageIndex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            index.requests.append(self.path)
            reason = index.authorize(self.headers.get("Authorization"))
            if reason is not None:
                index.rejections.append(f"{self.path}: {reason}")
                self._send(401, "text/plain", b"unauthorized\n")
                return
            status, content_type, body = index.page(self.path.split("?")[0])
            self._send(status, content_type, body)

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="package index"')
            self.end_headers()
            self.wfile.write(body)

    return Handler
