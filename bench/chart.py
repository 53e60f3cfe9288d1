"""The one-picture summary of the benchmark: seven small bar charts, one per target."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.suite import Results
from bench.targets import (
    DOMAINS_FRACTION,
    DOMAINS_JOBS,
    HOOK_SECONDS,
    REGISTER_FACTOR,
    Target,
)
from bootstrap.render import CONTENT_LIMIT

OURS = "#1f77b4"
CHANGED = "#2ca02c"
REFERENCE = "#9e9e9e"
LIMIT = "#d62728"


def draw_chart(results: Results, targets: list[Target], path: Path) -> None:
    figure = plt.figure(figsize=(17, 8.2))
    # Three panels in the top row and four in the bottom one, on 12 columns.
    grid = figure.add_gridspec(2, 12)
    _delay(figure.add_subplot(grid[0, 0:4]), results, targets)
    _ready(figure.add_subplot(grid[0, 4:8]), results, targets)
    _warm(figure.add_subplot(grid[0, 8:12]), results, targets)
    _hook(figure.add_subplot(grid[1, 0:3]), results, targets)
    _size(figure.add_subplot(grid[1, 3:6]), results, targets)
    _control(figure.add_subplot(grid[1, 6:9]), results, targets)
    _domains(figure.add_subplot(grid[1, 9:12]), results, targets)
    figure.suptitle(
        "studio-bootstrap in the local sandbox: medians; "
        "blue is ours, grey the reference, green ours with the proposed change",
        fontsize=11,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.96))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _verdict(targets: list[Target], prefix: str) -> str:
    chosen = [t for t in targets if t.name.startswith(prefix)]
    met = sum(t.met for t in chosen)
    return "target met" if met == len(chosen) else f"{len(chosen) - met} missed"


def _grouped(
    axis: Axes,
    labels: list[str],
    series: list[tuple[str, str, list[float]]],
) -> None:
    width = 0.8 / len(series)
    for index, (name, color, values) in enumerate(series):
        positions = [
            i + (index - (len(series) - 1) / 2) * width for i in range(len(labels))
        ]
        bars = axis.bar(positions, values, width, label=name, color=color)
        # NaN marks a group without this series: no bar and no label.
        texts = [f"{v:.2f}" if v == v else "" for v in values]
        axis.bar_label(bars, labels=texts, fontsize=7, padding=1)
    axis.set_xticks(range(len(labels)), labels)
    highest = max(v for _, _, values in series for v in values if v == v)
    axis.set_ylim(0, highest * 1.45)
    axis.legend(fontsize=8, loc="upper left")


def _delay(axis: Axes, results: Results, targets: list[Target]) -> None:
    labels = [f.repository.label for f in results.first_starts]
    _grouped(
        axis,
        labels,
        [
            ("baseline", REFERENCE, [f.baseline.median for f in results.first_starts]),
            ("ours", OURS, [f.ours_foreground.median for f in results.first_starts]),
        ],
    )
    axis.set_ylabel("seconds the app start waits")
    axis.set_title(
        f"1. App-start delay ({_verdict(targets, 'App-start')})", fontsize=10
    )


def _ready(axis: Axes, results: Results, targets: list[Target]) -> None:
    firsts = results.first_starts
    series = [
        ("plain git clone", REFERENCE, [f.plain_clone.median for f in firsts]),
        ("ours", OURS, [f.ours_ready.median for f in firsts]),
    ]
    if results.changed_ready:
        series.append(
            (
                "ours, changed",
                CHANGED,
                [results.changed_ready[f.repository.size_mib].median for f in firsts],
            )
        )
    _grouped(axis, [f.repository.label for f in firsts], series)
    axis.set_ylabel("seconds from app start to clone")
    axis.set_title(
        f"2. Repository ready ({_verdict(targets, 'Repository ready')})", fontsize=10
    )


def _warm(axis: Axes, results: Results, targets: list[Target]) -> None:
    labels = [
        "helper on PATH" if w.lib_unchanged is None else "helper installed\nby the sync"
        for w in results.warm
    ]
    series = [
        ("plain git fetch", REFERENCE, [w.fetch.median for w in results.warm]),
        ("our sync", OURS, [w.sync.median for w in results.warm]),
    ]
    if len(results.changed_warm_sync):
        series.append(
            (
                "our sync, changed",
                CHANGED,
                [results.changed_warm_sync.median]
                + [float("nan")] * (len(results.warm) - 1),
            )
        )
    _grouped(axis, labels, series)
    axis.set_ylabel("seconds")
    axis.set_title(f"3. Warm start ({_verdict(targets, 'Warm sync')})", fontsize=10)


def _hook(axis: Axes, results: Results, targets: list[Target]) -> None:
    hook = results.hook
    assert hook is not None
    values = [hook.without_hook.median * 1000, hook.with_hook.median * 1000]
    bars = axis.barh(["without hook", "with hook"], values, color=[REFERENCE, OURS])
    axis.bar_label(bars, fmt="%.2f ms", fontsize=8, padding=2)
    axis.axvline(
        values[0] + HOOK_SECONDS * 1000, color=LIMIT, linestyle="--", label="+5 ms"
    )
    axis.set_xlabel("milliseconds per bash -i -c true on a terminal")
    axis.legend(fontsize=8, loc="lower right")
    axis.set_xlim(0, max(values[0] + HOOK_SECONDS * 1000, values[1]) * 1.35)
    axis.set_title(f"4. Terminal hook ({_verdict(targets, 'Terminal')})", fontsize=10)


def _size(axis: Axes, results: Results, targets: list[Target]) -> None:
    labels = [str(s.repositories) for s in results.sizes]
    colors = [OURS if s.fits else LIMIT for s in results.sizes]
    bars = axis.bar(labels, [s.base64_characters for s in results.sizes], color=colors)
    axis.bar_label(bars, fmt="{:,.0f}", fontsize=8, padding=1)
    axis.axhline(CONTENT_LIMIT, color=LIMIT, linestyle="--", label="16,384 limit")
    axis.set_ylim(0, CONTENT_LIMIT * 1.3)
    axis.set_xlabel("repositories in the config")
    axis.set_ylabel("base64 characters of the script")
    axis.legend(fontsize=8, loc="upper left")
    axis.set_title(f"5. Script size ({_verdict(targets, 'Script size')})", fontsize=10)


def _control(axis: Axes, results: Results, targets: list[Target]) -> None:
    control = results.control
    assert control is not None
    labels = ["list and\ndescribe", "register,\nno change", "register,\nattach"]
    values = [control.reference.median, control.unchanged.median, control.attach.median]
    bars = axis.bar(labels, values, color=[REFERENCE, OURS, OURS])
    axis.set_ylim(0, max(*values, control.reference.median * REGISTER_FACTOR) * 1.3)
    axis.bar_label(bars, fmt="%.2f s", fontsize=8, padding=1)
    axis.axhline(
        control.reference.median * REGISTER_FACTOR,
        color=LIMIT,
        linestyle="--",
        label="3x list and describe",
    )
    axis.set_ylabel("seconds")
    axis.legend(fontsize=8, loc="upper left")
    verdict = (
        "target met"
        if all(t.met for t in targets if t.name.startswith(("register", "Re-register")))
        else "missed"
    )
    axis.set_title(
        f"6. Control plane, {control.profiles:,} user profiles ({verdict})",
        fontsize=10,
    )


def _domains(axis: Axes, results: Results, targets: list[Target]) -> None:
    several = results.domains
    assert several is not None
    labels = [f"--jobs {jobs}" for jobs in several.attach] + ["no change,\n--jobs 1"]
    values = [samples.median for samples in several.attach.values()]
    values.append(several.unchanged.median)
    bars = axis.bar(labels, values, color=OURS)
    axis.bar_label(bars, fmt="%.1f s", fontsize=8, padding=1)
    limit = several.attach[1].median * DOMAINS_FRACTION
    axis.axhline(
        limit,
        color=LIMIT,
        linestyle="--",
        label=f"1/{1 / DOMAINS_FRACTION:.0f} of --jobs 1, for --jobs {DOMAINS_JOBS}",
    )
    axis.set_ylim(0, max(values) * 1.3)
    axis.set_ylabel("seconds per register")
    axis.legend(fontsize=8, loc="upper right")
    axis.set_title(
        f"7. {several.domains} domains in {len(several.accounts)} accounts "
        f"({_verdict(targets, 'Several domains')})",
        fontsize=10,
    )
