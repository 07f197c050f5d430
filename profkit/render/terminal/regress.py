"""profkit regress in a terminal: one row per operation, the interval in a column of its own."""

from __future__ import annotations

from ...console import err, out
from ...results import RegressResult
from ..bench_report import VERDICT_COLOUR
from .tables import fit, key_column, new_table, number_column, text_column


def show(doc: RegressResult) -> None:
    table = new_table(f"{doc['head']['ref']} against {doc['base']['ref']} (p50 in ms)")
    key_column(table, "operation")
    for col in ("base p50", "head p50", "change", "95 % interval"):
        number_column(table, col)
    text_column(table, "verdict")
    for c in doc["changes"]:
        colour = VERDICT_COLOUR[c["verdict"]]
        table.add_row(c["op"], f"{c['baseline_p50_ms']:.3f}", f"{c['current_p50_ms']:.3f}", f"{c['change_pct']:+.1f}%",
                      f"[{c['ci95_pct'][0]:+.1f}, {c['ci95_pct'][1]:+.1f}]", f"[{colour}]{c['verdict']}[/]")
    out.print(fit(table))
    err.print(f"report: {doc['report']}", highlight=False)
