"""profkit async — coroutine wall and CPU time with yappi, and which coroutines block the event loop.

The program runs in a child process under :mod:`profkit.backends.yappi_runner` (yappi profiles in
process, so it cannot attach to a pid). A scenario target runs on the plain asyncio loop, because
the per-step timing hooks asyncio's own callback runner, which uvloop replaces.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import Interrupted, TargetError
from ..process import Completed, exit_problem, last_line, run
from ..progress import SILENT, Reporter
from ..results import AsyncFindings, AsyncResult, CoroutineRow, LoopFlag, ProgramEnd
from ..session import STOPPED_BY_USER, Options, open_run, summary
from ..store import STATUS_FAILED
from ..targets import python_program
from ..tools import require, versions

LOG = "program.log"
# yappi instruments every call: the program runs several times slower than on its own.
YAPPI_SLOWDOWN = 10.0


def run_async(opts: Options, *, block_threshold_ms: float, top: int, reporter: Reporter = SILENT) -> AsyncResult:
    require("yappi")
    from ..backends import yappi_runner  # imports yappi, which require() has just vouched for

    target = opts.target(asyncio_loop=True)
    program = python_program(target, "yappi")
    with open_run("async", opts, target, tools=versions("yappi")) as run_:
        argv = yappi_runner.argv(run_.folder, program, block_threshold_ms=block_threshold_ms)
        with reporter.stage(f"yappi (wall clock) profiling {target.label}"):
            proc = run(argv, timeout=target.timeout(opts.duration, slowdown=YAPPI_SLOWDOWN), interruptible=True)
        if proc.stdout or proc.stderr:
            run_.write(LOG, _log_text(proc).encode(), "program-log")
        table_path = run_.path(yappi_runner.COROUTINES)
        if not table_path.is_file():
            if proc.interrupted:
                raise Interrupted(f"interrupted before yappi saved a profile of {target.label}; nothing was recorded")
            message = _no_profile(proc, target.label)
            run_.finish(STATUS_FAILED, error=message)
            raise TargetError(message)
        run_.add(yappi_runner.PSTAT, "pstat")
        run_.add(yappi_runner.CALLGRIND, "callgrind")
        run_.add(yappi_runner.COROUTINES, "coroutines-json")
        table = json.loads(table_path.read_text())
        findings = summarise(table, top=top)
        program_end: ProgramEnd = table["program"]
        problem = STOPPED_BY_USER if proc.interrupted else exit_problem(
            int(program_end.get("exit_code") or 0), program_end.get("failure") or last_line(proc.stderr))
        run_.conclude(dict(findings), problem)
    doc: AsyncResult = {"command": "async", **summary(run_), "findings": findings}
    if proc.interrupted:
        raise Interrupted(f"interrupted: the tables cover the program until Ctrl-C; in {run_.folder} (marked partial)",
                          result=doc)
    if problem:
        raise TargetError(f"{problem}; what was profiled is in {run_.folder} (marked partial)")
    return doc


def summarise(table: dict[str, Any], *, top: int) -> AsyncFindings:
    """The findings: the program's coroutines by wall time, loop blockers and stalls, GC pauses, hottest functions."""
    rows: list[CoroutineRow] = table["coroutines"]
    # The entry coroutine (what asyncio.run was given) spans the whole run, and the standard
    # library's (asyncio.sleep, ...) add up every caller's waits; neither says which of the
    # program's coroutines is slow, so both stay in the table file but out of the ranking.
    ranked = [r for r in rows if r["origin"] == "program" and not r["entry"] and r["wall_ms"] is not None]
    steppers: list[dict[str, Any]] = [{**r, "kind": "coroutine"} for r in rows if r["steps"] is not None]
    steppers += [{**c, "kind": "callback"} for c in table["callbacks"]]
    # A step counts as blocking by its CPU outside garbage collection (tables before schema 2 have
    # only the CPU with it); a collection is reported apart, as the pause it is, under gc_pauses.
    blocking = sorted((_flag(r) for r in steppers if r["blocking"]), key=lambda r: -_own_cpu(r))
    stalled = sorted((_flag(r) for r in steppers if r["stalled"] and not r["blocking"]),
                     key=lambda r: -float(r.get("max_stalled_step_ms") or r["max_step_ms"]))
    gc_pauses = sorted((_flag(r) for r in steppers if r.get("gc_pause")),
                       key=lambda r: -float(r.get("max_gc_pause_gc_ms") or 0.0))
    functions = [f for f in table["top_functions"] if not f["file"].startswith("<frozen")]
    findings: AsyncFindings = {
        "clock": table["clock"],
        "block_threshold_ms": table["block_threshold_ms"],
        "loop_steps": table["loop_steps"],
        "coroutines": ranked[:top],
        "entry": [r for r in rows if r["entry"] and r["origin"] == "program"],
        "blocking": blocking,
        "stalled": stalled,
        "gc_pauses": gc_pauses,
        "top_functions": functions[:top],
        "program": table["program"],
    }
    if table["loop_steps"] == 0:
        findings["note"] = ("no asyncio event-loop steps were seen: the program ran no asyncio loop, or a "
                            "replacement (uvloop) that profkit cannot time; coroutine CPU time and blocking "
                            "detection need the plain asyncio loop")
    return findings


def _flag(r: dict[str, Any]) -> LoopFlag:
    flag: LoopFlag = {"name": r["name"], "kind": r["kind"], "file": r["file"], "line": r["line"], "steps": r["steps"],
                      "max_step_cpu_ms": r["max_step_cpu_ms"], "max_step_ms": r["max_step_ms"],
                      "cpu_blocking_steps": r["cpu_blocking_steps"], "stalled_steps": r["stalled_steps"],
                      "cpu_ms": r["cpu_ms"]}
    if "gc_ms" in r:
        flag.update({"max_step_own_cpu_ms": r["max_step_own_cpu_ms"], "max_own_cpu_step_ms": r["max_own_cpu_step_ms"],
                     "max_stalled_step_ms": r["max_stalled_step_ms"], "gc_ms": r["gc_ms"],
                     "max_step_gc_ms": r["max_step_gc_ms"], "max_step_gc_generation": r["max_step_gc_generation"],
                     "gc_pause_steps": r["gc_pause_steps"], "max_gc_pause_ms": r["max_gc_pause_ms"],
                     "max_gc_pause_gc_ms": r["max_gc_pause_gc_ms"],
                     "max_gc_pause_generation": r["max_gc_pause_generation"]})
    return flag


def _own_cpu(flag: LoopFlag) -> float:
    own = flag.get("max_step_own_cpu_ms")
    return float(own if own is not None else flag["max_step_cpu_ms"])


def _log_text(proc: Completed) -> str:
    return f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def _no_profile(proc: Completed, label: str) -> str:
    how = exit_problem(proc.returncode, last_line(proc.stderr), who=label) or f"{label} exited"
    if proc.returncode >= 0:
        how += " before yappi could save (os._exit() skips the save)"
    return f"{how}; no profile was written"
