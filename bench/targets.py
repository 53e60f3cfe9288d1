"""The targets of the benchmark, judged from the results."""

from __future__ import annotations

from dataclasses import dataclass

from bench.several_domains import SeveralDomains
from bench.suite import Results
from bootstrap.render import CONTENT_LIMIT

# App-start delay of ours at most this fraction of the baseline's, at 50 MiB.
DELAY_FRACTION = 1 / 20
DELAY_SIZE_MIB = 50
# "Flat in the repository's size": the largest median of our app-start delay
# over the sizes is at most this many times the smallest.
FLAT_FACTOR = 1.5
READY_FACTOR = 1.1
WARM_FACTOR = 1.2
HOOK_SECONDS = 0.005
REPOSITORIES_THAT_FIT = 10
REGISTER_FACTOR = 3.0
# register --jobs DOMAINS_JOBS on the several-domains config takes at most
# this fraction of the sequential time. With 12 domains and 4 jobs, overlapped
# waits alone would give 3/12, and the margin allows for work that does not
# overlap.
DOMAINS_JOBS = 4
DOMAINS_FRACTION = 1 / 3


@dataclass(frozen=True)
class Target:
    """One target: its goal, the measured value, and whether it was met."""

    name: str
    goal: str
    measured: str
    met: bool


def judge(results: Results) -> list[Target]:
    return [
        *_delay(results),
        *_ready(results),
        *_warm(results),
        _hook(results),
        _size(results),
        *_control(results),
        *judge_domains(results.domains),
    ]


def _delay(results: Results) -> list[Target]:
    at = next(
        f for f in results.first_starts if f.repository.size_mib == DELAY_SIZE_MIB
    )
    ratio = at.ours_foreground.median / at.baseline.median
    medians = [f.ours_foreground.median for f in results.first_starts]
    spread = max(medians) / min(medians)
    return [
        Target(
            f"App-start delay at {DELAY_SIZE_MIB} MiB",
            "at most 1/20 of the baseline",
            f"{ratio:.3f} of the baseline (1/{1 / ratio:.0f})",
            ratio <= DELAY_FRACTION,
        ),
        Target(
            "App-start delay flat in size",
            f"largest median at most {FLAT_FACTOR}x the smallest",
            f"{spread:.2f}x (" + ", ".join(f"{m * 1000:.0f} ms" for m in medians) + ")",
            spread <= FLAT_FACTOR,
        ),
    ]


def _ready(results: Results) -> list[Target]:
    targets = []
    for first in results.first_starts:
        ratio = first.ours_ready.median / first.plain_clone.median
        targets.append(
            Target(
                f"Repository ready, {first.repository.label}",
                f"at most {READY_FACTOR}x a plain git clone",
                f"{ratio:.2f}x",
                ratio <= READY_FACTOR,
            )
        )
    return targets


def _warm(results: Results) -> list[Target]:
    targets = []
    for warm in results.warm:
        ratio = warm.sync.median / warm.fetch.median
        expected_installs = 1 if warm.lib_unchanged is not None else 0
        reinstalled = warm.installs > expected_installs or warm.lib_unchanged is False
        targets.append(
            Target(
                f"Warm sync, helper {warm.helper}",
                f"at most {WARM_FACTOR}x a plain git fetch, no reinstall",
                f"{ratio:.2f}x; " + ("reinstalled" if reinstalled else "no reinstall"),
                ratio <= WARM_FACTOR and not reinstalled,
            )
        )
    return targets


def _hook(results: Results) -> Target:
    assert results.hook is not None
    added = results.hook.with_hook.median - results.hook.without_hook.median
    return Target(
        "Terminal hook",
        f"at most {HOOK_SECONDS * 1000:.0f} ms added to a shell start",
        f"{added * 1000:+.2f} ms",
        added <= HOOK_SECONDS,
    )


def _size(results: Results) -> Target:
    fitting = [s.repositories for s in results.sizes if s.fits]
    at_ten = next(s for s in results.sizes if s.repositories == REPOSITORIES_THAT_FIT)
    return Target(
        "Script size",
        f"at least {REPOSITORIES_THAT_FIT} repositories within "
        f"{CONTENT_LIMIT:,} base64 characters",
        f"{at_ten.base64_characters:,} characters for {REPOSITORIES_THAT_FIT}; "
        f"of the counts measured, only {', '.join(map(str, fitting)) or 'none'} fit",
        at_ten.fits,
    )


def _control(results: Results) -> list[Target]:
    control = results.control
    assert control is not None
    unchanged = next(c for c in control.calls if c.label.startswith("re-register"))
    ratio = control.attach.median / control.reference.median
    return [
        Target(
            "Re-register with no change",
            "no mutating call",
            f"{unchanged.mutating_total} mutating, {unchanged.reads_total:,} reads",
            unchanged.mutating_total == 0,
        ),
        Target(
            f"register on {control.profiles:,} user profiles",
            f"at most {REGISTER_FACTOR:.0f}x listing and describing them",
            f"{ratio:.2f}x",
            ratio <= REGISTER_FACTOR,
        ),
    ]


def judge_domains(several: SeveralDomains | None) -> list[Target]:
    """Judge the targets of section 7, also for ``python -m bench --only domains``."""
    assert several is not None

    sequential = several.attach[1].median
    parallel = several.attach[DOMAINS_JOBS].median
    fraction = parallel / sequential
    fewest = min(run.attached for run in several.runs)
    everywhere = fewest == several.domains
    attached = (
        f"all {several.domains} attached in every run"
        if everywhere
        else f"only {fewest} of {several.domains} attached in one run"
    )

    unchanged = several.unchanged_runs
    mutating = max(run.mutating_total for run in unchanged)
    reads = max(run.reads_total for run in unchanged)

    return [
        Target(
            f"Several domains, register --jobs {DOMAINS_JOBS}",
            f"at most 1/{1 / DOMAINS_FRACTION:.0f} of --jobs 1 on "
            f"{several.domains} domains, attached to every domain",
            f"{fraction:.2f} of --jobs 1 ({parallel:.1f} s against "
            f"{sequential:.1f} s); {attached}",
            fraction <= DOMAINS_FRACTION and everywhere,
        ),
        Target(
            "Several domains, re-register with no change",
            "no mutating call",
            f"{mutating} mutating, {reads:,} reads (max over {len(unchanged)} runs)",
            mutating == 0,
        ),
    ]
