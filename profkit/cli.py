"""The profkit command line: parse, call one service, show its result, exit.

Each command is a thin shell: options are validated while parsing (a bad one exits 2 before any
work), the service in :mod:`profkit.services` does the work and returns a result document (or
raises a :class:`~profkit.errors.ProfkitError`), a renderer in :mod:`profkit.render.terminal`
shows it, and :func:`main` turns errors into one line on stderr and the exit code of
:mod:`profkit.errors`. Services and the bundled engine are imported inside the commands, so
``profkit --help`` and the commands that do not drive the engine never import it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

try:  # typer 0.2x carries its own copy of click, whose errors are not click's
    from typer._click.exceptions import BadParameter as ParseBadParameter
    from typer._click.exceptions import MissingParameter as ParseMissingParameter
    from typer._click.exceptions import NoArgsIsHelpError
    from typer._click.exceptions import UsageError as ParseError
except ImportError:  # pragma: no cover - older typer parses with click itself
    from click.exceptions import BadParameter as ParseBadParameter  # type: ignore[assignment,unused-ignore]
    from click.exceptions import MissingParameter as ParseMissingParameter  # type: ignore[assignment,unused-ignore]
    from click.exceptions import NoArgsIsHelpError  # type: ignore[assignment,no-redef,attr-defined,unused-ignore]
    from click.exceptions import UsageError as ParseError  # type: ignore[assignment,unused-ignore]

from .console import err
from .errors import EXIT_INTERRUPTED, ProfkitError, UsageError
from .progress import SILENT, Reporter
from .session import Options

app = typer.Typer(
    name="profkit",
    help="Profile asyncio Python services: flamegraphs, memory, coroutine timing, benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DEFAULT_STORE = Path(os.environ.get("PROFKIT_STORE", "flamegraphs"))

Doc = TypeVar("Doc", bound=Mapping[str, Any])


def _positive(text: str | float) -> float:
    """A positive, finite number (seconds, milliseconds), refused while parsing otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(f"must be a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise typer.BadParameter(f"must be a positive number, got {text}")
    return value


def _preset(text: str) -> str:
    if text not in ("quick", "full", "smoke", "none"):
        raise typer.BadParameter(f"must be quick, full, smoke or none, got {text!r}")
    return text


def _explain_mode(text: str) -> str:
    if text not in ("full", "samples", "none"):
        raise typer.BadParameter(f"must be full, samples or none, got {text!r}")
    return text


def _mode(text: str) -> str:
    if text not in ("time", "instructions"):
        raise typer.BadParameter(f"must be time or instructions, got {text!r}")
    return text


def _ports(text: str) -> str:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) < 65536 for p in parts):
        raise typer.BadParameter(f"must be three ports separated by commas (0: any free one), got {text!r}")
    return text


# -- option types shared by several commands -----------------------------------------------------------

Scenario = Annotated[str | None, typer.Argument(help="Bundled scenario (mixed, ingest, search-heavy, graph).",
                                                  show_default=False)]
Pid = Annotated[int | None, typer.Option("--pid", help="Attach to this running process.", min=1)]
Duration = Annotated[float, typer.Option(help="Seconds to profile (a scenario runs this long).", parser=_positive)]
Store = Annotated[Path, typer.Option(help="Artifact store (env PROFKIT_STORE).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Top = Annotated[int, typer.Option(help="How many functions to list.", min=1)]
Native = Annotated[bool, typer.Option("--native", help="Include C/C++/Cython frames.")]


def _reporter(as_json: bool) -> Reporter:
    if as_json:
        return SILENT
    from .render.terminal.progress import TerminalReporter

    return TerminalReporter(err)


def _emit(doc: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, default=str) + "\n")


class _Shown:
    """Shows a result the way the user asked: one JSON document, or the command's terminal renderer."""

    def __init__(self, as_json: bool, show: Callable[[Any], None]) -> None:
        self.as_json = as_json
        self.show = show

    def __call__(self, work: Callable[[], Doc]) -> Doc:
        try:
            doc = work()
        except ProfkitError as exc:
            # Work done before the failure (a partial profile, a report with a regression in it) is
            # shown first, so a CI gate gets both the report and the failure.
            if exc.result is not None:
                self._out(exc.result)
            raise
        self._out(doc)
        return doc

    def _out(self, doc: Mapping[str, Any]) -> None:
        if self.as_json:
            _emit(doc)
        else:
            self.show(doc)


def _command(ctx: typer.Context) -> tuple[str, ...]:
    return tuple((ctx.obj or {}).get("command", ()))


def _no_command(ctx: typer.Context, name: str) -> None:
    if _command(ctx):
        raise UsageError(f"profkit {name} takes no command after --")


def _options(ctx: typer.Context, scenario: str | None, pid: int | None, duration: float, store: Path,
             as_json: bool) -> Options:
    return Options(scenario=scenario, command=_command(ctx), pid=pid, duration=duration, store=store, as_json=as_json)


# -- the engine ----------------------------------------------------------------------------------------


def _warn_if_exposed(host: str) -> str:
    """Said while parsing, before anything else can fail: the user asked for more than loopback."""
    from .services.serve import is_loopback

    if not is_loopback(host):
        err.print(f"[bold red]WARNING:[/] the engine will listen on [bold]{host}[/]: reachable from other machines, "
                  "with no authentication. Use --host 127.0.0.1 unless you mean it.")
    return host


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address. Anything but loopback exposes the engine.",
                                      callback=_warn_if_exposed)] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8080,
    db: Annotated[Path, typer.Option(help="SQLite database file (created if missing).")] = Path("agentmem.db"),
    embedder: Annotated[str, typer.Option(help="'hashing' (default, local) or 'st:<local model>'.")] = "hashing",
    llm_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for fact extraction.")] = None,
    monitor: Annotated[bool, typer.Option(
        "--monitor", help="Run the profkit agent and aiomonitor inside, on loopback, for `profkit console` "
                          "(on asyncio's own loop instead of uvloop, so every task step can be timed).")] = False,
    agent_port: Annotated[int, typer.Option(help="The agent's port with --monitor.", min=1, max=65535)] = 20104,
    monitor_ports: Annotated[str, typer.Option(
        help="aiomonitor's telnet, web UI and Python console ports with --monitor (0: any free one).",
        parser=_ports)] = "20101,20102,20103",
) -> None:
    """Start the bundled agent-memory engine (HTTP, WebSocket, Prometheus /metrics)."""
    from .services.serve import check_serve, run_serve

    check_serve(host=host, port=port, db=db, embedder=embedder)
    err.print(f"agentmem on [bold]http://{host}:{port}[/]  metrics: http://{host}:{port}/metrics  "
              f"API: http://{host}:{port}/openapi.json  db: {db}")
    ports = tuple(int(p) for p in monitor_ports.split(","))
    run_serve(host=host, port=port, db=db, embedder=embedder, llm_url=llm_url, monitor=monitor, agent_port=agent_port,
              monitor_ports=(ports[0], ports[1], ports[2]))


@app.command()
def load(
    url: Annotated[str, typer.Option(help="Engine base URL.")] = "http://127.0.0.1:8080",
    scenario: Annotated[str, typer.Option(help="mixed, ingest, search-heavy, graph or ws-hold.")] = "mixed",
    duration: Annotated[float, typer.Option(help="Seconds of measured load (ws-hold: seconds held).",
                                            parser=_positive)] = 10.0,
    concurrency: Annotated[int, typer.Option(help="Open connections (ws-hold: WebSockets).", min=1)] = 64,
    seed_per_tenant: Annotated[int, typer.Option(help="Memories written per tenant before measuring.", min=0)] = 100,
    warmup: Annotated[float, typer.Option(help="Seconds of unmeasured load first.", min=0)] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON document.")] = False,
) -> None:
    """Drive a running engine with a named scenario; report req/s, errors and p50/p95/p99 per operation."""
    from .render.terminal.load import load_progress, show
    from .services.load import run_load_command

    with load_progress(f"{scenario} → {url}", duration, show=not as_json) as tick:
        _Shown(as_json, show)(lambda: run_load_command(
            url=url, scenario=scenario, duration=duration, concurrency=concurrency,
            seed_per_tenant=seed_per_tenant, warmup=warmup, on_progress=tick))


@app.command()
def ci(
    store: Store = DEFAULT_STORE,
    duration: Annotated[float, typer.Option(help="Seconds of measured load on the engine.", parser=_positive)] = 20.0,
    concurrency: Annotated[int, typer.Option(help="Open connections.", min=1)] = 32,
    bench: Annotated[str, typer.Option(
        help="Bench preset: quick, full, smoke (2 workers x 20 rounds: checks the job, too coarse for trends) or "
             "none.", parser=_preset)] = "quick",
    profile_duration: Annotated[float, typer.Option(
        help="Seconds of the mixed scenario under memray and under yappi.", parser=_positive)] = 8.0,
    against: Annotated[str | None, typer.Option(
        help="Compare with this commit of the store (sha prefix or ref; default: the newest other one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")] = False,
) -> None:
    """The continuous-profiling job for this commit: bench, the engine under load with py-spy, memory and
    async profiles, all filed under STORE/<commit>/ with one index, compared with the previous commit."""
    from .render.terminal.ci import show
    from .render.terminal.progress import TerminalReporter
    from .services.ci import run_ci

    # The engine's address is said on stderr even with --json: it is where its metrics can be read live.
    reporter = TerminalReporter(err, show=not as_json)
    _Shown(as_json, show)(lambda: run_ci(store=store, duration=duration, concurrency=concurrency,
                                         bench=None if bench == "none" else bench, profile_seconds=profile_duration,
                                         against=against, reporter=reporter))


# -- profiling commands --------------------------------------------------------------------------------
# Each takes the same target forms: a scenario name (default "mixed"), a command after "--"
# (split off in main(), because click would otherwise read the command's words as arguments),
# or --pid PID.


@app.command()
def flame(
    ctx: typer.Context,
    scenario: Scenario = None,
    pid: Pid = None,
    duration: Duration = 10.0,
    rate: Annotated[int, typer.Option(help="Samples per second.", min=1, max=10_000)] = 100,
    native: Native = False,
    subprocesses: Annotated[bool, typer.Option("--subprocesses", help="Also sample child processes.")] = False,
    idle: Annotated[bool, typer.Option("--idle", help="Keep samples of idle (waiting) threads.")] = False,
    gil: Annotated[bool, typer.Option("--gil", help="Only samples that hold the GIL.")] = False,
    nonblocking: Annotated[bool, typer.Option("--nonblocking", help="Never pause the target to sample it.")] = False,
    top: Top = 15,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """CPU flamegraph with py-spy: SVG, speedscope JSON, collapsed stacks, and the hottest functions."""
    from .render.terminal.flame import show
    from .services.flame import run_flame

    opts = _options(ctx, scenario, pid, duration, store, as_json)
    _Shown(as_json, show)(lambda: run_flame(opts, rate=rate, native=native, subprocesses=subprocesses, idle=idle,
                                            gil=gil, nonblocking=nonblocking, top=top, reporter=_reporter(as_json)))


def _share(text: str | float) -> float:
    """Percentage points, 0 up to (not including) 100."""
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(f"must be a number of percentage points, got {text!r}") from None
    if not 0 <= value < 100:
        raise typer.BadParameter(f"must be from 0 up to 100 percentage points, got {text}")
    return value


@app.command()
def diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="Before: a commit in the store (sha prefix or folder name), a run folder, "
                                          "or a profile file (*.collapsed, *.speedscope.json, memray *.bin).",
                                     show_default=False)],
    b: Annotated[str, typer.Argument(help="After: the same forms as A.", show_default=False)],
    top: Top = 15,
    min_share: Annotated[float, typer.Option(
        help="Significance floor: a change under this many percentage points is neither coloured nor ranked.",
        parser=_share)] = 0.5,
    mem: Annotated[bool, typer.Option("--mem", help="Commits: compare their newest mem runs, not flame runs.")] = False,
    leaks: Annotated[bool, typer.Option("--leaks", help="Memory: compare bytes never freed, not bytes allocated.")]
    = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the differential flamegraph SVG here.")]
    = None,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """What changed from profile A to B: differential flamegraph SVG and the functions whose share moved most."""
    from .render.terminal.diff import show
    from .services.diff import run_diff

    _no_command(ctx, "diff")
    _Shown(as_json, show)(lambda: run_diff(a=a, b=b, store=store, top=top, min_share_pct=min_share, leaks=leaks,
                                           mem=mem, out=out))


def _size(text: str) -> str:
    """A size such as 512MB, checked while parsing; the text is kept, for messages."""
    from .units import parse_size

    try:
        parse_size(text)
    except UsageError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--peak-budget: ").removeprefix("--peak-budget ")) from None
    return text


@app.command()
def mem(
    ctx: typer.Context,
    scenario: Scenario = None,
    pid: Pid = None,
    duration: Duration = 10.0,
    native: Annotated[bool, typer.Option("--native", help="Record native (C) frames too.")] = False,
    leaks: Annotated[bool, typer.Option("--leaks", help="Name functions whose allocations were never freed.")] = False,
    peak_budget: Annotated[str | None, typer.Option(help="Fail when peak memory exceeds this, e.g. 512MB.",
                                                    parser=_size)] = None,
    top: Top = 15,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """Memory with memray: HTML flamegraph, peak/total/count stats, allocation table, leaks."""
    from .render.terminal.mem import show
    from .services.mem import run_mem
    from .units import parse_size

    budget = parse_size(peak_budget) if peak_budget is not None else None
    opts = _options(ctx, scenario, pid, duration, store, as_json)
    _Shown(as_json, show)(lambda: run_mem(opts, native=native, leaks=leaks, peak_budget=peak_budget, budget=budget,
                                          top=top, reporter=_reporter(as_json)))


@app.command("async")
def async_(
    ctx: typer.Context,
    scenario: Scenario = None,
    pid: Pid = None,
    duration: Duration = 10.0,
    block_threshold_ms: Annotated[float, typer.Option(help="Flag a coroutine whose single step takes longer.",
                                                      parser=_positive)] = 10.0,
    top: Top = 15,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """Coroutine wall and CPU time with yappi: table, pstat (snakeviz), callgrind (kcachegrind); flags loop blockers."""
    from .render.terminal.async_ import show
    from .services.async_ import run_async

    opts = _options(ctx, scenario, pid, duration, store, as_json)
    _Shown(as_json, show)(lambda: run_async(opts, block_threshold_ms=block_threshold_ms, top=top,
                                            reporter=_reporter(as_json)))


@app.command()
def lines(
    ctx: typer.Context,
    scenario: Scenario = None,
    pid: Pid = None,
    duration: Duration = 10.0,
    top: Top = 15,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """Line-level CPU and memory with scalene: JSON and a standalone HTML report."""
    from .render.terminal.lines import show
    from .services.lines import run_lines

    opts = _options(ctx, scenario, pid, duration, store, as_json)
    _Shown(as_json, show)(lambda: run_lines(opts, top=top, reporter=_reporter(as_json)))


@app.command()
def dump(
    ctx: typer.Context,
    pid: Annotated[int, typer.Option("--pid", help="The running process to look at.", min=1)],
    native: Native = False,
    tasks: Annotated[bool, typer.Option(help="Also list its asyncio tasks through the profkit agent.")] = True,
    no_inject: Annotated[bool, typer.Option("--no-inject", help="List tasks only where an agent already runs; "
                                                               "never inject one.")] = False,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """Every thread's current stack of a live process, and its asyncio tasks: from the profkit agent inside
    it, injected for the moment with gdb or lldb when it has none (--no-inject: never)."""
    from .render.terminal.dump import show
    from .services.dump import run_dump

    _no_command(ctx, "dump")
    _Shown(as_json, show)(lambda: run_dump(pid=pid, native=native, store=store, tasks=tasks, inject=not no_inject))


@app.command()
def top(
    ctx: typer.Context,
    pid: Annotated[int, typer.Option("--pid", help="The running process to watch.", min=1)],
    rate: Annotated[int, typer.Option(help="Samples per second.", min=1, max=10_000)] = 100,
    native: Native = False,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).",
                                                   parser=_positive)] = None,
) -> None:
    """Live view of where a running process spends its time (py-spy top)."""
    from .services.top import run_top

    _no_command(ctx, "top")
    run_top(pid=pid, rate=rate, native=native, duration=duration)


def _debugger(text: str) -> str:
    if text not in ("auto", "gdb", "lldb"):
        raise typer.BadParameter(f"must be auto, gdb or lldb, got {text!r}")
    return text


@app.command()
def console(
    ctx: typer.Context,
    pid: Annotated[int | None, typer.Option(
        "--pid", help="Watch this asyncio process; without a profkit agent inside, one is injected (gdb or lldb) "
                      "and removed again at the end.", min=1)] = None,
    agent: Annotated[str | None, typer.Option(
        help="HOST:PORT of a running agent (default 127.0.0.1:20104: `profkit serve --monitor`, "
             "`python -m profkit.agent`).")] = None,
    snapshot: Annotated[bool, typer.Option("--snapshot",
                                           help="Print one snapshot (tasks, warnings) and exit.")] = False,
    record: Annotated[Path | None, typer.Option(
        help="Record a snapshot every --interval for --duration seconds into FILE (JSON Lines), filed in the "
             "store too.", show_default=False)] = None,
    replay: Annotated[Path | None, typer.Option(help="Play a recording back in the console UI.",
                                                show_default=False)] = None,
    awaits: Annotated[bool, typer.Option(
        "--awaits", help="Sample every task's await chain for --duration seconds into an await flamegraph.")] = False,
    duration: Annotated[float, typer.Option(help="Seconds to record or sample.", parser=_positive)] = 10.0,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes or recorded snapshots.",
                                            parser=_positive)] = 1.0,
    hz: Annotated[float, typer.Option(help="Await samples per second (--awaits).", parser=_positive)] = 20.0,
    block_ms: Annotated[float, typer.Option(help="Warn about a step holding the loop longer than this (ms).",
                                            parser=_positive)] = 20.0,
    debugger: Annotated[str, typer.Option(help="Injection with auto, gdb or lldb.", parser=_debugger)] = "auto",
    no_inject: Annotated[bool, typer.Option("--no-inject", help="Never inject an agent into --pid.")] = False,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """Live asyncio tasks of a running process, like tokio-console: busy, idle and scheduled time per task,
    where each waits, the task blocking the loop, GC pauses; --snapshot, --record, --replay, --awaits."""
    from .console_lints import Thresholds
    from .render.terminal.console import show
    from .services import console as svc

    _no_command(ctx, "console")
    modes = [name for name, on in (("--snapshot", snapshot), ("--record", record is not None),
                                   ("--replay", replay is not None), ("--awaits", awaits)) if on]
    if len(modes) > 1:
        raise UsageError(f"give one of {', '.join(modes)}")
    if as_json and not (snapshot or record is not None or awaits):
        raise UsageError("--json goes with --snapshot, --record or --awaits (the UI is interactive)")
    thresholds = Thresholds(block_ms=block_ms)
    if replay is not None:
        if pid is not None or agent is not None:
            raise UsageError("--replay plays a file back; it takes no --pid or --agent")
        from .console_sources import ReplaySource
        from .render.tui.app import ConsoleApp

        recording = svc.load_recording(replay)
        ConsoleApp(ReplaySource(recording, label=str(replay), interval=interval),
                   title=f"profkit console — replay of {replay}").run()
        return
    reporter = _reporter(as_json)
    with svc.connect(agent=agent, pid=pid, inject=not no_inject, debugger=None if debugger == "auto" else debugger,
                     reporter=reporter) as conn:
        if snapshot:
            _Shown(as_json, show)(lambda: svc.run_snapshot(conn, thresholds, settle=interval))
        elif record is not None:
            _Shown(as_json, show)(lambda: svc.run_record(conn, out=record, duration=duration, interval=interval,
                                                         store=store, thresholds=thresholds, reporter=reporter))
        elif awaits:
            _Shown(as_json, show)(lambda: svc.run_awaits(conn, duration=duration, hz=hz, store=store,
                                                         reporter=reporter))
        else:
            from .console_sources import LiveSource
            from .render.tui.app import ConsoleApp

            ConsoleApp(LiveSource(conn, thresholds, interval=interval),
                       title=f"profkit console — {conn.pid or conn.address}").run()


@app.command()
def doctor(
    ctx: typer.Context,
    pid: Annotated[int | None, typer.Option("--pid", help="Also check what can be done to this process.",
                                            min=1)] = None,
    as_json: Json = False,
) -> None:
    """What will and won't work here, and why: tools, versions, ptrace permission, debuggers."""
    from .render.terminal.doctor import show
    from .services.doctor import run_doctor

    _no_command(ctx, "doctor")
    _Shown(as_json, show)(lambda: run_doctor(pid=pid))


# -- the artifact store --------------------------------------------------------------------------------


@app.command()
def runs(
    store: Store = DEFAULT_STORE,
    limit: Annotated[int, typer.Option(help="Show this many newest runs.", min=1)] = 50,
    as_json: Json = False,
) -> None:
    """List the runs in the artifact store, newest first."""
    from .render.terminal.runs import show_runs
    from .services.runs import run_runs

    _Shown(as_json, show_runs)(lambda: run_runs(store=store, limit=limit))


@app.command()
def gc(
    keep: Annotated[int | None, typer.Option(help="Keep this many newest runs.", min=1)] = None,
    keep_commits: Annotated[int | None, typer.Option(
        help="Instead: keep this many newest commits whole (by their first ci job, else their newest run), "
             "and the commits of saved baselines (STORE/baselines).", min=1)] = None,
    keep_ref: Annotated[list[str] | None, typer.Option(
        help="With --keep-commits: also keep this commit (sha prefix, folder or git ref); repeatable.")] = None,
    store: Store = DEFAULT_STORE,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
    as_json: Json = False,
) -> None:
    """Remove old runs, or old commits, from the artifact store; the newest are always kept, running runs too."""
    from .render.terminal.runs import show_gc, show_gc_commits
    from .services.runs import run_gc, run_gc_commits

    if keep is None and keep_commits is None:
        raise UsageError("gc needs --keep N (the newest runs to keep) or --keep-commits N (the newest commits) "
                         "(see profkit gc --help)")
    if keep is not None and keep_commits is not None:
        raise UsageError("give gc --keep N (runs) or --keep-commits N (commits), not both")
    if keep_ref and keep_commits is None:
        raise UsageError("--keep-ref goes with --keep-commits")
    if keep_commits is not None:
        _Shown(as_json, show_gc_commits)(lambda: run_gc_commits(store=store, keep_commits=keep_commits,
                                                               keep_refs=keep_ref or [], dry_run=dry_run))
    else:
        assert keep is not None
        _Shown(as_json, show_gc)(lambda: run_gc(store=store, keep=keep, dry_run=dry_run))


@app.command()
def dashboard(
    store: Store = DEFAULT_STORE,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder of the site (default STORE/site); outside the store, or STORE/site.")] = None,
    as_json: Json = False,
) -> None:
    """Static site of the store's commits: trends per operation with steps and regressions marked, and a page
    per commit linking its artifacts; opens from disk, no network."""
    from .render.terminal.dashboard import show
    from .services.dashboard import run_dashboard

    _Shown(as_json, show)(lambda: run_dashboard(store=store, out=out))


# -- benchmarks ----------------------------------------------------------------------------------------


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Small store, fewer rounds (about 35 s).")] = False,
    suite: Annotated[list[str] | None, typer.Option(help="memory, graph, database or vector (repeatable).")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="Only operations whose name contains this.")] = None,
    save_baseline: Annotated[str | None, typer.Option(help="Save the results as this baseline name.")] = None,
    baseline: Annotated[str | None, typer.Option(help="Compare with this saved baseline.")] = None,
    baselines_dir: Annotated[Path | None, typer.Option(help="Where baselines live (default STORE/baselines).")] = None,
    reports: Annotated[Path, typer.Option(help="Folder for benchmark_<time>.md/.html/.json.")] = Path("reports"),
    budget: Annotated[Path | None, typer.Option(
        help="Budget TOML (default: the engine's own, agentmem/perf-budget.toml in the package).")] = None,
    inject: Annotated[list[str] | None, typer.Option(
        help="OP=FACTOR: multiply an operation's recorded times, to see the regression gate fire.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default 10, quick 8).", min=1)] = None,
    samples: Annotated[int | None, typer.Option(
        help="Rounds per worker; a round calls each operation one or more times.", min=1)] = None,
    mode: Annotated[str, typer.Option(help="time (latency) or instructions (callgrind counts, deterministic).",
                                      parser=_mode)] = "time",
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """Benchmark the engine's suites; p50/p95/p99 with intervals, budget status, baseline comparison."""
    from .render.terminal.bench import show
    from .services.bench import run_bench_command

    _Shown(as_json, show)(lambda: run_bench_command(
        quick=quick, suites=suite or [], op_filter=filter_, save_baseline=save_baseline, baseline=baseline,
        baselines_dir=baselines_dir or store / "baselines", reports_dir=reports, store=store, budget_path=budget,
        inject=inject or [], workers=workers, samples=samples, mode=mode, reporter=_reporter(as_json)))


@app.command()
def regress(
    base: Annotated[str, typer.Option(help="The reference: a branch, tag or commit.")] = "main",
    head: Annotated[str, typer.Option(
        help="What to judge; WORKTREE: the work tree as it is when the run starts.")] = "WORKTREE",
    quick: Annotated[bool, typer.Option("--quick", help="Small store, fewer samples.")] = False,
    suite: Annotated[list[str] | None, typer.Option(help="memory, graph, database or vector (repeatable).")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="Only operations whose name contains this.")] = None,
    rounds: Annotated[int | None, typer.Option(
        help="Worker processes per side, interleaved A B, B A, ... (default 10, quick 8).", min=2)] = None,
    output: Annotated[Path, typer.Option(help="Markdown report for a pull request.")] = Path("regression-report.md"),
    explain: Annotated[str, typer.Option(
        help="Attribute a regression: full (profile diff + callgrind instructions), samples (profile diff only), "
             "none.", parser=_explain_mode)] = "full",
    as_json: Json = False,
) -> None:
    """Benchmark two refs in their own worktrees, interleaved; fail on a > 10 % slowdown, and say which
    functions account for it."""
    from .render.terminal.regress import show
    from .services.regress import run_regress_command

    _Shown(as_json, show)(lambda: run_regress_command(
        base=base, head=head, quick=quick, suites=suite or [], op_filter=filter_, rounds=rounds, output=output,
        repo=Path.cwd(), reporter=_reporter(as_json), explain=explain))


# -- entry point ---------------------------------------------------------------------------------------


# typer checks min= / max= with pydantic, whose words are not a command line's.
_BOUNDS = ((re.compile(r"Input should be greater than or equal to (\S+)"), r"must be at least \1"),
           (re.compile(r"Input should be less than or equal to (\S+)"), r"must be at most \1"),
           (re.compile(r"Input should be a valid (\w+).*"), r"must be an \1"))


def _usage_line(exc: ParseError) -> str:
    """click's usage error as one line: the option, what is wrong with it, where help is."""
    name = exc.ctx.command_path if exc.ctx is not None else "profkit"
    param = getattr(exc, "param", None)
    if isinstance(exc, ParseMissingParameter) and param is not None and getattr(param, "opts", None):
        return f"{max(param.opts, key=len)} is required and missing (see {name} --help)"
    if isinstance(exc, ParseBadParameter) and param is not None and getattr(param, "opts", None):
        message = exc.message
        for pattern, words in _BOUNDS:
            message = pattern.sub(words, message)
        return f"{max(param.opts, key=len)} {message} (see {name} --help)"
    return f"{exc.format_message()} (see {name} --help)".replace("\n", " ")


def main() -> None:
    argv = sys.argv[1:]
    command: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1 :]
    try:
        code = app(args=argv, obj={"command": command}, prog_name="profkit", standalone_mode=False)
    except ProfkitError as exc:
        err.print(f"[red]profkit:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except NoArgsIsHelpError:
        sys.exit(UsageError.exit_code)  # the help was shown: that is the answer to no arguments
    except ParseError as exc:
        err.print(f"[red]profkit:[/] {escape(_usage_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(UsageError.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        # typer turns a KeyboardInterrupt inside a command into a plain exit 130; say what happened.
        err.print("[red]profkit:[/] interrupted")
    sys.exit(code if isinstance(code, int) else 0)
