"""profkit mem: real memray on real processes — known answers, attach, the peak budget, and errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROGRAMS, one_line_error, profkit, snapshot

pytestmark = pytest.mark.slow

LEAK_VS_CHURN = PROGRAMS / "mem_leak_vs_churn.py"
ALLOC_LOOP = PROGRAMS / "mem_alloc_loop.py"
ALL_KINDS = {"memray-bin", "memray-html", "stats-json"}


def mem(store: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``profkit mem --store STORE --json ARGS``."""
    return profkit("mem", "--store", str(store), "--json", *args, env=env, timeout=timeout)


def kinds(doc: dict[str, Any]) -> set[str]:
    return {a["kind"] for a in doc["artifacts"]}


def check_artifacts(doc: dict[str, Any]) -> None:
    for a in doc["artifacts"]:
        path = Path(a["path"])
        assert path.is_file() and path.stat().st_size == a["size"] > 0, a
    manifest = json.loads((Path(doc["folder"]) / "manifest.json").read_text())
    assert manifest["status"] == doc["status"]
    stats = json.loads(next(Path(a["path"]) for a in doc["artifacts"] if a["kind"] == "stats-json").read_text())
    for key in ("peak_memory_bytes", "total_allocated_bytes", "total_allocations", "top_functions"):
        assert stats[key] == doc["findings"][key]


class Child:
    """A real Python process to attach to; always killed at the end."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ALLOC_LOOP), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"ready"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def child() -> Iterator[Child]:
    c = Child("--lifetime", "60")
    yield c
    c.close()


@pytest.fixture(scope="module")
def leak_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One real --leaks run of the known-answer program; its store also seeds the error tests."""
    store = tmp_path_factory.mktemp("leaks") / "store"
    return store, mem(store, "--leaks", "--", "python", str(LEAK_VS_CHURN))


@pytest.fixture
def seeded(leak_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> Path:
    store = tmp_path / "store"
    shutil.copytree(leak_run[0], store)
    return store


def test_leaks_name_leaky_and_not_churn(leak_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, proc = leak_run
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "complete"
    assert kinds(doc) == ALL_KINDS | {"memray-leaks-html"}
    check_artifacts(doc)
    f = doc["findings"]
    assert f["python_allocator"] == "malloc"  # PYTHONMALLOC=malloc, so frees of small objects are seen
    names = [row["function"] for row in f["leaks"]]
    assert names[0] == "leaky", f["leaks"]
    assert "churn" not in names
    leaky = f["leaks"][0]
    assert leaky["file"].endswith("mem_leak_vs_churn.py")
    # 20,000 bytearrays of 1 KiB: the buffers alone are 20.5 MB, plus object headers and the list.
    assert 20_000 * 1024 <= leaky["bytes"] <= 26_000_000
    assert leaky["count"] >= 20_000
    # churn really did allocate ten times more (200,000 KiB) — it is absent from leaks because it freed it.
    churn = next(row for row in f["top_functions"] if row["function"] == "churn")
    assert churn["bytes"] >= 200_000 * 1024 and churn["count"] >= 200_000
    assert f["total_allocated_bytes"] >= churn["bytes"] + leaky["bytes"]
    assert 20_000 * 1024 <= f["peak_memory_bytes"] < 64 * 2**20
    assert f["peak_functions"][0]["function"] == "leaky"


def test_flamegraphs_are_memrays_own(leak_run: tuple[Path, subprocess.CompletedProcess[str]],
                                     tmp_path: Path) -> None:
    # profkit renders them from the records its tables are made of; the pages must still be the
    # ones memray's command writes (the dashboard finds memray pages by their CDN script tags).
    doc = json.loads(leak_run[1].stdout)
    paths = {a["kind"]: Path(a["path"]) for a in doc["artifacts"]}
    for kind, extra in (("memray-html", []), ("memray-leaks-html", ["--leaks"])):
        own = tmp_path / f"{kind}.html"
        subprocess.run([sys.executable, "-m", "memray", "flamegraph", *extra, "--output", str(own),
                        str(paths["memray-bin"])], check=True, capture_output=True, timeout=120)
        assert paths[kind].read_bytes() == own.read_bytes(), kind


def test_default_scenario(tmp_path: Path) -> None:
    proc = mem(tmp_path / "store", "--duration", "2", "--top", "5")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "complete"
    assert ALL_KINDS <= kinds(doc)
    check_artifacts(doc)
    f = doc["findings"]
    assert f["peak_memory_bytes"] > 1_000_000
    assert f["total_allocated_bytes"] >= f["peak_memory_bytes"]
    assert f["total_allocations"] > 1000
    assert len(f["top_functions"]) == 5
    # The engine is the code under test, so its functions are the ones named.
    assert "agentmem" in f["top_functions"][0]["file"], f["top_functions"]
    assert "leaks" not in f


def test_attach_to_live_process(tmp_path: Path, child: Child) -> None:
    proc = mem(tmp_path / "store", "--pid", str(child.pid), "--duration", "3")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "complete" and kinds(doc) == ALL_KINDS
    check_artifacts(doc)
    f = doc["findings"]
    assert f["mode"] == "attach" and f["target_running_after"] is True
    assert f["peak_memory_bytes"] > 0
    # The loop allocates 256 KiB every ~5 ms; three seconds see well over a hundred of them.
    assert f["total_allocated_bytes"] >= 100 * 256 * 1024
    top = f["top_functions"][0]
    assert top["function"] == "main" and top["file"].endswith("mem_alloc_loop.py")
    time.sleep(0.3)
    assert child.proc.poll() is None, "the attached process must keep running"


def test_peak_budget_fails_with_its_own_exit_code(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = mem(store, "--peak-budget", "1MB", "--", "python", str(LEAK_VS_CHURN))
    assert proc.returncode == 6, proc.stderr
    line = one_line_error(proc)
    assert "peak memory" in line and "exceeds budget 1MB" in line
    doc = json.loads(proc.stdout)  # the report still comes out, for a CI job to keep
    assert doc["status"] == "complete" and kinds(doc) == ALL_KINDS
    check_artifacts(doc)
    assert doc["findings"]["budget"]["exceeded"] is True
    assert doc["findings"]["budget"]["limit_bytes"] == 1_000_000 < doc["findings"]["peak_memory_bytes"]


def test_error_failing_command_keeps_what_it_recorded(seeded: Path) -> None:
    before = snapshot(seeded)
    proc = mem(seeded, "--", "python", str(PROGRAMS / "mem_fails.py"))
    assert proc.returncode == 4
    line = one_line_error(proc)
    assert "exited with code 1" in line and "RuntimeError" in line and "partial" in line
    after = snapshot(seeded)
    assert {k: after[k] for k in before} == before
    doc = json.loads(proc.stdout)
    assert doc["status"] == "partial" and ALL_KINDS | {"log"} == kinds(doc)
    check_artifacts(doc)
    # It held 5,000 blocks of 1 KiB when it failed; that is what the peak shows.
    assert doc["findings"]["peak_memory_bytes"] >= 5000 * 1024


def test_error_pid_that_does_not_exist(seeded: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert not Path(f"/proc/{gone.pid}").exists()
    before = snapshot(seeded)
    assert "no process" in one_line_error(mem(seeded, "--pid", str(gone.pid), "--duration", "1"))
    assert snapshot(seeded) == before


def test_error_pid_that_is_not_python(seeded: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        before = snapshot(seeded)
        line = one_line_error(mem(seeded, "--pid", str(sleeper.pid), "--duration", "1"))
        assert "not a Python process" in line
        assert snapshot(seeded) == before
    finally:
        sleeper.kill()
        sleeper.wait()


def test_error_bad_peak_budget(seeded: Path) -> None:
    before = snapshot(seeded)
    proc = mem(seeded, "--peak-budget", "lots", "--", "python", str(LEAK_VS_CHURN))
    assert proc.returncode == 2
    assert "--peak-budget" in one_line_error(proc)
    assert snapshot(seeded) == before


def test_error_command_that_is_not_python(seeded: Path) -> None:
    before = snapshot(seeded)
    proc = mem(seeded, "--", "sleep", "1")
    assert proc.returncode == 2
    assert "python" in one_line_error(proc).lower()
    assert snapshot(seeded) == before


def test_error_no_debugger_for_attach(seeded: Path, child: Child) -> None:
    # Only the venv's own programs on PATH: no gdb, no lldb.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    before = snapshot(seeded)
    proc = mem(seeded, "--pid", str(child.pid), "--duration", "1", env=env)
    assert proc.returncode == 3
    assert "gdb or lldb" in one_line_error(proc)
    assert snapshot(seeded) == before
    assert child.proc.poll() is None


def test_error_target_dies_mid_attach(seeded: Path) -> None:
    dying = Child("--die-after-attach", "1.5", "--lifetime", "30")
    try:
        before = snapshot(seeded)
        started = time.monotonic()
        proc = mem(seeded, "--pid", str(dying.pid), "--duration", "5")
        assert proc.returncode == 4
        line = one_line_error(proc)
        assert f"pid {dying.pid} exited" in line and "partial" in line
        assert time.monotonic() - started < 30
    finally:
        dying.close()
    after = snapshot(seeded)
    assert {k: after[k] for k in before} == before, "files already in the store were changed"
    new_runs = {Path(k).parent for k in after if k not in before}
    assert len(new_runs) == 1
    doc = json.loads(proc.stdout)
    assert doc["status"] == "partial" and "memray-bin" in kinds(doc)
    manifest = json.loads((seeded / next(iter(new_runs)) / "manifest.json").read_text())
    assert manifest["status"] == "partial" and "exited" in manifest["error"]
    # What was recorded before the end (about a second of the loop) is there and readable.
    assert doc["findings"]["total_allocated_bytes"] > 0


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb")
def test_stuck_debugger_is_ended_and_target_resumes(child: Child) -> None:
    """What profkit does when memray's debugger hangs: end that debugger, and the target runs on."""
    import memray

    from profkit.backends.memray import release_target

    # A real gdb, started the way memray attach starts it (its script on the command line), stuck
    # inside a command while it holds the target stopped under ptrace.
    script = Path(memray.__file__).parent / "commands" / "_attach.gdb"
    gdb = subprocess.Popen(["gdb", "-batch", "-nx", "-p", str(child.pid), "-ex", "python import time; time.sleep(60)",
                            f"-x={script}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while _state(child.pid) != "t":
            assert time.monotonic() < deadline, "gdb never stopped the target"
            time.sleep(0.05)
        release_target(child.pid)
        assert gdb.wait(10) == -signal.SIGKILL
        deadline = time.monotonic() + 5
        while _state(child.pid) not in ("R", "S"):
            assert time.monotonic() < deadline, f"target left in state {_state(child.pid)}"
            time.sleep(0.05)
        assert child.proc.poll() is None
    finally:
        if gdb.poll() is None:
            gdb.kill()
            gdb.wait()
