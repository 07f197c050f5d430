"""The asyncio agent-memory engine: one object that owns storage, vectors, cache and graph.

Database and vector work runs in a small thread pool so the event loop keeps serving other
requests while SQLite or the HNSW index is busy (both release the GIL in their C code). Hot
reads are answered from a TTL cache on the loop itself, without a thread hop.

Restart: the vector index is checkpointed in the background (see :class:`EngineConfig`), and on
open the engine loads the newest checkpoint and replays into the exact buffer only what the
database changed since, so start-up time does not grow with what was written since a clean stop.
With ``background_recovery`` (the HTTP server's choice) :meth:`MemoryEngine.open` returns before
that is done: reads and writes are served at once, searches wait until the index is consistent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec
import numpy as np
from cachetools import TTLCache

from .embedding import Embedder, make_embedder
from .errors import EngineError, InvalidInput, NotFound, PoolTimeout
from .llm import FactExtractor, LlmError
from .models import (
    RELATION_TYPE,
    TENANT_ID,
    Memory,
    MemoryPatch,
    NewMemory,
    Relation,
    SearchHit,
    Tenant,
    Traversal,
)
from .storage import SORT_KEYS, ConnectionPool, Cut, MemoryRepository, NewRow, Row, VectorRow, database_path
from .vectors import LEGACY_MANIFEST_VERSION, HnswParams, VectorIndex

T = TypeVar("T")

log = logging.getLogger("agentmem")

# The API's own patterns, matched whole (fullmatch: "$" would also match before a final newline,
# and "agentA\n" would become a tenant of its own).
_TENANT_ID = re.compile(TENANT_ID)
_REL_TYPE = re.compile(RELATION_TYPE)
DIRECTIONS = ("out", "in", "both")


@dataclass
class EngineConfig:
    """Everything tunable about an engine; the defaults follow perf-guide §8."""

    db_path: str = "agentmem.db"
    embedder: str = "hashing"
    dim: int = 256
    pool_size: int = 20
    pool_max: int = 100
    pool_timeout: float = 30.0
    # 0 runs database and vector work on the event loop thread. Each operation is well under a
    # millisecond, and a thread pool makes the loop thread and the workers convoy on the GIL:
    # every GIL hand-back after an SQLite call waits out the 5 ms switch interval.
    workers: int = 0
    cache_size: int = 10_000
    cache_ttl: float = 300.0
    hnsw_threshold: int = 4096
    hnsw: HnswParams = field(default_factory=HnswParams)
    background_indexing: bool = True
    max_content_chars: int = 16_384
    max_metadata_bytes: int = 16_384
    max_batch: int = 1000
    max_search_k: int = 100
    llm_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = 5.0
    llm_api_key: str | None = None
    # Crash recovery. The vector index is checkpointed in the background once ``checkpoint_rows``
    # rows were written, or moved into HNSW graphs by the indexer, since the last checkpoint: that
    # count is what a restart would have to replay and re-index, so it bounds the restart's work
    # whatever the write rate. ``checkpoint_interval`` seconds at least between two background
    # checkpoints bound their cost (a big graph is rewritten whole). 0 rows: on a clean stop only;
    # so too without background_indexing, whose point is that no other thread does any work.
    checkpoint_rows: int = 20_000
    checkpoint_interval: float = 10.0
    # open() returns before the index is recovered; searches wait for it (at most pool_timeout,
    # then PoolTimeout). The HTTP server sets this so that it listens at once.
    background_recovery: bool = False


class EngineObserver(Protocol):
    """What the engine reports about itself (the HTTP layer turns this into Prometheus metrics)."""

    def operation(self, name: str, ok: bool) -> None: ...

    def llm_call(self, seconds: float, ok: bool) -> None: ...

    def importance(self, value: float) -> None: ...

    def error(self, kind: str) -> None: ...


class _NullObserver:
    def operation(self, name: str, ok: bool) -> None:
        pass

    def llm_call(self, seconds: float, ok: bool) -> None:
        pass

    def importance(self, value: float) -> None:
        pass

    def error(self, kind: str) -> None:
        pass


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class MemoryEngine:
    """Create with :meth:`open`, use the async methods, finish with :meth:`close`."""

    def __init__(self, config: EngineConfig, observer: EngineObserver | None = None) -> None:
        self.config = config
        self.observer: EngineObserver = observer or _NullObserver()
        self.embedder: Embedder = make_embedder(config.embedder, config.dim)
        self.dim = self.embedder.dim
        self.pool = ConnectionPool(
            database_path(config.db_path), config.pool_size, config.pool_max, config.pool_timeout
        )
        self.repo = MemoryRepository(self.pool)
        self.vectors = VectorIndex(self.dim, hnsw_threshold=config.hnsw_threshold, params=config.hnsw,
                                   background=config.background_indexing)
        self._cache: TTLCache[str, Row] = TTLCache(maxsize=config.cache_size, ttl=config.cache_ttl)
        self._cache_lock = threading.Lock()
        self.cache_stats = CacheStats()
        self._executor = (
            ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="agentmem-db")
            if config.workers > 0 else None
        )
        self._per_agent: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._instance = ""
        self._background: set[asyncio.Task[None]] = set()
        self._llm: FactExtractor | None = None
        self.started_at = time.time()
        # Writers hold this from their SQLite commit until the vector index has the change, so a
        # database cut read under it is wholly applied to the index (checkpoints, recovery).
        self._apply_lock = threading.Lock()
        # False while recovering: writers leave the index alone and recovery replays their rows.
        self._live = False
        self._ready = threading.Event()
        self._ready_async: asyncio.Event | None = None
        self._recovery_thread: threading.Thread | None = None
        self._recovery_error: BaseException | None = None
        self.recovery: dict[str, Any] = {}
        self._checkpoint_lock = threading.Lock()
        self._writes_since_cut = 0
        self._graph_changes_at_cut = 0
        self.last_checkpoint: dict[str, Any] = {}
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    async def open(cls, config: EngineConfig, observer: EngineObserver | None = None) -> MemoryEngine:
        engine = cls(config, observer)
        await engine._run(engine._open_database)
        engine._ready_async = asyncio.Event()
        if config.background_recovery:
            engine._recovery_thread = threading.Thread(
                target=engine._recover_in_background, args=(asyncio.get_running_loop(),),
                name="agentmem-recovery", daemon=True)
            engine._recovery_thread.start()
        else:
            await engine._run(engine._recover)
            engine._ready_async.set()
        if config.checkpoint_rows > 0 and config.background_indexing:
            engine._checkpointer = threading.Thread(target=engine._checkpoint_loop, name="agentmem-checkpoint",
                                                    daemon=True)
            engine._checkpointer.start()
        if config.llm_url:
            engine._llm = FactExtractor(
                config.llm_url,
                model=config.llm_model,
                timeout=config.llm_timeout,
                api_key=config.llm_api_key,
                on_duration=engine.observer.llm_call,
            )
        return engine

    def _index_folder(self) -> Path:
        return Path(self.pool.path + ".vectors")

    def _open_database(self) -> None:
        self._instance = self.repo.migrate(self.dim, self.embedder.name)
        _, per_agent = self.repo.counts()
        self._per_agent = Counter(per_agent)

    # -- recovery of the vector index -------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once the vector index is consistent with the database (searches are answered)."""
        return self._ready.is_set() and self._recovery_error is None

    @property
    def status(self) -> str:
        """"ok", "recovering" (the index is being brought up to date) or "failed" (it could not be)."""
        if self._recovery_error is not None:
            return "failed"
        return "ok" if self._ready.is_set() else "recovering"

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the vector index is recovered; PoolTimeout after ``timeout`` (pool_timeout)."""
        if not self._ready.is_set():
            assert self._ready_async is not None
            wait = self.config.pool_timeout if timeout is None else timeout
            try:
                await asyncio.wait_for(self._ready_async.wait(), wait)
            except TimeoutError:
                raise PoolTimeout(f"the vector index is still recovering after {wait:.0f} s; retry shortly") from None
        if self._recovery_error is not None:
            raise EngineError(f"the vector index could not be recovered: {self._recovery_error}")

    def _recover_in_background(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._recover()
        except Exception as exc:  # reported by status, /health and every search
            self._recovery_error = exc
            self._ready.set()
            log.exception("agentmem: vector index recovery failed")
        assert self._ready_async is not None
        try:
            loop.call_soon_threadsafe(self._ready_async.set)
        except RuntimeError:
            pass  # the loop is gone: nobody waits

    def _recover(self) -> None:
        """Make the vector index consistent with the database, from the newest checkpoint if usable.

        Loads the checkpoint (graphs, and the buffers and stale keys they had), then replays what
        changed in the database after the cut it names: rows inserted since (keys above its
        key), rows whose vector was updated or deleted since (vector_log), each written as the
        database has it now. Writers do not touch the index meanwhile (``_live`` is False); the
        last replay runs under the apply lock and then turns them on, so no change falls between.
        """
        t0 = time.perf_counter()
        folder = self._index_folder()
        loaded = self.vectors.load_checkpoint(folder, instance=self._instance)
        t_load = time.perf_counter() - t0
        info: dict[str, Any] = {"checkpoint": None, "replayed": 0}
        base: Cut | None = None
        if loaded is not None and loaded.cut is not None:
            ck = Cut(*loaded.cut)
            now = self.repo.cut()
            if ck.seq <= now.seq and ck.key <= now.key and ck.seq >= self.repo.log_truncated_at():
                base = ck
                info["checkpoint"] = {"seq": ck.seq, "key": ck.key, "clean": loaded.clean,
                                      "vectors": loaded.vectors, "failed_partitions": len(loaded.failed)}
                for tenant in loaded.failed:
                    self._apply_rows(self.repo.tenant_vectors(tenant))
                if loaded.fetch:
                    self._apply_rows(self.repo.vectors_of(loaded.fetch))
                    info["replayed"] += len(loaded.fetch)
            else:
                # The database is not the one the checkpoint followed (restored from a backup, or
                # the log it needs is gone): start from the database alone.
                log.warning("agentmem: the vector checkpoint does not match the database; rebuilding")
                self.vectors.reset()
        if base is None:
            base = self.repo.cut()  # before the scan: what changes during it is replayed after
            legacy = loaded is not None and loaded.version == LEGACY_MANIFEST_VERSION
            fixed = self.reconcile_vectors(loaded.saved_at if loaded is not None and legacy else None)
            info["reconciled"] = fixed
        # Writers commit meanwhile without touching the index: catch up with them, then once more
        # under their lock, and let them in.
        for _ in range(3):
            upto = self.repo.cut()
            if upto == base:
                break
            info["replayed"] += self._replay(base, upto)
            base = upto
        with self._apply_lock:
            upto = self.repo.cut()
            info["replayed"] += self._replay(base, upto)
            # A crash before the next checkpoint would replay all of that again.
            self._writes_since_cut = info["replayed"] + info.get("reconciled", {}).get("added", 0)
            self._live = True
        self._graph_changes_at_cut = self.vectors.graph_changes()
        self.vectors.schedule_all()
        info.update(load_seconds=round(t_load, 3), seconds=round(time.perf_counter() - t0, 3),
                    vectors=len(self.vectors))
        self.recovery = info
        self._ready.set()
        log.info("agentmem: vector index ready in %.2f s (%s)", info["seconds"], info)

    def _replay(self, base: Cut, upto: Cut) -> int:
        """Write into the index, as the database has them now, the rows changed between two cuts."""
        logged = self.repo.vectors_logged(base, upto)
        for key, agent_id, user_id in logged:
            self.vectors.remove(Tenant(agent_id, user_id), key, schedule=False)  # from the tenant it had
        rows = self.repo.vectors_inserted(base, upto)
        if logged:
            rows += self.repo.vectors_of(sorted({key for key, _, _ in logged}))
        self._apply_rows(rows)
        return len(logged) + len(rows)

    def _apply_rows(self, rows: list[VectorRow]) -> None:
        by_tenant: dict[Tenant, tuple[list[int], list[bytes]]] = {}
        for agent_id, user_id, key, blob in rows:
            keys, blobs = by_tenant.setdefault(Tenant(agent_id, user_id), ([], []))
            keys.append(key)
            blobs.append(blob)
        for tenant, (keys, blobs) in by_tenant.items():
            mat = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(keys), self.dim)
            self.vectors.add(tenant, keys, mat, schedule=False)

    def reconcile_vectors(self, saved_at: float | None) -> dict[str, int]:
        """Make the vector index hold exactly the database's vectors (a full scan); returns what was fixed.

        Vectors missing from the index, and with ``saved_at`` those of rows updated since, go to
        the exact buffer; the indexer moves them into graphs once the engine is live.
        """
        by_tenant: dict[Tenant, dict[int, float]] = {}
        for agent_id, user_id, key, updated_at in self.repo.tenant_keys():
            by_tenant.setdefault(Tenant(agent_id, user_id), {})[key] = updated_at
        fixed = {"added": 0, "removed": 0}
        for tenant in set(self.vectors.tenants()) - set(by_tenant):
            for key in self.vectors.partition(tenant).keys():
                self.vectors.remove(tenant, key, schedule=False)
                fixed["removed"] += 1
        for tenant, rows in by_tenant.items():
            part = self.vectors.partition(tenant)
            have = part.keys()
            for key in have - rows.keys():
                self.vectors.remove(tenant, key, schedule=False)
                fixed["removed"] += 1
            # A row written within a second of the save may or may not be in the saved file.
            need = [
                k for k, upd in rows.items() if k not in have or saved_at is None or upd >= saved_at - 1.0
            ]
            for i in range(0, len(need), 50_000):
                chunk = need[i : i + 50_000]
                self.vectors.add(tenant, chunk, self.repo.embeddings(chunk), schedule=False)
            fixed["added"] += len(need)
        return fixed

    # -- checkpoints ------------------------------------------------------------------------

    def checkpoint(self, *, clean: bool = False) -> dict[str, Any]:
        """Write a checkpoint of the vector index now (also done in the background and on close)."""
        if not self._live:
            raise EngineError("the vector index is recovering: nothing consistent to checkpoint yet")
        with self._checkpoint_lock:
            t0 = time.perf_counter()
            with self._apply_lock:
                cut = self.repo.cut()  # every change up to here is in the index
                writes, self._writes_since_cut = self._writes_since_cut, 0
                graph_changes = self.vectors.graph_changes()
            try:
                info = self.vectors.write_checkpoint(self._index_folder(), instance=self._instance,
                                                     cut=(cut.seq, cut.key), clean=clean)
            except BaseException:
                with self._apply_lock:
                    self._writes_since_cut += writes
                raise
            self._graph_changes_at_cut = graph_changes
            # The manifest naming the cut is durable: the log before it is no longer needed.
            self.repo.truncate_log(cut)
            info.update(seq=cut.seq, key=cut.key, writes=writes, clean=clean,
                        total_seconds=round(time.perf_counter() - t0, 3), at=time.time())
            self.last_checkpoint = info
            return info

    def _checkpoint_work(self) -> int:
        """What a restart would replay or re-index beyond the last checkpoint, in rows."""
        return self._writes_since_cut + max(0, self.vectors.graph_changes() - self._graph_changes_at_cut)

    def _checkpoint_loop(self) -> None:
        cfg = self.config
        last = time.monotonic()
        while not self._stop.wait(min(1.0, max(0.05, cfg.checkpoint_interval / 4))):
            if not self._live or time.monotonic() - last < cfg.checkpoint_interval:
                continue
            if self._checkpoint_work() < cfg.checkpoint_rows:
                continue
            try:
                info = self.checkpoint()
                log.info("agentmem: checkpoint %s", info)
            except Exception:  # the next one may succeed; a crash meanwhile replays more
                log.exception("agentmem: background checkpoint failed")
            last = time.monotonic()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._llm is not None:
            await self._llm.aclose()
        await self._run(self._save_and_close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def _save_and_close(self) -> None:
        self._stop.set()
        for thread in (self._checkpointer, self._recovery_thread):
            if thread is not None:
                thread.join()
        if self._live:
            # A clean stop lets the indexer finish, so the next start has nothing to re-index.
            self.vectors.flush()
            self.checkpoint(clean=True)
        self.vectors.close()
        self.pool.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- validation -------------------------------------------------------------------------

    @staticmethod
    def tenant(agent_id: str, user_id: str) -> Tenant:
        if not _TENANT_ID.fullmatch(agent_id or "") or not _TENANT_ID.fullmatch(user_id or ""):
            raise InvalidInput("agent_id and user_id must be 1-128 characters of letters, digits, _ . : @ -")
        return Tenant(agent_id, user_id)

    def _check_content(self, content: str) -> str:
        if not content or not content.strip():
            raise InvalidInput("content must not be empty")
        if len(content) > self.config.max_content_chars:
            raise InvalidInput(f"content longer than {self.config.max_content_chars} characters")
        return content

    @staticmethod
    def _check_importance(value: float) -> float:
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InvalidInput("importance must be a finite number between 0 and 1")
        return float(value)

    def _check_metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(msgspec.json.encode(metadata))
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"metadata is not JSON-encodable: {exc}") from exc
        if size > self.config.max_metadata_bytes:
            raise InvalidInput(f"metadata larger than {self.config.max_metadata_bytes} bytes")
        return metadata

    def _check_embedding(self, embedding: Sequence[float]) -> np.ndarray[Any, Any]:
        vec = np.asarray(embedding, dtype=np.float64)
        if vec.ndim != 1 or vec.shape[0] != self.dim:
            raise InvalidInput(f"embedding must have {self.dim} dimensions, got {vec.size}")
        if not np.all(np.isfinite(vec)):
            raise InvalidInput("embedding contains NaN or infinite values")
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            raise InvalidInput("embedding must not be the zero vector")
        return (vec / norm).astype(np.float32)

    def _prepare(self, tenant: Tenant, item: NewMemory) -> NewRow:
        content = self._check_content(item.content)
        importance = self._check_importance(item.importance)
        metadata = self._check_metadata(item.metadata)
        emb = self._check_embedding(item.embedding) if item.embedding is not None else None
        return NewRow(tenant.agent_id, tenant.user_id, content,
                      emb if emb is not None else np.zeros(0, dtype=np.float32), importance, metadata)

    # -- cache ------------------------------------------------------------------------------

    def _cache_get(self, memory_id: str) -> Row | None:
        with self._cache_lock:
            row = self._cache.get(memory_id)
        if row is None:
            self.cache_stats.misses += 1
        else:
            self.cache_stats.hits += 1
        return row

    def _cache_put(self, row: Row) -> None:
        with self._cache_lock:
            self._cache[row.memory.id] = row

    def _cache_drop(self, memory_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(memory_id, None)

    def evict(self, memory_id: str) -> None:
        """Forget a memory's cached row, so the next read goes to SQLite (benchmarks time that path)."""
        self._cache_drop(memory_id)

    def cache_len(self) -> int:
        with self._cache_lock:
            return len(self._cache)

    # -- counts -----------------------------------------------------------------------------

    def _count(self, agent_id: str, delta: int) -> None:
        with self._counts_lock:
            self._per_agent[agent_id] += delta
            if self._per_agent[agent_id] <= 0:
                del self._per_agent[agent_id]

    @property
    def memories_total(self) -> int:
        with self._counts_lock:
            return sum(self._per_agent.values())

    @property
    def agents_total(self) -> int:
        with self._counts_lock:
            return len(self._per_agent)

    # -- memories ---------------------------------------------------------------------------

    def _store(self, tenant: Tenant, rows: list[NewRow]) -> list[Row]:
        missing = [i for i, r in enumerate(rows) if r.embedding.size == 0]
        if missing:
            vecs = self.embedder.embed_many([rows[i].content for i in missing])
            for j, i in enumerate(missing):
                r = rows[i]
                rows[i] = NewRow(r.agent_id, r.user_id, r.content, vecs[j], r.importance, r.metadata)
        with self._apply_lock:
            stored = self.repo.insert_many(rows)
            # SQLite committed first: if we die before the next line, recovery replays the rows.
            if self._live:
                self.vectors.add(tenant, [s.key for s in stored], np.stack([r.embedding for r in rows]))
            self._writes_since_cut += len(stored)
        for s in stored:
            self._cache_put(s)
        self._count(tenant.agent_id, len(stored))
        return stored

    async def create(self, tenant: Tenant, item: NewMemory) -> Memory:
        try:
            row = self._prepare(tenant, item)
            (stored,) = await self._run(self._store, tenant, [row])
        except Exception:
            self.observer.operation("create", False)
            raise
        self.observer.operation("create", True)
        self.observer.importance(stored.memory.importance)
        self._after_write(tenant, stored.memory)
        return stored.memory

    async def create_batch(self, tenant: Tenant, items: Sequence[NewMemory]) -> list[Memory]:
        """Store all items in one transaction; one bad item rejects the whole batch."""
        try:
            if not items:
                raise InvalidInput("batch is empty")
            if len(items) > self.config.max_batch:
                raise InvalidInput(f"batch larger than {self.config.max_batch} items")
            rows: list[NewRow] = []
            for i, item in enumerate(items):
                try:
                    rows.append(self._prepare(tenant, item))
                except InvalidInput as exc:
                    raise InvalidInput(f"item {i}: {exc}") from exc
            stored = await self._run(self._store, tenant, rows)
        except Exception:
            self.observer.operation("batch_create", False)
            raise
        self.observer.operation("batch_create", True)
        for s in stored:
            self.observer.importance(s.memory.importance)
            self._after_write(tenant, s.memory)
        return [s.memory for s in stored]

    def _owned(self, tenant: Tenant, row: Row | None) -> Row | None:
        if row is None or row.memory.agent_id != tenant.agent_id or row.memory.user_id != tenant.user_id:
            return None
        return row

    async def _get_row(self, tenant: Tenant, memory_id: str) -> Row:
        row = self._cache_get(memory_id)
        if row is None:
            row = await self._run(self.repo.get, tenant, memory_id)
            if row is not None:
                self._cache_put(row)
        owned = self._owned(tenant, row)
        if owned is None:
            raise NotFound(f"memory {memory_id} not found")
        return owned

    async def get(self, tenant: Tenant, memory_id: str, *, with_embedding: bool = False) -> Memory:
        try:
            row = await self._get_row(tenant, memory_id)
            memory = row.memory
            if with_embedding:
                emb = await self._run(self.repo.embedding, row.key)
                memory = msgspec.structs.replace(memory, embedding=[float(x) for x in emb])
        except Exception:
            self.observer.operation("get", False)
            raise
        self.observer.operation("get", True)
        return memory

    def _update(self, tenant: Tenant, memory_id: str, patch: MemoryPatch) -> Row:
        content = self._check_content(patch.content) if patch.content is not None else None
        importance = self._check_importance(patch.importance) if patch.importance is not None else None
        metadata = self._check_metadata(patch.metadata) if patch.metadata is not None else None
        emb = self._check_embedding(patch.embedding) if patch.embedding is not None else None
        if emb is None and content is not None:
            emb = self.embedder.embed(content)
        with self._apply_lock:
            row = self.repo.update(
                tenant, memory_id, content=content, embedding=emb, importance=importance, metadata=metadata
            )
            if row is not None and emb is not None:
                if self._live:
                    self.vectors.add(tenant, [row.key], emb[None, :])
                self._writes_since_cut += 1
        if row is None:
            raise NotFound(f"memory {memory_id} not found")
        self._cache_put(row)
        return row

    async def update(self, tenant: Tenant, memory_id: str, patch: MemoryPatch) -> Memory:
        try:
            row = await self._run(self._update, tenant, memory_id, patch)
        except Exception:
            self.observer.operation("update", False)
            raise
        self.observer.operation("update", True)
        return row.memory

    def _delete(self, tenant: Tenant, memory_id: str) -> None:
        with self._apply_lock:
            key = self.repo.delete(tenant, memory_id)
            if key is not None:
                if self._live:
                    self.vectors.remove(tenant, key)
                self._writes_since_cut += 1
        if key is None:
            raise NotFound(f"memory {memory_id} not found")
        self._cache_drop(memory_id)
        self._count(tenant.agent_id, -1)

    async def delete(self, tenant: Tenant, memory_id: str) -> None:
        try:
            await self._run(self._delete, tenant, memory_id)
        except Exception:
            self.observer.operation("delete", False)
            raise
        self.observer.operation("delete", True)

    async def list_memories(
        self,
        tenant: Tenant,
        *,
        sort: str = "recent",
        limit: int = 50,
        offset: int = 0,
        min_importance: float | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> list[Memory]:
        try:
            if sort not in SORT_KEYS:
                raise InvalidInput(f"unknown sort key {sort!r}; use one of: {', '.join(sorted(SORT_KEYS))}")
            if not 1 <= limit <= 1000 or offset < 0:
                raise InvalidInput("limit must be 1-1000 and offset >= 0")
            if min_importance is not None:
                self._check_importance(min_importance)
            rows = await self._run(
                lambda: self.repo.list_memories(
                    tenant, sort=sort, limit=limit, offset=offset, min_importance=min_importance,
                    created_after=created_after, created_before=created_before,
                )
            )
        except Exception:
            self.observer.operation("list", False)
            raise
        self.observer.operation("list", True)
        return [r.memory for r in rows]

    # -- semantic search --------------------------------------------------------------------

    def _search(
        self, tenant: Tenant, query: str | None, embedding: Sequence[float] | None, k: int,
        min_importance: float | None,
    ) -> list[SearchHit]:
        if embedding is not None:
            vec = self._check_embedding(embedding)
        elif query is not None and query.strip():
            vec = self.embedder.embed(query)
        else:
            raise InvalidInput("give a non-empty query or an embedding")
        fetch = k if min_importance is None else min(4 * k, k + 200)
        keys, scores = self.vectors.search(tenant, vec, fetch)
        rows = self.repo.get_many(tenant, keys)
        hits = []
        for key, score in zip(keys, scores, strict=True):
            row = rows.get(key)
            if row is None or (min_importance is not None and row.memory.importance < min_importance):
                continue
            hits.append(SearchHit(memory=row.memory, score=round(score, 6)))
            if len(hits) == k:
                break
        return hits

    async def search(
        self,
        tenant: Tenant,
        query: str | None = None,
        *,
        embedding: Sequence[float] | None = None,
        k: int = 10,
        min_importance: float | None = None,
    ) -> list[SearchHit]:
        try:
            if not 1 <= k <= self.config.max_search_k:
                raise InvalidInput(f"k must be between 1 and {self.config.max_search_k}")
            if not self._ready.is_set() or self._recovery_error is not None:
                await self.wait_ready()  # recovery takes about a second: answer then, from a consistent index
            hits = await self._run(self._search, tenant, query, embedding, k, min_importance)
        except Exception:
            self.observer.operation("search", False)
            raise
        self.observer.operation("search", True)
        return hits

    # -- graph ------------------------------------------------------------------------------

    async def relate(
        self, tenant: Tenant, source_id: str, target_id: str, rel_type: str, weight: float = 1.0
    ) -> Relation:
        try:
            if not _REL_TYPE.fullmatch(rel_type or ""):
                raise InvalidInput("relation type must be 1-64 characters: lower-case letters, digits, _")
            if not math.isfinite(weight):
                raise InvalidInput("weight must be a finite number")
            if source_id == target_id:
                raise InvalidInput("a memory cannot be related to itself")
            ok = await self._run(self.repo.relate, tenant, source_id, target_id, rel_type, weight)
            if not ok:
                raise NotFound("source or target memory not found")
        except Exception:
            self.observer.operation("relate", False)
            raise
        self.observer.operation("relate", True)
        return Relation(source_id=source_id, target_id=target_id, type=rel_type, weight=weight)

    def _traverse(
        self, tenant: Tenant, start: Row, depth: int, max_nodes: int, direction: str, types: Sequence[str] | None
    ) -> Traversal:
        level: dict[int, int] = {start.key: 0}
        frontier = [start.key]
        edges: list[tuple[int, int, str, float]] = []
        truncated = False
        reached = 0
        for d in range(1, depth + 1):
            if not frontier:
                break
            nxt: list[int] = []
            for src, dst, rel_type, weight in self.repo.neighbours(frontier, direction=direction, types=types):
                if dst not in level:
                    if len(level) >= max_nodes:
                        truncated = True
                        continue
                    level[dst] = d
                    nxt.append(dst)
                    reached = d
                edges.append((src, dst, rel_type, weight))
            frontier = nxt
        # Fetch through the tenant filter: a node of another tenant can never be returned.
        rows = self.repo.get_many(tenant, list(level))
        nodes = sorted((k for k in level if k in rows), key=lambda k: (level[k], k))
        seen: set[tuple[int, int, str]] = set()
        rels: list[Relation] = []
        for src, dst, rel_type, weight in edges:
            if src in rows and dst in rows and (src, dst, rel_type) not in seen:
                seen.add((src, dst, rel_type))
                rels.append(Relation(source_id=rows[src].memory.id, target_id=rows[dst].memory.id,
                                     type=rel_type, weight=weight))
        return Traversal(start_id=start.memory.id, nodes=[rows[k].memory for k in nodes], edges=rels,
                         depth_reached=reached, truncated=truncated)

    async def traverse(
        self,
        tenant: Tenant,
        start_id: str,
        *,
        depth: int = 2,
        max_nodes: int = 100,
        direction: str = "out",
        types: Sequence[str] | None = None,
    ) -> Traversal:
        try:
            if not 1 <= depth <= 5:
                raise InvalidInput("depth must be between 1 and 5")
            if not 1 <= max_nodes <= 1000:
                raise InvalidInput("max_nodes must be between 1 and 1000")
            if direction not in DIRECTIONS:
                raise InvalidInput(f"direction must be one of: {', '.join(DIRECTIONS)}")
            start = await self._get_row(tenant, start_id)
            result = await self._run(self._traverse, tenant, start, depth, max_nodes, direction, types)
        except Exception:
            self.observer.operation("traverse", False)
            raise
        self.observer.operation("traverse", True)
        return result

    # -- optional LLM enrichment ------------------------------------------------------------

    def _after_write(self, tenant: Tenant, memory: Memory) -> None:
        if self._llm is None:
            return
        task = asyncio.get_running_loop().create_task(self._enrich(tenant, memory))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _enrich(self, tenant: Tenant, memory: Memory) -> None:
        """Attach extracted facts to a stored memory; a failure leaves the memory as written."""
        assert self._llm is not None
        try:
            facts = await asyncio.wait_for(self._llm.extract(memory.content), self.config.llm_timeout)
        except (TimeoutError, LlmError):
            self.observer.error("llm")
            return
        try:
            current = await self._get_row(tenant, memory.id)
            metadata = {**current.memory.metadata, "facts": facts}
            await self._run(self._update, tenant, memory.id, MemoryPatch(metadata=metadata))
        except NotFound:
            pass  # deleted while the model was thinking

    async def wait_background(self) -> None:
        """Wait for pending enrichment (tests and clean shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # -- introspection ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "memories_total": self.memories_total,
            "agents_total": self.agents_total,
            "vectors": len(self.vectors),
            "index": {"status": self.status, "backlog": self.vectors.backlog(), "recovery": self.recovery,
                      "last_checkpoint": self.last_checkpoint},
            "cache": {"size": self.cache_len(), "hits": self.cache_stats.hits, "misses": self.cache_stats.misses},
            "db": {"active": self.pool.active, "max": self.pool.max_size, "path": self.pool.path},
            "dim": self.dim,
            "embedder": self.embedder.name,
        }

    async def integrity_check(self) -> str:
        return await self._run(self.repo.integrity_check)
