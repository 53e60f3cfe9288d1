"""The lifecycle script that admins commonly use today, to compare against.

Everything runs in the foreground, so the app waits for all of it. pip
installs git-remote-codecommit from the bench's wheelhouse with no index, so
that every run does the same work. Then ``~/.aws/config`` and
``~/.gitconfig`` are overwritten, and the repository is cloned, or pulled
when present.
"""

from __future__ import annotations

from pathlib import Path

from bootstrap.config import Repository
from bootstrap.render import aws_block, shell_quote

TEMPLATE = """\
#!/bin/bash
# Baseline lifecycle script: install the helper, overwrite the AWS and Git
# settings, then clone the repository, all before the app may start.
set -eu
python3 -m pip install --no-index --find-links {wheelhouse} git-remote-codecommit
mkdir -p ~/.aws
printf '%s\\n' {aws_config} >~/.aws/config
printf '%s\\n' {git_config} >~/.gitconfig
cd ~
if [ -d {path}/.git ]; then
  git -C {path} pull --ff-only
else
  git clone {url} {path}
fi
"""

GIT_CONFIG = """\
[credential]
\thelper = !aws codecommit credential-helper $@
\tUseHttpPath = true"""


def baseline_script(repository: Repository, wheelhouse: Path) -> str:
    """Render the baseline script for one repository, every value quoted."""
    return TEMPLATE.format(
        wheelhouse=shell_quote(wheelhouse),
        aws_config=shell_quote(aws_block([repository])),
        git_config=shell_quote(GIT_CONFIG),
        path=shell_quote(repository.path),
        url=shell_quote(repository.codecommit_url),
    )
