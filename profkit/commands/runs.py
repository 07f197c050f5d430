"""profkit runs / profkit gc — what the artifact store holds, and pruning it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.table import Table

from ..console import err, out
from ..store import ArtifactStore


def run_runs(*, store: Path, limit: int) -> dict[str, Any]:
    runs = ArtifactStore(store).runs()[: max(0, limit)]
    return {"command": "runs", "store": str(store), "runs": [
        {"run": m["run"], "command": m.get("command"), "status": m.get("status"), "started_at": m.get("started_at"),
         "target": m.get("target"), "artifacts": len(m.get("artifacts", [])), "folder": m["folder"]}
        for m in runs]}


def render_runs(doc: dict[str, Any]) -> None:
    if not doc["runs"]:
        err.print(f"no runs in {doc['store']}")
        return
    table = Table(title=f"runs in {doc['store']}")
    for col in ("run", "command", "status", "started (UTC)", "artifacts"):
        table.add_column(col)
    for r in doc["runs"]:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(r["started_at"] or 0)))
        table.add_row(r["run"], str(r["command"]), str(r["status"]), started, str(r["artifacts"]))
    out.print(table)


def run_gc(*, store: Path, keep: int, dry_run: bool) -> dict[str, Any]:
    removed = ArtifactStore(store).gc(keep, dry_run=dry_run)
    return {"command": "gc", "store": str(store), "keep": keep, "dry_run": dry_run, "removed": removed}


def render_gc(doc: dict[str, Any]) -> None:
    verb = "would remove" if doc["dry_run"] else "removed"
    err.print(f"{verb} {len(doc['removed'])} run(s) from {doc['store']}, kept the newest {doc['keep']}")
    for r in doc["removed"]:
        out.print(f"  {r}", highlight=False)
