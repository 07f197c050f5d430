"""profkit lines in a terminal: the hottest lines by CPU and by memory allocated."""

from __future__ import annotations

from ...console import err, out
from ...results import LinesResult
from .artifacts import print_artifacts
from .tables import fit, key_column, name_column, new_table, number_column


def show(doc: LinesResult) -> None:
    f = doc["findings"]
    cpu = new_table(f"top lines by CPU ({f['elapsed_s']:.1f} s profiled)")
    key_column(cpu, "line")
    for col in ("CPU %", "Python", "native", "system"):
        number_column(cpu, col)
    name_column(cpu, "source")
    for r in f["top_cpu"]:
        cpu.add_row(f"{r['short']}:{r['line']}", f"{r['cpu_pct']:.1f}", f"{r['cpu_python_pct']:.1f}",
                    f"{r['cpu_native_pct']:.1f}", f"{r['cpu_system_pct']:.1f}", r["source"].strip())
    out.print(fit(cpu))
    mem = new_table(f"top lines by memory allocated (peak footprint {f['max_footprint_mb']:.1f} MB)")
    key_column(mem, "line")
    for col in ("alloc MB", "alloc %", "peak MB", "avg MB"):
        number_column(mem, col)
    name_column(mem, "source")
    for r in f["top_memory"]:
        mem.add_row(f"{r['short']}:{r['line']}", f"{r['alloc_mb']:.1f}", f"{r['alloc_pct']:.1f}",
                    f"{r['peak_mb']:.1f}", f"{r['avg_mb']:.1f}", r["source"].strip())
    out.print(fit(mem))
    print_artifacts(doc)
    err.print("scalene's own interactive view: python -m scalene view --standalone FILE.json", highlight=False)
