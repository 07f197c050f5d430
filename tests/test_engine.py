"""The engine in process: tenancy, validation, batches, restart consistency and recall."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from agentmem.engine import EngineConfig, MemoryEngine
from agentmem.errors import InvalidInput, NotFound
from agentmem.models import MemoryPatch, NewMemory, Tenant
from agentmem.workload.corpus import Corpus

T = TypeVar("T")
A = Tenant("agent-a", "user-1")
B = Tenant("agent-b", "user-1")
A2 = Tenant("agent-a", "user-2")


def run(fn: Callable[[MemoryEngine], Awaitable[T]], db: Path, **cfg: Any) -> T:
    async def main() -> T:
        engine = await MemoryEngine.open(EngineConfig(db_path=str(db), **cfg))
        try:
            return await fn(engine)
        finally:
            await engine.close()

    return asyncio.run(main())


def test_tenants_never_see_each_other(tmp_path: Path) -> None:
    async def scenario(e: MemoryEngine) -> None:
        mine = await e.create(A, NewMemory(content="alice likes espresso"))
        other = await e.create(A, NewMemory(content="alice flight to lisbon"))
        await e.relate(A, mine.id, other.id, "related_to")
        for tenant in (B, A2):  # another agent, and the same agent's other user
            with pytest.raises(NotFound):
                await e.get(tenant, mine.id)
            with pytest.raises(NotFound):
                await e.update(tenant, mine.id, MemoryPatch(content="hijacked"))
            with pytest.raises(NotFound):
                await e.delete(tenant, mine.id)
            with pytest.raises(NotFound):
                await e.traverse(tenant, mine.id)
            with pytest.raises(NotFound):
                await e.relate(tenant, mine.id, other.id, "related_to")
            assert await e.search(tenant, "espresso") == []
            assert await e.list_memories(tenant) == []
        # B's own memory may not be linked to A's.
        theirs = await e.create(B, NewMemory(content="bob likes espresso too"))
        with pytest.raises(NotFound):
            await e.relate(B, theirs.id, mine.id, "related_to")
        assert [h.memory.id for h in await e.search(B, "espresso")] == [theirs.id]
        assert (await e.get(A, mine.id)).content == "alice likes espresso"
        # Not found for a stranger and not found for a missing id read the same.
        with pytest.raises(NotFound) as missing:
            await e.get(A, "0" * 32)
        with pytest.raises(NotFound) as foreign:
            await e.get(B, mine.id)
        assert str(missing.value).replace("0" * 32, "X") == str(foreign.value).replace(mine.id, "X")

    run(scenario, tmp_path / "t.db")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (NewMemory(content=""), "empty"),
        (NewMemory(content="   "), "empty"),
        (NewMemory(content="x", embedding=[0.1] * 3), "dimensions"),
        (NewMemory(content="x", embedding=[float("nan")] * 256), "NaN"),
        (NewMemory(content="x", embedding=[float("inf")] + [0.0] * 255), "NaN or infinite"),
        (NewMemory(content="x", importance=1.5), "importance"),
        (NewMemory(content="x", importance=float("nan")), "importance"),
    ],
)
def test_bad_input_is_refused(tmp_path: Path, item: NewMemory, message: str) -> None:
    async def scenario(e: MemoryEngine) -> None:
        with pytest.raises(InvalidInput, match=message):
            await e.create(A, item)
        assert e.memories_total == 0

    run(scenario, tmp_path / "v.db")


def test_unknown_sort_key_and_bad_tenant(tmp_path: Path) -> None:
    async def scenario(e: MemoryEngine) -> None:
        with pytest.raises(InvalidInput, match="sort key"):
            await e.list_memories(A, sort="content; DROP TABLE memories")
        with pytest.raises(InvalidInput):
            MemoryEngine.tenant("agent/../x", "u")

    run(scenario, tmp_path / "s.db")


def test_batch_with_one_bad_item_stores_nothing(tmp_path: Path) -> None:
    async def scenario(e: MemoryEngine) -> None:
        items = [NewMemory(content=f"note {i}") for i in range(50)]
        items[37] = NewMemory(content="bad", embedding=[1.0, 2.0])
        with pytest.raises(InvalidInput, match="item 37"):
            await e.create_batch(A, items)
        assert await e.list_memories(A) == []
        stored = await e.create_batch(A, items[:37])
        assert len(stored) == 37 and e.memories_total == 37

    run(scenario, tmp_path / "b.db")


def test_list_orders_and_uses_the_indexes(tmp_path: Path) -> None:
    async def scenario(e: MemoryEngine) -> None:
        for imp in (0.2, 0.9, 0.5):
            await e.create(A, NewMemory(content=f"importance {imp}", importance=imp))
        by_imp = await e.list_memories(A, sort="importance")
        assert [m.importance for m in by_imp] == [0.9, 0.5, 0.2]
        recent = await e.list_memories(A, sort="recent")
        assert [m.importance for m in recent] == [0.5, 0.9, 0.2]
        assert [m.importance for m in await e.list_memories(A, min_importance=0.4)] == [0.5, 0.9]
        for sort in ("recent", "importance"):
            plan = " ".join(e.repo.explain_list(A, sort))
            assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, plan

    run(scenario, tmp_path / "l.db")


def test_graph_traversal_limits(tmp_path: Path) -> None:
    async def scenario(e: MemoryEngine) -> None:
        ms = await e.create_batch(A, [NewMemory(content=f"node {i}") for i in range(300)])
        # A complete ternary tree: node i -> 3i+1, 3i+2, 3i+3.
        for i in range(100):
            for c in (3 * i + 1, 3 * i + 2, 3 * i + 3):
                if c < len(ms):
                    await e.relate(A, ms[i].id, ms[c].id, "follows")
        r1 = await e.traverse(A, ms[0].id, depth=1)
        assert len(r1.nodes) == 4 and r1.depth_reached == 1 and not r1.truncated
        r3 = await e.traverse(A, ms[0].id, depth=3)
        assert len(r3.nodes) == 1 + 3 + 9 + 27
        capped = await e.traverse(A, ms[0].id, depth=5, max_nodes=100)
        assert len(capped.nodes) == 100 and capped.truncated
        back = await e.traverse(A, ms[40].id, depth=2, direction="in")
        assert {n.id for n in back.nodes} == {ms[40].id, ms[13].id, ms[4].id}
        assert await e.traverse(A, ms[0].id, depth=2, types=["contradicts"]) is not None
        assert len((await e.traverse(A, ms[0].id, depth=2, types=["contradicts"])).nodes) == 1

    run(scenario, tmp_path / "g.db")


def _check_index_matches_db(e: MemoryEngine, probes: list[str]) -> None:
    for tenant in e.vectors.tenants():
        with e.pool.connection() as conn:
            rows = conn.execute("SELECT key, embedding FROM memories WHERE agent_id = ? AND user_id = ?",
                                tenant).fetchall()
        assert e.vectors.partition(tenant).keys() == {r[0] for r in rows}
        mat = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        keys = [r[0] for r in rows]
        for text in probes:
            q = e.embedder.embed(text)
            exact = keys[int(np.argmax(mat @ q))]
            got, _ = e.vectors.search(tenant, q, 1)
            assert got == [exact]


@pytest.mark.parametrize("clean_stop", [True, False])
def test_vector_index_consistent_across_restart(tmp_path: Path, clean_stop: bool) -> None:
    """Create, update and delete across the HNSW threshold, stop (cleanly or not), reopen, compare."""
    db = tmp_path / "r.db"
    corpus = Corpus(3)
    cfg: dict[str, Any] = {"hnsw_threshold": 300}
    probes = ["the user prefers green tea", "marathon training plan", "tokyo hotel booking"]

    async def first(e: MemoryEngine) -> list[str]:
        ms = await e.create_batch(A, [NewMemory(content=m.content) for m in corpus.memories(600)])
        await e.create_batch(B, [NewMemory(content=m.content) for m in corpus.memories(50)])
        e.vectors.flush()
        assert e.vectors.partition(A).hnsw is not None and e.vectors.partition(B).hnsw is None
        await e.update(A, ms[0].id, MemoryPatch(content="the user prefers green tea every day"))
        for m in ms[1:40]:
            await e.delete(A, m.id)
        e.vectors.flush()
        _check_index_matches_db(e, probes)
        return [m.id for m in ms]

    ids = run(first, db, **cfg)

    async def after_crash_edits(e: MemoryEngine) -> None:
        # Edits made after the last save, then a "crash": the engine is dropped without close().
        await e.update(A, ids[50], MemoryPatch(content="marathon training plan for october"))
        await e.delete(A, ids[51])
        await e.create(A, NewMemory(content="tokyo hotel booking confirmed"))

    if clean_stop:
        run(after_crash_edits, db, **cfg)
    else:
        async def crash() -> None:
            e = await MemoryEngine.open(EngineConfig(db_path=str(db), **cfg))
            await after_crash_edits(e)
            e.pool.close()  # no save of the vector index

        asyncio.run(crash())

    async def reopened(e: MemoryEngine) -> None:
        e.vectors.flush()
        _check_index_matches_db(e, probes)
        hits = await e.search(A, "marathon training plan for october", k=1)
        assert hits[0].memory.id == ids[50]
        with pytest.raises(NotFound):
            await e.get(A, ids[51])
        assert e.memories_total == 600 + 50 - 39 - 1 + 1

    run(reopened, db, **cfg)


C = Tenant("agent-c", "user-1")
CKPT: dict[str, Any] = {"hnsw_threshold": 300, "checkpoint_rows": 0}  # checkpoints only when asked


def _crash(e: MemoryEngine) -> None:
    """Drop the engine as a SIGKILL would: no checkpoint, no close."""
    e._stop.set()
    e.pool.close()


async def _store_with_checkpoint_and_tail(e: MemoryEngine) -> dict[str, Any]:
    """A checkpoint, then updates, deletions (the largest key too) and inserts after it."""
    corpus = Corpus(5)
    a = await e.create_batch(A, [NewMemory(content=m.content) for m in corpus.memories(600)])  # HNSW graph
    b = await e.create_batch(B, [NewMemory(content=m.content) for m in corpus.memories(40)])  # exact only
    await e.create_batch(C, [NewMemory(content=m.content) for m in corpus.memories(30)])
    e.vectors.flush()
    await e.update(A, a[3].id, MemoryPatch(content="buffered before the checkpoint: green tea"))
    info = e.checkpoint()
    assert info["graphs_written"] == info["with_graph"] == 1
    await e.update(A, a[0].id, MemoryPatch(content="the user prefers green tea every day"))
    await e.update(B, b[0].id, MemoryPatch(content="marathon training plan for october"))
    for m in a[1:3] + b[1:3]:
        await e.delete(A if m in a else B, m.id)
    last = (await e.create_batch(C, [NewMemory(content="tokyo hotel booking, soon deleted")]))[0]
    last_key = e.repo.get(C, last.id).key  # type: ignore[union-attr]
    await e.delete(C, last.id)  # the largest key: it must not be handed out again
    new = await e.create(A, NewMemory(content="tokyo hotel booking confirmed"))
    assert e.repo.get(A, new.id).key > last_key  # type: ignore[union-attr]
    return {"a": [m.id for m in a], "b": [m.id for m in b], "deleted_last": last.id, "new": new.id}


def test_recovery_loads_the_checkpoint_and_replays_only_the_tail(tmp_path: Path) -> None:
    db = tmp_path / "ck.db"
    probes = ["the user prefers green tea", "marathon training plan", "tokyo hotel booking"]

    async def crash() -> dict[str, Any]:
        e = await MemoryEngine.open(EngineConfig(db_path=str(db), **CKPT))
        out = await _store_with_checkpoint_and_tail(e)
        e.vectors.flush()
        _crash(e)
        return out

    made = asyncio.run(crash())

    async def reopened(e: MemoryEngine) -> None:
        rec = e.recovery
        assert rec["checkpoint"] is not None and "reconciled" not in rec, rec
        # Only the tail: 7 logged changes (2 updates, 5 deletions), the 2 updated rows read back, and
        # the 1 row inserted since that still exists. (The update buffered at the checkpoint is in it.)
        assert rec["replayed"] == 7 + 2 + 1, rec
        e.vectors.flush()
        _check_index_matches_db(e, probes)
        hits = await e.search(A, "the user prefers green tea every day", k=1)
        assert hits[0].memory.id == made["a"][0]
        hits = await e.search(B, "marathon training plan for october", k=1)
        assert hits[0].memory.id == made["b"][0]
        assert (await e.search(A, "tokyo hotel booking confirmed", k=1))[0].memory.id == made["new"]
        with pytest.raises(NotFound):
            await e.get(C, made["deleted_last"])

    run(reopened, db, **CKPT)


def test_background_recovery_serves_writes_and_answers_searches_once_consistent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "bg.db"

    async def crash() -> dict[str, Any]:
        e = await MemoryEngine.open(EngineConfig(db_path=str(db), **CKPT))
        out = await _store_with_checkpoint_and_tail(e)
        _crash(e)
        return out

    made = asyncio.run(crash())
    gate = threading.Event()
    recover = MemoryEngine._recover

    def held(self: MemoryEngine) -> None:
        gate.wait(30)
        recover(self)

    monkeypatch.setattr(MemoryEngine, "_recover", held)

    async def scenario(e: MemoryEngine) -> None:
        assert e.status == "recovering" and not e.ready
        # Writes during recovery go to the database; recovery replays them into the index.
        early = await e.create(A, NewMemory(content="written while recovering: espresso at noon"))
        await e.update(A, made["a"][5], MemoryPatch(content="updated while recovering: sourdough recipe"))
        await e.delete(A, made["a"][6])
        assert (await e.get(A, early.id)).content.startswith("written while")
        search = asyncio.ensure_future(e.search(A, "written while recovering: espresso at noon", k=1))
        await asyncio.sleep(0.05)
        assert not search.done()  # searches wait for a consistent index
        gate.set()
        assert (await search)[0].memory.id == early.id
        assert e.status == "ok"
        assert (await e.search(A, "updated while recovering: sourdough recipe", k=1))[0].memory.id == made["a"][5]
        e.vectors.flush()
        _check_index_matches_db(e, ["espresso", "sourdough recipe", "the user prefers green tea"])

    run(scenario, db, background_recovery=True, **CKPT)


def test_damaged_or_outdated_checkpoint_is_rebuilt_from_the_database(tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "dmg.db"
    folder = Path(str(db) + ".vectors")
    probes = ["the user prefers green tea", "tokyo hotel booking"]

    async def build() -> None:
        e = await MemoryEngine.open(EngineConfig(db_path=str(db), **CKPT))
        await _store_with_checkpoint_and_tail(e)
        shutil.copytree(folder, tmp_path / "older")
        await e.delete(A, (await e.list_memories(A, limit=1))[0].id)
        e.checkpoint()  # forgets the log before its cut: the older checkpoint can no longer be caught up
        _crash(e)

    asyncio.run(build())
    graphs = list(folder.glob("*.usearch"))
    assert len(graphs) == 1
    graphs[0].write_bytes(graphs[0].read_bytes()[:1000])  # a torn graph file

    async def damaged() -> None:
        e = await MemoryEngine.open(EngineConfig(db_path=str(db), **CKPT))
        assert e.recovery["checkpoint"]["failed_partitions"] == 1
        e.vectors.flush()
        _check_index_matches_db(e, probes)
        _crash(e)  # no checkpoint over the files of the next case

    asyncio.run(damaged())
    shutil.rmtree(folder)
    shutil.copytree(tmp_path / "older", folder)

    async def outdated(e: MemoryEngine) -> None:
        assert e.recovery["checkpoint"] is None and "reconciled" in e.recovery
        e.vectors.flush()
        _check_index_matches_db(e, probes)

    run(outdated, db, **CKPT)


@pytest.mark.slow  # builds an index of several thousand memories: 3 s alone, 10 s on a busy machine
def test_recall_at_10_for_large_and_one_percent_tenants(tmp_path: Path) -> None:
    """HNSW (large tenant) and exact (1 % tenant) search both reach recall@10 >= 0.95."""
    corpus = Corpus(11)

    async def scenario(e: MemoryEngine) -> dict[Tenant, float]:
        await e.create_batch(A, [NewMemory(content=m.content) for m in corpus.memories(1000)])
        for _ in range(8):
            await e.create_batch(Tenant("agent-big", "user-1"),
                                 [NewMemory(content=m.content) for m in corpus.memories(1000)])
        await e.create_batch(B, [NewMemory(content=m.content) for m in corpus.memories(90)])  # 1 % of 9090
        e.vectors.flush()
        assert e.vectors.partition(Tenant("agent-big", "user-1")).hnsw is not None
        out = {}
        for tenant in (Tenant("agent-big", "user-1"), B):
            with e.pool.connection() as conn:
                rows = conn.execute("SELECT key, embedding FROM memories WHERE agent_id = ? AND user_id = ?",
                                    tenant).fetchall()
            keys = np.array([r[0] for r in rows])
            mat = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            total = 0.0
            for _ in range(100):
                q = e.embedder.embed(corpus.query())
                scores = mat @ q
                kth = np.sort(scores)[-10]
                got, _ = e.vectors.search(tenant, q, 10)
                score = dict(zip(keys.tolist(), scores.tolist(), strict=True))
                total += sum(1 for k in got if score[k] >= kth - 1e-6) / 10
            out[tenant] = total / 100
        return out

    recall = run(scenario, tmp_path / "rc.db", hnsw_threshold=2000)
    assert all(r >= 0.95 for r in recall.values()), recall


def test_dimension_is_fixed_per_database(tmp_path: Path) -> None:
    from agentmem.errors import IncompatibleDatabase

    run(lambda e: e.create(A, NewMemory(content="x")), tmp_path / "d.db")
    with pytest.raises(IncompatibleDatabase, match="256-dimensional"):
        run(lambda e: e.get(A, "x"), tmp_path / "d.db", dim=128)
