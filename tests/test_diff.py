"""profkit diff and the pprof artifact on real processes: py-spy runs of a program before and after one
function got slower, memray captures of a program before and after it allocated more, go tool pprof."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROGRAMS, one_line_error, profkit

pytestmark = pytest.mark.slow

# Three functions of equal work; with WORK=6 the slowed one does six times its work (a third of the time → three
# quarters). Each call lasts several sampling periods: calls shorter than the period can alias with it and
# skew the shares.
CPU_PROGRAM = """
import sys, time

def slowed(n):
    t = 0
    for i in range(n * WORK):
        t += i * i % 7
    return t

def steady_a(n):
    t = 0
    for i in range(n):
        t += i * i % 7
    return t

def steady_b(n):
    t = 0
    for i in range(n):
        t += i * i % 7
    return t

WORK = int(sys.argv[1])
end = time.time() + float(sys.argv[2])
while time.time() < end:
    slowed(150_000)
    steady_a(150_000)
    steady_b(150_000)
"""

# Allocates in grow() FACTOR times as much; A also allocates in only_in_a(), which B never calls.
MEM_PROGRAM = """
import sys

def grow(n):
    return [bytearray(64 * 1024) for _ in range(n)]

def steady():
    return [bytearray(64 * 1024) for _ in range(40)]

def only_in_a():
    return [bytearray(64 * 1024) for _ in range(30)]

FACTOR = int(sys.argv[1])
kept = []
for _ in range(4):
    kept.append(grow(20 * FACTOR))
    kept.append(steady())
    if FACTOR == 1:
        kept.append(only_in_a())
"""


def _kinds(doc: dict[str, Any]) -> dict[str, Path]:
    return {a["kind"]: Path(a["path"]) for a in doc["artifacts"]}


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("diff-store")


@pytest.fixture(scope="module")
def cpu_runs(store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    script = tmp_path_factory.mktemp("cpu") / "work.py"
    script.write_text(CPU_PROGRAM)
    # One after the other: two profiled programs sharing the cores preempt each other, and a process
    # taken off its core is sampled wherever it stopped, which skews the shares of both.
    docs = [_json(profkit("flame", "--store", str(store), "--rate", "200", "--json", "--", sys.executable, str(script),
                          work, "2.5")) for work in ("1", "6")]
    return docs[0], docs[1]


def test_diff_of_two_flame_runs_ranks_the_slowed_function_first(cpu_runs: tuple[dict[str, Any], dict[str, Any]],
                                                                 store: Path, tmp_path: Path) -> None:
    a, b = cpu_runs
    out = tmp_path / "diff.svg"
    doc = _json(profkit("diff", a["folder"], b["folder"], "--store", str(store), "--json", "--out", str(out)))
    f = doc["findings"]
    first = f["functions"][0]
    assert first["function"] == "slowed", f["functions"][:3]
    assert first["significant"] and first["self_delta_pct"] > 5 and first["total_delta_pct"] > 5
    # a third of the work before, three quarters after: shares of each run's own total. Six times the
    # work, not two: on a busy two-core machine the shares of a 2.5 s profile wander by up to ±8 points
    # (a process taken off its core is sampled where it stopped), and the slowed function's rise
    # (+42 points) must stay clear of the steady ones' fall (-21 each) for the ranking to hold.
    assert 20 < first["self_before_pct"] < 45 and 60 < first["self_after_pct"] < 90
    steady = [r for r in f["functions"] if r["function"].startswith("steady_")]
    assert steady and all(r["self_delta_pct"] < 0 for r in steady), f["functions"]
    assert f["a"]["source"] == f["b"]["source"] == "run" and f["a"]["mode"] == f["b"]["mode"] == "cpu"
    kinds = _kinds(doc)
    assert set(kinds) == {"diff-svg", "diff-json"} and doc["status"] == "complete"
    svg = ET.fromstring(kinds["diff-svg"].read_text())
    names = {g.attrib.get("data-name") for g in svg.iter("{http://www.w3.org/2000/svg}g")}
    assert "slowed (work.py)" in names
    assert out.read_bytes() == kinds["diff-svg"].read_bytes()
    assert Path(doc["folder"]).parent.parent == store and Path(doc["folder"]).name.startswith("diff-")


def test_diff_in_a_terminal_prints_the_table(cpu_runs: tuple[dict[str, Any], dict[str, Any]], store: Path) -> None:
    a, b = cpu_runs
    proc = profkit("diff", a["folder"], b["folder"], "--store", str(store), "--top", "1")
    assert proc.returncode == 0, proc.stderr
    assert "slowed" in proc.stdout and "self %" in proc.stdout and "steady_" not in proc.stdout
    assert "diff.svg" in proc.stderr


def test_diff_refusals_are_one_line(cpu_runs: tuple[dict[str, Any], dict[str, Any]], store: Path,
                                    tmp_path: Path) -> None:
    a, _ = cpu_runs
    proc = profkit("diff", a["folder"], "feedfacefeed", "--store", str(store))
    assert proc.returncode == 2 and "it holds commits:" in one_line_error(proc)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\0" * 64)
    proc = profkit("diff", a["folder"], str(junk), "--store", str(store))
    assert proc.returncode == 4 and "junk.bin" in one_line_error(proc)


def test_flame_writes_a_pprof_profile(cpu_runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    pprof = _kinds(cpu_runs[0])["pprof"]
    assert pprof.name == "profile.pb.gz" and pprof.read_bytes()[:2] == b"\x1f\x8b"
    manifest = json.loads((pprof.parent / "manifest.json").read_text())
    assert {"path": "profile.pb.gz", "kind": "pprof"}.items() <= next(
        x for x in manifest["artifacts"] if x["kind"] == "pprof").items()
    assert manifest["sampling"] == {"profiler": "py-spy", "rate_hz": 200, "idle": False, "gil": False, "native": False}


@pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed (Debian: apt-get install golang-go); "
                                                      "the pprof file is still checked by tests/unit/test_pprof.py")
def test_go_tool_pprof_reads_it_and_agrees_on_the_top_function(store: Path, tmp_path: Path) -> None:
    doc = _json(profkit("flame", "--store", str(store), "--json", "--", sys.executable,
                        str(PROGRAMS / "cpu_hot.py"), "2"))
    top_own = doc["findings"]["top_functions"][0]
    assert top_own["function"] == "hot_function"
    env = {**os.environ, "HOME": str(tmp_path), "PPROF_TMPDIR": str(tmp_path)}
    proc = subprocess.run(["go", "tool", "pprof", "-top", str(_kinds(doc)["pprof"])], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip().endswith(("%", "hot_function"))]
    table = proc.stdout.split("flat%", 1)[1].splitlines()[1:]
    first = table[0].split()
    assert first[-1] == top_own["function"], proc.stdout
    assert "Type: cpu" in proc.stdout and rows
    raw = subprocess.run(["go", "tool", "pprof", "-raw", str(_kinds(doc)["pprof"])], capture_output=True, text=True,
                         timeout=120, env=env, check=False)
    assert raw.returncode == 0 and "samples/count cpu/nanoseconds" in raw.stdout


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("mem")
    script = folder / "alloc.py"
    script.write_text(MEM_PROGRAM)
    out = []
    for factor in ("1", "3"):
        capture = folder / f"alloc-{factor}.bin"
        subprocess.run([sys.executable, "-m", "memray", "run", "--quiet", "-o", str(capture), str(script), factor],
                       check=True, timeout=120, cwd=folder)
        out.append(capture)
    return out[0], out[1]


def test_memray_diff_by_bytes_allocated_and_leaked(captures: tuple[Path, Path], store: Path) -> None:
    a, b = captures
    doc = _json(profkit("diff", str(a), str(b), "--store", str(store), "--json"))
    f = doc["findings"]
    assert f["kind"] == "memory" and f["measure"] == "bytes allocated"
    assert f["significance"]["z"] is None and f["significance"]["min_bytes"]
    first = f["functions"][0]
    assert first["function"] == "grow" and first["total_delta_pct"] > 10 and first["significant"], f["functions"][:3]
    assert first["total_after"] == 3 * first["total_before"]  # bytes, not samples
    removed = [r["stack"][-1] for r in f["removed"]]
    assert any(s.startswith("only_in_a (") for s in removed), removed
    svg = _kinds(doc)["diff-svg"].read_text()
    assert 'data-section="removed" data-name="only_in_a' in svg
    leaks = _json(profkit("diff", str(a), str(b), "--store", str(store), "--json", "--leaks"))
    assert leaks["findings"]["measure"] == "bytes leaked"
    assert leaks["findings"]["functions"][0]["function"] == "grow"


def test_memory_and_cpu_are_not_compared(captures: tuple[Path, Path], cpu_runs: tuple[dict[str, Any], dict[str, Any]],
                                         store: Path) -> None:
    proc = profkit("diff", str(captures[0]), cpu_runs[0]["folder"], "--store", str(store))
    assert proc.returncode == 2
    assert "CPU samples and memory bytes" in one_line_error(proc)


def test_two_commits_with_only_mem_runs_compare_memory(captures: tuple[Path, Path], tmp_path: Path) -> None:
    from profkit.gitinfo import Commit
    from profkit.store import ArtifactStore

    store = tmp_path / "store"
    for sha, capture in (("a" * 40, captures[0]), ("b" * 40, captures[1])):
        with ArtifactStore(store).open_run("mem", commit=Commit(sha, False), target={}, tools={}) as run:
            run.write("memray.bin", capture.read_bytes(), "memray-bin")
    doc = _json(profkit("diff", "aaaaaaa", "bbbbbbb", "--store", str(store), "--json"))
    f = doc["findings"]
    assert f["measure"] == "bytes allocated" and f["a"]["source"] == f["b"]["source"] == "commit"
    assert f["a"]["run"].startswith("aaaaaaaaaaaa/mem-") and f["functions"][0]["function"] == "grow"
