"""The four benchmark suites over the engine (perf-guide §3), and the store they run against.

Suites: ``memory`` (create, get from a warm cache, get past the cache, update, delete, batch of
100), ``graph`` (traversal of up to 100 nodes at depth 1-3), ``database`` (recent, by importance,
filtered lists, all served by indexes), ``vector`` (semantic search top-10 in a small tenant,
exact, and a large one, HNSW).
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agentmem.engine import MemoryEngine
from agentmem.models import MemoryPatch, NewMemory, Tenant
from agentmem.recall import recall_at_k
from agentmem.workload.corpus import Corpus

SUITES: dict[str, tuple[str, ...]] = {
    "memory": ("create", "get", "get_uncached", "update", "delete", "batch_100"),
    "graph": ("traverse_d1", "traverse_d2", "traverse_d3"),
    "database": ("list_recent", "list_importance", "list_filtered"),
    "vector": ("search_small", "search_large"),
}
ALL_OPS = tuple(op for ops in SUITES.values() for op in ops)

# Calls of each operation per round, so that every operation gets a similar share of a worker's time
# (about 1-2 ms per round on the reference machine) instead of the 45 us "get" getting 1/120 of the
# 6 ms "batch_100". The median of a fast, bimodal operation (a cache hit or a miss) from 100 calls
# moved 4-6 % between runs of the same code; more calls of the cheap operations bought most of the
# precision the regression gate needs for the price of about one more batch per round. Fixed numbers,
# not calibrated from timings: the count of calls changes what the engine's caches hold, so two runs
# being compared must make exactly the same calls.
CALLS_PER_ROUND: dict[str, int] = {
    "create": 6, "get": 24, "get_uncached": 12, "update": 16, "delete": 12, "batch_100": 1,
    "traverse_d1": 12, "traverse_d2": 4, "traverse_d3": 2,
    "list_recent": 10, "list_importance": 10, "list_filtered": 10,
    "search_small": 5, "search_large": 3,
}

BIG = Tenant("bench-big", "user-0")
SMALL = Tenant("bench-small", "user-0")
SCRATCH = Tenant("bench-scratch", "user-0")  # memories that "delete" consumes
OTHERS = tuple(Tenant(f"bench-{i}", "user-0") for i in range(8))

FULL_SIZE = 20_000
QUICK_SIZE = 2_000


def suite_ops(suites: list[str], op_filter: str | None) -> tuple[list[str], list[str]]:
    """The suites asked for (all when none) and their operations; one clear error otherwise."""
    from ..errors import UsageError

    chosen = suites or list(SUITES)
    unknown = [s for s in chosen if s not in SUITES]
    if unknown:
        raise UsageError(f"unknown suite {unknown[0]!r}; choose from: {', '.join(SUITES)}")
    ops = [op for s in chosen for op in SUITES[s]]
    if op_filter:
        ops = [op for op in ops if op_filter in op]
    if not ops:
        raise UsageError(f"--filter {op_filter!r} matches no operation of {', '.join(chosen)}")
    return chosen, ops


def hnsw_threshold(size: int) -> int:
    # The large tenant must be past the exact-search threshold at every store size, or "search_large"
    # would measure brute force.
    return max(256, min(4096, int(size * 0.6) // 2))


async def load_store(engine: MemoryEngine, size: int, seed: int) -> None:
    """Write ``size`` memories: 60 % in one tenant, 1 % in another, the rest spread; relate the big one."""
    corpus = Corpus(seed)
    rng = random.Random(seed)
    big, small = int(size * 0.6), max(50, size // 100)
    rest = max(0, size - big - small)
    plan = [(BIG, big), (SMALL, small)] + [(t, rest // len(OTHERS)) for t in OTHERS]
    for tenant, n in plan:
        while n > 0:
            chunk = min(n, 1000)
            await engine.create_batch(tenant, [NewMemory(content=m.content, importance=m.importance,
                                                         metadata={"topic": m.topic})
                                               for m in corpus.memories(chunk)])
            n -= chunk
    with engine.pool.connection() as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM memories WHERE agent_id = ? AND user_id = ?", BIG)]
    edges = [(k, rng.choice(keys), corpus.relation_type(), 1.0) for k in keys for _ in range(4)]
    engine.repo.relate_keys([e for e in edges if e[0] != e[1]])
    engine.vectors.flush()


@dataclass
class BenchState:
    engine: MemoryEngine
    rng: random.Random
    corpus: Corpus
    ids: dict[Tenant, list[str]] = field(default_factory=dict)
    scratch: list[str] = field(default_factory=list)
    cutoff: float = 0.0


async def prepare(engine: MemoryEngine, seed: int, deletes_needed: int) -> BenchState:
    state = BenchState(engine, random.Random(seed), Corpus(seed + 1))
    for tenant in (BIG, SMALL, *OTHERS):
        with engine.pool.connection() as conn:
            state.ids[tenant] = [i for (i,) in conn.execute(
                "SELECT id FROM memories WHERE agent_id = ? AND user_id = ? ORDER BY key", tenant)]
    with engine.pool.connection() as conn:
        # The filtered list asks for the newer half of the big tenant.
        row = conn.execute("SELECT created_at FROM memories WHERE agent_id = ? AND user_id = ?"
                           " ORDER BY created_at LIMIT 1 OFFSET ?", (*BIG, len(state.ids[BIG]) // 2)).fetchone()
    state.cutoff = float(row[0]) if row else time.time()
    # "delete" needs its own victims so that the other operations always find their memories.
    n = deletes_needed
    while n > 0:
        chunk = min(n, 1000)
        made = await engine.create_batch(SCRATCH, [NewMemory(content=m.content) for m in state.corpus.memories(chunk)])
        state.scratch += [m.id for m in made]
        n -= chunk
    return state


Op = Callable[[], Awaitable[object]]


def make_ops(state: BenchState) -> dict[str, Op]:
    e, rng, corpus = state.engine, state.rng, state.corpus
    writable = (BIG, *OTHERS)

    async def create() -> object:
        m = corpus.memory()
        return await e.create(rng.choice(writable), NewMemory(content=m.content, importance=m.importance))

    async def get() -> object:
        t = rng.choice(writable)
        return await e.get(t, rng.choice(state.ids[t]))

    async def get_uncached() -> object:
        # The read path behind the cache (a SQLite lookup by primary key): with the calls a run makes,
        # "get" is soon answered from the cache almost every time.
        t = rng.choice(writable)
        memory_id = rng.choice(state.ids[t])
        e.evict(memory_id)
        return await e.get(t, memory_id)

    async def update() -> object:
        t = rng.choice(writable)
        return await e.update(t, rng.choice(state.ids[t]), MemoryPatch(importance=round(rng.random(), 3)))

    async def delete() -> object:
        await e.delete(SCRATCH, state.scratch.pop())
        return None

    async def batch_100() -> object:
        return await e.create_batch(rng.choice(writable), [NewMemory(content=m.content, importance=m.importance)
                                                           for m in corpus.memories(100)])

    def traverse(depth: int) -> Op:
        async def op() -> object:
            return await e.traverse(BIG, rng.choice(state.ids[BIG]), depth=depth, max_nodes=100)
        return op

    async def list_recent() -> object:
        return await e.list_memories(BIG, sort="recent", limit=20, offset=rng.randint(0, 200))

    async def list_importance() -> object:
        return await e.list_memories(BIG, sort="importance", limit=20, offset=rng.randint(0, 200))

    async def list_filtered() -> object:
        return await e.list_memories(BIG, sort="recent", limit=20, min_importance=0.3, created_after=state.cutoff)

    async def search_small() -> object:
        return await e.search(SMALL, corpus.query(), k=10)

    async def search_large() -> object:
        return await e.search(BIG, corpus.query(), k=10)

    return {
        "create": create, "get": get, "get_uncached": get_uncached, "update": update, "delete": delete,
        "batch_100": batch_100,
        "traverse_d1": traverse(1), "traverse_d2": traverse(2), "traverse_d3": traverse(3),
        "list_recent": list_recent, "list_importance": list_importance, "list_filtered": list_filtered,
        "search_small": search_small, "search_large": search_large,
    }


def recall_at_10(engine: MemoryEngine, tenant: Tenant, corpus: Corpus, queries: int = 100) -> float:
    return recall_at_k(engine, tenant, [corpus.query() for _ in range(queries)], 10)
