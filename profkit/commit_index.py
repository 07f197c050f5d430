"""One index per commit of the store: every run of the continuous-profiling job, found in one place.

``<store>/<commit>/index.json`` (versioned) names, for each kind of profile (bench, load, flame,
mem, async), the runs the job filed for that commit, newest first, the artifacts a reader opens
(bench report, flamegraph, memray HTML, async table, load report) and the bench figures per
operation that trends are drawn from. It is rewritten under an exclusive lock and atomically, so
two jobs on one commit (a re-run, or two at once) both land in it and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import StoreError
from .gitinfo import Commit
from .store import NOT_COMMITS, write_atomic

INDEX = "index.json"
INDEX_VERSION = 1
LOCK = ".index.lock"
KINDS = ("bench", "load", "flame", "mem", "async")
# Jobs kept in the index's history; the runs themselves stay until gc removes them.
MAX_JOBS = 50


@contextlib.contextmanager
def _locked(commit_dir: Path) -> Iterator[None]:
    try:
        commit_dir.mkdir(parents=True, exist_ok=True)
        fh = open(commit_dir / LOCK, "a+b")
    except OSError as exc:
        raise StoreError(f"cannot write the commit index in {commit_dir}: {exc.strerror}") from exc
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read(commit_dir: Path) -> dict[str, Any] | None:
    """The commit's index, or None when there is none (or it is not one this profkit reads)."""
    try:
        doc = json.loads((commit_dir / INDEX).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("index_version") != INDEX_VERSION:
        return None
    return doc


def record_job(store: Path, commit: Commit, job: Mapping[str, Any]) -> dict[str, Any]:
    """Add one job (its runs, artifacts, bench figures, comparison) to the commit's index; the new index."""
    commit_dir = store / commit.folder_name
    with _locked(commit_dir):
        now = time.time()
        doc = read(commit_dir) or {"index_version": INDEX_VERSION, "commit": commit.sha, "dirty": commit.dirty,
                                   "folder": commit.folder_name, "created_at": now, "jobs": [], "runs": {},
                                   "artifacts": {}, "bench": None, "against": None}
        doc["updated_at"] = now
        doc["jobs"] = [dict(job), *doc["jobs"]][:MAX_JOBS]
        for kind, run in job.get("runs", {}).items():
            if run:
                doc["runs"][kind] = [run, *[r for r in doc["runs"].get(kind, []) if r != run]]
        doc["artifacts"].update({k: v for k, v in job.get("artifacts", {}).items() if v})
        if job.get("bench"):
            doc["bench"] = job["bench"]
        if job.get("against"):
            doc["against"] = job["against"]
        write_atomic(commit_dir / INDEX, json.dumps(doc, indent=2, default=str).encode())
    return doc


def commits(store: Path) -> list[dict[str, Any]]:
    """Every commit of the store that has an index, oldest first (by when its first job ran)."""
    if not store.is_dir():
        return []
    found: list[dict[str, Any]] = []
    for commit_dir in store.iterdir():
        if commit_dir.name.startswith(".") or commit_dir.name in NOT_COMMITS or not commit_dir.is_dir():
            continue
        doc = read(commit_dir)
        if doc is not None:
            found.append(doc)
    found.sort(key=lambda d: float(d.get("created_at") or 0))
    return found


def previous(store: Path, commit: Commit) -> dict[str, Any] | None:
    """The newest other commit of the store with bench figures: what this one is compared with by default."""
    others = [d for d in commits(store) if d["folder"] != commit.folder_name and d.get("bench")]
    return others[-1] if others else None


def find(store: Path, ref: str) -> dict[str, Any] | None:
    """A commit of the store by a prefix of its sha or its folder name."""
    matches = [d for d in commits(store) if d["folder"] == ref or str(d["commit"]).startswith(ref)]
    clean = [d for d in matches if not d.get("dirty")]
    chosen = clean or matches
    return chosen[-1] if chosen else None
