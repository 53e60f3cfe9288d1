"""A wheel of git-remote-codecommit built offline, and a package index serving it.

The wheel is built from the copy in the studio image, so no package index is
asked. Tests install it from a folder of wheels, from S3 or from the index.
"""

from __future__ import annotations

import hashlib
import html
import shutil
import subprocess
import zipfile
from http.server import BaseHTTPRequestHandler
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


def minimal_wheel(
    folder: Path, version: str = HELPER_VERSION, extra: bytes = b""
) -> Path:
    """Write a small wheel that passes the config's checks, without building.

    It holds an empty package and its metadata; ``extra`` goes into a data
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
    """A PEP 503 simple index on 127.0.0.1 that serves the wheels of a folder.

    ``url`` is the index URL for pip's ``--index-url``. ``requests`` lists
    the paths asked for, so a test can tell that pip used this index.
    """

    def __init__(self, wheels: Path) -> None:
        self.wheels = wheels
        self.requests: list[str] = []
        self._server = LoopbackHTTPServer(_index_handler(self))

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.port}/simple/"

    def __enter__(self) -> PackageIndex:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.close()

    def page(self, path: str) -> tuple[int, str, bytes]:
        """Return the status, content type and body for a request path."""
        project = HELPER_PROJECT
        if path in ("/simple/", "/simple"):
            body = f'<a href="{project}/">{project}</a>\n'
            return 200, "text/html", body.encode()
        if path.rstrip("/") == f"/simple/{project}":
            links = []
            for wheel in sorted(self.wheels.glob("*.whl")):
                digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
                name = html.escape(wheel.name)
                links.append(f'<a href="/files/{name}#sha256={digest}">{name}</a>')
            return 200, "text/html", ("\n".join(links) + "\n").encode()
        if path.startswith("/files/"):
            wheel = self.wheels / path.removeprefix("/files/")
            if wheel.parent == self.wheels and wheel.is_file():
                return 200, "application/octet-stream", wheel.read_bytes()
        return 404, "text/plain", b"not found\n"


def _index_handler(index: PackageIndex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            index.requests.append(self.path)
            status, content_type, body = index.page(self.path.split("?")[0])
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
