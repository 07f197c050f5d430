"""profkit async in a terminal: coroutines by wall time, loop blockers, hottest functions."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from ...console import err, out
from ...results import AsyncResult, LoopFlag
from .artifacts import print_artifacts
from .tables import compact, fit, key_column, located, new_table, number_column


def _place(flag: LoopFlag) -> str:
    return f"{Path(flag['file']).name}:{flag['line']}"


def show(doc: AsyncResult) -> None:
    f = doc["findings"]
    table = new_table(f"coroutines by wall time, in ms (yappi, {f['clock']} clock; [red]red[/]: blocks the loop "
                      f"with one step over {f['block_threshold_ms']:g} ms of CPU, [yellow]yellow[/]: stalls it)")
    key_column(table, "coroutine")
    for col in ("calls", "wall", "cpu", "steps", "max step", "max cpu"):
        number_column(table, col)
    blocking = {(b["file"], b["line"]) for b in f["blocking"]}
    stalled = {(b["file"], b["line"]) for b in f["stalled"]}
    for r in f["coroutines"]:
        place = (r.get("file"), r.get("line"))
        # The flag is the row's colour (its sentence follows the table): a column of it would not fit.
        style = "red" if place in blocking else "yellow" if place in stalled else None
        table.add_row(escape(str(r.get("name"))), compact(r.get("calls")), compact(r.get("wall_ms")),
                      compact(r.get("cpu_ms")), compact(r.get("steps")), compact(r.get("max_step_ms")),
                      compact(r.get("max_step_cpu_ms")), style=style)
    out.print(fit(table))
    for b in f["blocking"]:
        out.print(f"[red]blocks the loop:[/] {b['kind']} {b['name']} ({_place(b)}): "
                  f"{b['cpu_blocking_steps']} step(s) over the threshold, the longest {b['max_step_cpu_ms']:.1f} ms "
                  f"CPU / {b['max_step_ms']:.1f} ms wall", highlight=False)
    for b in f["stalled"]:
        out.print(f"[yellow]stalls the loop:[/] {b['kind']} {b['name']} ({_place(b)}): "
                  f"{b['stalled_steps']} step(s) over the threshold in wall time with little CPU (sleeping, "
                  f"blocking I/O or waiting for the GIL), the longest {b['max_step_ms']:.1f} ms", highlight=False)
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
