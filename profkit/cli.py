"""The profkit command line. Each command is a thin shell around a function in profkit.commands."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .console import err, out
from .errors import ProfkitError
from .session import Options

app = typer.Typer(
    name="profkit",
    help="Profile asyncio Python services: flamegraphs, memory, coroutine timing, benchmarks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DEFAULT_STORE = Path(os.environ.get("PROFKIT_STORE", "flamegraphs"))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address. Anything but loopback exposes the engine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    db: Annotated[Path, typer.Option(help="SQLite database file (created if missing).")] = Path("agentmem.db"),
    embedder: Annotated[str, typer.Option(help="'hashing' (default, local) or 'st:<local model>'.")] = "hashing",
    llm_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL for fact extraction.")] = None,
) -> None:
    """Start the bundled agent-memory engine (HTTP, WebSocket, Prometheus /metrics)."""
    from .commands.serve import run_serve

    run_serve(host=host, port=port, db=db, embedder=embedder, llm_url=llm_url)


@app.command()
def load(
    url: Annotated[str, typer.Option(help="Engine base URL.")] = "http://127.0.0.1:8080",
    scenario: Annotated[str, typer.Option(help="mixed, ingest, search-heavy, graph or ws-hold.")] = "mixed",
    duration: Annotated[float, typer.Option(help="Seconds of measured load (ws-hold: seconds held).")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="Open connections (ws-hold: WebSockets).")] = 64,
    seed_per_tenant: Annotated[int, typer.Option(help="Memories written per tenant before measuring.")] = 100,
    warmup: Annotated[float, typer.Option(help="Seconds of unmeasured load first.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON document.")] = False,
) -> None:
    """Drive a running engine with a named scenario; report req/s, errors and p50/p95/p99 per operation."""
    from .commands.load import render, run_load_command

    report = run_load_command(url=url, scenario=scenario, duration=duration, concurrency=concurrency,
                              seed_per_tenant=seed_per_tenant, warmup=warmup, show_progress=not as_json)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        render(report)
    if report["errors"]:
        raise typer.Exit(1)


@app.command()
def ci(
    store: Annotated[Path, typer.Option(help="Artifact store (env PROFKIT_STORE).")] = DEFAULT_STORE,
    duration: Annotated[float, typer.Option(help="Seconds of measured load.")] = 20.0,
    concurrency: Annotated[int, typer.Option(help="Open connections.")] = 32,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")] = False,
) -> None:
    """The main job: load the bundled engine, sample it with py-spy, file both under STORE/<commit>/."""
    from .commands.ci import run_ci
    from .commands.load import render

    result = run_ci(store=store, duration=duration, concurrency=concurrency)
    if as_json:
        sys.stdout.write(json.dumps({"folder": str(result.folder), "load": result.load, "flame": result.flame,
                                     "flame_error": result.flame_error}) + "\n")
    else:
        render(result.load)
        if result.flame is not None:
            hot = ", ".join(f"{r['function']} ({r['file']}) {r['own_pct']:.0f}%"
                            for r in result.flame["findings"]["top_functions"][:5])
            out.print(f"engine hot spots, own share of samples: {hot}")
            out.print(f"flamegraph: [bold]{result.flame['folder']}/flamegraph.svg[/]")
        else:
            err.print(f"[yellow]no flamegraph:[/] {result.flame_error}")
        out.print(f"artifacts: [bold]{result.folder}[/] (load.json, metrics.prom, engine.log)")
    if result.load["errors"]:
        raise typer.Exit(1)


# -- profiling commands --------------------------------------------------------------------------
# Each takes the same target forms: a scenario name (default "mixed"), a command after "--"
# (split off in main(), because click would otherwise read the command's words as arguments),
# or --pid PID.

Scenario = Annotated[str | None, typer.Argument(help="Bundled scenario (mixed, ingest, search-heavy, graph).",
                                                  show_default=False)]
Pid = Annotated[int | None, typer.Option("--pid", help="Attach to this running process.")]
Duration = Annotated[float, typer.Option(help="Seconds to profile (a scenario runs this long).")]
Store = Annotated[Path, typer.Option(help="Artifact store (env PROFKIT_STORE).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Top = Annotated[int, typer.Option(help="How many functions to list.")]


def _options(ctx: typer.Context, scenario: str | None, pid: int | None, duration: float, store: Path,
             as_json: bool) -> Options:
    from .errors import UsageError

    if duration <= 0:
        raise UsageError(f"--duration must be positive, got {duration:g}")
    return Options(scenario=scenario, command=tuple((ctx.obj or {}).get("command", ())), pid=pid,
                   duration=duration, store=store, as_json=as_json)


def _no_command(ctx: typer.Context, name: str) -> None:
    from .errors import UsageError

    if (ctx.obj or {}).get("command"):
        raise UsageError(f"profkit {name} takes no command after --")


def _finish(doc: dict[str, Any], as_json: bool, render: Any) -> None:
    from .session import emit_json

    if as_json:
        emit_json(doc)
    else:
        render(doc)


@app.command()
def flame(
    ctx: typer.Context,
    scenario: Scenario = None,
    pid: Pid = None,
    duration: Duration = 10.0,
    rate: Annotated[int, typer.Option(help="Samples per second.")] = 100,
    native: Annotated[bool, typer.Option("--native", help="Include C/C++/Cython frames.")] = False,
    subprocesses: Annotated[bool, typer.Option("--subprocesses", help="Also sample child processes.")] = False,
    idle: Annotated[bool, typer.Option("--idle", help="Keep samples of idle (waiting) threads.")] = False,
    gil: Annotated[bool, typer.Option("--gil", help="Only samples that hold the GIL.")] = False,
    nonblocking: Annotated[bool, typer.Option("--nonblocking", help="Never pause the target to sample it.")] = False,
    top: Top = 15,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """CPU flamegraph with py-spy: SVG, speedscope JSON, collapsed stacks, and the hottest functions."""
    from .commands.flame import render, run_flame

    opts = _options(ctx, scenario, pid, duration, store, as_json)
    doc = run_flame(opts, rate=rate, native=native, subprocesses=subprocesses, idle=idle, gil=gil,
                    nonblocking=nonblocking, top=top)
    _finish(doc, as_json, render)


@app.command()
def mem(
    ctx: typer.Context,
    scenario: Scenario = None,
    pid: Pid = None,
    duration: Duration = 10.0,
    native: Annotated[bool, typer.Option("--native", help="Record native (C) frames too.")] = False,
    leaks: Annotated[bool, typer.Option("--leaks", help="Name functions whose allocations were never freed.")] = False,
    peak_budget: Annotated[str | None, typer.Option(help="Fail when peak memory exceeds this, e.g. 512MB.")] = None,
    top: Top = 15,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """Memory with memray: HTML flamegraph, peak/total/count stats, allocation table, leaks."""
    from .commands.mem import render, run_mem

    opts = _options(ctx, scenario, pid, duration, store, as_json)
    doc = run_mem(opts, native=native, leaks=leaks, peak_budget=peak_budget, top=top)
    _finish(doc, as_json, render)


@app.command("async")
def async_(
    ctx: typer.Context,
    scenario: Scenario = None,
    pid: Pid = None,
    duration: Duration = 10.0,
    block_threshold_ms: Annotated[float, typer.Option(help="Flag a coroutine whose single step takes longer.")] = 10.0,
    top: Top = 15,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """Coroutine wall and CPU time with yappi: table, pstat (snakeviz), callgrind (kcachegrind); flags loop blockers."""
    from .commands.async_ import render, run_async

    opts = _options(ctx, scenario, pid, duration, store, as_json)
    doc = run_async(opts, block_threshold_ms=block_threshold_ms, top=top)
    _finish(doc, as_json, render)


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
    from .commands.lines import render, run_lines

    opts = _options(ctx, scenario, pid, duration, store, as_json)
    doc = run_lines(opts, top=top)
    _finish(doc, as_json, render)


@app.command()
def dump(
    ctx: typer.Context,
    pid: Annotated[int, typer.Option("--pid", help="The running process to look at.")],
    native: Annotated[bool, typer.Option("--native", help="Include C/C++/Cython frames.")] = False,
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """Every thread's current stack of a live process (and its asyncio tasks where it exposes them)."""
    from .commands.dump import render, run_dump

    _no_command(ctx, "dump")
    doc = run_dump(pid=pid, native=native, store=store)
    _finish(doc, as_json, render)


@app.command()
def top(
    ctx: typer.Context,
    pid: Annotated[int, typer.Option("--pid", help="The running process to watch.")],
    rate: Annotated[int, typer.Option(help="Samples per second.")] = 100,
    native: Annotated[bool, typer.Option("--native", help="Include C/C++/Cython frames.")] = False,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")] = None,
) -> None:
    """Live view of where a running process spends its time (py-spy top)."""
    from .commands.top import run_top

    _no_command(ctx, "top")
    run_top(pid=pid, rate=rate, native=native, duration=duration)


@app.command()
def doctor(
    ctx: typer.Context,
    pid: Annotated[int | None, typer.Option("--pid", help="Also check what can be done to this process.")] = None,
    as_json: Json = False,
) -> None:
    """What will and won't work here, and why: tools, versions, ptrace permission, debuggers."""
    from .commands.doctor import render, run_doctor

    _no_command(ctx, "doctor")
    doc = run_doctor(pid=pid)
    _finish(doc, as_json, render)
    if not doc["ok"]:
        raise typer.Exit(1)


@app.command()
def runs(
    store: Store = DEFAULT_STORE,
    limit: Annotated[int, typer.Option(help="Show this many newest runs.")] = 50,
    as_json: Json = False,
) -> None:
    """List the runs in the artifact store, newest first."""
    from .commands.runs import render_runs, run_runs

    _finish(run_runs(store=store, limit=limit), as_json, render_runs)


@app.command()
def gc(
    keep: Annotated[int, typer.Option(help="Keep this many newest runs.")],
    store: Store = DEFAULT_STORE,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
    as_json: Json = False,
) -> None:
    """Remove old runs from the artifact store; the newest runs are always kept."""
    from .commands.runs import render_gc, run_gc

    _finish(run_gc(store=store, keep=keep, dry_run=dry_run), as_json, render_gc)


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Small store, fewer rounds (about 35 s).")] = False,
    suite: Annotated[list[str] | None, typer.Option(help="memory, graph, database or vector (repeatable).")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="Only operations whose name contains this.")] = None,
    save_baseline: Annotated[str | None, typer.Option(help="Save the results as this baseline name.")] = None,
    baseline: Annotated[str | None, typer.Option(help="Compare with this saved baseline.")] = None,
    baselines_dir: Annotated[Path | None, typer.Option(help="Where baselines live (default STORE/baselines).")] = None,
    reports: Annotated[Path, typer.Option(help="Folder for benchmark_<time>.md/.html/.json.")] = Path("reports"),
    budget: Annotated[Path | None, typer.Option(help="Budget TOML (default targets/perf-budget.toml).")] = None,
    inject: Annotated[list[str] | None, typer.Option(
        help="OP=FACTOR: multiply an operation's recorded times, to see the regression gate fire.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default 10, quick 8).")] = None,
    samples: Annotated[int | None, typer.Option(
        help="Rounds per worker; a round calls each operation one or more times.")] = None,
    mode: Annotated[str, typer.Option(help="time (latency) or instructions (callgrind counts, deterministic).")]
    = "time",
    store: Store = DEFAULT_STORE,
    as_json: Json = False,
) -> None:
    """Benchmark the engine's suites; p50/p95/p99 with intervals, budget status, baseline comparison."""
    from .commands.bench import check_exit, render, run_bench_command

    doc = run_bench_command(quick=quick, suites=suite or [], op_filter=filter_, save_baseline=save_baseline,
                            baseline=baseline, baselines_dir=baselines_dir or store / "baselines",
                            reports_dir=reports, store=store, budget_path=budget, inject=inject or [],
                            workers=workers, samples=samples, mode=mode)
    _finish(doc, as_json, render)
    check_exit(doc)


@app.command()
def regress(
    base: Annotated[str, typer.Option(help="The reference: a branch, tag or commit.")] = "main",
    head: Annotated[str, typer.Option(
        help="What to judge; WORKTREE: the work tree as it is when the run starts.")] = "WORKTREE",
    quick: Annotated[bool, typer.Option("--quick", help="Small store, fewer samples.")] = False,
    suite: Annotated[list[str] | None, typer.Option(help="memory, graph, database or vector (repeatable).")] = None,
    filter_: Annotated[str | None, typer.Option("--filter", help="Only operations whose name contains this.")] = None,
    rounds: Annotated[int | None, typer.Option(
        help="Worker processes per side, interleaved A B, B A, ... (default 10, quick 8).")] = None,
    output: Annotated[Path, typer.Option(help="Markdown report for a pull request.")] = Path("regression-report.md"),
    as_json: Json = False,
) -> None:
    """Benchmark two refs in their own worktrees, interleaved; fail on a > 10 % slowdown."""
    from .commands.regress import check_exit, render, run_regress_command

    doc = run_regress_command(base=base, head=head, quick=quick, suites=suite or [], op_filter=filter_,
                              rounds=rounds, output=output, repo=Path.cwd())
    _finish(doc, as_json, render)
    check_exit(doc)


def main() -> None:
    argv = sys.argv[1:]
    command: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, command = argv[:i], argv[i + 1 :]
    try:
        app(args=argv, obj={"command": command}, prog_name="profkit")
    except ProfkitError as exc:
        err.print(f"[red]profkit:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[red]profkit:[/] interrupted")
        sys.exit(130)
