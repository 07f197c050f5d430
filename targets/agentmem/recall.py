"""Recall of semantic search against exact (brute-force) search, for benchmarks and tests."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .engine import MemoryEngine
from .models import Tenant


def recall_at_k(engine: MemoryEngine, tenant: Tenant, queries: Iterable[str], k: int = 10) -> float:
    """Share of the exact top-k that the engine's index returns, averaged over ``queries``.

    Memories tied with the exact k-th score are interchangeable, so any of them counts as a hit:
    short texts often share a score, and an index is not wrong to return either.
    """
    with engine.pool.connection() as conn:
        rows = conn.execute("SELECT key, embedding FROM memories WHERE agent_id = ? AND user_id = ?",
                            tenant).fetchall()
    if not rows:
        return 0.0
    keys = [r[0] for r in rows]
    mat = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    k = min(k, len(keys))
    total, n = 0.0, 0
    for text in queries:
        q = engine.embedder.embed(text)
        scores = mat @ q
        kth = float(np.sort(scores)[-k])
        score_of = dict(zip(keys, scores.tolist(), strict=True))
        got, _ = engine.vectors.search(tenant, q, k)
        total += sum(1 for key in got if score_of.get(key, -9.0) >= kth - 1e-6) / k
        n += 1
    return total / n if n else 0.0
