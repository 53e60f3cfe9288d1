"""The Markdown page of the benchmark: docs/benchmarks.md."""

from __future__ import annotations

from collections import Counter

from bench import profiles
from bench.baseline import TEMPLATE
from bench.control_plane import ControlPlane
from bench.several_domains import SeveralDomains, first_in_service_poll
from bench.suite import (
    CHANGE_RUNS,
    HELPER_OPTION,
    HOOK_LOOP_COUNT,
    HOOK_RUNS,
    SIZE_REPOSITORIES,
    WARM_RUNS,
    WARM_SIZE_MIB,
    Results,
)
from bench.targets import DOMAINS_FRACTION, DOMAINS_JOBS, Target
from bench.timing import Samples
from bootstrap.render import CONTENT_LIMIT
from bootstrap.sandbox.sagemaker import DEFAULT_UPDATE_DELAY

CHART_NAME = "benchmarks.png"


def seconds(samples: Samples) -> str:
    """Format a median with its range, in seconds."""
    return f"{samples.median:.3f} ({samples.minimum:.3f} to {samples.maximum:.3f})"


def milliseconds_range(samples: Samples) -> str:
    """Format a median with its range, in milliseconds."""
    low, high = samples.minimum * 1000, samples.maximum * 1000
    return f"{samples.median * 1000:.2f} ({low:.2f} to {high:.2f})"


def milliseconds(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def write_report(results: Results, targets: list[Target]) -> str:
    parts = [
        _header(results),
        _summary(targets),
        _machine(results),
        _method(results),
        _delay(results),
        _ready(results),
        _warm(results),
        _hook(results),
        _size(results),
        _control(results),
        _domains(results),
        _reasons(results, targets),
        _changes(results),
    ]
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def _header(results: Results) -> str:
    note = ""
    if results.templates_changed:
        note = (
            "\n**The rendered scripts changed while the benchmark ran**, so "
            "some runs used another version of the templates; run it again.\n"
        )
    return f"""\
# Benchmarks

`make bench` measures studio-bootstrap in the local sandbox of
`bootstrap/sandbox/` (moto, the container-credentials endpoint and the HTTPS
CodeCommit endpoint, all on 127.0.0.1) and rewrites this page and
[{CHART_NAME}]({CHART_NAME}). Timings are medians of repeated runs, with the
lowest and highest in brackets; no test asserts a timing.

Run of {results.started:%Y-%m-%d %H:%M} UTC at commit `{results.machine.commit}`,
{results.seconds / 60:.1f} minutes in all. Generated repositories, wheels and
the baseline's Python are cached in `{results.cache}`
(`STUDIO_BOOTSTRAP_BENCH_CACHE` moves it).
{note}"""


def _summary(targets: list[Target]) -> str:
    rows = "\n".join(
        f"| {t.name} | {t.goal} | {t.measured} | {'met' if t.met else '**missed**'} |"
        for t in targets
    )
    return f"""\
## Targets

| measurement | target | measured | result |
|---|---|---|---|
{rows}

![Seven bar charts, one per measurement, ours against its reference]({CHART_NAME})
"""


def _machine(results: Results) -> str:
    machine = results.machine
    return f"""\
## Machine

| | |
|---|---|
| CPU | {machine.cpu} |
| cores | {machine.cores} |
| memory | {machine.memory_gib:.1f} GiB |
| OS | {machine.system}, Linux {machine.kernel} |
| git | {machine.git} |
| bash | {machine.bash} |
| Python (bench, moto) | {machine.python} |
| Python (studio image: git-remote-codecommit, AWS CLI) | {machine.studio_python} |

The one-minute load average was {results.load[0]:.2f} at the start of the
run and {results.load[1]:.2f} at its end, on {machine.cores} cores. Other
processes on the machine slow every timing down, so a load well above 0
makes the absolute numbers pessimistic.

Starting one small program (`/bin/true`) from bash costs
{milliseconds(results.profiles.process_start)} on this machine.
"""


def _method(results: Results) -> str:
    return f"""\
## How it runs

- Each app start runs a lifecycle script with
  `bootstrap.sandbox.runner.run_lifecycle`, as Studio runs a JupyterLab
  script: `bash SCRIPT` as uid 1000 in a new, empty home, with the container
  credentials and `CODE_COMMIT_ENDPOINT` of the local stack. A script that
  only exits takes {seconds(results.floor)} s this way; that is the floor of
  every app-start time below.
- Ours is the JupyterLab script that `render` writes for the example config
  with one repository (`bench/configs.py`).
- The baseline is the script many admins use today (`bench/baseline.py`):

  ```bash
{_indent(TEMPLATE.strip(), "  ")}
  ```

  Each baseline start gets a new container: the helper is first uninstalled
  from the baseline's Python, a venv with botocore owned by uid 1000. pip
  then installs it from a local wheelhouse with `--no-index`, so every run
  does the same work without the network.
- Plain git runs as uid 1000 in the same home with the same profile in
  `~/.aws/config` and `GIT_CONFIG_GLOBAL=/dev/null`, so with no credential
  helper: git-remote-codecommit signs the URL itself.
- Repositories are generated once (`bench/repositories.py`): 50 commits, each
  adding one file of pseudo-random bytes, so the pack is as large as the
  name says.
"""


def _delay(results: Results) -> str:
    rows = []
    for first in results.first_starts:
        ratio = first.ours_foreground.median / first.baseline.median
        rows.append(
            f"| {first.repository.label} "
            f"| {first.repository.pack_bytes / 2**20:.1f} MiB "
            f"| {len(first.baseline)} | {seconds(first.baseline)} "
            f"| {seconds(first.ours_foreground)} | 1/{1 / ratio:.0f} |"
        )
    return f"""\
## 1. App-start delay

The time from the start of the lifecycle script to its exit, which is how
long the app start waits for it. Every run is a first start in a new home.

| repository | pack | runs | baseline, s | ours, s | ours / baseline |
|---|---|---|---|---|---|
{chr(10).join(rows)}

{_foreground_profile(results)}
"""


def _foreground_profile(results: Results) -> str:
    found = results.profiles
    lines = []
    if found.foreground is not None:
        lines.append(
            "Where our foreground spends its time, from one run of the readable "
            "program under `bash -x` with `$EPOCHREALTIME` stamps (tracing makes "
            f"it slower: {milliseconds(found.foreground.total)} in all):"
        )
        lines.append("")
        lines.append(_step_table(found.foreground, 6))
    if found.foreground_processes is not None:
        lines.append("")
        lines.append(
            "Programs that the packed script starts, over the foreground and "
            "the background clone, as `strace -f -e trace=execve` counts them. "
            "They are " + _process_list(found.foreground_processes) + "."
        )
    return "\n".join(lines)


def _step_table(profile: profiles.StepProfile, count: int) -> str:
    rows = [
        f"| `{name}` | {milliseconds(value)} |" for name, value in profile.steps[:count]
    ]
    return "| step | time |\n|---|---|\n" + "\n".join(rows)


def _process_list(names: Counter[str]) -> str:
    total = sum(names.values())
    listed = ", ".join(f"{name} {count}" for name, count in names.most_common(12))
    return f"{total} in all ({listed})"


def _ready(results: Results) -> str:
    rows = []
    for first in results.first_starts:
        size = first.repository.size_mib
        changed = results.changed_ready.get(size)
        changed_cell = (
            f"{seconds(changed)} ({changed.median / first.plain_clone.median:.2f}x)"
            if changed
            else "not measured"
        )
        rows.append(
            f"| {first.repository.label} | {seconds(first.plain_clone)} "
            f"| {seconds(first.ours_ready)} "
            f"| {first.ours_ready.median / first.plain_clone.median:.2f}x "
            f"| {changed_cell} |"
        )
    return f"""\
## 2. Repository ready

From the start of our lifecycle script until the background sync writes
`state=ok` to `~/.studio-bootstrap/status/PROFILE` (polled every 5 ms),
against `git clone codecommit::eu-west-1://repo-account@REPO REPO` run as
plain git in the same home. The last column is ours with the change to
`sb_git` proposed below, {CHANGE_RUNS} runs.

| repository | plain git clone, s | ours, s | ours / plain | ours with the change, s |
|---|---|---|---|---|
{chr(10).join(rows)}
"""


def _warm(results: Results) -> str:
    rows = []
    for warm in results.warm:
        reinstall = (
            "none"
            if warm.installs <= (1 if warm.lib_unchanged is not None else 0)
            else "yes"
        )
        if warm.lib_unchanged is not None:
            reinstall += (
                f" ({warm.installs} install, at the first start; "
                + (
                    "~/.studio-bootstrap/lib kept"
                    if warm.lib_unchanged
                    else "lib replaced"
                )
                + ")"
            )
        rows.append(
            f"| {warm.helper} | {seconds(warm.fetch)} | {seconds(warm.sync)} "
            f"| {warm.sync.median / warm.fetch.median:.2f}x | {reinstall} |"
        )
    found = results.profiles
    lines = [
        f"""\
## 3. Warm start

A home with a current clone of the {WARM_SIZE_MIB} MiB repository: our sync
(`bash ~/.studio-bootstrap/sync.sh`, what the lifecycle script and the hook
start) against `git -C REPO fetch origin` as plain git, alternating,
{WARM_RUNS} runs each. "On PATH" is the studio image's git-remote-codecommit;
"installed by the first sync" has no helper on PATH, so the first start
installs it from the wheelhouse into `~/.studio-bootstrap/lib`, and the runs
then check that it is not installed again.

| helper | plain git fetch, s | our sync, s | sync / fetch | reinstall |
|---|---|---|---|---|
{chr(10).join(rows)}
"""
    ]
    if found.warm_sync is not None:
        lines.append(
            "Where the warm sync spends its time, from one run under `bash -x` "
            f"({milliseconds(found.warm_sync.total)} in all):\n\n"
            + _step_table(found.warm_sync, 6)
        )
    if found.warm_sync_processes is not None:
        lines.append(
            "\nPrograms the warm sync starts: "
            + _process_list(found.warm_sync_processes)
            + "."
        )
    if found.helper_in_fetch is not None:
        lines.append(
            "\nA plain `git fetch` in the same home, but reading our "
            "`~/.gitconfig`, takes "
            f"{seconds(found.fetch_with_gitconfig)} s. After each successful "
            "request git runs the configured credential helper with `store`. "
            "`aws codecommit credential-helper store`, which does nothing, "
            f"ran for {found.helper_in_fetch:.3f} s in that fetch "
            "(`GIT_TRACE2_PERF`). Our sync passes the same helper on its "
            "command line, so it pays this on every clone and fetch."
        )
    if len(results.changed_warm_sync):
        lines.append(
            "\nOur sync with the proposed change: "
            f"{seconds(results.changed_warm_sync)} s, "
            f"{results.changed_warm_sync.median / results.warm[0].fetch.median:.2f}x "
            "the plain fetch (helper on PATH)."
        )
    return "\n".join(lines)


def _hook(results: Results) -> str:
    hook = results.hook
    assert hook is not None
    added = hook.with_hook.median - hook.without_hook.median
    return f"""\
## 4. Terminal hook

`bash -i -c true` on a pseudo-terminal (`interactive_shell`, as a Studio
terminal starts), {HOOK_RUNS} times with our line in `~/.bashrc` and
{HOOK_RUNS} times without it, alternating, in a home whose clone is present
and whose last sync succeeded.

| ~/.bashrc | shell start, ms |
|---|---|
| without the hook | {milliseconds_range(hook.without_hook)} |
| with the hook | {milliseconds_range(hook.with_hook)} |
| added | {added * 1000:+.2f} |

Sourcing `hook.sh` {HOOK_LOOP_COUNT:,} times in one interactive shell takes
{hook.source_seconds * 1e6:.0f} µs each: the hook uses only builtins when
nothing is wrong.
"""


def _size(results: Results) -> str:
    rows = "\n".join(
        f"| {s.repositories} | {s.source_bytes:,} | {s.packed_bytes:,} "
        f"| {s.base64_characters:,} | {'yes' if s.fits else 'no'} |"
        for s in results.sizes
    )
    return f"""\
## 5. Script size

The example config with N repositories named `team-analytics-models-NN`, each
with its own role and branch; the largest of the four app types. "Source" is
`lifecycle/*.source.sh`, "packed" the gzip-packed script that is sent, and
the limit of `CreateStudioLifecycleConfig` is {CONTENT_LIMIT:,} characters of
base64.

| repositories | source, bytes | packed, bytes | base64, characters | fits |
|---|---|---|---|---|
{rows}
"""


def _control(results: Results) -> str:
    control = results.control
    assert control is not None
    calls = "\n".join(
        f"| {c.label} | {c.seconds:.2f} | {c.mutating_total} "
        f"({_call_list(c.mutating)}) | {c.reads_total:,} ({_call_list(c.reads)}) |"
        for c in control.calls[:3]
    )
    ratio = control.attach.median / control.reference.median
    return f"""\
## 6. Control plane

A local domain with {control.profiles:,} user profiles, of which
{control.overriding} carry JupyterServer and KernelGateway settings of their
own that keep the domain's scripts from running for them (created in
{control.setup_seconds:.1f} s). `python -m bootstrap register` runs in its
own process; calls are counted at the local SageMaker. The local domain
stays `Updating` for {control.update_delay:.2f} s after an update (the
sandbox's default is {DEFAULT_UPDATE_DELAY} s; AWS takes longer).

| run | wall time, s | mutating calls | reading calls |
|---|---|---|---|
{calls}

Wall time, {len(control.attach)} runs each: `register` that attaches a new
version everywhere (the first register, then configs that alternate in
`branch`) takes {seconds(control.attach)} s. A register with nothing to
change takes {seconds(control.unchanged)} s, and listing and describing the
{control.profiles:,} user profiles with the same client settings and 8
threads (`python -m bench.list_profiles`) {seconds(control.reference)} s.
Ratio: {ratio:.2f}x.

{_double_update_note(control)}
"""


def _domains(results: Results) -> str:
    assert results.domains is not None
    return several_domains_section(results.domains)


_DOMAINS_HEADER = (
    "| register | runs | wall time, s | of --jobs 1 | overlapped waits only "
    "| attached | mutating calls (first run) | reading calls (first run) |\n"
    "|---|---|---|---|---|---|---|---|"
)


def several_domains_section(several: SeveralDomains) -> str:
    """Write section 7, which ``python -m bench --only domains`` prints alone."""
    sequential = several.attach[1].median
    rows = []
    for jobs, samples in several.attach.items():
        run = several.first_run(jobs)
        fewest = min(r.attached for r in several.runs if r.jobs == jobs)
        rows.append(
            f"| --jobs {jobs} | {len(samples)} | {seconds(samples)} "
            f"| {samples.median / sequential:.2f} "
            f"| {several.ideal_fraction(jobs):.2f} "
            f"| {fewest} of {several.domains} "
            f"| {run.mutating_total} ({_call_list(run.mutating)}) "
            f"| {run.reads_total:,} ({_call_list(run.reads)}) |"
        )
    unchanged = several.unchanged_runs[0]
    rows.append(
        f"| --jobs 1, no change | {len(several.unchanged)} "
        f"| {seconds(several.unchanged)} "
        f"| {several.unchanged.median / sequential:.2f} | | "
        f"| {unchanged.mutating_total} ({_call_list(unchanged.mutating)}) "
        f"| {unchanged.reads_total:,} ({_call_list(unchanged.reads)}) |"
    )
    poll = first_in_service_poll(several.update_delay)
    accounts = " and ".join(several.accounts)
    regions = " and ".join(several.regions)
    return f"""\
## 7. Several domains

One config names {several.domains} local domains, spread evenly over the
accounts {accounts} and the regions {regions}. Each domain has
{several.profiles_per_domain} user profiles and clones one shared
repository. `python -m bootstrap register --jobs N` runs in its own process,
as an admin runs it: the AWS config file has one admin profile per account,
each `[[domains]]` table names the profile of its account, and the
environment contains no credentials. Calls are counted at the local SageMaker.

A domain stays `Updating` for {several.update_delay:.1f} s after an update
(`set_update_delay`). That is an estimate, not a duration measured on AWS.
It makes the wait, not the requests, fill most of a domain's time, and
that wait is what `--jobs` overlaps. register polls
`DescribeDomain` after waits that start at 0.5 s and double, so it reads
`InService` {poll:.1f} s after `UpdateDomain` at the earliest.

Each attaching run starts from domains created just before it, so it
creates the lifecycle configurations and updates every domain. Creating
the domains takes {seconds(several.setup)} s. After each run the bench
counts the domains whose JupyterLab default lifecycle configuration is set.
The {len(several.attach)} modes alternate over {len(several.attach[1])} rounds, and
the runs with no change follow the last round. "Overlapped waits only" is the
fraction of the sequential time if nothing but the waits overlapped:
ceil({several.domains} / N) domains in turn out of {several.domains}.

{_DOMAINS_HEADER}
{chr(10).join(rows)}

Sequentially, a domain takes {sequential / several.domains:.2f} s, of which
register waits about {poll:.1f} s for `InService`.
"""


def several_domains_reason(several: SeveralDomains) -> str:
    """Explain the missed several-domains targets from the measured numbers."""
    sequential = several.attach[1].median
    parallel = several.attach[DOMAINS_JOBS].median
    parts = ["**Several domains.**"]
    if parallel / sequential > DOMAINS_FRACTION:
        parts.append(
            f"With --jobs {DOMAINS_JOBS}, the run took {parallel:.1f} s, "
            f"{parallel / sequential:.2f} of the sequential {sequential:.1f} s, "
            "where overlapped waits alone would give "
            f"{several.ideal_fraction(DOMAINS_JOBS):.2f}. The rest does not "
            "overlap: the process start and the config check, and the requests, "
            "which the "
            "local SageMaker serves one at a time under one lock. A register "
            "with nothing to change, which sends only reads, takes "
            f"{several.unchanged.median:.1f} s sequentially."
        )
    for run in several.unchanged_runs:
        if run.mutating_total:
            parts.append(
                f"A register with no change sent {run.mutating_total} mutating "
                f"requests ({_call_list(run.mutating)})."
            )
            break
    return " ".join(parts)


def _call_list(calls: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in calls.items()) or "none"


def _changes(results: Results) -> str:
    if not results.changed_applies:
        return ""
    return f"""\
## The change measured above

"Ours with the change" runs the rendered script with
`{HELPER_OPTION.strip()}` removed from `sb_git`, rendered in the bench and
not saved. For the codecommit transport git-remote-codecommit puts signed
credentials in the URL, so git needs no helper. `-c credential.helper=`
alone keeps the one in `~/.gitconfig` from running.
"""


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def _reasons(results: Results, targets: list[Target]) -> str:
    missed = [t.name for t in targets if not t.met]
    parts = ["## Why targets were missed\n"]
    if not missed:
        parts.append("Every target was met in this run.\n")
    if any(name.startswith("App-start delay at") for name in missed):
        parts.append(_delay_reason(results) + "\n")
    if "App-start delay flat in size" in missed:
        parts.append(_flat_reason(results) + "\n")
    if any(name.startswith("Repository ready") for name in missed):
        parts.append(_ready_reason(results) + "\n")
    if any(name.startswith("Warm sync") for name in missed):
        parts.append(_warm_reason(results) + "\n")
    if "Script size" in missed:
        parts.append(_size_reason(results) + "\n")
    if any(name.startswith(("register", "Re-register")) for name in missed):
        parts.append(_register_reason(results) + "\n")
    if any(name.startswith("Several domains") for name in missed):
        assert results.domains is not None
        parts.append(several_domains_reason(results.domains) + "\n")
    return "\n".join(parts)


def _delay_reason(results: Results) -> str:
    found = results.profiles
    count = (
        sum(found.foreground_processes.values()) if found.foreground_processes else 0
    )
    return (
        "**App-start delay.** The foreground starts short programs one after "
        f"the other (about {count} with the background clone, see section 1), "
        f"at {milliseconds(found.process_start)} each on this machine with "
        "nothing else running; the traced steps above show where. Each start "
        "costs more while other processes compete for the cores: the load "
        f"average was {results.load[0]:.2f} at the start of this run."
    )


def _flat_reason(results: Results) -> str:
    rows = ", ".join(
        f"{f.repository.label}: median {f.ours_foreground.median * 1000:.0f} ms, "
        f"lowest {f.ours_foreground.minimum * 1000:.0f} ms"
        for f in results.first_starts
    )
    return (
        "**App-start delay flat in size.** The foreground does not read the "
        "repository: it writes three files and starts the sync, whose clone "
        f"runs after the script has exited. Per size: {rows}. The medians "
        "differ by run-to-run noise of a few tens of milliseconds, not by a "
        "trend with size."
    )


def _ready_reason(results: Results) -> str:
    gaps = ", ".join(
        f"{(f.ours_ready.median - f.plain_clone.median):.2f} s at {f.repository.label}"
        for f in results.first_starts
    )
    return (
        f"**Repository ready.** Ours is ready later than a plain clone by {gaps}. "
        "The sync starts only once the foreground has written its files "
        "(section 1), and it then takes its lock, writes the status file, and "
        "clones into a temporary folder that it renames into place; a plain "
        "clone does none of this. That cost is fixed, about a tenth of a "
        "second here, so it misses the ratio only where the clone itself is "
        "shortest."
    )


def _warm_reason(results: Results) -> str:
    found = results.profiles
    text = "**Warm sync, helper on PATH.**"
    if found.warm_sync is not None:
        network = dict(found.warm_sync.steps).get(profiles.NETWORK_GROUP, 0.0)
        own = found.warm_sync.total - network
        text += (
            f" The traced sync spends {milliseconds(network)} of "
            f"{milliseconds(found.warm_sync.total)} in `timeout git fetch` and "
            f"{milliseconds(own)} in its own steps."
        )
    text += (
        " Inside that fetch, git runs the AWS CLI credential helper with "
        "`store` after the fetch succeeds, as described for the clone. A plain "
        "fetch that reads our `~/.gitconfig` pays it too "
        f"({seconds(found.fetch_with_gitconfig)} s against "
        f"{results.warm[0].fetch.median:.3f} s without it). With the helper "
        "installed by the sync and no `aws` on PATH, the `store` call fails at "
        "once, so that case meets the target."
    )
    if len(results.changed_warm_sync):
        ratio = results.changed_warm_sync.median / results.warm[0].fetch.median
        text += (
            f" Without the option the sync takes "
            f"{results.changed_warm_sync.median:.3f} s, {ratio:.2f}x the plain fetch."
        )
    return text


def _register_reason(results: Results) -> str:
    control = results.control
    assert control is not None
    first = control.calls[0]
    text = "**Control plane.** " + _double_update_note(control)
    reads = first.reads.get("DescribeUserProfile", 0)
    text += (
        f" It also reads every profile ({reads} DescribeUserProfile: all "
        f"{control.profiles:,} in discovery, then the {control.overriding} "
        "updated ones again to verify) and waits for the domain after "
        "UpdateDomain, polling every 0.5 s or more."
    )
    return text


def _size_reason(results: Results) -> str:
    one, most = results.sizes[0], results.sizes[-1]
    per_repository = (most.base64_characters - one.base64_characters) / (
        most.repositories - one.repositories
    )
    text = (
        f"**Script size.** With one repository the script already takes "
        f"{one.base64_characters:,} of the {CONTENT_LIMIT:,} characters, and each "
        f"more repository adds about {per_repository:.0f}: the program fills "
        "the limit, not the data."
    )
    packing = results.packing
    if packing is not None:
        text += (
            f" For {SIZE_REPOSITORIES} repositories the minified program is "
            f"{packing.minified_bytes:,} bytes, {packing.gzip_bytes:,} after gzip "
            f"-9 and {packing.payload_characters:,} characters in base64 inside "
            f"the script ({packing.script_bytes:,} bytes with its wrapper); the "
            f"API's own base64 makes that {packing.base64_characters:,}. The "
            "payload is thus base64-encoded twice, which costs a third of the "
            "limit."
        )
    if results.part_costs:
        rows = "\n".join(
            f"| `{cost.name}` | {cost.source_bytes:,} | {cost.base64_characters:,} |"
            for cost in results.part_costs
        )
        text += (
            "\n\nThe costliest parts, measured by packing the script without "
            "each in turn (so a part counts only what gzip cannot share with "
            "the rest):\n\n| part | source, bytes | base64 characters saved "
            f"without it |\n|---|---|---|\n{rows}\n"
        )
    return text


def _double_update_note(control: ControlPlane) -> str:
    """Describe UpdateUserProfile requests sent more than once, if any were."""
    first = control.calls[0]
    updates = first.mutating.get("UpdateUserProfile", 0)
    if updates <= first.users_updated:
        return ""
    return (
        f"The first register sent {updates} UpdateUserProfile requests for "
        f"{first.users_updated} user profiles, and printed "
        f"{first.user_update_lines} `done: update user` lines naming "
        f"{first.users_updated} distinct profiles: each update is sent twice. "
        "In `register.apply` the user updates run in parallel right after "
        "UpdateDomain, and then `users` is emptied, so the loop over the "
        "pending changes no longer skips them and runs each one again, one "
        "at a time."
    )
