"""SIGKILL of a real server in the middle of batch writes: every batch is wholly there or absent."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import start_engine

pytestmark = pytest.mark.slow

BATCH = 1000


def test_sigkill_mid_batch_keeps_batches_atomic(tmp_path: Path) -> None:
    eng = start_engine(tmp_path / "crash.db", tmp_path / "engine.log")
    sent: list[int] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(base_url=eng.url, timeout=30) as c:
            n = 0
            while not stop.is_set():
                tag = worker * 100_000 + n
                items = [{"content": f"crash test batch {tag} item {i} " + "x" * 200, "metadata": {"batch": tag}}
                         for i in range(BATCH)]
                sent.append(tag)
                try:
                    c.post("/v1/agents/crash/users/u/memories/batch", json={"items": items})
                except httpx.HTTPError:
                    return  # the server died under us: exactly the point
                n += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    eng.kill()  # SIGKILL while batches are in flight
    stop.set()
    for t in threads:
        t.join(30)
    assert len(sent) > 3, "no batch was in flight"

    conn = sqlite3.connect(tmp_path / "crash.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    counts = dict(conn.execute(
        "SELECT json_extract(metadata, '$.batch'), COUNT(*) FROM memories GROUP BY 1").fetchall())
    conn.close()
    assert counts, "nothing was committed before the kill"
    assert all(c == BATCH for c in counts.values()), counts
    assert len(counts) < len(sent), "every batch finished: the kill did not land mid-batch"

    # The engine restarts on the same file and serves exactly what was committed.
    again = start_engine(tmp_path / "crash.db", tmp_path / "engine2.log")
    try:
        with httpx.Client(base_url=again.url, timeout=30) as c:
            assert c.get("/health").json()["memories"] == BATCH * len(counts)
            hits = c.post("/v1/agents/crash/users/u/memories/search", json={"query": "crash test batch"}).json()
            assert len(hits["hits"]) == 10
    finally:
        again.stop()
