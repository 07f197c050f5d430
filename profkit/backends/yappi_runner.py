"""Run a Python program under yappi inside this process, and write what it measured.

    python -m profkit.backends.yappi_runner --out DIR --block-threshold-ms N \\
        (--script PATH | --module NAME) -- ARGS...

Writes into DIR, whatever way the program ends (normally, ``sys.exit``, an exception):

``profile.pstat``       yappi's function stats as a pstats file (snakeviz, ``pstats.Stats``)
``profile.callgrind``   the same stats for callgrind_annotate / KCachegrind
``coroutines.json``     one row per coroutine: yappi's wall time plus this module's per-step timing,
                        blocking flags, non-task loop callbacks, top functions, and how the program ended
                        (written last: its presence means every file above is complete)

yappi runs one clock per session; the wall clock is the one that answers "where did the time go"
for coroutines (since yappi 1.2 a coroutine's time while suspended at an ``await`` counts towards
its total, and it is counted once per call, not once per resumption). CPU time per coroutine and
"this coroutine blocked the event loop" need another source, so every event-loop callback is
timed through :mod:`profkit.loopclock` (wall, thread CPU, and the garbage collection inside it): a
task step is one resumption of the task's coroutine, and nothing else runs on that loop while it lasts.

A collection runs inside whichever step allocated the object that tipped the collector over, so it
is not that step's code that held the loop: a step blocks the loop when its CPU *outside* garbage
collection exceeds the threshold, and a step over the threshold only because of a collection is
counted as a GC pause of its coroutine, with the time and generation collected.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.base_events
import asyncio.events
import inspect
import json
import os
import runpy
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

import yappi

from .. import (
    inprocess,
    loopclock,  # the standard library only: safe to import inside the profiled program
)
from ..inprocess import exit_status, print_program_traceback, program_argv, run_program

if TYPE_CHECKING:  # the runner starts inside the profiled program: it imports no more of profkit than it must
    from ..targets import PythonProgram

PSTAT = "profile.pstat"
CALLGRIND = "profile.callgrind"
COROUTINES = "coroutines.json"
SCHEMA_VERSION = 2  # 2: garbage collection per step; blocking and stalled leave it out
TOP_FUNCTIONS = 100  # the command shows --top of these; the file keeps more for later reading

_STDLIB_DIRS = tuple({os.path.realpath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")})
_RUNNER_FILES = {os.path.realpath(__file__), os.path.realpath(runpy.__file__), os.path.realpath(inprocess.__file__),
                 os.path.realpath(loopclock.__file__)}


@dataclass
class StepStats:
    """Every loop step one coroutine (or one plain callback) took."""

    name: str
    file: str | None
    line: int | None
    kind: str  # "task" or "callback"
    steps: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    gc_s: float = 0.0  # garbage collection inside its steps
    max_wall_s: float = 0.0
    max_wall_gc_s: float = 0.0  # the collection inside that longest step
    max_wall_gc_generation: int | None = None
    max_cpu_s: float = 0.0
    max_own_cpu_s: float = 0.0  # the most CPU one step used outside garbage collection
    max_own_cpu_wall_s: float = 0.0  # that step's wall time
    cpu_over: int = 0  # steps whose CPU outside GC exceeded the threshold: the code itself held the loop
    wall_over: int = 0  # over the threshold in wall time outside GC only: sleeping, blocking I/O, the GIL
    max_stall_s: float = 0.0  # the longest of those
    gc_over: int = 0  # over the threshold only because of the garbage collection inside them
    max_gc_pause_s: float = 0.0  # the longest of those steps, its collection, and the generation collected
    max_gc_pause_gc_s: float = 0.0
    max_gc_pause_generation: int | None = None

    def add(self, wall: float, cpu: float, threshold_s: float, gc: float = 0.0,
            gc_generation: int | None = None) -> None:
        self.steps += 1
        self.wall_s += wall
        self.cpu_s += cpu
        self.gc_s += gc
        if wall > self.max_wall_s:
            self.max_wall_s, self.max_wall_gc_s, self.max_wall_gc_generation = wall, gc, gc_generation
        self.max_cpu_s = max(self.max_cpu_s, cpu)
        # loopclock times a collection on the wall clock: on a busy machine it can exceed the CPU it
        # cost, so what is left of the step's CPU is floored at zero.
        own_cpu = max(0.0, cpu - gc)
        if own_cpu > self.max_own_cpu_s:
            self.max_own_cpu_s, self.max_own_cpu_wall_s = own_cpu, wall
        if own_cpu > threshold_s:
            self.cpu_over += 1
        elif wall - gc > threshold_s:
            self.wall_over += 1
            self.max_stall_s = max(self.max_stall_s, wall)
        elif wall > threshold_s:
            self.gc_over += 1
            if wall > self.max_gc_pause_s:
                self.max_gc_pause_s, self.max_gc_pause_gc_s, self.max_gc_pause_generation = wall, gc, gc_generation


def _code_of(obj: Any) -> CodeType | None:
    for attr in ("cr_code", "gi_code", "ag_code", "__code__"):
        code = getattr(obj, attr, None)
        if isinstance(code, CodeType):
            return code
    # A bound method (__func__) or a functools.partial (func) is timed as the function it wraps.
    inner = getattr(obj, "__func__", None) or getattr(obj, "func", None)
    return _code_of(inner) if inner is not None and inner is not obj else None


@dataclass
class StepTimer:
    """Adds up every loop step :mod:`profkit.loopclock` reports, per coroutine and per plain callback."""

    threshold_s: float
    stats: dict[object, StepStats] = field(default_factory=dict)
    entries: set[CodeType] = field(default_factory=set)
    _undo: list[Callable[[], None]] = field(default_factory=list)

    def install(self) -> None:
        original_ruc = asyncio.base_events.BaseEventLoop.run_until_complete
        timer = self

        def run_until_complete(loop: asyncio.base_events.BaseEventLoop, future: Any) -> Any:
            # What asyncio.run() (or the program) hands the loop is its entry point: its wall time
            # is the whole run, so the table marks it rather than ranking it first every time.
            coro = future.get_coro() if isinstance(future, asyncio.Task) else future
            code = _code_of(coro)
            if code is not None:
                timer.entries.add(code)
            return original_ruc(loop, future)

        sink = self.step  # one bound method, so that remove_sink finds the one add_sink got
        asyncio.base_events.BaseEventLoop.run_until_complete = run_until_complete  # type: ignore[method-assign,assignment]
        loopclock.add_sink(sink)
        self._undo = [
            lambda: setattr(asyncio.base_events.BaseEventLoop, "run_until_complete", original_ruc),
            lambda: loopclock.remove_sink(sink),
        ]

    def uninstall(self) -> None:
        for undo in self._undo:
            undo()
        self._undo = []

    def step(self, step: loopclock.Step) -> None:
        self._record(step.handle, step.wall, step.cpu, step.gc, step.gc_generation)

    def _record(self, handle: asyncio.events.Handle, wall: float, cpu: float, gc: float,
                gc_generation: int | None) -> None:
        callback = getattr(handle, "_callback", None)
        task = getattr(callback, "__self__", None)
        if isinstance(task, asyncio.Task):
            coro = task.get_coro()
            code = _code_of(coro)
            key: object = code if code is not None else ("task", type(coro).__qualname__)
            kind = "task"
            target: Any = coro
        else:
            code = _code_of(callback)
            # Never key on repr(): it holds an address, and every new object would get a row.
            key = code if code is not None else ("callback", getattr(callback, "__qualname__", None)
                                                 or type(callback).__qualname__)
            kind = "callback"
            target = callback
        entry = self.stats.get(key)
        if entry is None:
            if code is not None:
                entry = StepStats(code.co_qualname, code.co_filename, code.co_firstlineno, kind)
            else:
                name = getattr(target, "__qualname__", None) or type(target).__qualname__
                entry = StepStats(str(name), None, None, kind)
            self.stats[key] = entry
        entry.add(wall, cpu, self.threshold_s, gc, gc_generation)


def _origin(path: str | None) -> str:
    """Whose code a file is: the program's, the standard library's, or the profiler's own."""
    if not path:
        return "program"
    if path.startswith("<frozen"):
        return "profiler" if path == "<frozen runpy>" else "stdlib"
    real = os.path.realpath(path)
    if real in _RUNNER_FILES or os.path.basename(real) == "yappi.py":
        return "profiler"
    if "site-packages" not in real and real.startswith(_STDLIB_DIRS):
        return "stdlib"
    return "program"


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _descriptors() -> dict[str, Any]:
    # yappi keeps each stat's code object (or builtin) here; it is the one reliable way to tell a
    # coroutine function from a plain one, since yappi names methods after the instance's class.
    found = getattr(yappi, "_fn_descriptor_dict", None)
    return found if isinstance(found, dict) else {}


def build_table(func_stats: Any, timer: StepTimer) -> dict[str, Any]:
    """Merge yappi's per-function wall time with the per-step timing into the coroutine table."""
    descriptors = _descriptors()
    by_place: dict[tuple[str, int], dict[str, Any]] = {}
    functions: list[dict[str, Any]] = []
    task_places = {(s.file, s.line) for s in timer.stats.values() if s.kind == "task" and s.file}
    entry_places = {(c.co_filename, c.co_firstlineno) for c in timer.entries}
    for st in func_stats:
        module, lineno = str(st.module), int(st.lineno)
        if _origin(module) != "profiler":
            functions.append({"function": str(st.name), "file": module, "line": lineno, "calls": int(st.ncall),
                              "wall_ms": _ms(float(st.ttot)), "own_wall_ms": _ms(float(st.tsub))})
        code = descriptors.get(st.full_name)
        is_coro = isinstance(code, CodeType) and bool(code.co_flags & inspect.CO_COROUTINE)
        if not is_coro and (module, lineno) not in task_places:
            continue
        # One code object can show up under several names (yappi names a method after the
        # instance's class), so rows are keyed by where the coroutine is defined.
        row = by_place.get((module, lineno))
        if row is None:
            name = code.co_qualname if isinstance(code, CodeType) else str(st.name)
            row = by_place[(module, lineno)] = {"name": name, "file": module, "line": lineno, "calls": 0,
                                                "wall_ms": 0.0}
        row["calls"] += int(st.ncall)
        row["wall_ms"] = round(row["wall_ms"] + _ms(float(st.ttot)), 3)

    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for s in timer.stats.values():
        if s.kind != "task":
            continue
        place = (s.file or "", s.line or 0)
        row = by_place.get(place) if s.file else None
        if row is None:
            row = {"name": s.name, "file": s.file, "line": s.line, "calls": None, "wall_ms": None}
        seen.add(place)
        rows.append({**row, **_step_fields(s)})
    for place, row in by_place.items():
        if place not in seen:
            rows.append({**row, **_NO_STEPS})
    for row in rows:
        row["origin"] = _origin(row["file"])
        row["entry"] = (row["file"], row["line"]) in entry_places
        # Calls overlap and each counts its time suspended at await, so wall_ms can exceed the run;
        # per call it is the latency a caller of this coroutine waits.
        wall, calls = row["wall_ms"], row["calls"]
        row["mean_wall_ms"] = round(wall / calls, 3) if wall is not None and calls else None
    rows.sort(key=lambda r: (r["wall_ms"] is None, -(r["wall_ms"] or 0.0), -(r["cpu_ms"] or 0.0)))

    callbacks = [{"name": s.name, "file": s.file, "line": s.line, "origin": _origin(s.file),
                  **_step_fields(s)}
                 for s in timer.stats.values() if s.kind == "callback"]
    callbacks.sort(key=lambda r: -float(r["cpu_ms"]))
    functions.sort(key=lambda f: -float(f["wall_ms"]))
    return {"coroutines": rows, "callbacks": callbacks, "top_functions": functions[:TOP_FUNCTIONS],
            "loop_steps": sum(s.steps for s in timer.stats.values())}


def _step_fields(s: StepStats) -> dict[str, Any]:
    return {
        "cpu_ms": _ms(s.cpu_s),
        "steps": s.steps,
        "busy_ms": _ms(s.wall_s),  # wall time this coroutine held the loop, summed over its steps
        "max_step_ms": _ms(s.max_wall_s),
        "max_step_cpu_ms": _ms(s.max_cpu_s),
        "max_step_own_cpu_ms": _ms(s.max_own_cpu_s),
        "max_own_cpu_step_ms": _ms(s.max_own_cpu_wall_s),
        "gc_ms": _ms(s.gc_s),
        "max_step_gc_ms": _ms(s.max_wall_gc_s),
        "max_step_gc_generation": s.max_wall_gc_generation,
        "cpu_blocking_steps": s.cpu_over,
        "stalled_steps": s.wall_over,
        "max_stalled_step_ms": _ms(s.max_stall_s) if s.wall_over else None,
        "gc_pause_steps": s.gc_over,
        "max_gc_pause_ms": _ms(s.max_gc_pause_s) if s.gc_over else None,
        "max_gc_pause_gc_ms": _ms(s.max_gc_pause_gc_s) if s.gc_over else None,
        "max_gc_pause_generation": s.max_gc_pause_generation,
        "blocking": s.cpu_over > 0,
        "stalled": s.wall_over > 0,
        "gc_pause": s.gc_over > 0,
    }


# A coroutine that only ever ran inside another task's step has no steps of its own: its CPU time
# (and any collection) is part of the task that awaited it.
_NO_STEPS: dict[str, Any] = {
    **dict.fromkeys(("cpu_ms", "steps", "busy_ms", "max_step_ms", "max_step_cpu_ms", "max_step_own_cpu_ms",
                     "max_own_cpu_step_ms", "gc_ms", "max_step_gc_ms", "max_step_gc_generation", "cpu_blocking_steps",
                     "stalled_steps", "max_stalled_step_ms", "gc_pause_steps", "max_gc_pause_ms", "max_gc_pause_gc_ms",
                     "max_gc_pause_generation")),
    "blocking": False, "stalled": False, "gc_pause": False,
}


def _write_atomic(path: Path, write: Callable[[str], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(str(tmp))
    os.replace(tmp, path)


def save(out: Path, timer: StepTimer, threshold_ms: float, program: dict[str, Any], argv: list[str]) -> None:
    stats = yappi.get_func_stats()
    _write_atomic(out / PSTAT, lambda p: stats.save(p, type="pstat"))
    # yappi writes sys.argv as the callgrind "cmd:" line; it should name the program, not this runner.
    with program_argv(argv, None):
        _write_atomic(out / CALLGRIND, lambda p: stats.save(p, type="callgrind"))
    doc = {"schema": SCHEMA_VERSION, "clock": "wall", "block_threshold_ms": threshold_ms, "program": program,
           **build_table(stats, timer)}
    _write_atomic(out / COROUTINES, lambda p: Path(p).write_text(json.dumps(doc, indent=2)))


def argv(out: Path, program: PythonProgram, *, block_threshold_ms: float) -> list[str]:
    """The command that runs ``program`` under this runner, writing into the folder ``out``."""
    cmd = [sys.executable, "-m", "profkit.backends.yappi_runner", "--out", str(out),
           "--block-threshold-ms", repr(float(block_threshold_ms))]
    cmd += ["--script", program.script] if program.script is not None else ["--module", str(program.module)]
    return [*cmd, "--", *program.args]


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    head, rest = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(prog="python -m profkit.backends.yappi_runner",
                                     description="Run a Python program under yappi (wall clock) and time "
                                                 "every event-loop step.")
    parser.add_argument("--out", type=Path, required=True, help="folder for the profile files")
    parser.add_argument("--block-threshold-ms", type=float, default=10.0,
                        help="flag a coroutine one of whose steps used more CPU than this")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--script", help="path of the script to run")
    which.add_argument("--module", help="module to run as with python -m")
    return parser.parse_args(head), rest


def main(argv: list[str] | None = None) -> int:
    opts, args = _parse(sys.argv[1:] if argv is None else argv)
    out: Path = opts.out
    if not out.is_dir():
        sys.stderr.write(f"yappi_runner: --out {out} is not a folder\n")
        return 2
    if opts.script is not None and not os.path.isfile(opts.script):
        sys.stderr.write(f"yappi_runner: no such script: {opts.script}\n")
        return 2
    threshold_ms = float(opts.block_threshold_ms)
    timer = StepTimer(threshold_ms / 1000.0)
    timer.install()
    yappi.set_clock_type("wall")
    status, failure = 0, None
    started = time.perf_counter()
    yappi.start(builtins=False, profile_threads=True)
    try:
        run_program(opts.script, opts.module, args)
    except SystemExit as exc:
        status, failure = exit_status(exc.code)
    except KeyboardInterrupt:
        status, failure = 130, "interrupted"
    except BaseException as exc:  # noqa: BLE001 - the program's own failure: reported, and the profile kept
        print_program_traceback(exc, runners=lambda f: _origin(f) == "profiler")
        status, failure = 1, f"{type(exc).__name__}: {exc}".strip()
    finally:
        yappi.stop()
        timer.uninstall()
    elapsed = time.perf_counter() - started
    program = {"exit_code": status, "failure": failure, "elapsed_s": round(elapsed, 3)}
    shown = ["python", opts.script] if opts.script is not None else ["python", "-m", opts.module]
    save(out, timer, threshold_ms, program, [*shown, *args])
    return status


if __name__ == "__main__":
    sys.exit(main())
