"""runs / gc — what the artifact store holds, and pruning it."""

from __future__ import annotations

from pathlib import Path

from ..results import GcResult, RunListing, RunsResult
from ..store import ArtifactStore


def run_runs(*, store: Path, limit: int) -> RunsResult:
    runs = ArtifactStore(store).runs()[: max(0, limit)]
    listing: list[RunListing] = [
        {"run": m["run"], "command": m.get("command"), "status": m.get("status"), "started_at": m.get("started_at"),
         "target": m.get("target"), "artifacts": len(m.get("artifacts", [])), "folder": m["folder"]}
        for m in runs]
    return {"command": "runs", "store": str(store), "runs": listing}


def run_gc(*, store: Path, keep: int, dry_run: bool) -> GcResult:
    removed = ArtifactStore(store).gc(keep, dry_run=dry_run)
    return {"command": "gc", "store": str(store), "keep": keep, "dry_run": dry_run, "removed": removed}
