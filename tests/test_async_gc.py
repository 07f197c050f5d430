"""`profkit async` tells garbage collection from a coroutine's own work: the real CLI, yappi and a real heap."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROGRAMS, profkit

pytestmark = pytest.mark.slow


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


def test_collections_in_a_task_creator_are_gc_pauses_and_an_honest_burner_still_blocks(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = profkit("async", "--store", str(store), "--", sys.executable, str(PROGRAMS / "async_gc_heavy.py"))
    assert proc.returncode == 0, proc.stderr
    (folder,) = store.glob("*/async-*")
    f = json.loads((folder / "manifest.json").read_text())["findings"]

    # The spawner only creates tasks; full collections of everything they keep alive land in its
    # steps. They are reported as garbage collection, not as the spawner blocking the loop.
    pauses = by_name(f["gc_pauses"])
    assert "spawn" in pauses, f["gc_pauses"]
    spawn = pauses["spawn"]
    assert spawn["kind"] == "coroutine" and spawn["gc_pause_steps"] >= 1
    assert spawn["gc_ms"] > 0 and spawn["max_gc_pause_gc_ms"] > 0
    assert spawn["max_gc_pause_generation"] in (0, 1, 2)
    assert spawn["max_gc_pause_gc_ms"] <= spawn["max_gc_pause_ms"]
    assert "spawn" not in by_name(f["blocking"])

    # The burner's 60 ms of CPU per step is its own: still blocking, with no collection to blame.
    blocking = by_name(f["blocking"])
    assert "burner" in blocking, f["blocking"]
    assert blocking["burner"]["cpu_blocking_steps"] == 4
    assert blocking["burner"]["max_step_own_cpu_ms"] >= 45
    assert "burner" not in pauses

    rows = by_name(f["coroutines"])
    assert rows["spawn"]["gc_ms"] > 0 and not rows["spawn"]["blocking"] and rows["spawn"]["gc_pause"]
    assert rows["spawn"]["max_step_gc_ms"] is not None
    assert rows["leaf"]["calls"] == 60_000 and rows["leaf"]["mean_wall_ms"] is not None
    assert rows["burner"]["mean_wall_ms"] == pytest.approx(rows["burner"]["wall_ms"] / rows["burner"]["calls"],
                                                            rel=1e-3)
    assert rows["burner"]["blocking"] and not rows["burner"]["gc_pause"]

    # What the terminal says about them (stdout is not a terminal: rich prints each sentence on one line).
    out = proc.stdout
    assert "garbage collection: coroutine spawn (async_gc_heavy.py:" in out, out
    assert "ms of it garbage collection (generation" in out
    assert "blocks the loop: coroutine burner (async_gc_heavy.py:" in out
    assert "blocks the loop: coroutine spawn" not in out
    assert "Total wall time (wall_ms in --json) adds up every call's wall time" in out
