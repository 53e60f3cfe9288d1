"""Run a command on each selected domain, with progress, isolation and a summary.

With one domain, a command prints what it always printed and a failure ends
it. With several, the domains run one after another (or N at a time with
--jobs): progress goes to stderr, a failed domain is recorded while the
others go on, and a table (or one JSON document) sums up every domain.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

from bootstrap.config import Config, Rollout
from bootstrap.errors import BootstrapError, ConfigError, ConfigIssue

logger = logging.getLogger(__name__)

FAILED = "failed"
SKIPPED = "skipped"
EXIT_INTERRUPTED = 130


@dataclass
class Outcome:
    """The result of a command on one domain, for the summary."""

    result: str  # for example "up to date", "changed", "planned", "failed"
    detail: str = ""
    # The domain's plan, status or checks, for JSON output.
    data: Any = None
    failed: bool = False


@dataclass
class Output:
    """The output channel of one domain.

    In JSON mode, lines for people go to stderr and data goes to stdout as
    one document. With several domains, the data is kept for the summary.
    """

    json_mode: bool
    keep: bool
    kept: list[Any] = field(default_factory=list)
    # Lines held back while other domains run at the same time; None prints
    # each line at once.
    held: list[str] | None = None

    def say(self, line: str) -> None:
        """Print a line for people."""
        if self.held is not None:
            self.held.append(line)
        else:
            print(line, file=sys.stderr if self.json_mode else sys.stdout)

    def release(self, header: str) -> None:
        """Print the held lines as one block under a header."""
        if self.json_mode:
            if self.held:
                _write(sys.stderr, self.held)
            return
        _write(sys.stdout, [header, *(self.held or []), ""])

    def data(self, value: Any) -> None:
        """Emit the JSON data of this domain."""
        if self.keep:
            self.kept.append(value)
        else:
            print(json.dumps(value, indent=2, sort_keys=True))


Action = Callable[[Config, Output], Outcome]


def select(rollout: Rollout, names: Sequence[str] | None) -> tuple[Config, ...]:
    """Return the domains named with --domain, or all of them."""
    return rollout.select(list(names) if names else None)


def one_domain(rollout: Rollout, names: Sequence[str] | None, command: str) -> Config:
    """Return the one domain selected for a command that renders one domain's files."""
    configs = select(rollout, names)
    if len(configs) > 1:
        labels = ", ".join(c.domain.label for c in configs)
        rule = f"{command} acts on one domain at a time; choose it with --domain"
        raise ConfigError(rollout.source, [ConfigIssue("--domain", rule, labels)])
    return configs[0]


def lifecycle_folder(config: Config, rollout: Rollout, base: Path) -> Path:
    """Return the folder of a domain's scripts: the base, or base/NAME for several."""
    return base / config.domain.label if rollout.several else base


def run_each(
    rollout: Rollout,
    names: Sequence[str] | None,
    verb: str,
    json_mode: bool,
    action: Action,
    jobs: int = 1,
) -> int:
    """Run ``action`` on each selected domain and return the exit code.

    With ``jobs`` above 1, that many domains run at the same time; each
    domain's lines are then printed as one block when it finishes.
    """
    configs = select(rollout, names)
    if not rollout.several:
        outcome = action(configs[0], Output(json_mode, keep=False))
        return 1 if outcome.failed else 0

    total = len(configs)
    results: dict[int, tuple[Outcome, float]] = {}
    lock = threading.Lock()

    def run_one(index: int) -> None:
        config = configs[index]
        where = _where(config)
        _progress(f"[{index + 1}/{total}] {where}: {verb}")
        output = Output(json_mode, keep=True, held=[] if jobs > 1 else None)
        if jobs == 1 and not json_mode:
            print(f"== {where}")
        started = time.monotonic()
        outcome = _isolated(action, config, output)
        if output.kept:
            outcome.data = output.kept[-1]
        elapsed = time.monotonic() - started
        with lock:
            results[index] = (outcome, elapsed)
            if jobs > 1:
                output.release(f"== {where}")
            elif not json_mode:
                print()
            _progress(
                f"[{index + 1}/{total}] {where}: {outcome.result} ({elapsed:.1f} s)"
            )

    # Domains run in worker threads, so that Ctrl-C reaches this thread
    # while it waits: domains in the middle of a change finish it, and the
    # ones not started yet are skipped.
    interrupted = False
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="domain")
    futures = [pool.submit(run_one, index) for index in range(total)]
    try:
        for future in futures:
            future.result()
    except KeyboardInterrupt:
        interrupted = True
        _progress(
            "interrupted: finishing the domains in progress (an update waits for "
            "InService up to --wait-timeout) and skipping the rest; press Ctrl-C "
            "again to stop at once"
        )
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        except KeyboardInterrupt:
            _stop_at_once(configs, results, json_mode)
    pool.shutdown(wait=True)

    outcomes = [
        (config, *results.get(index, (Outcome(SKIPPED, "interrupted"), 0.0)))
        for index, config in enumerate(configs)
    ]
    _summary(outcomes, json_mode)
    if interrupted:
        return EXIT_INTERRUPTED
    return 1 if any(outcome.failed for _, outcome, _ in outcomes) else 0


def _where(config: Config) -> str:
    domain = config.domain
    return f"{domain.label} ({domain.id}, {domain.region})"


def _isolated(action: Action, config: Config, output: Output) -> Outcome:
    """Run one domain; turn its failure into an outcome so the others run."""
    try:
        return action(config, output)
    except ConfigError as exc:
        detail = "; ".join(str(issue) for issue in exc.issues)
    except BootstrapError as exc:
        detail = str(exc)
    except Exception as exc:  # one domain's bug must not stop the others
        logger.debug("domain %s failed", config.domain.label, exc_info=True)
        detail = f"unexpected {type(exc).__name__}: {exc} (run with -v for details)"
    write_error([f"error: {config.domain.label}: {detail}"])
    return Outcome(FAILED, detail, failed=True)


_OUTPUT_LOCK = threading.Lock()


def _write(stream: TextIO, lines: list[str]) -> None:
    """Write whole lines at once, so that threads never share a line."""
    with _OUTPUT_LOCK:
        stream.write("".join(f"{line}\n" for line in lines))
        stream.flush()


def _progress(line: str) -> None:
    _write(sys.stderr, [line])


def write_error(lines: list[str]) -> None:
    """Write lines to stderr in one piece, whichever thread calls."""
    _write(sys.stderr, lines)


def _stop_at_once(
    configs: tuple[Config, ...],
    results: dict[int, tuple[Outcome, float]],
    json_mode: bool,
) -> NoReturn:
    """Print the summary and leave, without waiting for domains in progress.

    A domain stopped in the middle may have part of its changes; running the
    command again finishes them.
    """
    outcomes = []
    for index, config in enumerate(configs):
        stopped = Outcome(SKIPPED, "stopped; run the command again to finish")
        outcomes.append((config, *results.get(index, (stopped, 0.0))))
    _summary(outcomes, json_mode)
    sys.stdout.flush()
    sys.stderr.flush()
    # Worker threads cannot be interrupted, and a normal exit would wait for them.
    os._exit(EXIT_INTERRUPTED)


def _summary(outcomes: list[tuple[Config, Outcome, float]], json_mode: bool) -> None:
    if json_mode:
        document = {
            "domains": [
                {
                    "name": config.domain.label,
                    "id": config.domain.id,
                    "region": config.domain.region,
                    "result": outcome.result,
                    "detail": outcome.detail,
                    "seconds": round(elapsed, 3),
                    "data": outcome.data,
                }
                for config, outcome, elapsed in outcomes
            ]
        }
        print(json.dumps(document, indent=2, sort_keys=True))
        return
    rows = [("DOMAIN", "ID", "REGION", "RESULT", "DETAIL")]
    rows += [
        (c.domain.label, c.domain.id, c.domain.region, o.result, o.detail)
        for c, o, _ in outcomes
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        print("  ".join([*cells, row[4]]).rstrip())
    failed = sum(1 for _, o, _ in outcomes if o.failed)
    skipped = sum(1 for _, o, _ in outcomes if o.result == SKIPPED)
    noun = "domain" if len(outcomes) == 1 else "domains"
    counts = [f"{len(outcomes)} {noun}", f"{failed} failed"]
    if skipped:
        counts.append(f"{skipped} skipped")
    print(", ".join(counts))
