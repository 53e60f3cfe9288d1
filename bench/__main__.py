"""Run every benchmark and write docs/benchmarks.md and docs/benchmarks.png.

    python -m bench [--output-dir docs]
    python -m bench --only domains

Needs root, so that scripts run as uid 1000 as in Studio, and the packages
of the ``bench`` extra; ``make bench`` installs them. ``--only domains``
runs only the several-domains benchmark, which needs neither: it prints its
section and targets and writes no file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from bench.configs import ROOT


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=ROOT / "docs",
        help="folder for benchmarks.md and benchmarks.png (default: docs)",
    )
    parser.add_argument(
        "--only",
        choices=["domains"],
        help="run only this measurement, print its report section and targets "
        "to stdout, and write no file",
    )
    arguments = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("moto", "werkzeug", "botocore", "boto3", "urllib3", "bootstrap"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if arguments.only == "domains":
        return _domains_only()
    if os.geteuid() != 0:
        print(
            "python -m bench needs root: scripts run as uid 1000 (sagemaker-user) "
            "as in Studio. Run make bench as root.",
            file=sys.stderr,
        )
        return 2

    # Imported here so that --help works without the bench extra.
    from bench.chart import draw_chart
    from bench.report import CHART_NAME, write_report
    from bench.suite import environment_is_isolated, run_suite
    from bench.targets import judge

    environment_is_isolated()
    results = run_suite()
    targets = judge(results)
    output = arguments.output_dir
    output.mkdir(parents=True, exist_ok=True)
    draw_chart(results, targets, output / CHART_NAME)
    (output / "benchmarks.md").write_text(write_report(results, targets))
    for target in targets:
        print(
            f"{'met   ' if target.met else 'MISSED'}  {target.name}: {target.measured}"
        )
    print(f"wrote {output / 'benchmarks.md'} and {output / CHART_NAME}")
    return 0


def _domains_only() -> int:
    """Run the several-domains benchmark alone and print its section and targets."""
    from bench.report import several_domains_reason, several_domains_section
    from bench.several_domains import measure_alone
    from bench.suite import environment_is_isolated
    from bench.targets import judge_domains

    environment_is_isolated()
    several = measure_alone()
    targets = judge_domains(several)
    print(several_domains_section(several))
    if not all(target.met for target in targets):
        print(several_domains_reason(several) + "\n")
    for target in targets:
        print(
            f"{'met   ' if target.met else 'MISSED'}  {target.name}: {target.measured}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
