"""The whole benchmark: builds the cache, starts the stack, runs every measurement."""

from __future__ import annotations

import datetime
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import profiles
from bench.cache import BenchCache, ensure_container, ensure_wheelhouse
from bench.configs import ROOT, example_data
from bench.control_plane import ControlPlane, measure_control_plane
from bench.data_plane import (
    APP_TYPE,
    LIFECYCLE_USER,
    RUN_USER,
    Bench,
    BenchError,
    FirstStart,
    HookCost,
    WarmStart,
    measure_changed_script,
    measure_first_starts,
    measure_harness_floor,
    measure_hook,
    measure_warm_starts,
    wait_for_status,
)
from bench.machine import Machine, describe_machine
from bench.repositories import CachedRepository, ensure_repository, publish, read_packs
from bench.script_size import (
    Packing,
    PartCost,
    ScriptSize,
    measure_packing,
    measure_part_costs,
    measure_sizes,
)
from bench.several_domains import SeveralDomains, measure_several_domains
from bench.timing import Samples, timed
from bootstrap.config import parse_config
from bootstrap.render import pack, render_all
from bootstrap.sandbox.runner import run_in_home, run_lifecycle
from bootstrap.sandbox.stack import LocalStack

logger = logging.getLogger(__name__)

# Repository sizes in MiB and the number of timed first starts of each.
FIRST_START_RUNS = {1: 7, 50: 7, 200: 5}
WARM_SIZE_MIB = 50
WARM_RUNS = 7
FLOOR_RUNS = 7
HOOK_RUNS = 100
HOOK_LOOP_COUNT = 1000
CHANGE_RUNS = 5
SIZE_REPOSITORIES = 10

# The credential option of sb_git. The codecommit transport puts signed
# credentials in the URL, so git needs no helper. The proposed change drops
# this option and keeps only the reset before it.
HELPER_OPTION = ' -c "credential.helper=$helper"'


@dataclass
class Profiles:
    """Measured explanations: traced steps, process counts, helper time."""

    process_start: float = 0.0
    foreground: profiles.StepProfile | None = None
    foreground_processes: Counter[str] | None = None
    warm_sync: profiles.StepProfile | None = None
    warm_sync_processes: Counter[str] | None = None
    helper_in_fetch: float | None = None
    fetch_with_gitconfig: Samples = field(default_factory=Samples)


@dataclass
class Results:
    """Everything the report shows."""

    machine: Machine
    started: datetime.datetime
    cache: Path
    seconds: float = 0.0
    floor: Samples = field(default_factory=Samples)
    first_starts: list[FirstStart] = field(default_factory=list)
    changed_ready: dict[int, Samples] = field(default_factory=dict)
    changed_applies: bool = False
    warm: list[WarmStart] = field(default_factory=list)
    changed_warm_sync: Samples = field(default_factory=Samples)
    hook: HookCost | None = None
    sizes: list[ScriptSize] = field(default_factory=list)
    # Explanations of the script size, for the repository count of the target.
    packing: Packing | None = None
    part_costs: list[PartCost] = field(default_factory=list)
    control: ControlPlane | None = None
    domains: SeveralDomains | None = None
    profiles: Profiles = field(default_factory=Profiles)
    templates_changed: bool = False
    # One-minute load averages at the start and at the end of the run.
    load: tuple[float, float] = (0.0, 0.0)


def run_suite() -> Results:
    started = time.perf_counter()
    cache = BenchCache.default()
    results = Results(
        describe_machine(ROOT), datetime.datetime.now(datetime.timezone.utc), cache.root
    )
    digest_before = _script_digest()
    load_before = os.getloadavg()[0]
    wheelhouse = ensure_wheelhouse(cache)
    container = ensure_container(cache)
    repositories = [ensure_repository(cache, size) for size in FIRST_START_RUNS]
    results.sizes = measure_sizes()
    results.packing = measure_packing(SIZE_REPOSITORIES)
    results.part_costs = measure_part_costs(SIZE_REPOSITORIES)

    with LocalStack() as stack:
        execution_role = stack.create_execution_role()
        repo_role = stack.create_repo_role(trusted_arns=[execution_role])
        bench = Bench(stack, repo_role, wheelhouse, container)
        for repository in repositories:
            publish(stack.codecommit, repository, repo_role)
        results.floor = measure_harness_floor(bench, FLOOR_RUNS)
        _warm_up(bench, repositories[0])

        for repository in repositories:
            read_packs(repository)
            runs = FIRST_START_RUNS[repository.size_mib]
            results.first_starts.append(measure_first_starts(bench, repository, runs))

        warm_repository = next(r for r in repositories if r.size_mib == WARM_SIZE_MIB)
        for self_install in (False, True):
            results.warm.append(
                measure_warm_starts(
                    bench, warm_repository, WARM_RUNS, self_install=self_install
                )
            )
        image_home = results.warm[0].home
        assert image_home is not None
        results.hook = measure_hook(image_home, HOOK_RUNS, HOOK_LOOP_COUNT)
        _profile(bench, results, repositories[0], warm_repository)
        _measure_change(bench, results, repositories, warm_repository)
        for warm in results.warm:
            if warm.home is not None:
                warm.home.remove()

        results.control = measure_control_plane(
            stack, execution_role, repo_role, bench.folder
        )
        results.domains = measure_several_domains(
            stack, bench.folder / "several-domains"
        )

    results.templates_changed = _script_digest() != digest_before
    results.load = (load_before, os.getloadavg()[0])
    results.seconds = time.perf_counter() - started
    return results


def _warm_up(bench: Bench, repository: CachedRepository) -> None:
    """Start once untimed, so that Python's bytecode caches and git are warm."""
    script, _ = bench.ours(repository.name)
    home = bench.new_home("warm-up")
    try:
        run_lifecycle(script, home, app_type=APP_TYPE, user=LIFECYCLE_USER)
        wait_for_status(home, bench.repository(repository.name).profile)
    finally:
        home.remove()


def _profile(
    bench: Bench,
    results: Results,
    small: CachedRepository,
    warm: CachedRepository,
) -> None:
    """Trace a first start and a warm sync, count their processes, time the helper."""
    found = results.profiles
    home = bench.new_home("profile")
    try:
        found.process_start = profiles.process_start_seconds(home)
        _, script = bench.ours(small.name)
        source = bench.folder / f"ours-{small.name}.source.sh"
        source.write_text(script.source)
        found.foreground = profiles.trace_steps(home, source, "sb_step")
    finally:
        home.remove()

    home = bench.new_home("profile")
    try:
        packed, _ = bench.ours(small.name)
        found.foreground_processes = profiles.count_processes(
            home, ["bash", str(packed)]
        )
    finally:
        home.remove()

    warm_home = results.warm[0].home
    assert warm_home is not None
    config = bench.repository(warm.name)
    sync = warm_home.path / ".studio-bootstrap" / "sync.sh"
    found.warm_sync = profiles.trace_steps(warm_home, sync, "sb_sync_repo")
    found.warm_sync_processes = profiles.count_processes(warm_home, ["bash", str(sync)])
    fetch = ["git", "-C", config.path, "fetch", "origin"]
    found.helper_in_fetch = profiles.helper_child_seconds(warm_home, fetch)
    for _ in range(WARM_RUNS):
        seconds, run = timed(lambda: run_in_home(warm_home, fetch, user=RUN_USER))
        if run.returncode != 0:
            raise BenchError(f"git fetch with ~/.gitconfig failed: {run.stderr}")
        found.fetch_with_gitconfig.add(seconds)


def _measure_change(
    bench: Bench,
    results: Results,
    repositories: list[CachedRepository],
    warm: CachedRepository,
) -> None:
    """Time our script with the proposed sb_git change, rendered here, not saved."""
    for repository in repositories:
        _, script = bench.ours(repository.name)
        if HELPER_OPTION not in script.source:
            logger.warning(
                "sb_git has no %r: the change is not measured", HELPER_OPTION
            )
            return
        changed = pack(script.source.replace(HELPER_OPTION, ""), strict=False)
        results.changed_applies = True
        ready, sync = measure_changed_script(
            bench,
            repository,
            changed,
            CHANGE_RUNS,
            warm_runs=WARM_RUNS if repository is warm else 0,
        )
        results.changed_ready[repository.size_mib] = ready
        if repository is warm:
            results.changed_warm_sync = sync


def _script_digest() -> str:
    """Return the names of the rendered example scripts, which carry their hash."""
    scripts = render_all(parse_config(example_data()))
    return " ".join(script.lcc_name for script in scripts)


def environment_is_isolated() -> None:
    """Hide this machine's AWS, Git and proxy settings from the bench process."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "GIT_")) or name.lower().endswith("_proxy"):
            del os.environ[name]
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
