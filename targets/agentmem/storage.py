"""SQLite storage: schema, a bounded connection pool and the memory/relation repository.

SQLite runs in WAL mode so readers never block the single writer. Every statement is
parameterised; the only SQL fragments chosen at run time come from allow-lists.

The vector index is a cache of the ``embedding`` column, checkpointed to files now and then. To
bring a checkpoint up to date after a crash, the engine replays only what changed since it:
keys are handed out in increasing order and never reused (``vector_marks.max_deleted_key``), so
inserts since a checkpoint are the keys above its high-water mark; updates of an embedding and
deletions are logged by triggers in ``vector_log`` (whatever issues them), with the tenant the
row had, under an AUTOINCREMENT sequence that never goes back.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from .errors import IncompatibleDatabase, InvalidInput, PoolTimeout
from .models import Memory, Tenant

# 2: vector_log, vector_marks and their triggers; keys are never reused. An engine of schema 1 would
# reuse keys and not know the log is there, so it must not open a database of schema 2.
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memories (
    key         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    agent_id    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    content     TEXT NOT NULL,
    embedding   BLOB NOT NULL,
    importance  REAL NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    metadata    TEXT NOT NULL DEFAULT '{}'
);
-- The guide's three indexes, with the tenant columns leading so that every tenant-scoped list
-- is an index range scan rather than a sort.
CREATE INDEX IF NOT EXISTS idx_memories_tenant ON memories (agent_id, user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_memories_tenant_importance
    ON memories (agent_id, user_id, importance DESC, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_memories_created ON memories (created_at DESC);
CREATE INDEX IF NOT EXISTS idx_memories_importance ON memories (importance DESC);
CREATE TABLE IF NOT EXISTS relations (
    src_key    INTEGER NOT NULL REFERENCES memories (key) ON DELETE CASCADE,
    dst_key    INTEGER NOT NULL REFERENCES memories (key) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    weight     REAL NOT NULL DEFAULT 1.0,
    created_at REAL NOT NULL,
    PRIMARY KEY (src_key, type, dst_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_relations_dst ON relations (dst_key);
-- Changes to memories' vectors other than inserts, for replaying a vector-index checkpoint's tail.
CREATE TABLE IF NOT EXISTS vector_log (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    key      INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    user_id  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vector_marks (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS memories_vector_update AFTER UPDATE OF embedding, agent_id, user_id ON memories
BEGIN
    INSERT INTO vector_log (key, agent_id, user_id) VALUES (OLD.key, OLD.agent_id, OLD.user_id);
END;
CREATE TRIGGER IF NOT EXISTS memories_vector_delete AFTER DELETE ON memories
BEGIN
    INSERT INTO vector_log (key, agent_id, user_id) VALUES (OLD.key, OLD.agent_id, OLD.user_id);
    INSERT INTO vector_marks (name, value) VALUES ('max_deleted_key', OLD.key)
        ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value);
END;
"""

# The last key handed out: the largest live key, or a larger one that was deleted (never reused).
_LAST_KEY_EXPR = (
    "MAX(COALESCE((SELECT MAX(key) FROM memories), 0),"
    " COALESCE((SELECT value FROM vector_marks WHERE name = 'max_deleted_key'), 0))"
)
_LAST_KEY = f"SELECT {_LAST_KEY_EXPR}"
# The last sequence number the log handed out, even when the log has since been truncated.
_LAST_SEQ_EXPR = "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'vector_log'), 0)"

# Sort keys a caller may ask for, mapped to the ORDER BY that the tenant indexes serve.
SORT_KEYS: dict[str, str] = {
    # Every index ends in the rowid (key), so "key" as the last sort term costs no sort.
    "recent": "created_at DESC, key",
    "created_at": "created_at DESC, key",
    "importance": "importance DESC, created_at DESC, key",
}

_COLUMNS = "key, id, agent_id, user_id, content, importance, created_at, updated_at, metadata"

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode


@dataclass(frozen=True)
class Row:
    """A memory row plus its internal integer key (the vector index label)."""

    key: int
    memory: Memory


def _row(r: tuple[Any, ...]) -> Row:
    return Row(
        key=r[0],
        memory=Memory(
            id=r[1],
            agent_id=r[2],
            user_id=r[3],
            content=r[4],
            importance=r[5],
            created_at=r[6],
            updated_at=r[7],
            metadata=_json_decode(r[8]),
        ),
    )


class ConnectionPool:
    """A bounded pool of SQLite connections with one writer at a time.

    ``size`` connections are kept open; up to ``max_size`` exist under load; a caller that finds
    none free waits ``timeout`` seconds and then gets :class:`PoolTimeout`.
    """

    def __init__(self, path: str, size: int = 20, max_size: int = 100, timeout: float = 30.0) -> None:
        self.path = path
        self.size = size
        self.max_size = max_size
        self.timeout = timeout
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._count = 0
        self._active = 0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_size)
        self._write_lock = threading.Lock()
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=self.timeout)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against a process crash in WAL mode; only power loss can drop
        # the last commits, never corrupt the file.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-32000")
        conn.execute("PRAGMA mmap_size=268435456")
        return conn

    @property
    def active(self) -> int:
        return self._active

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise RuntimeError("connection pool is closed")
        if not self._slots.acquire(timeout=self.timeout):
            raise PoolTimeout(f"no database connection free after {self.timeout:.0f} s")
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
                with self._lock:
                    self._count += 1
            with self._lock:
                self._active += 1
            try:
                yield conn
            finally:
                with self._lock:
                    self._active -= 1
                if conn.in_transaction:
                    conn.rollback()
                if self._idle.qsize() < self.size and not self._closed:
                    self._idle.put(conn)
                else:
                    conn.close()
                    with self._lock:
                        self._count -= 1
        finally:
            self._slots.release()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: serialised in-process, all-or-nothing on disk."""
        with self._write_lock, self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break


@dataclass(frozen=True)
class Cut:
    """A point in the database's history of vectors: the last logged change and the last key."""

    seq: int
    key: int


VectorRow = tuple[str, str, int, bytes]
"""(agent_id, user_id, key, embedding bytes) of one memory."""


@dataclass(frozen=True)
class NewRow:
    agent_id: str
    user_id: str
    content: str
    embedding: np.ndarray[Any, Any]
    importance: float
    metadata: dict[str, Any]


class MemoryRepository:
    """All SQL of the engine. Methods are synchronous; the engine runs them off the event loop."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    # -- schema -----------------------------------------------------------------------------

    def migrate(self, dim: int, embedder: str) -> str:
        """Create the schema, check the embedding dimension; returns the database's instance id."""
        with self.pool.connection() as conn:
            conn.executescript(SCHEMA)  # idempotent: every statement is IF NOT EXISTS
        with self.pool.transaction() as conn:
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            if not meta:
                meta = {
                    "schema_version": str(SCHEMA_VERSION),
                    "dim": str(dim),
                    "embedder": embedder,
                    "instance": uuid.uuid4().hex,
                }
                conn.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", meta.items())
            if int(meta["schema_version"]) > SCHEMA_VERSION:
                raise IncompatibleDatabase(
                    f"database schema v{meta['schema_version']} is newer than this engine (v{SCHEMA_VERSION})"
                )
            if int(meta["schema_version"]) < SCHEMA_VERSION:
                # The script above added what schema 2 has and schema 1 lacks; only the number is left.
                conn.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION),))
            if int(meta["dim"]) != dim:
                raise IncompatibleDatabase(
                    f"database holds {meta['dim']}-dimensional embeddings but the embedder makes {dim}; "
                    "use the embedder it was created with or a new --db"
                )
            return str(meta["instance"])

    # -- memories ---------------------------------------------------------------------------

    def insert_many(self, rows: Sequence[NewRow]) -> list[Row]:
        """Insert all rows in one transaction: all of them are stored, or none."""
        now = time.time()
        out: list[Row] = []
        params: list[tuple[Any, ...]] = []
        with self.pool.transaction() as conn:
            # Keys are assigned here rather than by SQLite so the whole batch is one executemany
            # (one C call, one GIL hand-off); BEGIN IMMEDIATE makes us the only writer meanwhile.
            (top,) = conn.execute(_LAST_KEY).fetchone()
            for i, r in enumerate(rows, start=top + 1):
                mid = uuid.uuid4().hex
                params.append((i, mid, r.agent_id, r.user_id, r.content, r.embedding.astype(np.float32).tobytes(),
                               r.importance, now, now, _json_encode(r.metadata).decode()))
                out.append(Row(i, Memory(id=mid, agent_id=r.agent_id, user_id=r.user_id, content=r.content,
                                         importance=r.importance, created_at=now, updated_at=now,
                                         metadata=r.metadata)))
            conn.executemany(
                "INSERT INTO memories (key, id, agent_id, user_id, content, embedding, importance,"
                " created_at, updated_at, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )
        return out

    def get(self, tenant: Tenant, memory_id: str) -> Row | None:
        with self.pool.connection() as conn:
            r = conn.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE id = ? AND +agent_id = ? AND +user_id = ?",
                (memory_id, tenant.agent_id, tenant.user_id),
            ).fetchone()
        return _row(r) if r else None

    def get_many(self, tenant: Tenant, keys: Sequence[int]) -> dict[int, Row]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        with self.pool.connection() as conn:
            rows = conn.execute(
                # Unary + keeps the planner on the primary key: left to itself it range-scans the
                # tenant index, which costs O(tenant size) instead of O(len(keys)).
                f"SELECT {_COLUMNS} FROM memories WHERE key IN ({marks}) AND +agent_id = ? AND +user_id = ?",
                (*keys, tenant.agent_id, tenant.user_id),
            ).fetchall()
        return {r[0]: _row(r) for r in rows}

    def embedding(self, key: int) -> np.ndarray[Any, Any]:
        with self.pool.connection() as conn:
            (blob,) = conn.execute("SELECT embedding FROM memories WHERE key = ?", (key,)).fetchone()
        return np.frombuffer(blob, dtype=np.float32)

    def update(
        self,
        tenant: Tenant,
        memory_id: str,
        *,
        content: str | None,
        embedding: np.ndarray[Any, Any] | None,
        importance: float | None,
        metadata: dict[str, Any] | None,
    ) -> Row | None:
        sets: list[str] = ["updated_at = ?"]
        args: list[Any] = [time.time()]
        if content is not None:
            sets.append("content = ?")
            args.append(content)
        if embedding is not None:
            sets.append("embedding = ?")
            args.append(embedding.astype(np.float32).tobytes())
        if importance is not None:
            sets.append("importance = ?")
            args.append(importance)
        if metadata is not None:
            sets.append("metadata = ?")
            args.append(_json_encode(metadata).decode())
        with self.pool.transaction() as conn:
            cur = conn.execute(
                f"UPDATE memories SET {', '.join(sets)} WHERE id = ? AND +agent_id = ? AND +user_id = ?",
                (*args, memory_id, tenant.agent_id, tenant.user_id),
            )
            if cur.rowcount == 0:
                return None
            r = conn.execute(f"SELECT {_COLUMNS} FROM memories WHERE id = ?", (memory_id,)).fetchone()
        return _row(r)

    def delete(self, tenant: Tenant, memory_id: str) -> int | None:
        with self.pool.transaction() as conn:
            r = conn.execute(
                "DELETE FROM memories WHERE id = ? AND +agent_id = ? AND +user_id = ? RETURNING key",
                (memory_id, tenant.agent_id, tenant.user_id),
            ).fetchone()
        return int(r[0]) if r else None

    def list_memories(
        self,
        tenant: Tenant,
        *,
        sort: str = "recent",
        limit: int = 50,
        offset: int = 0,
        min_importance: float | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> list[Row]:
        order = SORT_KEYS.get(sort)
        if order is None:
            raise InvalidInput(f"unknown sort key {sort!r}; use one of: {', '.join(sorted(SORT_KEYS))}")
        where = ["agent_id = ?", "user_id = ?"]
        args: list[Any] = [tenant.agent_id, tenant.user_id]
        if min_importance is not None:
            where.append("importance >= ?")
            args.append(min_importance)
        if created_after is not None:
            where.append("created_at >= ?")
            args.append(created_after)
        if created_before is not None:
            where.append("created_at < ?")
            args.append(created_before)
        sql = f"SELECT {_COLUMNS} FROM memories WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ? OFFSET ?"
        with self.pool.connection() as conn:
            rows = conn.execute(sql, (*args, limit, offset)).fetchall()
        return [_row(r) for r in rows]

    def explain_list(self, tenant: Tenant, sort: str = "recent") -> list[str]:
        """The query plan of a tenant list, for checking that the indexes are used."""
        order = SORT_KEYS[sort]
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"EXPLAIN QUERY PLAN SELECT {_COLUMNS} FROM memories WHERE agent_id = ? AND user_id = ?"
                f" ORDER BY {order} LIMIT 10",
                tenant,
            ).fetchall()
        return [str(r[-1]) for r in rows]

    # -- relations --------------------------------------------------------------------------

    def relate(self, tenant: Tenant, src_id: str, dst_id: str, rel_type: str, weight: float) -> bool:
        """Link two memories of the same tenant; False when either is not the tenant's."""
        with self.pool.transaction() as conn:
            keys = conn.execute(
                "SELECT id, key FROM memories WHERE id IN (?, ?) AND +agent_id = ? AND +user_id = ?",
                (src_id, dst_id, tenant.agent_id, tenant.user_id),
            ).fetchall()
            by_id = dict(keys)
            if src_id not in by_id or dst_id not in by_id:
                return False
            conn.execute(
                "INSERT INTO relations (src_key, dst_key, type, weight, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (src_key, type, dst_key) DO UPDATE SET weight = excluded.weight",
                (by_id[src_id], by_id[dst_id], rel_type, weight, time.time()),
            )
        return True

    def relate_keys(self, edges: Sequence[tuple[int, int, str, float]]) -> None:
        """Bulk-insert relations between keys already known to share a tenant (loaders, benches)."""
        now = time.time()
        with self.pool.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO relations (src_key, dst_key, type, weight, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(s, d, t, w, now) for s, d, t, w in edges],
            )

    def neighbours(
        self, keys: Sequence[int], *, direction: str, types: Sequence[str] | None
    ) -> list[tuple[int, int, str, float]]:
        """Edges touching ``keys`` as (from, to, type, weight) oriented away from ``keys``."""
        marks = ",".join("?" * len(keys))
        type_sql = ""
        type_args: list[str] = []
        if types:
            type_sql = f" AND type IN ({','.join('?' * len(types))})"
            type_args = list(types)
        out: list[tuple[int, int, str, float]] = []
        with self.pool.connection() as conn:
            if direction in ("out", "both"):
                out += conn.execute(
                    f"SELECT src_key, dst_key, type, weight FROM relations WHERE src_key IN ({marks}){type_sql}",
                    (*keys, *type_args),
                ).fetchall()
            if direction in ("in", "both"):
                out += [
                    (d, s, t, w)
                    for s, d, t, w in conn.execute(
                        f"SELECT src_key, dst_key, type, weight FROM relations"
                        f" WHERE dst_key IN ({marks}){type_sql}",
                        (*keys, *type_args),
                    ).fetchall()
                ]
        return out

    # -- bulk reads for start-up ------------------------------------------------------------

    def tenant_keys(self) -> Iterator[tuple[str, str, int, float]]:
        """(agent_id, user_id, key, updated_at) of every memory, tenant by tenant."""
        with self.pool.connection() as conn:
            yield from conn.execute(
                "SELECT agent_id, user_id, key, updated_at FROM memories ORDER BY agent_id, user_id, key"
            )

    def embeddings(self, keys: Sequence[int]) -> np.ndarray[Any, Any]:
        """Embeddings of ``keys`` in that order, as one (n, dim) float32 matrix."""
        blobs: dict[int, bytes] = {}
        with self.pool.connection() as conn:
            for i in range(0, len(keys), 900):
                chunk = keys[i : i + 900]
                marks = ",".join("?" * len(chunk))
                blobs.update(conn.execute(f"SELECT key, embedding FROM memories WHERE key IN ({marks})", chunk))
        return np.stack([np.frombuffer(blobs[k], dtype=np.float32) for k in keys]) if keys else np.zeros((0, 0))

    def tenant_vectors(self, tenant: Tenant) -> list[VectorRow]:
        """Every vector of one tenant."""
        with self.pool.connection() as conn:
            return conn.execute(
                "SELECT agent_id, user_id, key, embedding FROM memories WHERE agent_id = ? AND user_id = ?",
                tenant,
            ).fetchall()

    # -- the vector index's change history ----------------------------------------------------

    def cut(self) -> Cut:
        """Where the history of vectors stands now."""
        with self.pool.connection() as conn:
            seq, key = conn.execute(f"SELECT {_LAST_SEQ_EXPR}, {_LAST_KEY_EXPR}").fetchone()  # one snapshot
        return Cut(int(seq), int(key))

    def vectors_inserted(self, after: Cut, upto: Cut) -> list[VectorRow]:
        """Rows inserted between two cuts (those still there)."""
        with self.pool.connection() as conn:
            return conn.execute(
                "SELECT agent_id, user_id, key, embedding FROM memories WHERE key > ? AND key <= ? ORDER BY key",
                (after.key, upto.key),
            ).fetchall()

    def vectors_logged(self, after: Cut, upto: Cut) -> list[tuple[int, str, str]]:
        """(key, agent_id, user_id the row had) of every update and deletion between two cuts."""
        with self.pool.connection() as conn:
            return conn.execute(
                "SELECT key, agent_id, user_id FROM vector_log WHERE seq > ? AND seq <= ? ORDER BY seq",
                (after.seq, upto.seq),
            ).fetchall()

    def vectors_of(self, keys: Sequence[int]) -> list[VectorRow]:
        """The rows of those keys that exist, in no particular order."""
        out: list[VectorRow] = []
        with self.pool.connection() as conn:
            for i in range(0, len(keys), 900):
                chunk = keys[i : i + 900]
                marks = ",".join("?" * len(chunk))
                out += conn.execute(
                    f"SELECT agent_id, user_id, key, embedding FROM memories WHERE key IN ({marks})", chunk
                ).fetchall()
        return out

    def log_truncated_at(self) -> int:
        """The log holds every change after this sequence number (0: every change ever logged)."""
        with self.pool.connection() as conn:
            r = conn.execute("SELECT value FROM vector_marks WHERE name = 'log_truncated_at'").fetchone()
        return int(r[0]) if r else 0

    def truncate_log(self, upto: Cut) -> None:
        """Forget the changes a durable checkpoint holds."""
        with self.pool.transaction() as conn:
            conn.execute("DELETE FROM vector_log WHERE seq <= ?", (upto.seq,))
            conn.execute(
                "INSERT INTO vector_marks (name, value) VALUES ('log_truncated_at', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)",
                (upto.seq,),
            )

    def counts(self) -> tuple[int, dict[str, int]]:
        """Total memories and memories per agent."""
        with self.pool.connection() as conn:
            per_agent = dict(conn.execute("SELECT agent_id, COUNT(*) FROM memories GROUP BY agent_id").fetchall())
        return sum(per_agent.values()), per_agent

    def integrity_check(self) -> str:
        with self.pool.connection() as conn:
            row = conn.execute("PRAGMA integrity_check").fetchone()
        return str(row[0])


def database_path(path: str | Path) -> str:
    """A file path for the database (the pool needs a real file: each connection opens it)."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    return str(p)
