"""Any value in any config field is rejected, or written exactly and run as data.

For each field, hypothesis tries values made of shell metacharacters,
quotes, spaces, non-ASCII text and command substitutions. Each value is
either refused by validation, or rendered into a script whose foreground,
run with real bash, writes that value where it belongs and creates no
canary file, which an injected command would create.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import botocore.session
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootstrap.config import parse_config
from bootstrap.errors import ConfigError
from bootstrap.render import render_all

EXAMPLE = Path(__file__).resolve().parent.parent / "bootstrap.example.toml"
CANARY = "CANARY"
PAYLOADS = [
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f"; touch {CANARY}",
    f"' ; touch {CANARY} ; '",
    f'" ; touch {CANARY} ; "',
    f"\\'$(touch {CANARY})",
    f"${{IFS}}touch${{IFS}}{CANARY}",
    f"a\\\nb && touch {CANARY}",
    "]\n[profile evil]\n",
    "é ü 漢字",
]
FIELDS = [
    ("domain", "id"),
    ("domain", "region"),
    ("repositories", "name"),
    ("repositories", "region"),
    ("repositories", "account_id"),
    ("repositories", "role"),
    ("repositories", "profile"),
    ("repositories", "path"),
    ("repositories", "branch"),
    ("repositories", "transport"),
    ("prefix", None),
]

values = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(
        alphabet=st.sampled_from(list("abc-_./ $`'\"\\;|&(){}[]<>*?~#!é")), max_size=30
    ),
    st.builds(lambda a, b: a + b, st.sampled_from(PAYLOADS), st.text(max_size=10)),
)


def config_with(field: tuple[str, str | None], value: str) -> dict[str, Any]:
    with EXAMPLE.open("rb") as handle:
        data = tomllib.load(handle)
    table, key = field
    if key is None:
        data[table] = value
    elif table == "repositories":
        data[table][0][key] = value
    else:
        data[table][key] = value
    return data


def run_foreground(script: str, home: Path) -> subprocess.CompletedProcess[str]:
    path = home.parent / "script.sh"
    path.write_text(script)
    return subprocess.run(
        ["bash", str(path)],
        cwd=home,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=30,
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(field=st.sampled_from(FIELDS), value=values)
def test_value_rejected_or_inert(tmp_path_factory: Any, field: Any, value: str) -> None:
    try:
        config = parse_config(config_with(field, value))
    except ConfigError as error:
        assert error.issues
        return
    base = tmp_path_factory.mktemp("hostile")
    home = base / "home"
    home.mkdir()
    result = run_foreground(render_all(config)[0].text, home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(base.rglob(CANARY)) == []

    repository = config.repositories[0]
    session = botocore.session.Session()
    session.set_config_variable("config_file", str(home / ".aws" / "config"))
    profile = session.full_config["profiles"][repository.profile]
    assert profile["region"] == repository.region
    assert profile["role_arn"] == repository.role_arn
    written = read_sync_data(home, "SB_PATHS", "SB_BRANCHES", "SB_NAMES")
    assert written == [repository.path, repository.branch or "", repository.name]


def read_sync_data(home: Path, *names: str) -> list[str]:
    """Read arrays back from the sync program as bash itself parses them."""
    program = home / ".studio-bootstrap" / "sync.sh"
    script = 'eval "$(grep "^declare " "$1")"; shift; for n; do declare -n a=$n; '
    script += 'printf "%s\\0" "${a[0]}"; unset -n a; done'
    result = subprocess.run(
        ["bash", "-c", script, "read", str(program), *names],
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().split("\0")[:-1]
