"""Run the command line with ``python -m bootstrap``."""

import sys

from bootstrap.cli import run

sys.exit(run())
