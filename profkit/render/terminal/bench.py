"""profkit bench in a terminal: percentiles, budget and baseline per operation."""

from __future__ import annotations

from typing import cast

from ...console import err, out
from ...results import BenchResult, InstructionsResult
from ..bench_report import VERDICT_COLOUR
from .tables import fit, key_column, new_table, number_column, text_column


def show(doc: BenchResult | InstructionsResult) -> None:
    if doc.get("mode") == "instructions":
        _instructions(cast(InstructionsResult, doc))
    else:
        _timed(cast(BenchResult, doc))


def _timed(doc: BenchResult) -> None:
    compared = bool(doc["baseline"])
    table = new_table(f"profkit bench ({doc['duration_s']} s, times in ms)" +
                      (f" vs baseline {doc['baseline']}" if compared else ""))
    # Against a baseline the change takes the room of p95 and of the suite (the report has both).
    if not compared:
        text_column(table, "suite")
    key_column(table, "operation")
    for col in ("p50", "p99") if compared else ("p50", "p95", "p99"):
        number_column(table, col)
    text_column(table, "budget")
    if compared:
        number_column(table, "change")
        number_column(table, "95 % interval")
        text_column(table, "verdict")
    for o in doc["operations"]:
        budget = "[green]within[/]" if o["budget"] == "within" else f"[red]{o['budget']}[/]"
        row = [] if compared else [o["suite"]]
        row.append(o["op"])
        row += [f"{o['p50_ms']:.3f}", f"{o['p99_ms']:.3f}"] if compared else [
            f"{o['p50_ms']:.3f}", f"{o['p95_ms']:.3f}", f"{o['p99_ms']:.3f}"]
        row.append(budget)
        if compared:
            c = o["change"]
            if c is None:
                row += ["", "", "not in baseline"]
            else:
                colour = VERDICT_COLOUR[c["verdict"]]
                row += [f"{c['change_pct']:+.1f}%", f"[{c['ci95_pct'][0]:+.1f}, {c['ci95_pct'][1]:+.1f}]",
                        f"[{colour}]{c['verdict']}[/]"]
        table.add_row(*row)
    out.print(fit(table))
    if doc["recall_at_10"]:
        out.print("recall@10: " + ", ".join(f"{k} {v:.3f}" for k, v in doc["recall_at_10"].items()))
    _reports(doc)


def _instructions(doc: InstructionsResult) -> None:
    table = new_table(f"instructions per call (callgrind, {doc['duration_s']} s)")
    key_column(table, "operation")
    number_column(table, "instructions")
    number_column(table, "change")
    by_op = {c["op"]: c for c in doc["changes"] or []}
    for op, n in doc["instructions"].items():
        c = by_op.get(op)
        table.add_row(op, f"{n:,.0f}", f"{c['change_pct']:+.2f}% {c['verdict']}" if c else "")
    out.print(fit(table))
    _reports(doc)


def _reports(doc: BenchResult | InstructionsResult) -> None:
    for kind, path in doc["reports"].items():
        err.print(f"  {kind:<9} {path}", highlight=False)
    if doc["saved_baseline"]:
        err.print(f"baseline saved: {doc['saved_baseline']}", highlight=False)
