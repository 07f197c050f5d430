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
import threading
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


class Partition:
    """One tenant's vectors. Thread-safe: searches and writes may come from any worker thread."""

    def __init__(self, dim: int, threshold: int, params: HnswParams) -> None:
        self.dim = dim
        self._threshold = threshold
        self._params = params
        self._lock = threading.RLock()
        self._keys: U64 = np.zeros(64, dtype=np.uint64)
        self._mat: F32 = np.zeros((64, dim), dtype=np.float32)
        self._pos: dict[int, int] = {}
        self._n = 0
        self.hnsw: Index | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self.hnsw) if self.hnsw is not None else self._n

    def _new_index(self) -> Index:
        p = self._params
        return Index(
            ndim=self.dim,
            metric="ip",
            dtype="f32",
            connectivity=p.connectivity,
            expansion_add=p.expansion_add,
            expansion_search=p.expansion_search,
        )

    def adopt(self, index: Index) -> None:
        with self._lock:
            self.hnsw = index
            self._pos.clear()
            self._n = 0

    def add(self, keys: U64, vecs: F32, threads: int = 1) -> None:
        with self._lock:
            if self.hnsw is not None:
                self._hnsw_upsert(keys, vecs, threads)
                return
            for k, v in zip(keys.tolist(), vecs):
                i = self._pos.get(k)
                if i is None:
                    if self._n == len(self._keys):
                        self._grow()
                    i = self._n
                    self._n += 1
                    self._pos[k] = i
                    self._keys[i] = k
                self._mat[i] = v
            if self._n >= self._threshold:
                self._promote(threads)

    def _grow(self) -> None:
        cap = len(self._keys) * 2
        keys = np.zeros(cap, dtype=np.uint64)
        keys[: self._n] = self._keys[: self._n]
        mat = np.zeros((cap, self.dim), dtype=np.float32)
        mat[: self._n] = self._mat[: self._n]
        self._keys, self._mat = keys, mat

    def _promote(self, threads: int) -> None:
        index = self._new_index()
        index.add(self._keys[: self._n].copy(), self._mat[: self._n], threads=threads)
        self.hnsw = index
        self._pos.clear()
        self._n = 0
        self._keys = np.zeros(0, dtype=np.uint64)
        self._mat = np.zeros((0, self.dim), dtype=np.float32)

    def _hnsw_upsert(self, keys: U64, vecs: F32, threads: int) -> None:
        assert self.hnsw is not None
        present = [k for k in keys.tolist() if k in self.hnsw]
        if present:
            self.hnsw.remove(present)
        self.hnsw.add(keys, vecs, threads=threads)

    def remove(self, key: int) -> None:
        with self._lock:
            if self.hnsw is not None:
                if key in self.hnsw:
                    self.hnsw.remove(key)
                return
            i = self._pos.pop(key, None)
            if i is None:
                return
            last = self._n - 1
            if i != last:
                # Swap-remove keeps the live rows contiguous for the matrix product.
                moved = int(self._keys[last])
                self._keys[i] = moved
                self._mat[i] = self._mat[last]
                self._pos[moved] = i
            self._n = last

    def search(self, query: F32, k: int) -> tuple[list[int], list[float]]:
        with self._lock:
            if self.hnsw is not None:
                m = self.hnsw.search(query, k, threads=1)
                # usearch's "ip" metric returns 1 - dot product as a distance.
                return [int(x) for x in m.keys], [float(1.0 - d) for d in m.distances]
            n = self._n
            if n == 0:
                return [], []
            scores = self._mat[:n] @ query
            if n > k:
                top = np.argpartition(-scores, k)[:k]
            else:
                top = np.arange(n)
            top = top[np.argsort(-scores[top], kind="stable")]
            return [int(x) for x in self._keys[top]], [float(s) for s in scores[top]]

    def keys(self) -> set[int]:
        with self._lock:
            if self.hnsw is not None:
                return {int(k) for k in np.asarray(self.hnsw.keys)}
            return set(self._pos)


class VectorIndex:
    """All tenants' partitions, plus save / load / reconcile against the database."""

    def __init__(self, dim: int, *, hnsw_threshold: int = 4096, params: HnswParams | None = None) -> None:
        self.dim = dim
        self.hnsw_threshold = hnsw_threshold
        self.params = params or HnswParams()
        self._parts: dict[Tenant, Partition] = {}
        self._lock = threading.Lock()

    def partition(self, tenant: Tenant) -> Partition:
        part = self._parts.get(tenant)
        if part is None:
            with self._lock:
                part = self._parts.setdefault(tenant, Partition(self.dim, self.hnsw_threshold, self.params))
        return part

    def add(self, tenant: Tenant, keys: Iterable[int], vecs: F32, threads: int = 1) -> None:
        self.partition(tenant).add(
            np.fromiter(keys, dtype=np.uint64), np.asarray(vecs, dtype=np.float32), threads
        )

    def remove(self, tenant: Tenant, key: int) -> None:
        part = self._parts.get(tenant)
        if part is not None:
            part.remove(key)

    def search(self, tenant: Tenant, query: F32, k: int) -> tuple[list[int], list[float]]:
        part = self._parts.get(tenant)
        if part is None:
            return [], []
        return part.search(np.asarray(query, dtype=np.float32), k)

    def __len__(self) -> int:
        return sum(len(p) for p in list(self._parts.values()))

    def tenants(self) -> list[Tenant]:
        return list(self._parts)

    # -- persistence ------------------------------------------------------------------------

    @staticmethod
    def _file_name(tenant: Tenant) -> str:
        return hashlib.sha256(f"{tenant.agent_id}\0{tenant.user_id}".encode()).hexdigest()[:32] + ".usearch"

    def save(self, folder: Path, *, instance: str, saved_at: float) -> None:
        """Write every HNSW partition and a manifest; each file is replaced atomically."""
        folder.mkdir(parents=True, exist_ok=True)
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
            index = part._new_index()
            try:
                index.load(str(folder / name))
            except Exception:  # noqa: BLE001 - a damaged file only means a rebuild
                continue
            part.adopt(index)
        return float(manifest["saved_at"])
