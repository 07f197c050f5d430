"""Per-tenant vector indexes: exact search for small tenants, HNSW (usearch) for large ones.

Each (agent_id, user_id) tenant gets its own partition, so a search can only ever see that
tenant's vectors, and a tenant holding 1 % of all memories gets the same recall as the largest
one (a filtered global HNSW graph loses recall exactly there). Below ``hnsw_threshold`` vectors a
brute-force matrix product is both exact and faster than walking a graph; above it the partition
switches to an HNSW index with the guide's parameters (M=16, ef_construction=200, ef=128).

SQLite is the source of truth. HNSW partitions are saved on close and, on open, reconciled
against SQLite (missing keys added, deleted keys removed, rows updated after the save re-added),
so the index is consistent after a clean stop, a crash or a SIGKILL alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from usearch.index import Index

from .models import Tenant

F32 = npt.NDArray[np.float32]
U64 = npt.NDArray[np.uint64]

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class HnswParams:
    connectivity: int = 16
    expansion_add: int = 200
    expansion_search: int = 128


class _Matrix:
    """Vectors in one contiguous matrix with swap-remove, for brute-force scoring."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.keys: U64 = np.zeros(64, dtype=np.uint64)
        self.mat: F32 = np.zeros((64, dim), dtype=np.float32)
        self.pos: dict[int, int] = {}
        self.ver: dict[int, int] = {}
        self.n = 0

    def put(self, key: int, vec: F32, version: int) -> None:
        i = self.pos.get(key)
        if i is None:
            if self.n == len(self.keys):
                cap = len(self.keys) * 2
                keys = np.zeros(cap, dtype=np.uint64)
                keys[: self.n] = self.keys[: self.n]
                mat = np.zeros((cap, self.dim), dtype=np.float32)
                mat[: self.n] = self.mat[: self.n]
                self.keys, self.mat = keys, mat
            i = self.n
            self.n += 1
            self.pos[key] = i
            self.keys[i] = key
        self.mat[i] = vec
        self.ver[key] = version

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
    """

    def __init__(self, dim: int, threshold: int, params: HnswParams) -> None:
        self.dim = dim
        self._threshold = threshold
        self._params = params
        self._lock = threading.RLock()
        self.buffer = _Matrix(dim)
        self.stale: set[int] = set()
        self.hnsw: Index | None = None
        self.promoting = False
        self._version = 0

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

    # -- request path (event loop thread) ---------------------------------------------------

    def add(self, keys: U64, vecs: F32) -> bool:
        """Record vectors; True when the indexer has work to do for this partition."""
        with self._lock:
            for k, v in zip(keys.tolist(), vecs, strict=True):
                self._version += 1
                self.buffer.put(k, v, self._version)
                if self._in_graph(k):
                    self.stale.add(k)
            return self.hnsw is not None or (self.buffer.n >= self._threshold and not self.promoting)

    def remove(self, key: int) -> bool:
        with self._lock:
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
            with self._lock:
                self.hnsw = index
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
            with self._lock:
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
            done += 1
            # threading.Lock is not fair: without a pause the indexer takes the partition lock
            # straight back and a waiting search starves behind a long queue of insertions.
            time.sleep(0)
        return done

    def adopt(self, index: Index) -> None:
        with self._lock:
            self.hnsw = index


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
    """All tenants' partitions, the background indexer, and save / load against the database."""

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

    def partition(self, tenant: Tenant) -> Partition:
        part = self._parts.get(tenant)
        if part is None:
            with self._lock:
                part = self._parts.setdefault(tenant, Partition(self.dim, self.hnsw_threshold, self.params))
        return part

    def add(self, tenant: Tenant, keys: Iterable[int], vecs: F32) -> None:
        part = self.partition(tenant)
        if part.add(np.fromiter(keys, dtype=np.uint64), np.asarray(vecs, dtype=np.float32)):
            self._schedule(part)

    def _schedule(self, part: Partition) -> None:
        if self.background:
            self.indexer.notify(part)
            return
        if part.hnsw is None:
            part.promote()
        part.apply_pending()

    def add_now(self, tenant: Tenant, keys: list[int], vecs: F32, threads: int = 0) -> None:
        """Add and index synchronously with every core (start-up, where nothing else runs yet)."""
        part = self.partition(tenant)
        part.add(np.asarray(keys, dtype=np.uint64), np.asarray(vecs, dtype=np.float32))
        if part.hnsw is None and part.buffer.n >= self.hnsw_threshold:
            part.promote(threads)
        elif part.hnsw is not None and part.buffer.n:
            bk, bm, _ = part.buffer.snapshot()
            with part._lock:
                present = [k for k in bk.tolist() if k in part.hnsw]
                if present:
                    part.hnsw.remove(present)
                part.hnsw.add(bk, bm, threads=threads)
                for k in bk.tolist():
                    part.buffer.drop(k)
                    part.stale.discard(k)
        part.apply_pending()

    def remove(self, tenant: Tenant, key: int) -> None:
        part = self._parts.get(tenant)
        if part is not None and part.remove(key):
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

    def flush(self, timeout: float = 300.0) -> bool:
        """Wait until the indexer has applied every pending write."""
        return self.indexer.flush(timeout)

    def close(self) -> None:
        self.indexer.stop()

    # -- persistence ------------------------------------------------------------------------

    @staticmethod
    def _file_name(tenant: Tenant) -> str:
        return hashlib.sha256(f"{tenant.agent_id}\0{tenant.user_id}".encode()).hexdigest()[:32] + ".usearch"

    def save(self, folder: Path, *, instance: str, saved_at: float) -> None:
        """Write every HNSW partition and a manifest; each file is replaced atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        self.flush()
        entries: dict[str, Any] = {}
        for tenant, part in list(self._parts.items()):
            with part._lock:
                if part.hnsw is None:
                    continue
                name = self._file_name(tenant)
                tmp = folder / (name + ".tmp")
                part.hnsw.save(str(tmp))
                os.replace(tmp, folder / name)
            entries[name] = {"agent_id": tenant.agent_id, "user_id": tenant.user_id}
        manifest = {"version": MANIFEST_VERSION, "instance": instance, "saved_at": saved_at,
                    "dim": self.dim, "partitions": entries}
        tmp = folder / "manifest.json.tmp"
        with open(tmp, "w") as fh:
            json.dump(manifest, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / "manifest.json")

    def load_saved(self, folder: Path, *, instance: str) -> float | None:
        """Load saved HNSW partitions; returns the save time, or None when nothing usable is there."""
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        if manifest.get("version") != MANIFEST_VERSION or manifest.get("instance") != instance:
            return None
        if manifest.get("dim") != self.dim:
            return None
        for name, entry in manifest.get("partitions", {}).items():
            part = self.partition(Tenant(entry["agent_id"], entry["user_id"]))
            index = part.new_index()
            try:
                index.load(str(folder / name))
            except Exception:  # noqa: BLE001, S112 - a damaged file only means a rebuild
                continue
            part.adopt(index)
        return float(manifest["saved_at"])
