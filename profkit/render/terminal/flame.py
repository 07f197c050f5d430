"""profkit flame in a terminal: the hottest functions."""

from __future__ import annotations

from ...console import out
from ...results import FlameResult
from .artifacts import print_artifacts
from .tables import fit, key_column, located, new_table, number_column


def show(doc: FlameResult) -> None:
    f = doc["findings"]
    table = new_table(f"hottest functions — {f['samples']} samples at {f['rate_hz']} Hz")
    key_column(table, "function (file)")
    number_column(table, "own %")
    number_column(table, "total %")
    for row in f["top_functions"]:
        table.add_row(located(row["function"], row["file"]), f"{row['own_pct']:.1f}", f"{row['total_pct']:.1f}")
    out.print(fit(table))
    print_artifacts(doc)
