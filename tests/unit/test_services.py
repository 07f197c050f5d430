"""Services called in process: what they return, and what they refuse before doing any work.

Most of these never start a profiler; ``run_flame`` is run for real once, on a one-second program.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from profkit.errors import CheckFailed, TargetError, UsageError
from profkit.gitinfo import Commit
from profkit.process import free_port
from profkit.services import async_, bench, doctor, lines, load, mem, regress, runs, serve, top
from profkit.services.flame import run_flame
from profkit.session import Options
from profkit.store import ArtifactStore
from tests.helpers import PROGRAMS, snapshot

COMMIT = Commit("0123456789abcdef0123456789abcdef01234567", dirty=False)


def options(store: Path, *, scenario: str | None = None, command: tuple[str, ...] = (), pid: int | None = None,
            duration: float = 1.0) -> Options:
    return Options(scenario=scenario, command=command, pid=pid, duration=duration, store=store)


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with three runs, started at known times."""
    root = tmp_path / "store"
    st = ArtifactStore(root)
    for i in range(3):
        with st.open_run("flame", commit=COMMIT, target={"i": i}, tools={}) as run:
            for k in range(i + 1):
                run.write(f"f{k}.txt", b"x", "text")
        manifest = json.loads((run.folder / "manifest.json").read_text())
        manifest["started_at"] = 1_000.0 + i
        (run.folder / "manifest.json").write_text(json.dumps(manifest))
    return root


# -- runs / gc -----------------------------------------------------------------------------------------


def test_run_runs_lists_the_newest_first_with_their_file_counts(store: Path) -> None:
    doc = runs.run_runs(store=store, limit=50)
    assert doc["command"] == "runs" and doc["store"] == str(store)
    assert [(r["target"]["i"], r["artifacts"], r["status"], r["command"]) for r in doc["runs"]] == [  # type: ignore[index]
        (2, 3, "complete", "flame"), (1, 2, "complete", "flame"), (0, 1, "complete", "flame")]
    assert all(Path(r["folder"]).is_dir() for r in doc["runs"])
    assert [r["started_at"] for r in runs.run_runs(store=store, limit=2)["runs"]] == [1002.0, 1001.0]


@pytest.mark.parametrize("limit", [0, -1])
def test_run_runs_with_no_room_lists_nothing(store: Path, limit: int) -> None:
    assert runs.run_runs(store=store, limit=limit)["runs"] == []


def test_run_runs_of_a_missing_store(tmp_path: Path) -> None:
    assert runs.run_runs(store=tmp_path / "none", limit=5)["runs"] == []


def test_run_gc_removes_the_oldest_and_says_which(store: Path) -> None:
    listed = [r["run"] for r in runs.run_runs(store=store, limit=50)["runs"]]
    dry = runs.run_gc(store=store, keep=1, dry_run=True)
    assert dry == {"command": "gc", "store": str(store), "keep": 1, "dry_run": True, "removed": listed[1:]}
    assert len(runs.run_runs(store=store, limit=50)["runs"]) == 3
    assert runs.run_gc(store=store, keep=1, dry_run=False)["removed"] == listed[1:]
    assert [r["run"] for r in runs.run_runs(store=store, limit=50)["runs"]] == listed[:1]


def test_run_gc_refuses_to_keep_nothing(store: Path) -> None:
    before = snapshot(store)
    with pytest.raises(UsageError, match="--keep must be at least 1"):
        runs.run_gc(store=store, keep=0, dry_run=False)
    assert snapshot(store) == before


# -- doctor --------------------------------------------------------------------------------------------


def test_doctor_checks_the_tools_and_this_process() -> None:
    doc = doctor.run_doctor(pid=os.getpid())
    checks = {c["check"]: c for c in doc["checks"]}
    assert doc["command"] == "doctor" and doc["ok"] is True
    assert doc["python"] == sys.version.split()[0]
    for tool in ("py-spy", "memray", "yappi", "scalene"):
        assert checks[f"{tool} installed"]["ok"] and checks[f"{tool} installed"]["required"]
    assert not checks["ptrace of unrelated processes (--pid)"]["required"]
    assert checks[f"pid {os.getpid()} is Python"]["ok"]
    assert checks[f"py-spy supports pid {os.getpid()}"]["ok"] and checks[f"memray supports pid {os.getpid()}"]["ok"]
    assert doc["target"] == {"pid": os.getpid(), "executable": os.readlink(f"/proc/{os.getpid()}/exe"),
                             "python": f"{sys.version_info[0]}.{sys.version_info[1]}"}


@pytest.fixture
def no_debugger_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip doctor's one slow check (gdb injecting into a throwaway process) where the pid checks are the point."""
    from profkit.backends import memray

    monkeypatch.setattr(memray, "choose_debugger", lambda: "gdb")


@pytest.mark.usefixtures("no_debugger_probe")
def test_doctor_on_a_dead_pid_fails_with_its_result(dead_pid: int) -> None:
    with pytest.raises(CheckFailed, match=f"failed: pid {dead_pid} \\(no process with pid {dead_pid}") as caught:
        doctor.run_doctor(pid=dead_pid)
    assert caught.value.exit_code == 1
    result: Any = caught.value.result
    assert result["ok"] is False and result["target"] is None
    assert [c["check"] for c in result["checks"] if not c["ok"] and c["required"]] == [f"pid {dead_pid}"]


@pytest.mark.usefixtures("no_debugger_probe")
def test_doctor_on_a_process_that_is_not_python() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(CheckFailed) as caught:
            doctor.run_doctor(pid=sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
    result: Any = caught.value.result
    failed = {c["check"]: c["detail"] for c in result["checks"] if not c["ok"]}
    assert failed[f"pid {sleeper.pid} is Python"].endswith("sleep is not CPython")
    assert result["target"]["python"] is None


# -- load ----------------------------------------------------------------------------------------------


def test_load_refuses_an_unknown_scenario_before_connecting() -> None:
    with pytest.raises(UsageError, match=r"unknown scenario 'nope'; choose one of: mixed, .*ws-hold"):
        load.run_load_command(url="http://127.0.0.1:9", scenario="nope", duration=1, concurrency=1,
                              seed_per_tenant=0, warmup=0)


def test_load_knows_the_bundled_scenarios_and_ws_hold() -> None:
    names = load.scenario_names()
    assert {"mixed", "ingest", "search-heavy", "graph", "ws-hold"} <= set(names)
    assert names[-1] == "ws-hold"


def test_load_against_nothing_is_a_target_error() -> None:
    with pytest.raises(TargetError, match="cannot connect"):
        load.run_load_command(url="http://127.0.0.1:9", scenario="mixed", duration=1, concurrency=1,
                              seed_per_tenant=0, warmup=0)


@pytest.mark.parametrize(("report", "line"), [
    ({"errors": 3, "requests": 100, "url": "http://e:1"},
     "3 of 100 requests to http://e:1 failed; see the errors above"),
    ({"errors": 2, "requested": 50}, "2 of 50 requests to the engine failed; see the errors above"),
])
def test_load_failure_line(report: dict[str, Any], line: str) -> None:
    assert load.failure_line(report) == line


# -- refused before any work ---------------------------------------------------------------------------


def test_async_and_lines_cannot_attach_and_store_nothing(tmp_path: Path) -> None:
    opts = options(tmp_path / "store", pid=os.getpid())
    with pytest.raises(UsageError, match="yappi cannot attach"):
        async_.run_async(opts, block_threshold_ms=10, top=5)
    with pytest.raises(UsageError, match="scalene cannot attach"):
        lines.run_lines(opts, top=5)
    assert not (tmp_path / "store").exists()


def test_mem_refuses_a_command_that_is_not_python(tmp_path: Path) -> None:
    opts = options(tmp_path / "store", command=("sleep", "1"))
    with pytest.raises(UsageError, match="memray runs Python programs in process"):
        mem.run_mem(opts, native=False, leaks=False, peak_budget=None, budget=None, top=5)
    assert not (tmp_path / "store").exists()


def test_flame_on_a_dead_pid_stores_nothing(tmp_path: Path, dead_pid: int) -> None:
    with pytest.raises(TargetError, match=f"no process with pid {dead_pid}") as caught:
        run_flame(options(tmp_path / "store", pid=dead_pid), rate=100, native=False, subprocesses=False, idle=False,
                  gil=False, nonblocking=False, top=5)
    assert caught.value.exit_code == 4
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(("specs", "expected"), [
    ([], {}), (["get=1.12"], {"get": 1.12}), (["get=1", "create=2.5"], {"get": 1.0, "create": 2.5})])
def test_bench_reads_inject(specs: list[str], expected: dict[str, float]) -> None:
    assert bench.parse_inject(specs) == expected


@pytest.mark.parametrize(("spec", "message"), [("get", "OP=FACTOR such as get=1.12"), ("get=x", "OP=FACTOR"),
                                               ("get=0.9", "can only slow an operation down")])
def test_bench_refuses_a_bad_inject(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        bench.parse_inject([spec])


def test_bench_report_paths_never_overwrite(tmp_path: Path) -> None:
    md, html, raw = bench.report_paths(tmp_path / "reports")
    assert (md.suffix, html.suffix, raw.suffix) == (".md", ".html", ".json") and md.stem == html.stem == raw.stem
    md.write_text("taken")
    md2, _, _ = bench.report_paths(tmp_path / "reports")
    assert md2 != md and md2.stem.startswith(md.stem)


def test_bench_instructions_refuse_inject_and_an_unknown_suite_before_any_work(tmp_path: Path) -> None:
    common: dict[str, Any] = {"quick": True, "op_filter": None, "save_baseline": None, "baseline": None,
                              "baselines_dir": tmp_path / "b", "reports_dir": tmp_path / "r", "store": tmp_path / "s",
                              "budget_path": None, "workers": None, "samples": None}
    with pytest.raises(UsageError, match="has no meaning with --mode instructions"):
        bench.run_bench_command(suites=[], inject=["get=1.2"], mode="instructions", **common)
    with pytest.raises(UsageError, match="unknown suite 'nope'"):
        bench.run_bench_command(suites=["nope"], inject=[], **common)
    with pytest.raises(UsageError, match="--mode must be time or instructions"):
        bench.run_bench_command(suites=[], inject=[], mode="cycles", **common)
    assert list(tmp_path.iterdir()) == []


def test_regress_refuses_fewer_than_two_rounds_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--rounds must be at least 2"):
        regress.run_regress_command(base="main", head="WORKTREE", quick=True, suites=[], op_filter=None, rounds=1,
                                    output=tmp_path / "r.md", repo=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_serve_checks_db_embedder_and_port_before_starting(tmp_path: Path) -> None:
    serve.check_serve(host="127.0.0.1", port=free_port(), db=tmp_path / "new.db", embedder="hashing")
    assert not (tmp_path / "new.db").exists()  # checking creates nothing


def test_serve_refuses_a_db_that_is_a_folder_or_not_sqlite(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a folder"):
        serve.check_db(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    with pytest.raises(UsageError, match="is not an SQLite database"):
        serve.check_db(text)
    assert text.read_text() == "not a database"
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    serve.check_db(empty)


@pytest.mark.parametrize("spec", ["bert", "st:", "openai:x"])
def test_serve_refuses_an_embedder_it_does_not_know(spec: str) -> None:
    with pytest.raises(UsageError, match="is not an embedder"):
        serve.check_embedder(spec)


def test_serve_refuses_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is already in use"):
            serve.check_port("127.0.0.1", port)


def test_serve_knows_loopback() -> None:
    assert serve.is_loopback("127.0.0.1") and serve.is_loopback("localhost") and serve.is_loopback("::1")
    assert not serve.is_loopback("0.0.0.0")


def test_top_needs_a_terminal_and_a_positive_duration() -> None:
    assert not sys.stdout.isatty()
    with pytest.raises(UsageError, match="needs a terminal"):
        top.run_top(pid=os.getpid(), rate=100, native=False, duration=None)
    with pytest.raises(UsageError, match="--duration must be positive"):
        top.run_top(pid=os.getpid(), rate=100, native=False, duration=0)


# -- async findings ------------------------------------------------------------------------------------


def _row(name: str, *, origin: str = "program", entry: bool = False, wall: float | None = 10.0,
         steps: int | None = 3, blocking: bool = False, stalled: bool = False, cpu: float = 1.0,
         line: int = 1) -> dict[str, Any]:
    return {"name": name, "file": "app.py", "line": line, "origin": origin, "entry": entry, "calls": 1,
            "wall_ms": wall, "cpu_ms": cpu, "steps": steps, "max_step_ms": cpu * 2, "max_step_cpu_ms": cpu,
            "cpu_blocking_steps": int(blocking), "stalled_steps": int(stalled), "blocking": blocking,
            "stalled": stalled}


def _table(rows: list[dict[str, Any]], callbacks: list[dict[str, Any]] | None = None,
           loop_steps: int = 100) -> dict[str, Any]:
    return {"clock": "wall", "block_threshold_ms": 10.0, "loop_steps": loop_steps, "coroutines": rows,
            "callbacks": callbacks or [],
            "top_functions": [{"function": "f", "file": "app.py", "line": 1, "calls": 1, "wall_ms": 1.0,
                               "own_wall_ms": 1.0},
                              {"function": "_call_with_frames_removed", "file": "<frozen importlib._bootstrap>",
                               "line": 241, "calls": 1, "wall_ms": 1.0, "own_wall_ms": 1.0}],
            "program": {"exit_code": 0, "failure": None, "elapsed_s": 1.0}}


def test_async_findings_rank_the_programs_own_coroutines() -> None:
    rows = [_row("main", entry=True, wall=1000.0), _row("sleep", origin="stdlib", wall=900.0),
            _row("slow", wall=500.0, line=2), _row("fast", wall=5.0, line=3), _row("unfinished", wall=None, line=4)]
    findings = async_.summarise(_table(rows), top=5)
    assert [r["name"] for r in findings["coroutines"]] == ["slow", "fast"]
    assert [r["name"] for r in findings["entry"]] == ["main"]
    assert [f["function"] for f in findings["top_functions"]] == ["f"]  # frozen importlib frames left out
    assert "note" not in findings
    assert len(async_.summarise(_table(rows), top=1)["coroutines"]) == 1


def test_async_findings_separate_blocking_from_stalling() -> None:
    rows = [_row("burns", blocking=True, cpu=50.0, line=2), _row("burns_more", blocking=True, cpu=80.0, line=3),
            _row("sleeps", stalled=True, cpu=0.1, line=4), _row("both", blocking=True, stalled=True, cpu=20.0, line=5)]
    callback = {**_row("on_timer", stalled=True, cpu=0.2, line=9), "name": "on_timer"}
    findings = async_.summarise(_table(rows, [callback]), top=10)
    assert [(f["name"], f["kind"]) for f in findings["blocking"]] == [
        ("burns_more", "coroutine"), ("burns", "coroutine"), ("both", "coroutine")]
    assert sorted((f["name"], f["kind"]) for f in findings["stalled"]) == [("on_timer", "callback"),
                                                                          ("sleeps", "coroutine")]


def test_async_findings_without_loop_steps_explain_why() -> None:
    findings = async_.summarise(_table([_row("x")], loop_steps=0), top=5)
    assert "uvloop" in findings["note"]


# -- flame, for real -----------------------------------------------------------------------------------


def test_run_flame_on_a_one_second_program(tmp_path: Path) -> None:
    """py-spy samples a real child in process: the known hot function on top, every artifact filed."""
    store = tmp_path / "store"
    doc = run_flame(options(store, command=(sys.executable, str(PROGRAMS / "cpu_hot.py"), "1")), rate=200,
                    native=False, subprocesses=False, idle=False, gil=False, nonblocking=False, top=3)
    assert doc["command"] == "flame" and doc["status"] == "complete" and "error" not in doc
    findings = doc["findings"]
    assert findings["rate_hz"] == 200 and findings["samples"] > 20
    assert findings["top_functions"][0]["function"] == "hot_function", findings["top_functions"]
    assert findings["top_by_total"][0]["function"] in ("<module>", "main")
    assert len(findings["top_functions"]) <= 3
    kinds = {a["kind"]: Path(a["path"]) for a in doc["artifacts"]}
    assert {"collapsed", "flamegraph-svg", "speedscope", "findings-json"} <= set(kinds)
    for a in doc["artifacts"]:
        assert Path(a["path"]).stat().st_size == a["size"] > 0
    manifest = json.loads((Path(doc["folder"]) / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["findings"]["samples"] == findings["samples"]
    assert manifest["target"]["kind"] == "command"
