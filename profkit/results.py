"""The declared shape of every command's result document.

A service returns one of these; ``--json`` prints it as it is and the renderers read it, so a key
is named once, here, and mypy checks every reader. They are TypedDicts rather than classes because
the document *is* the JSON interface that scripts and CI read: keys never change silently (a
renamed key goes into the README's changelog).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

# -- the artifact store ------------------------------------------------------------------------------


class ArtifactDoc(TypedDict):
    path: str  # absolute in a result document, relative to the run folder in a manifest
    kind: str
    size: int
    sha256: str


class RunSummary(TypedDict):
    """What every profiling command's result says about the run it filed."""

    run: str
    folder: str
    status: str
    artifacts: list[ArtifactDoc]


# -- flame ---------------------------------------------------------------------------------------------


class FunctionSamples(TypedDict):
    function: str
    file: str
    own_samples: int
    total_samples: int
    own_pct: float
    total_pct: float


class FlameFindings(TypedDict):
    samples: int
    rate_hz: int
    top_functions: list[FunctionSamples]
    top_by_total: list[FunctionSamples]


class FlameResult(RunSummary):
    command: str
    findings: FlameFindings
    error: NotRequired[str]


# -- mem -----------------------------------------------------------------------------------------------


class AllocationSite(TypedDict):
    function: str
    file: str
    line: int
    bytes: int
    count: int
    user_code: bool
    share: NotRequired[float]  # leaks only: this site's share of all bytes never freed


class PeakBudget(TypedDict):
    limit: str | None
    limit_bytes: int
    exceeded: bool
    headroom_bytes: int


class LeakThreshold(TypedDict):
    min_bytes: int
    min_share: float


class MemFindings(TypedDict):
    mode: str  # "run" or "attach"
    seconds_recorded: float
    native: bool
    python_allocator: str
    peak_memory_bytes: int
    total_allocated_bytes: int
    total_allocations: int
    top_functions: list[AllocationSite]
    peak_functions: list[AllocationSite]
    budget: PeakBudget | None
    leaks: NotRequired[list[AllocationSite]]
    leaked_bytes_total: NotRequired[int | None]
    leak_threshold: NotRequired[LeakThreshold]
    target_running_after: NotRequired[bool]


class MemResult(RunSummary):
    command: str
    findings: MemFindings
    error: NotRequired[str]


# -- async ---------------------------------------------------------------------------------------------


class CoroutineRow(TypedDict, total=False):
    """A row of yappi_runner's coroutine table (see profkit.backends.yappi_runner.build_table).

    The step fields are None for a coroutine that never ran as a task of its own (it was awaited
    inside another's steps); a table written before schema 2 has no garbage-collection fields."""

    name: str
    file: str
    line: int
    origin: str  # "program", "stdlib" or "profiler"
    entry: bool
    calls: int
    wall_ms: float | None  # yappi: every call's wall time added up, suspended at await included (calls overlap)
    mean_wall_ms: float | None  # wall_ms / calls
    busy_ms: float | None  # wall time inside its own loop steps
    cpu_ms: float | None  # thread CPU inside its steps, garbage collection included
    gc_ms: float | None  # garbage collection inside its steps
    steps: int | None
    max_step_ms: float | None  # its longest step (wall)
    max_step_gc_ms: float | None  # the collection inside that longest step
    max_step_gc_generation: int | None  # the oldest generation collected in it; None when nothing was
    max_step_cpu_ms: float | None
    max_step_own_cpu_ms: float | None  # the most CPU one step used outside garbage collection
    max_own_cpu_step_ms: float | None  # that step's wall time
    cpu_blocking_steps: int
    stalled_steps: int
    max_stalled_step_ms: float | None  # the longest stalled step
    gc_pause_steps: int  # steps over the threshold only because of the garbage collection inside them
    max_gc_pause_ms: float | None  # the longest of those steps, its collection, and the generation collected
    max_gc_pause_gc_ms: float | None
    max_gc_pause_generation: int | None
    blocking: bool  # a step's CPU outside garbage collection exceeded the threshold
    stalled: bool  # a step's wall time outside garbage collection exceeded it, with little CPU
    gc_pause: bool


class LoopFlag(TypedDict):
    """A coroutine or callback that held the loop: in ``blocking``, ``stalled`` or ``gc_pauses``."""

    name: str
    kind: str  # "coroutine" or "callback"
    file: str
    line: int
    steps: int
    max_step_cpu_ms: float
    max_step_ms: float
    cpu_blocking_steps: int
    stalled_steps: int
    cpu_ms: float
    # Absent from findings recorded before garbage collection was measured:
    max_step_own_cpu_ms: NotRequired[float | None]
    max_own_cpu_step_ms: NotRequired[float | None]
    max_stalled_step_ms: NotRequired[float | None]
    gc_ms: NotRequired[float | None]
    max_step_gc_ms: NotRequired[float | None]
    max_step_gc_generation: NotRequired[int | None]
    gc_pause_steps: NotRequired[int | None]
    max_gc_pause_ms: NotRequired[float | None]
    max_gc_pause_gc_ms: NotRequired[float | None]
    max_gc_pause_generation: NotRequired[int | None]


class YappiFunction(TypedDict):
    function: str
    file: str
    line: int
    calls: int
    wall_ms: float
    own_wall_ms: float


class ProgramEnd(TypedDict):
    exit_code: int
    failure: str | None
    elapsed_s: float


class AsyncFindings(TypedDict):
    clock: str
    block_threshold_ms: float
    loop_steps: int
    coroutines: list[CoroutineRow]
    entry: list[CoroutineRow]
    blocking: list[LoopFlag]
    stalled: list[LoopFlag]
    gc_pauses: NotRequired[list[LoopFlag]]  # steps over the threshold because of garbage collection
    top_functions: list[YappiFunction]
    program: ProgramEnd
    note: NotRequired[str]


class AsyncResult(RunSummary):
    command: str
    findings: AsyncFindings


# -- lines ---------------------------------------------------------------------------------------------


class LineView(TypedDict):
    file: str
    line: int
    source: str
    cpu_python_pct: float
    cpu_native_pct: float
    cpu_system_pct: float
    peak_mb: float
    avg_mb: float
    alloc_mb: float
    alloc_pct: float
    copy_mb_s: float
    cpu_pct: float
    short: str  # the file relative to the folder the profiled files share
    key: str  # "file:line"


class FootprintAt(TypedDict):
    file: str
    line: int | None


class FileCpu(TypedDict):
    file: str
    cpu_pct: float


class LinesFindings(TypedDict):
    elapsed_s: float
    max_footprint_mb: float
    max_footprint_at: FootprintAt | None
    files: list[FileCpu]
    top_cpu: list[LineView]
    top_memory: list[LineView]
    program_failure: NotRequired[str]


class LinesResult(RunSummary):
    command: str
    findings: LinesFindings


# -- dump ----------------------------------------------------------------------------------------------


class ThreadStack(TypedDict):
    id: int | None
    name: str | None
    idle: bool | None
    owns_gil: bool | None
    frames: list[str]


class DumpFindings(TypedDict):
    pid: int
    python: str | None
    threads: list[ThreadStack]
    asyncio_tasks: list[dict[str, Any]] | None
    asyncio_tasks_note: str


class DumpResult(RunSummary):
    command: str
    findings: DumpFindings


# -- doctor --------------------------------------------------------------------------------------------


class Check(TypedDict):
    check: str
    ok: bool
    detail: str
    required: bool


class DoctorTarget(TypedDict):
    pid: int
    executable: str | None
    python: str | None


class DoctorResult(TypedDict):
    command: str
    ok: bool
    python: str
    checks: list[Check]
    target: DoctorTarget | None


# -- runs / gc -----------------------------------------------------------------------------------------


class RunListing(TypedDict):
    run: str
    command: str | None
    status: str | None
    started_at: float | None
    target: dict[str, Any] | None
    artifacts: int
    folder: str


class RunsResult(TypedDict):
    command: str
    store: str
    runs: list[RunListing]


class GcResult(TypedDict):
    command: str
    store: str
    keep: int
    dry_run: bool
    removed: list[str]


# -- load / ci -----------------------------------------------------------------------------------------

# The load report is produced by the engine's own load generator (agentmem.workload), which knows
# nothing of profkit; its keys are documented there and read here as a mapping.
LoadReport = dict[str, Any]


# -- bench / regress -----------------------------------------------------------------------------------


class ChangeDoc(TypedDict):
    op: str
    verdict: str
    change_pct: float
    ci95_pct: list[float]
    p_value: float
    baseline_p50_ms: float
    current_p50_ms: float


class BenchOperation(TypedDict):
    op: str
    suite: str
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    stddev_ms: float
    outliers: dict[str, int]
    ci95: dict[str, list[float]]  # bootstrap 95 % interval of p50_ms / p99_ms
    budget: str
    budget_checks: dict[str, dict[str, Any]]
    change: ChangeDoc | None


class BenchReports(TypedDict, total=False):
    markdown: str
    html: str
    json: str


class BenchResult(TypedDict):
    command: str
    reports: BenchReports
    run: str
    folder: str
    baseline: str | None
    saved_baseline: str | None
    duration_s: float
    config: dict[str, Any]
    recall_at_10: dict[str, float]
    operations: list[BenchOperation]
    over_budget: list[str]
    regressions: list[str]
    warnings: list[str]


class InstructionChange(TypedDict):
    op: str
    baseline: float
    current: float
    change_pct: float
    verdict: str


class InstructionsResult(TypedDict):
    command: str
    mode: str
    reports: BenchReports
    run: str
    folder: str
    baseline: str | None
    saved_baseline: str | None
    duration_s: float
    instructions: dict[str, float]
    changes: list[InstructionChange] | None
    regressions: list[str]
    warnings: list[str]


class RegressSide(TypedDict):
    ref: str
    commit: str
    dirty: NotRequired[bool]


class RegressResult(TypedDict):
    command: str
    base: RegressSide
    head: RegressSide
    report: str
    changes: list[ChangeDoc]
    verdict: str
    regressions: list[str]
    warnings: list[str]
    seconds: float
    explained: NotRequired[list[dict[str, Any]]]  # per regression: the functions that account for it


# -- ci --------------------------------------------------------------------------------------------


class CiComparison(TypedDict):
    commit: str
    folder: str
    changes: list[ChangeDoc]
    regressions: list[str]
    warnings: list[str]
    note: str
    diffs: NotRequired[dict[str, str]]  # flame_diff / memory_diff: the diff runs' SVGs, relative to the store


# "async" is a keyword, hence the functional form.
CiResult = TypedDict("CiResult", {
    "folder": str,  # the ``ci`` run (load report, metrics, engine log)
    "load": LoadReport,
    "flame": FlameResult | None,
    "flame_error": str | None,
    "commit": str,
    "dirty": bool,
    "index": str,  # <store>/<commit>/index.json
    "bench": BenchResult | None,
    "mem": MemResult | None,
    "async": AsyncResult | None,
    "errors": dict[str, str],  # step → why it failed; the job went on without it
    "against": CiComparison | None,
    "seconds": float,
    "runs": dict[str, list[str]],  # kind → this commit's runs of that kind, newest first
    "dashboard": str | None,  # the site's index.html, rebuilt at the end of the job
})


# -- diff ----------------------------------------------------------------------------------------------


class DiffSide(TypedDict):
    """One side of a diff: what the user named and the profile it was read from."""

    spec: str  # as given on the command line
    source: str  # "commit", "run" or "file"
    path: str  # the profile file read
    run: str | None  # the store's run id, when the profile came from a run
    format: str  # collapsed, speedscope, memray
    measure: str  # samples, bytes allocated, bytes leaked
    mode: str | None  # py-spy's sampling mode when the run's manifest says it
    total: int  # samples or bytes


class DiffFunction(TypedDict):
    """A function's share of A and of B (percent of each profile's own total) and the change."""

    function: str
    file: str
    status: str  # "changed", "new" (not in A) or "removed" (not in B)
    significant: bool
    self_before_pct: float
    self_after_pct: float
    self_delta_pct: float  # percentage points
    total_before_pct: float
    total_after_pct: float
    total_delta_pct: float
    self_before: int  # samples or bytes
    self_after: int
    total_before: int
    total_after: int
    z: float | None  # two-proportion z of the larger change; None for bytes


class DiffRemoved(TypedDict):
    """A frame A reached and B never did: the path to it (root first) and what it held in A."""

    stack: list[str]
    before: int
    before_pct: float


class DiffSignificance(TypedDict):
    rule: str
    min_share_pct: float
    z: float | None  # the |z| a change of samples needs; None for bytes
    min_bytes: int | None  # the change of bytes a memory diff needs; None for samples


class DiffFindings(TypedDict):
    a: DiffSide
    b: DiffSide
    kind: str  # "cpu" or "memory"
    measure: str
    significance: DiffSignificance
    functions: list[DiffFunction]
    removed: list[DiffRemoved]
    removed_pct: float  # share of A in frames B never reached
    added_pct: float  # share of B in frames A never reached
    notes: list[str]
    svg: str
    out: NotRequired[str]


class DiffResult(RunSummary):
    command: str
    findings: DiffFindings


# -- dashboard -----------------------------------------------------------------------------------------


class DashboardStep(TypedDict):
    """A shift of an operation's p50 level across commits, at the commit where it began."""

    op: str
    folder: str  # the commit folder of the first point at the new level
    commit: str
    position: int  # the commit's place in the site's order (oldest 0)
    before_ms: float  # median p50 of the commits before it (up to the previous step)
    after_ms: float  # median p50 from it on (up to the next step)
    change_pct: float
    z: float  # the shift in standard errors of a difference of medians
    flagged: bool  # the commit's own comparison with its parent already called it slower or a regression


class DashboardFlag(TypedDict):
    """An operation a commit's comparison with its parent called a regression or slower."""

    folder: str
    op: str
    verdict: str
    change_pct: float


class DashboardAsset(TypedDict):
    """A script or stylesheet a memray page loads from a CDN, and the local copy the site serves instead."""

    url: str
    asset: str | None  # relative to the site folder; None when no local copy was found
    source: str | None  # the file it was copied from
    pages: int  # memray pages of the site that load it


class DashboardResult(TypedDict):
    command: str
    store: str
    site: str
    index: str  # <site>/index.html
    commits: int
    operations: list[str]
    pages: int  # commit pages written
    steps: list[DashboardStep]
    flags: list[DashboardFlag]
    memray_pages: int
    assets: list[DashboardAsset]
    missing_assets: list[str]  # CDN URLs with no local copy: those pages lack that script or style offline
    missing_artifacts: int  # artifacts an index names whose files are gone (removed by gc): not linked
    seconds: float


class GcPin(TypedDict):
    folder: str
    why: str  # "baseline NAME" or "--keep-ref REF"


class GcCommitsResult(TypedDict):
    """gc --keep-commits: whole commits removed, the newest and the pinned ones kept."""

    command: str
    store: str
    keep_commits: int
    dry_run: bool
    pinned: list[GcPin]
    kept: list[str]  # commit folders kept, newest first
    removed_commits: list[str]  # commit folders removed whole
    removed: list[str]  # every run removed, as in gc --keep
    running: list[str]  # runs still running in a commit otherwise removed: kept, with their commit folder


# -- console (the asyncio agent's snapshots; see profkit.agent) -------------------------------------------


class StepHistogram(TypedDict):
    """Step or scheduled times of one task, in log buckets (profkit.agent.histogram)."""

    count: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    buckets: list[list[float]]  # [upper bound ms, count], only non-empty buckets, ascending


class AwaitFrame(TypedDict):
    function: str
    file: str
    line: int


class TaskRow(TypedDict):
    """One live task as the agent sees it. Times are ms; None where the agent could not measure
    (a task that started before the agent counts only from then; uvloop has no per-step hook)."""

    id: str  # id() of the task in the target process, as aiomonitor names it
    name: str
    coro: str  # the task's coroutine, qualified name
    state: str  # "running" (in a step now), "scheduled" (ready, waiting for the loop), "idle", "done"
    age_s: float  # since creation (or since the agent first saw it)
    seen_from_start: bool  # created while the agent was there: its counts cover its whole life
    steps: int | None
    busy_ms: float | None  # wall time inside its steps
    cpu_ms: float | None  # CPU time inside its steps
    idle_ms: float | None  # neither in a step nor ready to run
    scheduled_ms: float | None  # ready to run but waiting for the loop
    longest_step_ms: float | None
    longest_step_gc_ms: float | None  # garbage collection inside that step
    longest_step_gc_generation: int | None
    awaiting: str | None  # innermost "function (file:line)" it is suspended in, or what it waits on
    await_chain: list[AwaitFrame]  # outermost coroutine first
    created: str | None  # "file:line" where it was created (aiomonitor's task factory), when known


class TerminatedTask(TypedDict):
    id: str
    name: str
    coro: str
    ended_s_ago: float
    lived_s: float
    outcome: str  # "finished", "cancelled", "failed"
    exception: str | None
    cancelled_by: str | None  # the task that called cancel(), when aiomonitor saw it


class LoopState(TypedDict):
    kind: str  # "asyncio" or "uvloop" (or another loop class name)
    steps_measured: bool  # False on loops whose callback runner cannot be hooked
    steps: int
    lag_ms: float  # the latest probe's delay
    lag_p99_ms: float | None
    lag_max_ms: float | None
    blocked_for_ms: float | None  # a step running right now, and for how long
    blocked_by: str | None  # the task (or callback) in that step
    blocked_gc_ms: NotRequired[float | None]  # garbage collection inside that step so far
    blocked_gc_generation: NotRequired[int | None]  # the generation being collected right now


class GcState(TypedDict):
    collections: list[int]  # per generation, since the agent started
    total_ms: float
    longest_ms: float


class Unawaited(TypedDict):
    coro: str
    count: int
    where: str | None


class ConsoleWarning(TypedDict):
    kind: str  # "blocking-step", "never-yields", "idle-outlier", "never-awaited", "loop-lag", "gc-pause"
    task_id: str | None
    name: str  # task, coroutine or "event loop"
    message: str
    value_ms: float | None


class FinishedCoroutine(TypedDict):
    """The steps of every task of one coroutine that ended since the agent started, added up."""

    coro: str
    tasks: int
    steps: int
    busy_ms: float
    cpu_ms: float
    scheduled_ms: float
    longest_step_ms: float


class ConsoleSnapshot(TypedDict):
    schema: int
    taken_at: float  # epoch seconds
    pid: int
    python: str
    agent_uptime_s: float
    loop: LoopState
    gc: GcState
    tasks: list[TaskRow]
    terminated: list[TerminatedTask]  # newest first, bounded
    unawaited: list[Unawaited]
    warnings: list[ConsoleWarning]  # filled by profkit.console_lints on the client side
    finished: NotRequired[list[FinishedCoroutine]]  # by busy time, the largest first


class TaskDetail(TypedDict):
    task: TaskRow
    stack: list[str]  # formatted frames, outermost first
    steps: StepHistogram
    scheduled: StepHistogram
    history: list[dict[str, float]]  # the latest steps: {"at_s", "wall_ms", "cpu_ms", "gc_ms"}


class ConsoleResult(TypedDict):
    command: str
    mode: str  # "snapshot", "record", "replay", "awaits"
    pid: int | None
    agent: str  # "host:port" of the agent
    injected: str | None  # the debugger that injected the agent, or None when it was already there
    snapshot: NotRequired[ConsoleSnapshot]
    run_id: NotRequired[str]
    folder: NotRequired[str]
    artifacts: NotRequired[list[dict[str, Any]]]
    snapshots: NotRequired[int]
