"""Restart after a SIGKILL with 50k memories written since the last clean stop (issue 12, item 1).

A real server writes 50k memories through the batch endpoint after a clean stop, checkpoints its
index in the background meanwhile (the test waits for one that holds an HNSW graph), takes
updates, deletions and one more batch, and is killed with SIGKILL straight after; then started
again. Its recovery is held at its first step (the
checkpoint's manifest is swapped for a FIFO that the test fills when it is ready), which makes the
"recovering" phase deterministic: the server must listen, answer /health 503 "recovering", serve
reads and writes, and hold searches; once released, /health turns 200 "ok" and the index must be
consistent with the database: every memory retrievable and found by a search for its exact
content, updated ones by their new content only, deleted ones not at all.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from profkit.process import free_port
from tests.helpers import start_engine

pytestmark = pytest.mark.slow

BATCH = 1000
# 50k memories since the clean stop: one large tenant, four that pass the HNSW threshold (4096),
# twenty small ones that stay exact.
TENANTS = [("big", 30_000)] + [(f"mid{i}", 4_500) for i in range(4)] + [(f"small{i}", 100) for i in range(20)]
SAMPLE = 300


def _path(tenant: str) -> str:
    return f"/v1/agents/agent-{tenant}/users/u"


def _content(tenant: str, n: int) -> str:
    topics = ["espresso roast beans", "marathon training pace", "tokyo hotel booking", "sourdough recipe",
              "quarterly roadmap review", "guitar chords practice", "garden compost tomatoes"]
    return f"{tenant} note {n} about {topics[n % len(topics)]} item {n} ref {n * 7 + 3}"


def _write(client: httpx.Client, tenant: str, count: int, start: int = 0) -> dict[str, str]:
    """``count`` memories with unique contents; {id: content}."""
    out: dict[str, str] = {}
    for lo in range(start, start + count, BATCH):
        items = [{"content": _content(tenant, n)} for n in range(lo, min(lo + BATCH, start + count))]
        r = client.post(f"{_path(tenant)}/memories/batch", json={"items": items})
        assert r.status_code == 201, r.text
        out.update({m["id"]: m["content"] for m in r.json()["items"]})
    return out


def _hits(client: httpx.Client, tenant: str, query: str, k: int = 10) -> list[dict[str, Any]]:
    r = client.post(f"{_path(tenant)}/memories/search", json={"query": query, "k": k})
    assert r.status_code == 200, r.text
    hits: list[dict[str, Any]] = r.json()["hits"]
    return hits


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def _release(fifo: Path, data: bytes, timeout: float) -> bool:
    """Write ``data`` into the FIFO once its reader (the recovering server) has opened it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO while nobody reads: never hangs
            break
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
    os.set_blocking(fd, True)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return True


def _search_later(url: str, out: list[list[dict[str, Any]]]) -> None:
    with httpx.Client(base_url=url, timeout=60) as c:
        out.append(_hits(c, "mid1", "written during recovery: kiwi", k=1))


def test_restart_after_sigkill_recovers_a_consistent_index(tmp_path: Path) -> None:
    db = tmp_path / "rec.db"
    manifest = Path(str(db) + ".vectors") / "manifest.json"
    rng = random.Random(12)

    # A clean stop with a little in the store: the index is saved there.
    first = start_engine(db, tmp_path / "engine1.log")
    with httpx.Client(base_url=first.url, timeout=60) as c:
        written = {("small0", i): t for i, t in _write(c, "small0", 500, start=10_000).items()}
    first.stop()
    assert first.proc.returncode == 0 and manifest.exists()

    # 50k memories since, a background checkpoint with a graph in it, updates and deletions after it,
    # then SIGKILL straight after the last write. (Checkpoints come often here, to have one soon.)
    second = start_engine(db, tmp_path / "engine2.log", "--checkpoint-rows", "5000", "--checkpoint-interval", "1")
    try:
        with httpx.Client(base_url=second.url, timeout=60) as c:
            for tenant, count in TENANTS:
                written.update({(tenant, i): t for i, t in _write(c, tenant, count).items()})
            deadline = time.monotonic() + 180
            while not c.get("/v1/stats").json()["index"]["last_checkpoint"].get("with_graph"):
                assert time.monotonic() < deadline, "no background checkpoint with an HNSW graph"
                time.sleep(0.2)
            keys = sorted(written)
            changed = rng.sample(keys, 120)
            updated = dict.fromkeys(changed[:60], "")
            deleted = set(changed[60:])
            for (tenant, mid) in updated:
                new = f"replaced text {mid} zebra violin glacier"
                r = c.patch(f"{_path(tenant)}/memories/{mid}", json={"content": new})
                assert r.status_code == 200, r.text
                updated[(tenant, mid)] = new
            for (tenant, mid) in deleted:
                assert c.delete(f"{_path(tenant)}/memories/{mid}").status_code == 204
            tail = _write(c, "big", BATCH, start=90_000)  # the last write before the kill
            written.update({("big", i): t for i, t in tail.items()})
    finally:
        _kill(second.proc)
    total = len(written) - len(deleted)
    assert total >= 50_000

    # Hold recovery at its first step: it reads the checkpoint's manifest from a FIFO we fill later.
    saved = manifest.read_bytes()
    manifest.unlink()
    os.mkfifo(manifest)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "engine3.log", "ab")  # closed below
    proc = subprocess.Popen([sys.executable, "-m", "agentmem", "--port", str(port), "--db", str(db)],
                            stdout=log, stderr=subprocess.STDOUT)
    released = False
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "engine3.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the server did not listen while its index was recovering"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        with httpx.Client(base_url=url, timeout=60) as c:
            r = c.get("/health")
            assert r.status_code == 503 and r.json()["status"] == "recovering", r.text
            # Reads and writes are served while the index recovers; searches wait for it.
            (tenant, mid), text = next(iter(updated.items()))
            assert c.get(f"{_path(tenant)}/memories/{mid}").json()["content"] == text
            during = c.post(f"{_path('mid1')}/memories", json={"content": "written during recovery: kiwi"}).json()
            gone_tenant, gone = next((t, m) for (t, m) in written if (t, m) not in deleted and t == "mid2")
            assert c.delete(f"{_path(gone_tenant)}/memories/{gone}").status_code == 204
            deleted.add((gone_tenant, gone))
            found: list[list[dict[str, Any]]] = []
            searching = threading.Thread(target=_search_later, args=(url, found))
            searching.start()
            time.sleep(0.2)
            assert not found and c.get("/health").status_code == 503  # held: recovery cannot have finished

            released = _release(manifest, saved, timeout=60)  # let recovery go on
            assert released, "the recovering server never read its manifest"
            deadline = time.monotonic() + 120
            while (r := c.get("/health")).status_code != 200:
                assert r.status_code == 503 and r.json()["status"] == "recovering", r.text
                assert time.monotonic() < deadline, "recovery did not finish"
                time.sleep(0.05)
            assert r.json()["status"] == "ok" and r.json()["memories"] == total  # one written, one deleted
            searching.join(60)
            assert found and found[0][0]["memory"]["id"] == during["id"]

            stats = c.get("/v1/stats").json()
            assert stats["vectors"] == stats["memories_total"] == total, stats
            assert stats["index"]["recovery"]["checkpoint"]["clean"] is False, stats["index"]  # a background one

            live = [k for k in written if k not in deleted]
            for tenant, mid in rng.sample(live, SAMPLE):
                text = updated.get((tenant, mid), written[(tenant, mid)])
                assert c.get(f"{_path(tenant)}/memories/{mid}").json()["content"] == text
                ids = [h["memory"]["id"] for h in _hits(c, tenant, text)]
                assert mid in ids, (tenant, mid, text)
            for (tenant, mid), text in updated.items():
                if (tenant, mid) in deleted:
                    continue
                assert mid in [h["memory"]["id"] for h in _hits(c, tenant, text)]
                old = [h for h in _hits(c, tenant, written[(tenant, mid)]) if h["memory"]["id"] == mid]
                assert not old or old[0]["score"] < 0.99, old  # the old vector is gone
            for tenant, mid in deleted:
                assert c.get(f"{_path(tenant)}/memories/{mid}").status_code == 404
                assert mid not in [h["memory"]["id"] for h in _hits(c, tenant, written[(tenant, mid)])]
    finally:
        if not released:  # a failed assert above must not leave the server blocked on the FIFO
            _release(manifest, saved, timeout=1)
        _kill(proc)  # no clean stop: it would wait for the indexer to work through 50k vectors
        log.close()
