"""profkit mem — memray: capture file, HTML flamegraphs, peak/total/count stats, top allocators, leaks."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..backends import memray as backend
from ..errors import Interrupted, PeakBudgetExceeded, TargetError
from ..process import exit_problem, last_line, pid_alive
from ..progress import SILENT, Reporter
from ..results import MemFindings, MemResult
from ..session import STOPPED_BY_USER, Options, open_run, summary
from ..store import Run
from ..targets import PythonProgram, Target, python_program, require_python_pid
from ..tools import require, versions
from ..units import human

CAPTURE = "memray.bin"
FLAMEGRAPH = "flamegraph.html"
LEAKS_FLAMEGRAPH = "leaks-flamegraph.html"
STATS = "stats.json"
TARGET_LOG = "target.log"

# Counting every allocation reads the whole capture in a second process; the limit only guards
# against a hung one.
RENDER_TIMEOUT = 1800.0


def run_mem(opts: Options, *, native: bool, leaks: bool, peak_budget: str | None, budget: int | None, top: int,
            reporter: Reporter = SILENT) -> MemResult:
    """``budget`` is ``peak_budget`` in bytes (``units.parse_size``), checked while parsing the options.

    Everything that can be refused is refused before a run folder exists, so a bad invocation
    leaves the store exactly as it was.
    """
    require("memray")
    target = opts.target()
    flags = backend.Flags(native=native, leaks=leaks)
    debugger: str | None = None
    program: PythonProgram | None = None
    if target.kind == "pid":
        assert target.pid is not None
        require_python_pid(target.pid)
        with reporter.stage("memray: finding a debugger that can attach on this machine"):
            debugger = backend.choose_debugger()
    else:
        program = python_program(target, "memray", code_ok=True)
    code = backend.CodeFilter(_user_roots(target))
    tool_versions = versions("memray", debugger) if debugger else versions("memray")

    with open_run("mem", opts, target, tools=tool_versions) as run:
        with reporter.stage(f"memray: recording {target.label}") as tick:
            if debugger is not None:
                assert target.pid is not None
                problem, seconds = _attach(run, target.pid, flags, debugger, opts.duration, tick)
            else:
                assert program is not None
                problem, seconds = _record(run, program, flags, target, opts.duration)
            running_after = pid_alive(target.pid) if target.pid is not None else None
            run.add(CAPTURE, "memray-bin")
            report = _report(run, top=top, leaks=leaks, code=code, tick=tick)

        findings = _findings(report, target, flags, seconds, peak_budget, budget)
        if running_after is not None:
            findings["target_running_after"] = running_after
        run.write_json(STATS, {**findings, "capture": report.metadata}, "stats-json")
        run.conclude(dict(findings), problem)

    filed = summary(run)
    doc: MemResult = {"command": "mem", "run": filed["run"], "folder": filed["folder"], "status": filed["status"],
              "artifacts": filed["artifacts"], "findings": findings}
    if problem == STOPPED_BY_USER:
        raise Interrupted(f"interrupted: the report covers the {findings['seconds_recorded']:.1f} s recorded until "
                          f"Ctrl-C; in {run.folder} (marked partial)", result=doc)
    if problem:
        doc["error"] = problem
        raise TargetError(f"{problem}; what was recorded is in {run.folder} (marked partial)", result=doc)
    if budget is not None and findings["peak_memory_bytes"] > budget:
        peak = findings["peak_memory_bytes"]
        doc["error"] = f"peak memory {human(peak)} exceeds budget {peak_budget}"
        raise PeakBudgetExceeded(f"peak memory {human(peak)} exceeds budget {peak_budget} "
                                 f"({peak:,} > {budget:,} bytes); artifacts in {run.folder}", result=doc)
    return doc


def _report(run: Run, *, top: int, leaks: bool, code: backend.CodeFilter,
            tick: Callable[[str], None]) -> backend.CaptureReport:
    report = backend.report(run.path(CAPTURE), run.path(FLAMEGRAPH), run.path(LEAKS_FLAMEGRAPH) if leaks else None,
                            top=top, code=code, tick=tick, timeout=RENDER_TIMEOUT)
    run.add(FLAMEGRAPH, "memray-html")
    if leaks:
        run.add(LEAKS_FLAMEGRAPH, "memray-leaks-html")
    return report


def _user_roots(target: Target) -> list[Path]:
    # The bundled scenario profiles the agentmem engine: that is the code whose allocations the
    # user wants named, even where agentmem is installed under site-packages.
    if target.kind != "scenario":
        return []
    spec = importlib.util.find_spec("agentmem")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def _record(run: Run, program: PythonProgram, flags: backend.Flags, target: Target,
            duration: float) -> tuple[str | None, float]:
    """memray run on a child; (what went wrong with the target or None, seconds recorded)."""
    started = time.monotonic()
    proc = backend.record(run.path(CAPTURE), program, flags, timeout=target.timeout(duration))
    seconds = time.monotonic() - started
    if proc.stdout.strip() or proc.stderr.strip():
        run.write(TARGET_LOG, (proc.stdout + proc.stderr).encode(), "log")
    problem = STOPPED_BY_USER if proc.interrupted else exit_problem(proc.returncode, last_line(proc.stderr))
    capture = run.path(CAPTURE)
    if not capture.is_file() or capture.stat().st_size == 0:
        if proc.interrupted:
            raise Interrupted(f"interrupted before memray wrote a capture of {target.label}; nothing was recorded")
        raise TargetError(problem or f"memray wrote no capture for {target.label}: "
                                     f"{last_line(proc.stderr) or f'exit code {proc.returncode}'}")
    return problem, seconds


def _attach(run: Run, pid: int, flags: backend.Flags, debugger: str, duration: float,
            tick: Callable[[str], None]) -> tuple[str | None, float]:
    """memray attach for --duration; (what went wrong with the target or None, seconds recorded)."""
    seconds = backend.attach_seconds(duration)
    # The target writes the capture itself. When it runs as another user, it gets a folder of its
    # own inside the run folder (the run folder is ours), and the file is moved into place after.
    capture_dir = run.folder
    owner = backend.uid_gid(pid)
    if owner is not None and owner[0] != os.geteuid():
        capture_dir = run.folder / "attach"
        capture_dir.mkdir()
        with contextlib.suppress(OSError):
            os.chown(capture_dir, *owner)
    written = capture_dir / CAPTURE
    tick(f"memray: attaching to pid {pid} with {debugger}")
    proc = backend.attach(written, pid, flags, debugger=debugger, seconds=seconds)
    started = time.monotonic()
    if proc.returncode != 0:
        raise TargetError(backend.explain_attach_failure(proc, pid, debugger))
    outcome = backend.wait_for_capture(written, pid, seconds=seconds, started=started, tick=tick)
    if outcome == "stuck":
        raise TargetError(f"memray was still recording in pid {pid} {backend.FINALIZE_GRACE:.0f} s after --duration "
                          f"ended; stop it with: {' '.join(require('memray').argv())} detach --method {debugger} {pid}")
    recorded = min(time.monotonic() - started, float(seconds))
    problem = None
    if outcome == "exited":
        problem = f"pid {pid} exited {recorded:.1f} s into the {seconds} s recording"
    if written != run.path(CAPTURE) and written.is_file():
        os.replace(written, run.path(CAPTURE))
        with contextlib.suppress(OSError):
            capture_dir.rmdir()
    capture = run.path(CAPTURE)
    if not capture.is_file() or capture.stat().st_size == 0:
        raise TargetError(problem or f"memray attach wrote no capture for pid {pid}")
    return problem, recorded


def _findings(report: backend.CaptureReport, target: Target, flags: backend.Flags, seconds: float,
              budget_text: str | None, budget: int | None) -> MemFindings:
    findings: MemFindings = {
        "mode": "attach" if target.kind == "pid" else "run",
        "seconds_recorded": round(seconds, 3),
        "native": flags.native,
        "python_allocator": report.metadata["python_allocator"],
        "peak_memory_bytes": report.peak_memory_bytes,
        "total_allocated_bytes": report.total_allocated_bytes,
        "total_allocations": report.total_allocations,
        "top_functions": report.top_functions,
        "peak_functions": report.peak_functions,
        "budget": None,
    }
    if report.leaks is not None:
        findings["leaks"] = report.leaks
        findings["leaked_bytes_total"] = report.leaked_bytes_total
        findings["leak_threshold"] = {"min_bytes": backend.LEAK_MIN_BYTES, "min_share": backend.LEAK_MIN_SHARE}
    if budget is not None:
        findings["budget"] = {"limit": budget_text, "limit_bytes": budget,
                              "exceeded": report.peak_memory_bytes > budget,
                              "headroom_bytes": budget - report.peak_memory_bytes}
    return findings
