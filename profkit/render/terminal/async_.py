"""profkit async in a terminal: coroutines by wall time, loop blockers, GC pauses, hottest functions."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from ...console import err, out
from ...results import AsyncResult, CoroutineRow, LoopFlag
from .artifacts import print_artifacts
from .tables import compact, fit, key_column, located, new_table, number_column

# Headers of two words take two lines: at 80 columns the room goes to the coroutine's name (a 33-character
# one stays whole). The summed wall time (wall_ms) is not a column: calls overlap and each counts its time
# suspended at await, so it reads as more time than the run had; the sentence under the table says so.
COLUMNS = ("calls", "mean\nwall", "busy", "cpu", "steps", "max\nstep", "gc")


def _place(flag: LoopFlag) -> str:
    return f"{Path(flag['file']).name}:{flag['line']}"


def _per_call(r: CoroutineRow) -> float | None:
    if "mean_wall_ms" in r:
        return r["mean_wall_ms"]
    # recorded before mean_wall_ms was stored
    wall, calls = r.get("wall_ms"), r.get("calls")
    return wall / calls if wall is not None and calls else None


def show(doc: AsyncResult) -> None:
    f = doc["findings"]
    gc_pauses = f.get("gc_pauses", [])
    table = new_table(f"coroutines by the total wall time of their calls, times in ms (yappi, {f['clock']} clock; "
                      f"[red]red[/]: blocks the loop with "
                      f"one step over {f['block_threshold_ms']:g} ms of CPU outside garbage collection, "
                      f"[yellow]yellow[/]: stalls it, [magenta]magenta[/]: a collection made a step that long)")
    key_column(table, "coroutine")
    for col in COLUMNS:
        number_column(table, col)
    blocking = {(b["file"], b["line"]) for b in f["blocking"]}
    stalled = {(b["file"], b["line"]) for b in f["stalled"]}
    collected = {(b["file"], b["line"]) for b in gc_pauses}
    for r in f["coroutines"]:
        place = (r.get("file"), r.get("line"))
        # The flag is the row's colour (its sentence follows the table): a column of it would not fit.
        style = ("red" if place in blocking else "yellow" if place in stalled else "magenta" if place in collected
                 else None)
        table.add_row(escape(str(r.get("name"))), compact(r.get("calls")), compact(_per_call(r)),
                      compact(r.get("busy_ms")), compact(r.get("cpu_ms")), compact(r.get("steps")),
                      compact(r.get("max_step_ms")), compact(r.get("gc_ms")), style=style)
    out.print(fit(table))
    if f["coroutines"]:
        out.print(f"Total wall time (wall_ms in --json) adds up every call's wall time, including time suspended at "
                  f"await; overlapping calls make it exceed the run's length ({f['program']['elapsed_s']:.1f} s). "
                  f"mean wall: that total / calls; busy: wall time inside the coroutine's own loop steps; cpu, gc: "
                  f"CPU and garbage collection in them; max step: the longest.", style="dim", highlight=False)
    for b in f["blocking"]:
        # Findings recorded before garbage collection was measured have only the step's whole CPU.
        own, wall = b.get("max_step_own_cpu_ms"), b.get("max_own_cpu_step_ms")
        cpu = f"{b['max_step_cpu_ms'] if own is None else own:.1f} ms CPU"
        if b.get("gc_ms"):
            cpu += " outside garbage collection"
        out.print(f"[red]blocks the loop:[/] {b['kind']} {b['name']} ({_place(b)}): "
                  f"{b['cpu_blocking_steps']} step(s) over the threshold, the longest {cpu} "
                  f"/ {b['max_step_ms'] if wall is None else wall:.1f} ms wall", highlight=False)
    for b in f["stalled"]:
        longest = b.get("max_stalled_step_ms") or b["max_step_ms"]
        out.print(f"[yellow]stalls the loop:[/] {b['kind']} {b['name']} ({_place(b)}): "
                  f"{b['stalled_steps']} step(s) over the threshold in wall time with little CPU (sleeping, "
                  f"blocking I/O or waiting for the GIL), the longest {longest:.1f} ms", highlight=False)
    for b in gc_pauses:
        out.print(f"[magenta]garbage collection:[/] {b['kind']} {b['name']} ({_place(b)}): {_gc_pause(b)}",
                  highlight=False)
    if f.get("note"):
        err.print(f"[yellow]note:[/] {f['note']}")
    funcs = new_table("functions by total wall time, in ms")
    key_column(funcs, "function")
    for col in ("calls", "wall", "own wall"):
        number_column(funcs, col)
    for fn in f["top_functions"]:
        funcs.add_row(located(fn["function"], f"{Path(fn['file']).name}:{fn['line']}"), compact(fn["calls"]),
                      compact(fn["wall_ms"]), compact(fn["own_wall_ms"]))
    out.print(fit(funcs))
    print_artifacts(doc)
    err.print("open the pstat with `snakeviz FILE`, the callgrind file with `kcachegrind FILE` or "
              "`callgrind_annotate FILE`", highlight=False)


def _gc_pause(b: LoopFlag) -> str:
    longest, collected = float(b.get("max_gc_pause_ms") or 0.0), float(b.get("max_gc_pause_gc_ms") or 0.0)
    what = f"{collected:.1f} ms of it garbage collection (generation {b.get('max_gc_pause_generation')})"
    steps = f"{b.get('gc_pause_steps')} step(s) over the threshold only because of garbage collection"
    if longest >= b["max_step_ms"]:
        return f"its longest step took {longest:.1f} ms, {what}; {steps}"
    # Its longest step held the loop for another reason (its own sentence says which).
    return f"{steps}, the longest took {longest:.1f} ms, {what}"
