"""runs / gc — what the artifact store holds, and pruning it."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UsageError
from ..results import GcCommitsResult, GcPin, GcResult, RunListing, RunsResult
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


def run_gc_commits(*, store: Path, keep_commits: int, keep_refs: list[str], dry_run: bool,
                   repo: Path | None = None) -> GcCommitsResult:
    """Keep the newest ``keep_commits`` commits whole, the commits of saved baselines and of ``keep_refs``.

    Every ``--keep-ref`` must name a commit of the store (checked before anything is removed): a
    typo must not let gc remove the commit the user meant to keep.
    """
    if keep_commits < 1:
        raise UsageError("--keep-commits must be at least 1: gc never removes the newest commit")
    artifacts = ArtifactStore(store)
    folders = [f for f, _ in artifacts.commit_folders()]
    pins = _baseline_pins(store / "baselines", set(folders))
    for ref in keep_refs:
        found = _folders_of(ref, folders, repo or Path.cwd())
        if not found:
            raise UsageError(f"--keep-ref {ref}: no commit of {store} matches it (commits are named by the first 12 "
                             "characters of their sha); nothing was removed")
        pins += [{"folder": f, "why": f"--keep-ref {ref}"} for f in found]
    done = artifacts.gc_commits(keep_commits, pinned={p["folder"] for p in pins}, dry_run=dry_run)
    return {"command": "gc", "store": str(store), "keep_commits": keep_commits, "dry_run": dry_run, "pinned": pins,
            "kept": done.kept, "removed_commits": done.removed_commits, "removed": done.removed,
            "running": done.running}


def _baseline_pins(baselines: Path, folders: set[str]) -> list[GcPin]:
    """The commit folders whose bench a saved baseline holds (bench --save-baseline NAME)."""
    pins: list[GcPin] = []
    if not baselines.is_dir():
        return pins
    for path in sorted(baselines.glob("*.json")):
        try:
            env = json.loads(path.read_text())["result"]["environment"]
            folder = str(env["commit"])[:12] + ("-dirty" if env.get("dirty") else "")
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a baseline profkit can read: it names no commit to keep (bench reports it when used)
        if folder in folders:
            pins.append({"folder": folder, "why": f"baseline {path.stem}"})
    return pins


def _folders_of(ref: str, folders: list[str], repo: Path) -> list[str]:
    """The commit folders ``ref`` names: a folder, a sha prefix (both the clean and -dirty folders), or a git ref."""
    if ref in folders:
        return [ref]
    if len(ref) >= 4 and all(c in "0123456789abcdef" for c in ref.lower()):
        found = [f for f in folders if f.removesuffix("-dirty").startswith(ref.lower()[:12])]
        if found:
            return found
    from ..gitinfo import resolve

    sha = resolve(repo, ref)
    return [f for f in folders if sha and f.removesuffix("-dirty") == sha[:12]]
