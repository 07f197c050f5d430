"""flame — py-spy sampling into an SVG flamegraph, speedscope JSON and collapsed stacks."""

from __future__ import annotations

import time

from ..backends.pyspy import RecordFlags, explain_failure, record
from ..errors import Interrupted, TargetError
from ..process import exit_problem, pid_alive
from ..progress import SILENT, Reporter
from ..render.collapsed import read_collapsed
from ..render.flamegraph_svg import render_svg
from ..render.pprof import to_pprof
from ..render.speedscope import to_speedscope
from ..results import FlameFindings, FlameResult
from ..session import STOPPED_BY_USER, Options, open_run, summary
from ..targets import require_python_pid
from ..tools import require, versions

COLLAPSED = "profile.collapsed"
PPROF = "profile.pb.gz"
MAX_RATE = 10_000


def run_flame(opts: Options, *, rate: int, native: bool, subprocesses: bool, idle: bool, gil: bool,
              nonblocking: bool, top: int, reporter: Reporter = SILENT) -> FlameResult:
    require("py-spy")
    target = opts.target()
    if target.pid is not None:
        require_python_pid(target.pid)
    flags = RecordFlags(rate, native, subprocesses, idle, gil, nonblocking)
    with open_run("flame", opts, target, tools=versions("py-spy")) as run:
        raw = run.path(COLLAPSED)
        # A pid is sampled for --duration; a scenario stops by itself after it; a command runs to its end.
        duration = opts.duration if target.kind == "pid" else None
        started_ns, clock_start = time.time_ns(), time.monotonic_ns()
        with reporter.stage(f"py-spy sampling {target.label} at {rate} Hz"):
            proc = record(raw, flags, pid=target.pid, argv=list(target.argv), duration=duration,
                          timeout=target.timeout(opts.duration))
        elapsed_ns = time.monotonic_ns() - clock_start
        if not raw.is_file() or raw.stat().st_size == 0:
            if proc.interrupted:
                raise Interrupted(f"interrupted before py-spy took a sample of {target.label}; nothing was recorded")
            raise TargetError(explain_failure(proc, target.label))
        run.add(COLLAPSED, "collapsed")
        stacks = read_collapsed(raw)
        if stacks.total == 0:
            raise TargetError(f"py-spy collected no samples from {target.label}; did it exit at once?")
        title = f"profkit flame: {target.label}"
        subtitle = f"{stacks.total} samples at {rate} Hz" + (" (GIL only)" if gil else "")
        run.write("flamegraph.svg", render_svg(stacks, title=title, subtitle=subtitle).encode(), "flamegraph-svg")
        run.write_json("profile.speedscope.json", to_speedscope(stacks, name=target.label, rate_hz=rate), "speedscope")
        # What was sampled, for readers of the run (profkit diff refuses to compare GIL-only with all samples).
        run.manifest["sampling"] = {"profiler": "py-spy", "rate_hz": rate, "idle": idle, "gil": gil, "native": native}
        run.write(PPROF, to_pprof(stacks, rate_hz=rate, wall=idle, time_nanos=started_ns, duration_nanos=elapsed_ns,
                                  comments=(f"profkit flame: {target.label}", _mode_comment(idle, gil))), "pprof")
        findings: FlameFindings = {
            "samples": stacks.total,
            "rate_hz": rate,
            "top_functions": stacks.top_functions(top),
            "top_by_total": stacks.by_total(top),
        }
        run.write_json("top_functions.json", findings, "findings-json")
        if proc.interrupted:
            problem: str | None = STOPPED_BY_USER
        elif target.pid is not None:
            problem = None if pid_alive(target.pid) else f"pid {target.pid} exited before the profile finished"
        else:
            problem = exit_problem(proc.returncode, proc.last_error_line(limit=160))
        run.conclude(dict(findings), problem)
    filed = summary(run)
    doc: FlameResult = {"command": "flame", "run": filed["run"], "folder": filed["folder"], "status": filed["status"],
              "artifacts": filed["artifacts"], "findings": findings}
    if proc.interrupted:
        raise Interrupted(f"interrupted: the flamegraph holds the {stacks.total} samples taken until Ctrl-C; "
                          f"in {run.folder} (marked partial)", result=doc)
    if problem:
        doc["error"] = problem
        raise TargetError(problem + f"; what was sampled is in {run.folder} (marked partial)")
    return doc


def _mode_comment(idle: bool, gil: bool) -> str:
    what = "all threads, idle ones included (wall clock)" if idle else "running threads"
    return f"py-spy samples of {what}" + (", only while holding the GIL" if gil else "")
