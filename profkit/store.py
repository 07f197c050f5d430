"""The artifact store: one folder per commit, one run folder per invocation, a manifest per run.

Layout::

    <store>/<short sha>[-dirty]/<command>-<UTC time>-<pid>-<random>/
        manifest.json            versioned; written at start ("running") and at the end
        <artifacts...>

Every file the store writes goes through a temporary file in the same folder, fsync and rename,
so a reader never sees half a file and a crash never leaves one. Run folders are created with
exclusive mkdir, so concurrent runs on one commit never share a folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import StoreError, UsageError
from .gitinfo import Commit
from .process import pid_alive
from .results import ArtifactDoc, RunSummary

MANIFEST_VERSION = 1
# Folders of the store that hold no runs: saved baselines, bench reports, the dashboard's site
# (profkit dashboard), which runs and gc must never take for a commit.
NOT_COMMITS = ("baselines", "reports", "site")
MANIFEST = "manifest.json"

STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"
STATUS_PARTIAL = "partial"
STATUS_FAILED = "failed"
# Shown (never written) for a run still marked running whose profkit process is gone from this host.
STATUS_ABANDONED = "abandoned"
# A folder without a manifest younger than this may be a run being created right now.
FRESH_S = 60.0


def _describe_os_error(exc: OSError, where: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return f"the disk holding {where} is full; free some space or use --store DIR on another disk"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to the artifact store {where}: permission denied; use --store DIR"
    return f"cannot write to the artifact store {where}: {exc.strerror or exc}"


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once (temp file, fsync, rename), or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(_describe_os_error(exc, path.parent)) from exc


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Artifact:
    path: str  # relative to the run folder
    kind: str  # e.g. flamegraph-svg, speedscope, collapsed, memray-bin, memray-html, stats-json, pstat
    size: int
    sha256: str

    def to_dict(self) -> ArtifactDoc:
        return {"path": self.path, "kind": self.kind, "size": self.size, "sha256": self.sha256}


@dataclass
class Run:
    """One command invocation's folder and manifest."""

    folder: Path
    manifest: dict[str, Any]
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.folder.parent.name}/{self.folder.name}"

    def path(self, name: str) -> Path:
        """Where a tool should write ``name`` (then call :meth:`add`)."""
        return self.folder / name

    def write(self, name: str, data: bytes, kind: str) -> Path:
        target = self.folder / name
        write_atomic(target, data)
        return self.add(name, kind)

    def write_json(self, name: str, obj: Any, kind: str) -> Path:
        return self.write(name, json.dumps(obj, indent=2, default=str).encode(), kind)

    def add(self, name: str, kind: str) -> Path:
        """Record a file a tool wrote into the run folder."""
        target = self.folder / name
        if not target.is_file():
            raise StoreError(f"{target} was not written by the profiler")
        self.artifacts = [a for a in self.artifacts if a.path != name]
        self.artifacts.append(Artifact(name, kind, target.stat().st_size, file_sha256(target)))
        return target

    def _save(self) -> None:
        self.manifest["artifacts"] = [a.to_dict() for a in self.artifacts]
        write_atomic(self.folder / MANIFEST, json.dumps(self.manifest, indent=2, default=str).encode())

    def finish(self, status: str, *, findings: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.manifest["status"] = status
        self.manifest["ended_at"] = time.time()
        if findings is not None:
            self.manifest["findings"] = findings
        if error is not None:
            self.manifest["error"] = error
        self._save()

    def conclude(self, findings: dict[str, Any], problem: str | None) -> None:
        """Complete, or partial with the reason when the target failed or vanished mid-profile."""
        self.finish(STATUS_PARTIAL if problem else STATUS_COMPLETE, findings=findings, error=problem)

    def summary(self) -> RunSummary:
        return {"run": self.id, "folder": str(self.folder), "status": str(self.manifest.get("status")),
                "artifacts": [{**a.to_dict(), "path": str(self.folder / a.path)} for a in self.artifacts]}


class ArtifactStore:
    """Run folders keyed by commit under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _ensure_writable(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{os.getpid()}-{secrets.token_hex(3)}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(_describe_os_error(exc, folder)) from exc

    @contextlib.contextmanager
    def open_run(self, command: str, *, commit: Commit, target: dict[str, Any],
                 tools: dict[str, str | None]) -> Iterator[Run]:
        """Create a run; it ends ``failed`` if the block raises and nothing marked it otherwise."""
        commit_dir = self.root / commit.folder_name
        self._ensure_writable(commit_dir)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        while True:
            folder = commit_dir / f"{command}-{stamp}-{os.getpid()}-{secrets.token_hex(2)}"
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
            except FileNotFoundError:
                # A gc emptied and removed the commit folder a moment ago: make it again.
                self._ensure_writable(commit_dir)
            except OSError as exc:
                raise StoreError(_describe_os_error(exc, commit_dir)) from exc
        manifest: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "profkit_version": __version__,
            "command": command,
            "commit": commit.sha,
            "dirty": commit.dirty,
            "target": target,
            "tools": tools,
            "host": socket.gethostname(),
            "python": sys.version.split()[0],
            "pid": os.getpid(),
            "started_at": time.time(),
            "ended_at": None,
            "status": STATUS_RUNNING,
            "artifacts": [],
        }
        run = Run(folder, manifest)
        try:
            run._save()
        except StoreError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        try:
            yield run
        except BaseException as exc:
            if run.manifest["status"] == STATUS_RUNNING:
                with contextlib.suppress(StoreError):
                    run.finish(STATUS_PARTIAL if run.artifacts else STATUS_FAILED, error=str(exc) or type(exc).__name__)
            raise
        if run.manifest["status"] == STATUS_RUNNING:
            run.finish(STATUS_COMPLETE)

    # -- reading -----------------------------------------------------------------------------

    def _check_root(self) -> bool:
        """False when there is no store yet; a path that is not a folder is refused."""
        if self.root.is_dir():
            return True
        if self.root.exists():
            raise UsageError(f"--store {self.root} is a file, not an artifact store folder; give a folder "
                             "(default: flamegraphs)")
        return False

    def runs(self) -> list[dict[str, Any]]:
        """Every run's manifest (plus its folder), newest first; unreadable manifests are reported.

        Another profkit may create or remove runs while this reads (a gc, a profile being filed):
        a folder that vanishes between listing and reading is skipped, never an error.
        """
        out: list[dict[str, Any]] = []
        if not self._check_root():
            return out
        for commit_dir in _folders(self.root):
            if commit_dir.name.startswith(".") or commit_dir.name in NOT_COMMITS:
                continue
            for run_dir in _folders(commit_dir):
                manifest = _read_manifest(run_dir)
                if manifest is None:
                    continue
                manifest["folder"] = str(run_dir)
                manifest["run"] = f"{commit_dir.name}/{run_dir.name}"
                if _abandoned(manifest):
                    manifest["status"] = STATUS_ABANDONED
                out.append(manifest)
        out.sort(key=lambda m: float(m.get("started_at") or 0), reverse=True)
        return out

    def gc(self, keep: int, *, dry_run: bool = False) -> list[str]:
        """Delete all but the ``keep`` newest runs; runs still in progress are never deleted."""
        if keep < 1:
            raise UsageError("--keep must be at least 1: gc never removes the newest run")
        removed: list[str] = []
        for manifest in self.runs()[keep:]:
            if _in_use(manifest):
                continue
            folder = Path(manifest["folder"])
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
                with contextlib.suppress(OSError):
                    folder.parent.rmdir()  # only succeeds once the commit folder is empty
            removed.append(manifest["run"])
        return removed

    def commit_folders(self) -> list[tuple[str, float]]:
        """Every commit folder with its time, newest first: its index's ``created_at`` (when its first ci
        job ran, the dashboard's order), else its newest run's start, else the folder's mtime."""
        if not self._check_root():
            return []
        from . import commit_index  # it imports this module: read at call time, not at import

        found = []
        for commit_dir in _folders(self.root):
            if commit_dir.name.startswith(".") or commit_dir.name in NOT_COMMITS:
                continue
            index = commit_index.read(commit_dir)
            when = index.get("created_at") if index else None
            if not isinstance(when, int | float):
                starts = [float(m.get("started_at") or 0) for r in _folders(commit_dir)
                          if (m := _read_manifest(r)) is not None]
                when = max(starts, default=None)
            if when is None:
                with contextlib.suppress(FileNotFoundError):
                    when = commit_dir.stat().st_mtime
            if when is not None:
                found.append((commit_dir.name, float(when)))
        found.sort(key=lambda f: f[1], reverse=True)
        return found

    def gc_commits(self, keep: int, *, pinned: set[str] | frozenset[str] = frozenset(),
                   dry_run: bool = False) -> CommitGc:
        """Remove whole commits but the ``keep`` newest and the ``pinned`` folders.

        A commit's runs go one by one, under the same rule as :meth:`gc` (never a run still running,
        nor a folder a writer has just made); its index and the folder itself only when no run is left
        in it. The folder is emptied, never removed as a tree: a run opened in it meanwhile stays.
        """
        if keep < 1:
            raise UsageError("--keep-commits must be at least 1: gc never removes the newest commit")
        from . import commit_index  # it imports this module: read at call time, not at import

        folders = self.commit_folders()
        result = CommitGc(kept=[f for f, _ in folders[:keep]] + [f for f, _ in folders[keep:] if f in pinned])
        doomed = {f for f, _ in folders[keep:] if f not in pinned}
        order = {f: i for i, (f, _) in enumerate(folders)}
        if not doomed:
            return result
        by_commit: dict[str, list[dict[str, Any]]] = {}
        for manifest in self.runs():
            by_commit.setdefault(manifest["run"].split("/", 1)[0], []).append(manifest)
        for folder, _ in folders[keep:]:
            if folder not in doomed:
                continue
            busy = [m["run"] for m in by_commit.get(folder, []) if _in_use(m)]
            for manifest in by_commit.get(folder, []):
                if manifest["run"] in busy:
                    continue
                if not dry_run:
                    shutil.rmtree(manifest["folder"], ignore_errors=True)
                result.removed.append(manifest["run"])
            if busy:
                result.running += busy
                result.kept.append(folder)
                continue
            commit_dir = self.root / folder
            if not dry_run:
                for name in (commit_index.INDEX, commit_index.LOCK):
                    with contextlib.suppress(FileNotFoundError):
                        (commit_dir / name).unlink()
                try:
                    commit_dir.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    # Something was filed in it meanwhile (a run just opened, a file that is not a
                    # run): the commit stays, with what it now holds.
                    result.kept.append(folder)
                    continue
            result.removed_commits.append(folder)
        result.kept.sort(key=order.__getitem__)
        return result


@dataclass
class CommitGc:
    kept: list[str]  # commit folders kept, newest first among the newest N, then the pinned ones
    removed_commits: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # run ids
    running: list[str] = field(default_factory=list)  # run ids kept because still in use


def _in_use(manifest: dict[str, Any]) -> bool:
    """A run gc must leave alone."""
    if manifest.get("status") == STATUS_RUNNING:
        return True  # its profkit is still at work (a dead one's run reads "abandoned", and may go)
    # A run folder a writer has just made and not yet given its manifest.
    return manifest.get("status") == "unknown" and time.time() - float(manifest["started_at"]) < FRESH_S


def _folders(parent: Path) -> list[Path]:
    try:
        entries = list(parent.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise StoreError(f"cannot read the artifact store at {parent}: {exc.strerror or exc}") from exc
    return sorted(p for p in entries if p.is_dir())


def _read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The run's manifest; a stand-in for a folder without one; None when the folder is gone."""
    try:
        manifest: dict[str, Any] = json.loads((run_dir / MANIFEST).read_text())
        if isinstance(manifest, dict):
            return manifest
        status = "unreadable"
    except FileNotFoundError:
        status = "unknown"  # folders from before manifests, or being created: listed, never guessed at
    except (OSError, ValueError):
        status = "unreadable"
    try:
        mtime = run_dir.stat().st_mtime
    except FileNotFoundError:
        return None
    return {"status": status, "command": run_dir.name.split("-")[0], "started_at": mtime}


def _abandoned(manifest: dict[str, Any]) -> bool:
    """Marked running, but the profkit that writes it is no longer alive on this host."""
    pid = manifest.get("pid")
    return (manifest.get("status") == STATUS_RUNNING and isinstance(pid, int)
            and manifest.get("host") == socket.gethostname() and not pid_alive(pid))
