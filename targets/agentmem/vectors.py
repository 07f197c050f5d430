"""Per-tenant vector indexes: exact search for small tenants, HNSW (usearch) for large ones.

Each (agent_id, user_id) tenant gets its own partition, so a search can only ever see that
tenant's vectors, and a tenant holding 1 % of all memories gets the same recall as the largest
one (a filtered global HNSW graph loses recall exactly there). Below ``hnsw_threshold`` vectors a
brute-force matrix product is both exact and faster than walking a graph; above it the partition
switches to an HNSW index with the guide's parameters (M=16, ef_construction=200, ef=128).

SQLite is the source of truth; this index is a cache of it, checkpointed to files in the
background (:meth:`VectorIndex.write_checkpoint`) and on a clean stop. A checkpoint records the
database *cut* it holds (see ``storage.Cut``); after a crash the engine loads it and replays only
what changed in the database since, into the exact buffer, so start-up never waits for an HNSW
build. Writing a checkpoint takes a partition's lock only to copy a bounded buffer; serialising a
graph blocks only the indexer, but usearch holds the GIL while it copies the vectors out (~50-75 ms
for a 60k-vector graph on the 2-core reference machine), which is why checkpoints are rate-limited.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from usearch.index import Index

from .models import Tenant

F32 = npt.NDArray[np.float32]
U64 = npt.NDArray[np.uint64]

MANIFEST_VERSION = 2
LEGACY_MANIFEST_VERSION = 1  # saved on clean stops only, by engines of schema 1: reconciled in full
MANIFEST = "manifest.json"
# A partition's buffer is checkpointed with its vectors up to this many rows (a copy made under the
# partition lock: ~16 MB at 256 dimensions); a longer buffer (an indexer far behind a bulk load) is
# checkpointed as keys only, and recovery reads those vectors back from the database.
BUFFER_VECTORS_MAX = 16_384


@dataclass(frozen=True)
class HnswParams:
    connectivity: int = 16
    expansion_add: int = 200
    expansion_search: int = 128


def _cooperative(done: int, total: int) -> bool:
    """usearch's save and load hold the GIL; a Python progress callback lets other threads run."""
    return True


# usearch checks a callback's annotations by identity; under postponed evaluation they are strings.
_cooperative.__annotations__ = {"done": int, "total": int, "return": bool}


class _Matrix:
    """Vectors in one contiguous matrix with swap-remove, for brute-force scoring."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.keys: U64 = np.zeros(64, dtype=np.uint64)
        self.mat: F32 = np.zeros((64, dim), dtype=np.float32)
        self.pos: dict[int, int] = {}
        self.ver: dict[int, int] = {}
        self.n = 0

    def _reserve(self, n: int) -> None:
        if n <= len(self.keys):
            return
        cap = max(n, len(self.keys) * 2)
        keys = np.zeros(cap, dtype=np.uint64)
        keys[: self.n] = self.keys[: self.n]
        mat = np.zeros((cap, self.dim), dtype=np.float32)
        mat[: self.n] = self.mat[: self.n]
        self.keys, self.mat = keys, mat

    def put(self, key: int, vec: F32, version: int) -> None:
        i = self.pos.get(key)
        if i is None:
            self._reserve(self.n + 1)
            i = self.n
            self.n += 1
            self.pos[key] = i
            self.keys[i] = key
        self.mat[i] = vec
        self.ver[key] = version

    def put_many(self, keys: list[int], vecs: F32, first_version: int) -> None:
        """``put`` of many rows, the i-th with version ``first_version + i`` (a later duplicate wins)."""
        if len(keys) < 8 or len(set(keys)) != len(keys):
            for i, k in enumerate(keys):
                self.put(k, vecs[i], first_version + i)
            return
        pos = self.pos
        old = [i for i, k in enumerate(keys) if k in pos]
        new = [i for i, k in enumerate(keys) if k not in pos] if old else list(range(len(keys)))
        if old:
            at = [pos[keys[i]] for i in old]
            self.mat[at] = vecs[old]
        if new:
            start = self.n
            self._reserve(start + len(new))
            new_keys = [keys[i] for i in new]
            self.keys[start : start + len(new)] = new_keys
            self.mat[start : start + len(new)] = vecs[new] if len(new) != len(keys) else vecs
            pos.update(zip(new_keys, range(start, start + len(new)), strict=True))
            self.n = start + len(new)
        self.ver.update(zip(keys, range(first_version, first_version + len(keys)), strict=True))

    def drop(self, key: int) -> bool:
        i = self.pos.pop(key, None)
        if i is None:
            return False
        del self.ver[key]
        last = self.n - 1
        if i != last:
            moved = int(self.keys[last])
            self.keys[i] = moved
            self.mat[i] = self.mat[last]
            self.pos[moved] = i
        self.n = last
        return True

    def top(self, query: F32, k: int) -> tuple[list[int], list[float]]:
        n = self.n
        if n == 0:
            return [], []
        scores = self.mat[:n] @ query
        top = np.argpartition(-scores, k)[:k] if n > k else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(x) for x in self.keys[top]], [float(s) for s in scores[top]]

    def snapshot(self) -> tuple[U64, F32, dict[int, int]]:
        return self.keys[: self.n].copy(), self.mat[: self.n].copy(), dict(self.ver)


class Partition:
    """One tenant's vectors. Thread-safe.

    While small, every vector sits in ``buffer`` and search is exact. Once large, vectors live in
    an HNSW graph and ``buffer`` only holds writes the background indexer has not applied yet;
    ``stale`` holds keys whose vector in the graph was deleted or replaced. A search merges the
    graph's answer (minus stale keys) with an exact scan of the buffer, so a write is searchable
    the moment it returns, while the ~1 ms graph insertion happens off the request path.

    Two locks: ``_lock`` guards buffer, stale and the graph reference (searches and writes take
    only it); ``_graph_lock`` is held by whoever changes the graph (the indexer) or saves it (a
    checkpoint), so a checkpoint can save a big graph while searches and writes go on. Order:
    ``_graph_lock`` before ``_lock``.
    """

    def __init__(self, dim: int, threshold: int, params: HnswParams) -> None:
        self.dim = dim
        self._threshold = threshold
        self._params = params
        self._lock = threading.RLock()
        self._graph_lock = threading.Lock()
        self.buffer = _Matrix(dim)
        self.stale: set[int] = set()
        self.hnsw: Index | None = None
        self.promoting = False
        self._version = 0
        # Counters a checkpoint compares with what it saved last: any change, a change of the graph.
        self.changes = 0
        self.graph_changes = 0

    def __len__(self) -> int:
        # Invariants: stale keys are in the graph; a buffered key is either new or stale.
        with self._lock:
            graph = len(self.hnsw) - len(self.stale) if self.hnsw is not None else 0
            return graph + self.buffer.n

    def _in_graph(self, key: int) -> bool:
        return self.hnsw is not None and key in self.hnsw

    def new_index(self) -> Index:
        p = self._params
        return Index(ndim=self.dim, metric="ip", dtype="f32", connectivity=p.connectivity,
                     expansion_add=p.expansion_add, expansion_search=p.expansion_search)

    def needs_indexing(self) -> bool:
        with self._lock:
            if self.hnsw is None:
                return self.buffer.n >= self._threshold and not self.promoting
            return bool(self.buffer.n or self.stale)

    # -- request path (event loop thread) ---------------------------------------------------

    def add(self, keys: U64, vecs: F32) -> bool:
        """Record vectors; True when the indexer has work to do for this partition."""
        klist = keys.tolist()
        with self._lock:
            self.buffer.put_many(klist, vecs, self._version + 1)
            self._version += len(klist)
            self.changes += 1
            if self.hnsw is not None and len(self.hnsw):
                present = np.asarray(self.hnsw.contains(keys), dtype=bool).reshape(-1)
                if present.any():
                    self.stale.update(k for k, p in zip(klist, present.tolist(), strict=True) if p)
            return self.hnsw is not None or (self.buffer.n >= self._threshold and not self.promoting)

    def remove(self, key: int) -> bool:
        with self._lock:
            self.changes += 1
            self.buffer.drop(key)
            if self._in_graph(key):
                self.stale.add(key)
                return True
            return False

    def search(self, query: F32, k: int) -> tuple[list[int], list[float]]:
        with self._lock:
            found: dict[int, float] = {}
            if self.hnsw is not None and len(self.hnsw):
                m = self.hnsw.search(query, k + len(self.stale), threads=1)
                for key, dist in zip(m.keys.tolist(), m.distances.tolist(), strict=True):
                    if key not in self.stale:
                        # usearch's "ip" metric is a distance: 1 - dot product.
                        found[int(key)] = 1.0 - float(dist)
            bk, bs = self.buffer.top(query, k)
            found.update(zip(bk, bs, strict=True))
        best = sorted(found.items(), key=lambda kv: -kv[1])[:k]
        return [b[0] for b in best], [b[1] for b in best]

    def keys(self) -> set[int]:
        with self._lock:
            out = set(self.buffer.pos)
            if self.hnsw is not None:
                out |= {int(x) for x in np.asarray(self.hnsw.keys)} - self.stale
            return out

    # -- indexer thread ---------------------------------------------------------------------

    def promote(self, threads: int = 1) -> None:
        """Build the HNSW graph from the buffer without holding the lock, then swap it in."""
        with self._lock:
            if self.hnsw is not None or self.promoting:
                return
            self.promoting = True
            keys, mat, versions = self.buffer.snapshot()
        try:
            index = self.new_index()
            if len(keys):
                index.add(keys, mat, threads=threads)
            with self._graph_lock, self._lock:
                self.hnsw = index
                self.changes += 1
                self.graph_changes += max(1, len(keys))
                for k in keys.tolist():
                    if self.buffer.ver.get(k) == versions[k]:
                        self.buffer.drop(k)  # graph holds the current vector
                    else:
                        self.stale.add(k)  # changed or deleted while the graph was built
        finally:
            with self._lock:
                self.promoting = False

    def apply_pending(self, limit: int = 1_000_000) -> int:
        """Move buffered writes and deletions into the graph, one vector per lock hold."""
        done = 0
        while done < limit:
            with self._graph_lock, self._lock:
                if self.hnsw is None:
                    return done
                if self.stale:
                    key = next(iter(self.stale))
                    if key in self.hnsw:
                        self.hnsw.remove(key)
                    self.stale.discard(key)
                elif self.buffer.n:
                    key = int(self.buffer.keys[self.buffer.n - 1])
                    vec = self.buffer.mat[self.buffer.n - 1].copy()
                    if key in self.hnsw:
                        self.hnsw.remove(key)
                    self.hnsw.add(key, vec, threads=1)
                    self.buffer.drop(key)
                else:
                    return done
                self.changes += 1
                self.graph_changes += 1
            done += 1
            # threading.Lock is not fair: without a pause the indexer takes the partition lock
            # straight back and a waiting search starves behind a long queue of insertions.
            time.sleep(0)
        return done

    def adopt(self, index: Index) -> None:
        with self._graph_lock, self._lock:
            self.hnsw = index
            self.changes += 1
            self.graph_changes += 1

    def mark_stale(self, keys: Iterable[int]) -> None:
        """Hide these keys' vectors in the graph (recovery: they were deleted or replaced)."""
        with self._lock:
            if self.hnsw is None:
                return
            ks = np.fromiter(keys, dtype=np.uint64)
            if len(ks):
                present = np.asarray(self.hnsw.contains(ks), dtype=bool).reshape(-1)
                self.stale.update(int(k) for k in ks[present])
                self.changes += 1

    # -- checkpoints ------------------------------------------------------------------------

    def capture(self, saved_graph_changes: int | None) -> _Capture:
        """What a checkpoint writes for this partition, consistent with this instant.

        ``saved_graph_changes``: the graph counter when the graph file the last checkpoint names
        was written (None: no such file); the graph is serialised again only if it changed since.
        Holds the graph lock while the graph is serialised (the indexer waits; searches and writes
        do not), and the partition lock only while the buffer is copied.
        """
        with self._graph_lock:
            with self._lock:
                cap = _Capture(changes=self.changes, graph_changes=self.graph_changes,
                               has_graph=self.hnsw is not None,
                               stale=np.fromiter(self.stale, dtype=np.uint64, count=len(self.stale)))
                n = self.buffer.n
                if n <= BUFFER_VECTORS_MAX:
                    cap.keys, cap.vecs, _ = self.buffer.snapshot()
                else:
                    cap.fetch = self.buffer.keys[:n].copy()
                graph = self.hnsw
            if graph is not None and saved_graph_changes != cap.graph_changes:
                cap.graph = graph.save(progress=_cooperative)
        return cap


@dataclass
class _Capture:
    changes: int
    graph_changes: int
    has_graph: bool
    stale: U64
    keys: U64 = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    vecs: F32 | None = None
    fetch: U64 = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    graph: bytes | None = None

    @property
    def empty(self) -> bool:
        return not self.has_graph and not len(self.keys) and not len(self.fetch) and not len(self.stale)


@dataclass
class _Saved:
    """What the newest checkpoint holds for one partition."""

    changes: int
    graph_changes: int
    entry: dict[str, Any]


@dataclass
class LoadedCheckpoint:
    """What :meth:`VectorIndex.load_checkpoint` restored, and what the engine must still do."""

    version: int
    cut: tuple[int, int] | None = None  # (seq, key) of the database state the checkpoint holds
    saved_at: float | None = None
    clean: bool = False
    fetch: list[int] = field(default_factory=list)  # keys whose current vector is to be read back
    failed: list[Tenant] = field(default_factory=list)  # partitions to rebuild from the database
    vectors: int = 0


class Indexer:
    """One background thread that keeps every partition's HNSW graph up to date."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Partition | None] = queue.Queue()
        self._queued: set[int] = set()
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="agentmem-indexer", daemon=True)
        self._thread.start()

    def notify(self, part: Partition) -> None:
        with self._lock:
            if id(part) in self._queued:
                return
            self._queued.add(id(part))
            self._idle.clear()
        self._queue.put(part)

    def _loop(self) -> None:
        while True:
            part = self._queue.get()
            if part is None:
                return
            with self._lock:
                self._queued.discard(id(part))
            try:
                if part.hnsw is None:
                    part.promote()
                part.apply_pending()
            finally:
                with self._lock:
                    if not self._queued:
                        self._idle.set()

    def flush(self, timeout: float = 300.0) -> bool:
        return self._idle.wait(timeout)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)


class VectorIndex:
    """All tenants' partitions, the background indexer, and checkpoints to a folder."""

    def __init__(self, dim: int, *, hnsw_threshold: int = 4096, params: HnswParams | None = None,
                 background: bool = True) -> None:
        self.dim = dim
        self.hnsw_threshold = hnsw_threshold
        self.params = params or HnswParams()
        self._parts: dict[Tenant, Partition] = {}
        self._lock = threading.Lock()
        # Without a background indexer every write indexes inline: slower writes, but the same
        # work on the same thread every time (what instruction counting needs).
        self.background = background
        self.indexer = Indexer()
        self._saved: dict[Tenant, _Saved] = {}
        self._generation = 0
        self._checkpoint_lock = threading.Lock()

    def reset(self) -> None:
        """Forget every vector (recovery, before a rebuild from the database)."""
        with self._lock:
            self._parts = {}
            self._saved = {}

    def partition(self, tenant: Tenant) -> Partition:
        part = self._parts.get(tenant)
        if part is None:
            with self._lock:
                part = self._parts.setdefault(tenant, Partition(self.dim, self.hnsw_threshold, self.params))
        return part

    def add(self, tenant: Tenant, keys: Iterable[int], vecs: F32, *, schedule: bool = True) -> None:
        part = self.partition(tenant)
        if part.add(np.fromiter(keys, dtype=np.uint64), np.asarray(vecs, dtype=np.float32)) and schedule:
            self._schedule(part)

    def _schedule(self, part: Partition) -> None:
        if self.background:
            self.indexer.notify(part)
            return
        if part.hnsw is None:
            part.promote()
        part.apply_pending()

    def schedule_all(self) -> None:
        """Hand every partition with unindexed vectors to the indexer (after recovery)."""
        for part in list(self._parts.values()):
            if part.needs_indexing():
                self._schedule(part)

    def remove(self, tenant: Tenant, key: int, *, schedule: bool = True) -> None:
        part = self._parts.get(tenant)
        if part is not None and part.remove(key) and schedule:
            self._schedule(part)

    def search(self, tenant: Tenant, query: F32, k: int) -> tuple[list[int], list[float]]:
        part = self._parts.get(tenant)
        if part is None:
            return [], []
        return part.search(np.asarray(query, dtype=np.float32), k)

    def __len__(self) -> int:
        return sum(len(p) for p in list(self._parts.values()))

    def tenants(self) -> list[Tenant]:
        return list(self._parts)

    def backlog(self) -> int:
        """Vectors written but not yet in an HNSW graph, in partitions that have one or need one."""
        total = 0
        for part in list(self._parts.values()):
            if part.hnsw is not None or part.buffer.n >= self.hnsw_threshold:
                total += part.buffer.n + len(part.stale)
        return total

    def graph_changes(self) -> int:
        return sum(p.graph_changes for p in list(self._parts.values()))

    def flush(self, timeout: float = 300.0) -> bool:
        """Wait until the indexer has applied every pending write."""
        return self.indexer.flush(timeout)

    def close(self) -> None:
        self.indexer.stop()

    # -- persistence ------------------------------------------------------------------------

    @staticmethod
    def _stem(tenant: Tenant) -> str:
        return hashlib.sha256(f"{tenant.agent_id}\0{tenant.user_id}".encode()).hexdigest()[:32]

    def write_checkpoint(self, folder: Path, *, instance: str, cut: tuple[int, int], clean: bool = False,
                         saved_at: float | None = None) -> dict[str, Any]:
        """Write every partition changed since the last checkpoint, then a manifest naming ``cut``.

        Precondition: every database change up to ``cut`` is already applied to this index (the
        engine reads the cut under the lock its writers hold from commit to index update). A
        partition may hold changes past the cut too: recovery replays everything after the cut
        from the database, and a replay writes the current row, so replaying twice is harmless.

        Crash safety: every file is written under a temporary name, fsynced, renamed to a name
        no earlier checkpoint used, and only then does the manifest (written the same way, and
        its folder fsynced) point at it. Files the new manifest does not name are deleted last.
        A crash at any point leaves the previous manifest and every file it names intact.
        """
        with self._checkpoint_lock:
            t0 = time.perf_counter()
            folder.mkdir(parents=True, exist_ok=True)
            gen = self._generation + 1
            entries: list[dict[str, Any]] = []
            saved: dict[Tenant, _Saved] = {}
            written = graphs = 0
            for tenant, part in list(self._parts.items()):
                prev = self._saved.get(tenant)
                if prev is not None and prev.changes == part.changes:
                    entries.append(prev.entry)  # nothing changed: its files still hold it
                    saved[tenant] = prev
                    continue
                has_file = prev is not None and prev.entry.get("graph") is not None
                cap = part.capture(prev.graph_changes if prev is not None and has_file else None)
                if cap.empty:
                    continue
                stem = self._stem(tenant)
                entry: dict[str, Any] = {"agent_id": tenant.agent_id, "user_id": tenant.user_id,
                                         "graph": None, "pending": None}
                if cap.graph is not None:
                    entry["graph"] = f"{stem}.g{gen}.usearch"
                    _write_file(folder / entry["graph"], cap.graph)
                    graphs += 1
                elif cap.has_graph:
                    assert prev is not None  # capture saves the graph unless prev names its file
                    entry["graph"] = prev.entry["graph"]
                if len(cap.keys) or len(cap.fetch) or len(cap.stale):
                    entry["pending"] = f"{stem}.p{gen}.npz"
                    _write_npz(folder / entry["pending"], keys=cap.keys,
                               vecs=cap.vecs if cap.vecs is not None else np.zeros((0, self.dim), np.float32),
                               fetch=cap.fetch, stale=cap.stale)
                written += 1
                entries.append(entry)
                saved[tenant] = _Saved(cap.changes, cap.graph_changes, entry)
            manifest = {"version": MANIFEST_VERSION, "instance": instance, "dim": self.dim,
                        "generation": gen, "cut": {"seq": cut[0], "key": cut[1]},
                        "saved_at": saved_at if saved_at is not None else time.time(), "clean": clean,
                        "partitions": entries}
            _write_file(folder / MANIFEST, json.dumps(manifest).encode())
            _fsync_dir(folder)
            self._generation = gen
            self._saved = saved
            keep = {MANIFEST} | {e[k] for e in entries for k in ("graph", "pending") if e[k]}
            for f in folder.iterdir():
                if f.name not in keep and f.suffix in (".usearch", ".npz", ".tmp"):
                    f.unlink(missing_ok=True)
            return {"generation": gen, "partitions": len(entries), "written": written, "graphs_written": graphs,
                    "with_graph": sum(1 for e in entries if e["graph"]), "seconds": round(time.perf_counter() - t0, 3)}

    def load_checkpoint(self, folder: Path, *, instance: str) -> LoadedCheckpoint | None:
        """Restore the newest checkpoint; None when there is none this database can use.

        A partition whose files cannot be read is left empty and named in ``failed`` (the engine
        rebuilds it from the database); keys checkpointed without their vectors are in ``fetch``.
        """
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or manifest.get("instance") != instance or manifest.get("dim") != self.dim:
            return None
        if manifest.get("version") == LEGACY_MANIFEST_VERSION:
            return self._load_legacy(folder, manifest)
        if manifest.get("version") != MANIFEST_VERSION:
            return None
        try:
            cut = (int(manifest["cut"]["seq"]), int(manifest["cut"]["key"]))
            entries = list(manifest["partitions"])
            out = LoadedCheckpoint(MANIFEST_VERSION, cut=cut, saved_at=float(manifest["saved_at"]),
                                   clean=bool(manifest.get("clean")))
            gen = int(manifest["generation"])
        except (KeyError, TypeError, ValueError):
            return None
        for entry in entries:
            tenant = Tenant(entry["agent_id"], entry["user_id"])
            part = self.partition(tenant)
            try:
                if entry.get("graph"):
                    index = part.new_index()
                    index.load(_read_file(folder / entry["graph"]), progress=_cooperative)
                    part.adopt(index)
                if entry.get("pending"):
                    with np.load(folder / entry["pending"]) as z:
                        stale, keys, vecs, fetch = z["stale"], z["keys"], z["vecs"], z["fetch"]
                    part.mark_stale(stale.tolist())
                    if len(keys):
                        part.add(keys.astype(np.uint64), vecs.astype(np.float32))
                    out.fetch += fetch.tolist()
            except Exception:  # noqa: BLE001 - a damaged or missing file only means a rebuild
                with self._lock:
                    self._parts[tenant] = Partition(self.dim, self.hnsw_threshold, self.params)
                out.failed.append(tenant)
                continue
            self._saved[tenant] = _Saved(part.changes, part.graph_changes, entry)
        self._generation = gen
        out.vectors = len(self)
        return out

    def _load_legacy(self, folder: Path, manifest: dict[str, Any]) -> LoadedCheckpoint | None:
        """A schema-1 engine's save: its graphs, but no cut (the engine reconciles in full)."""
        try:
            out = LoadedCheckpoint(LEGACY_MANIFEST_VERSION, saved_at=float(manifest["saved_at"]), clean=True)
            entries = dict(manifest.get("partitions", {}))
        except (KeyError, TypeError, ValueError):
            return None
        for name, entry in entries.items():
            part = self.partition(Tenant(entry["agent_id"], entry["user_id"]))
            index = part.new_index()
            try:
                index.load(_read_file(folder / name), progress=_cooperative)
            except Exception:  # noqa: BLE001, S112 - a damaged file only means a rebuild
                continue
            part.adopt(index)
        out.vectors = len(self)
        return out


def _read_file(path: Path) -> bytes:
    # Read with the GIL released, then hand usearch a buffer (its own file reading holds the GIL).
    with open(path, "rb") as fh:
        return fh.read()


def _write_file(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_npz(path: Path, **arrays: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
