"""profkit flame — py-spy sampling into an SVG flamegraph, speedscope JSON and collapsed stacks."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ..backends.pyspy import RecordFlags, explain_failure, record
from ..console import out
from ..errors import TargetError
from ..render.collapsed import read_collapsed
from ..render.flamegraph_svg import render_svg
from ..render.speedscope import to_speedscope
from ..session import Options, open_run, print_artifacts, progress, result
from ..targets import pid_alive, require_python_pid
from ..tools import require, versions

COLLAPSED = "profile.collapsed"


def run_flame(opts: Options, *, rate: int, native: bool, subprocesses: bool, idle: bool, gil: bool,
              nonblocking: bool, top: int, show_progress: bool = True) -> dict[str, Any]:
    require("py-spy")
    if rate < 1 or rate > 10_000:
        raise TargetError(f"--rate must be 1-10000 samples per second, got {rate}")
    target = opts.target()
    if target.pid is not None:
        require_python_pid(target.pid)
    flags = RecordFlags(rate, native, subprocesses, idle, gil, nonblocking)
    with open_run("flame", opts, target, tools=versions("py-spy")) as run:
        raw = run.path(COLLAPSED)
        # A scenario stops by itself after --duration; a command runs to its end; a pid is sampled
        # for --duration. The timeout only guards against a hung profiler.
        duration = opts.duration if target.kind == "pid" else None
        timeout = opts.duration * 3 + 120 if target.kind != "command" else 24 * 3600
        with progress(f"py-spy sampling {target.label} at {rate} Hz", show=show_progress):
            proc = record(raw, flags, pid=target.pid, argv=list(target.argv), duration=duration, timeout=timeout)
        if not raw.is_file() or raw.stat().st_size == 0:
            raise TargetError(explain_failure(proc, target.label))
        run.add(COLLAPSED, "collapsed")
        stacks = read_collapsed(raw)
        if stacks.total == 0:
            raise TargetError(f"py-spy collected no samples from {target.label}; did it exit at once?")
        title = f"profkit flame: {target.label}"
        subtitle = f"{stacks.total} samples at {rate} Hz" + (" (GIL only)" if gil else "")
        run.write("flamegraph.svg", render_svg(stacks, title=title, subtitle=subtitle).encode(), "flamegraph-svg")
        run.write_json("profile.speedscope.json", to_speedscope(stacks, name=target.label, rate_hz=rate), "speedscope")
        findings: dict[str, Any] = {
            "samples": stacks.total,
            "rate_hz": rate,
            "top_functions": stacks.top_functions(top),
            "top_by_total": stacks.by_total(top),
        }
        run.write_json("top_functions.json", findings, "findings-json")
        problem = _target_problem(proc.returncode, proc.stderr, target.kind, target.pid)
        run.conclude(findings, problem)
    doc = result("flame", run, findings)
    if problem:
        doc["error"] = problem
        raise TargetError(problem + f"; what was sampled is in {run.folder} (marked partial)")
    return doc


def _target_problem(returncode: int, stderr: str, kind: str, pid: int | None) -> str | None:
    if kind == "pid":
        return None if pid_alive(pid or 0) else f"pid {pid} exited before the profile finished"
    if returncode != 0:
        last = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        return f"the profiled program exited with code {returncode}" + (f" ({last[-1][:160]})" if last else "")
    return None


def render(doc: dict[str, Any]) -> None:
    f = doc["findings"]
    table = Table(title=f"hottest functions — {f['samples']} samples at {f['rate_hz']} Hz")
    for col in ("function", "file", "own %", "total %"):
        table.add_column(col, justify="right" if "%" in col else "left")
    for row in f["top_functions"]:
        table.add_row(str(row["function"]), str(row["file"]), f"{row['own_pct']:.1f}", f"{row['total_pct']:.1f}")
    out.print(table)
    print_artifacts(doc)
