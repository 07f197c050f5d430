"""profkit runs and profkit gc in a terminal."""

from __future__ import annotations

import time

from ...console import err, out
from ...results import GcResult, RunsResult
from .tables import key_column, new_table, number_column, text_column


def show_runs(doc: RunsResult) -> None:
    if not doc["runs"]:
        err.print(f"no runs in {doc['store']}", highlight=False)
        return
    # The run id names the command and the start time already; the table adds what it does not say.
    table = new_table(f"runs in {doc['store']}, newest first (times in UTC)")
    key_column(table, "run")
    text_column(table, "status")
    text_column(table, "started")
    number_column(table, "files")
    for r in doc["runs"]:
        started = time.strftime("%m-%d %H:%M:%S", time.gmtime(float(r["started_at"] or 0)))
        table.add_row(r["run"], str(r["status"]), started, str(r["artifacts"]))
    out.print(table)


def show_gc(doc: GcResult) -> None:
    verb = "would remove" if doc["dry_run"] else "removed"
    err.print(f"{verb} {len(doc['removed'])} run(s) from {doc['store']}, kept the newest {doc['keep']}",
              highlight=False)
    for r in doc["removed"]:
        out.print(f"  {r}", highlight=False)
