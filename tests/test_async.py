"""`profkit async` end to end: the real CLI, real yappi, real programs, real callgrind_annotate."""

from __future__ import annotations

import json
import os
import pstats
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROGRAMS, artifacts, one_line_error, profkit

pytestmark = pytest.mark.slow


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


def test_known_answer_ranks_the_waiter_and_flags_the_blocker(tmp_path: Path) -> None:
    proc = profkit("async", "--store", str(tmp_path / "store"), "--json", "--",
                   sys.executable, str(PROGRAMS / "async_known.py"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "complete"
    f = doc["findings"]

    assert f["coroutines"][0]["name"] == "slow_waiter", f["coroutines"]
    rows = by_name(f["coroutines"])
    waiter, blocker, sleeper = rows["slow_waiter"], rows["blocker"], rows["sleeper"]
    assert waiter["wall_ms"] >= 1150  # three awaited 0.4 s sleeps
    assert waiter["cpu_ms"] < 20 and waiter["max_step_cpu_ms"] < 10 and not waiter["blocking"]
    assert blocker["blocking"] and blocker["cpu_blocking_steps"] == 4
    assert blocker["max_step_cpu_ms"] >= 45 and blocker["cpu_ms"] >= 180  # 4 steps of 50 ms CPU each
    assert rows["quick"]["calls"] == 5 and not rows["quick"]["blocking"]

    blocking = {b["name"] for b in f["blocking"]}
    assert "blocker" in blocking
    assert blocking.isdisjoint({"slow_waiter", "sleeper", "quick"})
    # time.sleep holds the loop without using CPU: reported as a stall, not as CPU blocking.
    assert not sleeper["blocking"] and sleeper["stalled_steps"] >= 3
    assert "sleeper" in {s["name"] for s in f["stalled"]}
    # The entry coroutine spans the whole run; it is reported apart instead of topping the ranking.
    assert [e["name"] for e in f["entry"]] == ["main"]

    files = artifacts(doc)
    assert {"pstat", "callgrind", "coroutines-json"} <= set(files)
    table = json.loads(files["coroutines-json"].read_text())
    stored = by_name(table["coroutines"])
    assert stored["blocker"]["blocking"] and not stored["slow_waiter"]["blocking"]
    manifest = json.loads((Path(doc["folder"]) / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["findings"]["blocking"][0]["name"] == "blocker"


def test_bundled_scenario_writes_pstat_callgrind_and_table(tmp_path: Path) -> None:
    proc = profkit("async", "--store", str(tmp_path / "store"), "--duration", "2", "--top", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "complete"
    files = artifacts(doc)

    stats = pstats.Stats(str(files["pstat"]))
    assert any("agentmem" in filename for filename, _, _ in stats.stats)  # type: ignore[attr-defined]

    annotate = shutil.which("callgrind_annotate") or "/usr/bin/callgrind_annotate"
    ann = subprocess.run([annotate, "--threshold=100", str(files["callgrind"])], capture_output=True, text=True,
                         timeout=60, check=False)
    assert ann.returncode == 0, ann.stderr
    assert "EngineDriver._worker" in ann.stdout and "MemoryEngine" in ann.stdout

    f = doc["findings"]
    assert f["loop_steps"] > 100  # it ran on the plain asyncio loop, where every step is timed
    worker = by_name(f["coroutines"])["EngineDriver._worker"]
    assert worker["calls"] > 0 and worker["steps"] > 100 and worker["cpu_ms"] > 0
    assert worker["wall_ms"] >= worker["cpu_ms"]
    assert len(f["top_functions"]) == 10
    table = json.loads(files["coroutines-json"].read_text())
    assert any(r["name"].startswith("MemoryEngine.") for r in table["coroutines"])


@pytest.mark.parametrize("how", ["exit0", "crash"])
def test_files_are_written_however_the_program_ends(tmp_path: Path, how: str) -> None:
    store = tmp_path / "store"
    proc = profkit("async", "--store", str(store), "--json", "--",
                   sys.executable, str(PROGRAMS / "async_ending.py"), how)
    folders = list(store.glob("*/async-*"))
    assert len(folders) == 1
    folder = folders[0]
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("profile.pstat", "profile.callgrind", "coroutines.json"):
        assert (folder / name).stat().st_size > 0, name
    table = json.loads((folder / "coroutines.json").read_text())
    assert "worker" in by_name(table["coroutines"])
    if how == "exit0":
        assert proc.returncode == 0, proc.stderr
        assert manifest["status"] == "complete"
    else:
        line = one_line_error(proc)
        assert "RuntimeError: doomed coroutine gave up" in line and "partial" in line
        assert manifest["status"] == "partial"
        assert "doomed coroutine gave up" in manifest["error"]
        assert table["program"]["exit_code"] == 1


def test_pid_is_refused_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    line = one_line_error(profkit("async", "--pid", str(os.getpid()), "--store", str(store)))
    assert "yappi cannot attach" in line
    assert not store.exists()
