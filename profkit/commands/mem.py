"""profkit mem — memray: capture file, HTML flamegraphs, peak/total/count stats, top allocators, leaks."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from ..backends import memray as backend
from ..console import out
from ..errors import ProfkitError, TargetError, UsageError
from ..session import Options, emit_json, open_run, print_artifacts, progress, result
from ..store import Run
from ..targets import PythonProgram, Target, python_program, require_python_pid
from ..tools import require, versions

CAPTURE = "memray.bin"
FLAMEGRAPH = "flamegraph.html"
LEAKS_FLAMEGRAPH = "leaks-flamegraph.html"
STATS = "stats.json"
TARGET_LOG = "target.log"

# memray flamegraph reads the whole capture; the limit only guards against a hung renderer.
RENDER_TIMEOUT = 1800.0


class PeakBudgetExceeded(ProfkitError):
    """The run itself worked; its peak memory is over the limit the user set (a gate for CI)."""

    exit_code = 6


_SIZE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgtp])(i)?)?b?$", re.IGNORECASE)
_POWER = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str) -> int:
    """'512MB', '1.5GiB', '800k', '2000000' → bytes. k/M/G are powers of 1000, Ki/Mi/Gi of 1024."""
    m = _SIZE.match(text.strip())
    if not m:
        raise UsageError(f"--peak-budget: cannot read {text!r} as a size; use e.g. 512MB, 1.5GiB or 800k "
                         "(k, M, G = 1000; Ki, Mi, Gi = 1024)")
    number, prefix, binary = m.groups()
    unit: int = (1024 if binary else 1000) ** _POWER[prefix.lower()] if prefix else 1
    value = round(float(number) * unit)
    if value < 1:
        raise UsageError(f"--peak-budget must be at least 1 byte, got {text!r}")
    return value


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def run_mem(opts: Options, *, native: bool, leaks: bool, peak_budget: str | None, top: int) -> dict[str, Any]:
    # Everything that can be refused is refused before a run folder exists, so a bad invocation
    # leaves the store exactly as it was.
    budget = parse_size(peak_budget) if peak_budget is not None else None
    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    require("memray")
    target = opts.target()
    flags = backend.Flags(native=native, leaks=leaks)
    debugger: str | None = None
    program: PythonProgram | None = None
    if target.kind == "pid":
        assert target.pid is not None
        require_python_pid(target.pid)
        with progress("memray: finding a debugger that can attach on this machine"):
            debugger = backend.choose_debugger()
    else:
        program = python_program(target, "memray")
    code = backend.CodeFilter(_user_roots(target))
    tool_versions = versions("memray", debugger) if debugger else versions("memray")

    with open_run("mem", opts, target, tools=tool_versions) as run:
        with progress(f"memray: recording {target.label}") as tick:
            if debugger is not None:
                assert target.pid is not None
                problem, seconds = _attach(run, target.pid, flags, debugger, opts.duration, tick)
            else:
                assert program is not None
                problem, seconds = _record(run, program, flags, target, opts.duration)
            running_after = backend.alive(target.pid) if target.pid is not None else None
            run.add(CAPTURE, "memray-bin")
            tick(f"memray: reading {CAPTURE}")
            report = backend.read_capture(run.path(CAPTURE), top=top, leaks=leaks, code=code, tick=tick)
            tick("memray: rendering the flamegraph")
            backend.flamegraph(run.path(CAPTURE), run.path(FLAMEGRAPH), leaks=False, timeout=RENDER_TIMEOUT)
            run.add(FLAMEGRAPH, "memray-html")
            if leaks:
                tick("memray: rendering the leaks flamegraph")
                backend.flamegraph(run.path(CAPTURE), run.path(LEAKS_FLAMEGRAPH), leaks=True, timeout=RENDER_TIMEOUT)
                run.add(LEAKS_FLAMEGRAPH, "memray-leaks-html")

        findings = _findings(report, target, flags, seconds, peak_budget, budget)
        if running_after is not None:
            findings["target_running_after"] = running_after
        run.write_json(STATS, {**findings, "capture": report.metadata}, "stats-json")
        run.conclude(findings, problem)

    doc = result("mem", run, findings)
    if problem:
        doc["error"] = problem
        _show(doc, opts)
        raise TargetError(f"{problem}; what was recorded is in {run.folder} (marked partial)")
    if budget is not None and findings["peak_memory_bytes"] > budget:
        peak = findings["peak_memory_bytes"]
        doc["error"] = f"peak memory {human(peak)} exceeds budget {peak_budget}"
        _show(doc, opts)
        raise PeakBudgetExceeded(f"peak memory {human(peak)} exceeds budget {peak_budget} "
                                 f"({peak:,} > {budget:,} bytes); artifacts in {run.folder}")
    return doc


def _show(doc: dict[str, Any], opts: Options) -> None:
    """The report still goes out when the command then fails, so a CI gate gets both."""
    if opts.as_json:
        emit_json(doc)
    else:
        render(doc)


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
    # A scenario stops by itself after --duration; a command runs to its end. The timeout only
    # guards against a child that never ends.
    timeout = duration * 3 + 120 if target.kind == "scenario" else 24 * 3600.0
    started = time.monotonic()
    proc = backend.record(run.path(CAPTURE), program, flags, timeout=timeout)
    seconds = time.monotonic() - started
    if proc.stdout.strip() or proc.stderr.strip():
        run.write(TARGET_LOG, (proc.stdout + proc.stderr).encode(), "log")
    problem: str | None = None
    if proc.returncode != 0:
        detail = backend.last_line(proc.stderr)
        problem = f"the profiled program exited with code {proc.returncode}" + (f" ({detail})" if detail else "")
    capture = run.path(CAPTURE)
    if not capture.is_file() or capture.stat().st_size == 0:
        raise TargetError(problem or f"memray wrote no capture for {target.label}: "
                                     f"{backend.last_line(proc.stderr) or f'exit code {proc.returncode}'}")
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
              budget_text: str | None, budget: int | None) -> dict[str, Any]:
    findings: dict[str, Any] = {
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


_STDLIB = sysconfig.get_paths()["stdlib"].rstrip("/") + "/"


def _where(row: dict[str, Any]) -> str:
    file = str(row["file"])
    if file.startswith("/"):
        cwd = os.getcwd().rstrip("/") + "/"
        if file.startswith(cwd):
            file = file[len(cwd):]
        elif "/site-packages/" in file:
            file = "site-packages/" + file.split("/site-packages/", 1)[1]
        elif file.startswith(_STDLIB):
            file = "stdlib/" + file[len(_STDLIB):]
    return f"{file}:{row['line']}"


def render(doc: dict[str, Any]) -> None:
    f = doc["findings"]
    out.print(f"[bold]peak memory[/] {human(f['peak_memory_bytes'])}   [bold]allocated[/] "
              f"{human(f['total_allocated_bytes'])} in {f['total_allocations']:,} allocations   "
              f"({f['mode']}, {f['seconds_recorded']:.1f} s, allocator {f['python_allocator']})", highlight=False)
    for key, title in (("top_functions", "top allocating functions (bytes allocated in total)"),
                       ("peak_functions", "memory held at the peak, by function")):
        table = Table(title=title)
        for col in ("function", "where", "bytes", "allocations"):
            table.add_column(col, justify="right" if col in ("bytes", "allocations") else "left")
        for row in f[key]:
            # Rows with no user code anywhere in their stack (interpreter start-up, imports) are dimmed.
            table.add_row(str(row["function"]), _where(row), human(row["bytes"]), f"{row['count']:,}",
                          style=None if row["user_code"] else "dim")
        out.print(table)
    if "leaks" in f:
        if f["leaks"]:
            table = Table(title=f"never freed — {human(f['leaked_bytes_total'])} in total")
            for col in ("function", "where", "leaked", "share", "allocations"):
                table.add_column(col, justify="left" if col in ("function", "where") else "right")
            for row in f["leaks"]:
                table.add_row(str(row["function"]), _where(row), human(row["bytes"]), f"{row['share']:.0%}",
                              f"{row['count']:,}")
            out.print(table)
        else:
            floor = f["leak_threshold"]
            out.print(f"no leaks: no function kept {human(floor['min_bytes'])} and {floor['min_share']:.0%} of the "
                      f"{human(f['leaked_bytes_total'] or 0)} never freed", highlight=False)
    if f.get("budget"):
        b = f["budget"]
        verdict = "[red]over[/]" if b["exceeded"] else "[green]within[/]"
        out.print(f"peak {human(f['peak_memory_bytes'])} is {verdict} the budget {b['limit']}", highlight=False)
    print_artifacts(doc)
