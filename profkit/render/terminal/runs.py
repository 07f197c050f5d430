"""profkit runs and profkit gc in a terminal."""

from __future__ import annotations

from ...console import err, out
from ...results import GcCommitsResult, GcResult, RunsResult
from .tables import fit, key_column, new_table, number_column, text_column


def show_runs(doc: RunsResult) -> None:
    if not doc["runs"]:
        err.print(f"no runs in {doc['store']}", highlight=False)
        return
    # The run id names the command and its start time (UTC) already; the table adds what it does not say.
    table = new_table(f"runs in {doc['store']}, newest first")
    key_column(table, "run (commit/command-start-pid-id)")
    text_column(table, "status")
    number_column(table, "files")
    for r in doc["runs"]:
        table.add_row(r["run"], str(r["status"]), str(r["artifacts"]))
    out.print(fit(table))


def show_gc(doc: GcResult) -> None:
    verb = "would remove" if doc["dry_run"] else "removed"
    err.print(f"{verb} {len(doc['removed'])} run(s) from {doc['store']}, kept the newest {doc['keep']}",
              highlight=False)
    for r in doc["removed"]:
        out.print(f"  {r}", highlight=False)


def show_gc_commits(doc: GcCommitsResult) -> None:
    verb = "would remove" if doc["dry_run"] else "removed"
    err.print(f"{verb} {len(doc['removed_commits'])} commit(s) ({len(doc['removed'])} run(s)) from {doc['store']}, "
              f"kept {len(doc['kept'])}: the newest {doc['keep_commits']} and {len(doc['pinned'])} pinned",
              highlight=False)
    for pin in doc["pinned"]:
        err.print(f"  kept {pin['folder']}: {pin['why']}", highlight=False)
    for run in doc["running"]:
        err.print(f"  kept {run}: still running (its commit stays with it)", highlight=False)
    for folder in doc["removed_commits"]:
        out.print(f"  {folder}", highlight=False)
