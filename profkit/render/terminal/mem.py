"""profkit mem in a terminal: peak and totals, top allocators, memory at the peak, leaks."""

from __future__ import annotations

import os
import sysconfig

from ...console import out
from ...results import AllocationSite, MemResult
from ...units import human
from .artifacts import print_artifacts
from .tables import fit, key_column, located, new_table, number_column

_STDLIB = sysconfig.get_paths()["stdlib"].rstrip("/") + "/"


def where(row: AllocationSite) -> str:
    """The site's file, as short as it can be said: relative to here, site-packages or the stdlib."""
    file = row["file"]
    if file.startswith("/"):
        cwd = os.getcwd().rstrip("/") + "/"
        if file.startswith(cwd):
            file = file[len(cwd):]
        elif "/site-packages/" in file:
            file = "site-packages/" + file.split("/site-packages/", 1)[1]
        elif file.startswith(_STDLIB):
            file = "stdlib/" + file[len(_STDLIB):]
    return f"{file}:{row['line']}"


def show(doc: MemResult) -> None:
    f = doc["findings"]
    out.print(f"[bold]peak memory[/] {human(f['peak_memory_bytes'])}   [bold]allocated[/] "
              f"{human(f['total_allocated_bytes'])} in {f['total_allocations']:,} allocations   "
              f"({f['mode']}, {f['seconds_recorded']:.1f} s, allocator {f['python_allocator']})", highlight=False)
    for rows, title in ((f["top_functions"], "top allocating functions (bytes allocated in total)"),
                        (f["peak_functions"], "memory held at the peak, by function")):
        table = new_table(title)
        key_column(table, "function (where)")
        number_column(table, "bytes")
        number_column(table, "allocations")
        for row in rows:
            # Rows with no user code anywhere in their stack (interpreter start-up, imports) are dimmed.
            table.add_row(located(row["function"], where(row)), human(row["bytes"]), f"{row['count']:,}",
                          style=None if row["user_code"] else "dim")
        out.print(fit(table))
    if "leaks" in f:
        _leaks(doc)
    budget = f["budget"]
    if budget:
        verdict = "[red]over[/]" if budget["exceeded"] else "[green]within[/]"
        out.print(f"peak {human(f['peak_memory_bytes'])} is {verdict} the budget {budget['limit']}", highlight=False)
    print_artifacts(doc)


def _leaks(doc: MemResult) -> None:
    f = doc["findings"]
    leaks = f.get("leaks", [])
    total = f.get("leaked_bytes_total") or 0
    if leaks:
        table = new_table(f"never freed — {human(total)} in total")
        key_column(table, "function (where)")
        for col in ("leaked", "share", "allocations"):
            number_column(table, col)
        for row in leaks:
            table.add_row(located(row["function"], where(row)), human(row["bytes"]), f"{row.get('share', 0.0):.0%}",
                          f"{row['count']:,}")
        out.print(fit(table))
        return
    floor = f.get("leak_threshold")
    if floor is not None:
        out.print(f"no leaks: no function kept {human(floor['min_bytes'])} and {floor['min_share']:.0%} of the "
                  f"{human(total)} never freed", highlight=False)
