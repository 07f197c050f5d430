"""profkit async — coroutine wall and CPU time with yappi, and which coroutines block the event loop.

The program runs in a child process under :mod:`profkit.backends.yappi_runner` (yappi profiles in
process, so it cannot attach to a pid). A scenario target runs on the plain asyncio loop, because
the per-step timing hooks asyncio's own callback runner, which uvloop replaces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.table import Table

from ..console import err, out
from ..errors import TargetError, UsageError
from ..process import Completed, run
from ..session import Options, open_run, print_artifacts, progress, result
from ..store import STATUS_FAILED
from ..targets import python_program
from ..tools import require, versions

LOG = "program.log"


def run_async(opts: Options, *, block_threshold_ms: float, top: int) -> dict[str, Any]:
    if block_threshold_ms <= 0:
        raise UsageError(f"--block-threshold-ms must be positive, got {block_threshold_ms:g}")
    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    require("yappi")
    from ..backends import yappi_runner  # imports yappi, which require() has just vouched for

    target = opts.target(asyncio_loop=True)
    program = python_program(target, "yappi")
    # A scenario stops by itself after --duration; the timeout only guards against a hang (yappi
    # slows the program down several times). A command runs as long as it runs.
    timeout = opts.duration * 10 + 120 if target.kind == "scenario" else 24 * 3600
    with open_run("async", opts, target, tools=versions("yappi")) as run_:
        argv = [sys.executable, "-m", "profkit.backends.yappi_runner", "--out", str(run_.folder),
                "--block-threshold-ms", repr(float(block_threshold_ms))]
        argv += ["--script", program.script] if program.script is not None else ["--module", str(program.module)]
        argv += ["--", *program.args]
        with progress(f"yappi (wall clock) profiling {target.label}"):
            proc = run(argv, timeout=timeout)
        if proc.stdout or proc.stderr:
            run_.write(LOG, _log_text(proc).encode(), "program-log")
        table_path = run_.path(yappi_runner.COROUTINES)
        if not table_path.is_file():
            message = _no_profile(proc, target.label)
            run_.finish(STATUS_FAILED, error=message)
            raise TargetError(message)
        run_.add(yappi_runner.PSTAT, "pstat")
        run_.add(yappi_runner.CALLGRIND, "callgrind")
        run_.add(yappi_runner.COROUTINES, "coroutines-json")
        table = json.loads(table_path.read_text())
        findings = summarise(table, top=top)
        problem = _program_problem(table["program"], proc)
        run_.conclude(findings, problem)
    doc = result("async", run_, findings)
    if problem:
        raise TargetError(f"{problem}; what was profiled is in {run_.folder} (marked partial)")
    return doc


def summarise(table: dict[str, Any], *, top: int) -> dict[str, Any]:
    """The findings: the program's coroutines by wall time, loop blockers, hottest functions."""
    rows: list[dict[str, Any]] = table["coroutines"]
    # The entry coroutine (what asyncio.run was given) spans the whole run, and the standard
    # library's (asyncio.sleep, ...) add up every caller's waits; neither says which of the
    # program's coroutines is slow, so both stay in the table file but out of the ranking.
    ranked = [r for r in rows if r["origin"] == "program" and not r["entry"] and r["wall_ms"] is not None]
    steppers = [dict(r, kind="coroutine") for r in rows if r["steps"] is not None]
    steppers += [dict(c, kind="callback") for c in table["callbacks"]]
    blocking = sorted((_flag(r) for r in steppers if r["blocking"]), key=lambda r: -float(r["max_step_cpu_ms"]))
    stalled = sorted((_flag(r) for r in steppers if r["stalled"] and not r["blocking"]),
                     key=lambda r: -float(r["max_step_ms"]))
    functions = [f for f in table["top_functions"] if not f["file"].startswith("<frozen")]
    findings: dict[str, Any] = {
        "clock": table["clock"],
        "block_threshold_ms": table["block_threshold_ms"],
        "loop_steps": table["loop_steps"],
        "coroutines": ranked[:top],
        "entry": [r for r in rows if r["entry"] and r["origin"] == "program"],
        "blocking": blocking,
        "stalled": stalled,
        "top_functions": functions[:top],
        "program": table["program"],
    }
    if table["loop_steps"] == 0:
        findings["note"] = ("no asyncio event-loop steps were seen: the program ran no asyncio loop, or a "
                            "replacement (uvloop) that profkit cannot time; coroutine CPU time and blocking "
                            "detection need the plain asyncio loop")
    return findings


def _flag(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("name", "kind", "file", "line", "steps", "max_step_cpu_ms", "max_step_ms",
                              "cpu_blocking_steps", "stalled_steps", "cpu_ms")}


def _log_text(proc: Completed) -> str:
    return f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def _last_line(text: str) -> str | None:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else None


def _program_problem(program: dict[str, Any], proc: Completed) -> str | None:
    code = int(program.get("exit_code") or 0)
    if code == 0:
        return None
    detail = program.get("failure") or _last_line(proc.stderr)
    return f"the profiled program exited with code {code}" + (f" ({detail})" if detail else "")


def _no_profile(proc: Completed, label: str) -> str:
    if proc.returncode < 0:
        how = f"was killed by signal {-proc.returncode}"
    else:
        how = f"exited with code {proc.returncode} before yappi could save (os._exit() skips the save)"
    detail = _last_line(proc.stderr)
    return f"{label} {how}; no profile was written" + (f" ({detail})" if detail else "")


def render(doc: dict[str, Any]) -> None:
    f = doc["findings"]
    table = Table(title=f"coroutines by wall time (yappi, {f['clock']} clock; "
                        f"blocking = one step over {f['block_threshold_ms']:g} ms of CPU)")
    for col in ("coroutine", "calls", "wall ms", "cpu ms", "steps", "max step ms", "max step cpu ms", "flag"):
        table.add_column(col, justify="left" if col in ("coroutine", "flag") else "right")
    blocking = {(b["file"], b["line"]) for b in f["blocking"]}
    stalled = {(b["file"], b["line"]) for b in f["stalled"]}
    for r in f["coroutines"]:
        place = (r["file"], r["line"])
        flag = "[red]blocks loop[/]" if place in blocking else "[yellow]stalls loop[/]" if place in stalled else ""
        table.add_row(str(r["name"]), _num(r["calls"]), _num(r["wall_ms"]), _num(r["cpu_ms"]), _num(r["steps"]),
                      _num(r["max_step_ms"]), _num(r["max_step_cpu_ms"]), flag)
    out.print(table)
    for b in f["blocking"]:
        out.print(f"[red]blocks the loop:[/] {b['kind']} {b['name']} ({Path(str(b['file'])).name}:{b['line']}): "
                  f"{b['cpu_blocking_steps']} step(s) over the threshold, the longest {b['max_step_cpu_ms']:.1f} ms "
                  f"CPU / {b['max_step_ms']:.1f} ms wall", highlight=False)
    for b in f["stalled"]:
        out.print(f"[yellow]stalls the loop:[/] {b['kind']} {b['name']} ({Path(str(b['file'])).name}:{b['line']}): "
                  f"{b['stalled_steps']} step(s) over the threshold in wall time with little CPU (sleeping, "
                  f"blocking I/O or waiting for the GIL), the longest {b['max_step_ms']:.1f} ms", highlight=False)
    if f.get("note"):
        err.print(f"[yellow]note:[/] {f['note']}")
    funcs = Table(title="functions by total wall time")
    for col in ("function", "file", "calls", "wall ms", "own wall ms"):
        funcs.add_column(col, justify="left" if col in ("function", "file") else "right")
    for fn in f["top_functions"]:
        funcs.add_row(str(fn["function"]), f"{Path(fn['file']).name}:{fn['line']}", _num(fn["calls"]),
                      _num(fn["wall_ms"]), _num(fn["own_wall_ms"]))
    out.print(funcs)
    print_artifacts(doc)
    err.print("open the pstat with `snakeviz FILE`, the callgrind file with `kcachegrind FILE` or "
              "`callgrind_annotate FILE`", highlight=False)


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}"
