"""profkit doctor in a terminal: one row per check."""

from __future__ import annotations

from ...console import out
from ...results import DoctorResult
from .tables import fit, key_column, name_column, new_table, text_column


def show(doc: DoctorResult) -> None:
    table = new_table(f"profkit doctor (Python {doc['python']})")
    key_column(table, "check")
    text_column(table, "")
    name_column(table, "detail")
    for c in doc["checks"]:
        mark = "[green]ok[/]" if c["ok"] else ("[red]FAIL[/]" if c["required"] else "[yellow]warn[/]")
        table.add_row(c["check"], mark, c["detail"])
    out.print(fit(table))
