"""Every terminal renderer (profkit.render.terminal.*.show) over a constructed or recorded result, at 80 columns.

What a user reads or copies from a table — a function, a coroutine, a run id, an operation — must
come out whole on one line of an 80-column terminal, and nothing may be cut with an ellipsis.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pkgutil
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import profkit.render.terminal as terminal
from profkit import console
from profkit.render.terminal import async_, bench, ci, doctor, dump, flame, lines, load, mem, regress, runs
from profkit.render.terminal.progress import TerminalReporter
from tests.helpers import folded_cell

DATA = Path(__file__).parents[1] / "data"
MODULES = [importlib.import_module(f"{terminal.__name__}.{m.name}") for m in pkgutil.iter_modules(terminal.__path__)]

RUN = "0123456789ab-dirty/flame-20250101T120000Z-12345-abcd"
FOLDER = f"/home/user/project/flamegraphs/{RUN}"
LONG_FUNCTION = "MemoryEngine._search_with_filters"  # 33 characters, a name the engine could well have
SITE = "/opt/python/lib/python3.11/site-packages"  # not under the working folder, so named from site-packages


@dataclass
class Screen:
    """What the renderers printed on stdout and stderr."""

    _out: io.StringIO
    _err: io.StringIO

    @property
    def out(self) -> str:
        return self._out.getvalue()

    @property
    def err(self) -> str:
        return self._err.getvalue()


@pytest.fixture
def screens(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], Screen]:
    """Both consoles, made as profkit.console makes them but ``width`` columns wide, printing into buffers."""

    def make(width: int) -> Screen:
        out_buf, err_buf = io.StringIO(), io.StringIO()
        out = Console(file=out_buf, width=width, soft_wrap=True)
        err = Console(file=err_buf, width=width, soft_wrap=True)
        for module in [console, *MODULES]:
            if isinstance(getattr(module, "out", None), Console):
                monkeypatch.setattr(module, "out", out)
            if isinstance(getattr(module, "err", None), Console):
                monkeypatch.setattr(module, "err", err)
        return Screen(out_buf, err_buf)

    return make


@pytest.fixture
def screen(screens: Callable[[int], Screen]) -> Screen:
    """An 80-column terminal."""
    return screens(80)


def whole(text: str, *names: str) -> None:
    """Each name on one line of ``text``, and no ellipsis anywhere."""
    for name in names:
        assert any(name in line for line in text.splitlines()), f"{name!r} is not whole on one line:\n{text}"
    assert "…" not in text, f"something was cut:\n{text}"


def kept(text: str, value: str) -> None:
    """``value`` whole on one line, or folded down its column with every character kept; no ellipsis."""
    assert "…" not in text, f"something was cut:\n{text}"
    if any(value in line for line in text.splitlines()):
        return
    assert folded_cell(text, value[:8]).startswith(value), f"{value!r} was cut:\n{text}"


def in_last_column(text: str, header: str, value: str) -> None:
    """``value`` (a source line, a detail: text that wraps) complete in the table's last column, ``header``."""
    assert "…" not in text, f"something was cut:\n{text}"
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if line.rstrip().endswith(header))
    left = lines[top].rindex(header)
    column = "".join(line[left:] for line in lines[top + 2:])
    assert "".join(value.split()) in "".join(column.split()), f"{value!r} is not whole in:\n{text}"


def summary(status: str = "complete", *kinds: str) -> dict[str, Any]:
    return {"run": RUN, "folder": FOLDER, "status": status,
            "artifacts": [{"path": f"{FOLDER}/{k}.out", "kind": k, "size": 10, "sha256": "0" * 64} for k in kinds]}


# -- flame ---------------------------------------------------------------------------------------------


def _fn(function: str, file: str, own: float, total: float) -> dict[str, Any]:
    return {"function": function, "file": file, "own_samples": int(own * 10), "total_samples": int(total * 10),
            "own_pct": own, "total_pct": total}


def test_flame_names_each_hot_function_and_its_file_whole(screen: Screen) -> None:
    # files as py-spy names them: relative to the sys.path entry they were imported from
    top = [_fn("MemoryRepository.list_memories", "agentmem/storage.py", 81.03, 97.24),
           _fn("_compile_bytecode", "<frozen importlib._bootstrap_external>", 10.0, 10.0),
           _fn("native_thread_start", "", 0.5, 100.0)]
    doc = {"command": "flame", **summary("complete", "flamegraph-svg", "speedscope"),
           "findings": {"samples": 1234, "rate_hz": 100, "top_functions": top, "top_by_total": top}}
    flame.show(doc)  # type: ignore[arg-type]
    whole(screen.out, "hottest functions — 1234 samples at 100 Hz", "MemoryRepository.list_memories",
          "agentmem/storage.py", "_compile_bytecode", "<frozen importlib._bootstrap_external>", "native_thread_start",
          "81.0", "97.2", "100.0")
    whole(screen.err, f"complete: artifacts in {FOLDER}", f"{FOLDER}/flamegraph-svg.out")


# -- mem -----------------------------------------------------------------------------------------------


def _site(function: str, file: str, line: int, n: int, count: int, user: bool = True,
          share: float | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"function": function, "file": file, "line": line, "bytes": n, "count": count,
                           "user_code": user}
    if share is not None:
        row["share"] = share
    return row


def _mem_doc(*, leaks: bool, exceeded: bool) -> dict[str, Any]:
    top = [_site("Corpus._embed_batch_of_documents", f"{SITE}/agentmem/workload/corpus.py", 211, 512 * 2**20, 150_000),
           _site("<module>", "/usr/lib/python3.11/importlib/__init__.py", 126, 2**20, 900, user=False)]
    findings: dict[str, Any] = {
        "mode": "run", "seconds_recorded": 2.345, "native": False, "python_allocator": "malloc",
        "peak_memory_bytes": 96 * 2**20, "total_allocated_bytes": 3 * 2**30, "total_allocations": 1_234_567,
        "top_functions": top, "peak_functions": top[:1],
        "budget": {"limit": "64MB", "limit_bytes": 64_000_000, "exceeded": exceeded,
                   "headroom_bytes": 64_000_000 - 96 * 2**20},
    }
    if leaks:
        findings["leaks"] = [_site("Cache._remember_forever", f"{SITE}/agentmem/cache.py", 40, 20 * 2**20, 20_000,
                                   share=0.93)]
        findings["leaked_bytes_total"] = 22 * 2**20
        findings["leak_threshold"] = {"min_bytes": 1_048_576, "min_share": 0.05}
    return {"command": "mem", **summary("complete", "memray-bin", "memray-html"), "findings": findings}


def test_mem_shows_totals_allocators_leaks_and_the_budget(screen: Screen) -> None:
    mem.show(_mem_doc(leaks=True, exceeded=True))  # type: ignore[arg-type]
    whole(screen.out,
          "peak memory 96.0 MiB   allocated 3.0 GiB in 1,234,567 allocations   (run, 2.3 s, allocator malloc)",
          "top allocating functions (bytes allocated in total)", "memory held at the peak, by function",
          "Corpus._embed_batch_of_documents", "<module>", "512.0 MiB", "150,000",
          "never freed — 22.0 MiB in total", "Cache._remember_forever", "93%",
          "peak 96.0 MiB is over the budget 64MB")
    whole(screen.out, "site-packages/agentmem/workload/corpus.py:211", "site-packages/agentmem/cache.py:40",
          "/usr/lib/python3.11/importlib/__init__.py:126")
    whole(screen.err, f"complete: artifacts in {FOLDER}")


def test_mem_keeps_every_character_of_a_long_path(screen: Screen) -> None:
    """A file outside the working folder, site-packages and the stdlib is shown as it is: whole or folded, never cut."""
    path = "/srv/services/ingestion-pipeline/releases/2025-01-01/src/ingest/handlers/batch_writer.py"
    doc = _mem_doc(leaks=False, exceeded=False)
    doc["findings"]["top_functions"] = [_site("BatchWriter.flush", path, 211, 2**20, 10)]
    mem.show(doc)  # type: ignore[arg-type]
    kept(screen.out, f"{path}:211")
    whole(screen.out, "BatchWriter.flush", "1.0 MiB")


def test_mem_without_leaks_says_what_would_have_counted(screen: Screen) -> None:
    doc = _mem_doc(leaks=True, exceeded=False)
    doc["findings"]["leaks"] = []
    mem.show(doc)  # type: ignore[arg-type]
    whole(screen.out, "no leaks: no function kept 1.0 MiB and 5% of the 22.0 MiB never freed",
          "peak 96.0 MiB is within the budget 64MB")


@pytest.mark.parametrize(("file", "expected"), [
    ("agentmem/engine.py", "agentmem/engine.py:7"),
    ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap>:7"),
    (f"{SITE}/numpy/core/numeric.py", "site-packages/numpy/core/numeric.py:7"),
    (f"{sysconfig.get_paths()['stdlib']}/json/decoder.py", "stdlib/json/decoder.py:7"),
    ("/opt/elsewhere/tool.py", "/opt/elsewhere/tool.py:7"),
])
def test_mem_says_where_as_short_as_it_can(file: str, expected: str) -> None:
    assert mem.where(_site("f", file, 7, 1, 1)) == expected  # type: ignore[arg-type]


def test_mem_where_is_relative_to_the_working_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert mem.where(_site("f", f"{os.getcwd()}/pkg/mod.py", 3, 1, 1)) == "pkg/mod.py:3"  # type: ignore[arg-type]


# -- async ---------------------------------------------------------------------------------------------


def _recorded_async(name: str = "async_known") -> dict[str, Any]:
    # profkit async --json on tests/programs/async_known.py, and on the bundled scenario (tests/data/README.md)
    return json.loads((DATA / f"{name}.json").read_text())


def test_async_says_which_coroutine_blocks_and_which_stalls_the_loop(screen: Screen) -> None:
    async_.show(_recorded_async())  # type: ignore[arg-type]
    blocks = next(line for line in screen.out.splitlines() if line.startswith("blocks the loop:"))
    stalls = next(line for line in screen.out.splitlines() if line.startswith("stalls the loop:"))
    assert "coroutine blocker (async_known.py:" in blocks and "4 step(s) over the threshold" in blocks
    assert "coroutine sleeper (async_known.py:" in stalls and "3 step(s) over the threshold" in stalls
    assert "functions by total wall time" in screen.out and "burn_cpu" in screen.out
    assert "snakeviz" in screen.err


def test_async_without_loop_steps_shows_the_note(screen: Screen) -> None:
    doc = _recorded_async()
    doc["findings"]["note"] = "no asyncio event-loop steps were seen"
    async_.show(doc)  # type: ignore[arg-type]
    assert "note: no asyncio event-loop steps were seen" in screen.err


def test_async_coroutine_table_of_the_known_answer_program_fits_80_columns(screen: Screen) -> None:
    async_.show(_recorded_async())  # type: ignore[arg-type]
    table = screen.out.split("blocks the loop:")[0]
    whole(table, "slow_waiter", "blocker", "sleeper", "quick")
    # The flags are the rows' colours and a sentence each after the table.
    whole(screen.out, "blocks the loop: coroutine blocker", "stalls the loop: coroutine sleeper")


def test_async_coroutine_table_of_the_bundled_scenario_fits_80_columns(screen: Screen) -> None:
    doc = _recorded_async("async_mixed")
    async_.show(doc)  # type: ignore[arg-type]
    table = screen.out.split("blocks the loop:")[0]
    whole(table, *(r["name"] for r in doc["findings"]["coroutines"]))
    whole(screen.out, "stalls the loop:")


# -- lines ---------------------------------------------------------------------------------------------


def _line_view(short: str, line: int, source: str, cpu: float, alloc: float) -> dict[str, Any]:
    return {"file": f"/srv/{short}", "line": line, "source": source, "cpu_python_pct": cpu * 0.9,
            "cpu_native_pct": cpu * 0.1, "cpu_system_pct": 0.0, "peak_mb": alloc, "avg_mb": alloc / 2,
            "alloc_mb": alloc, "alloc_pct": 50.0, "copy_mb_s": 0.0, "cpu_pct": cpu, "short": short,
            "key": f"/srv/{short}:{line}"}


def test_lines_names_each_hot_line_whole(screen: Screen) -> None:
    source = "        total = sum(value * weight for value, weight in pairs_of_values_and_weights)"
    hot = _line_view("agentmem/workload/corpus.py", 1234, source, 72.5, 0.0)
    big = _line_view("agentmem/index.py", 88, "    buf = bytearray(8 * 1024 * 1024)", 1.0, 96.0)
    doc = {"command": "lines", **summary("complete", "scalene-json", "scalene-html"),
           "findings": {"elapsed_s": 2.5, "max_footprint_mb": 96.4, "max_footprint_at": None, "files": [],
                        "top_cpu": [hot, big], "top_memory": [big]}}
    lines.show(doc)  # type: ignore[arg-type]
    whole(screen.out, "top lines by CPU (2.5 s profiled)", "agentmem/workload/corpus.py:1234", "72.5",
          "top lines by memory allocated (peak footprint 96.4 MB)", "agentmem/index.py:88", "96.0")
    in_last_column(screen.out.split("top lines by memory")[0], "source", source)
    whole(screen.err, "scalene's own interactive view: python -m scalene view --standalone FILE.json")


# -- dump ----------------------------------------------------------------------------------------------


def test_dump_shows_every_threads_stack(screen: Screen) -> None:
    frames = ["wait_here_forever (/srv/app/idle_waiter.py:10)", "<module> (/srv/app/idle_waiter.py:18)"]
    doc = {"command": "dump", **summary("complete", "stacks-json"),
           "findings": {"pid": 4242, "python": "3.11", "asyncio_tasks": None, "asyncio_tasks_note": "needs 3.14",
                        "threads": [{"id": 140001, "name": "MainThread", "idle": False, "owns_gil": True,
                                     "frames": frames},
                                    {"id": 140002, "name": None, "idle": True, "owns_gil": False, "frames": []}]}}
    dump.show(doc)  # type: ignore[arg-type]
    whole(screen.out, "pid 4242 (Python 3.11)", "thread 140001 MainThread active GIL", "thread 140002  idle", *frames)
    whole(screen.err, "asyncio tasks: needs 3.14", f"complete: artifacts in {FOLDER}")


# -- doctor --------------------------------------------------------------------------------------------


def test_doctor_shows_each_check_and_its_mark(screen: Screen) -> None:
    checks = [{"check": "py-spy installed", "ok": True, "detail": "version 0.4.3", "required": True},
              {"check": "ptrace of unrelated processes (--pid)", "ok": False, "required": False,
               "detail": "not root, CAP_SYS_PTRACE absent, yama ptrace_scope 1 (only descendants); attaching to a "
                         "process that is not your child will fail"},
              {"check": "memray installed", "ok": False, "detail": "missing: pip install -e .", "required": True}]
    doctor.show({"command": "doctor", "ok": False, "python": "3.11.7", "checks": checks,  # type: ignore[typeddict-item]
                 "target": None})
    whole(screen.out, "profkit doctor (Python 3.11.7)", "py-spy installed", "ptrace of unrelated processes (--pid)",
          "memray installed", "ok", "warn", "FAIL")
    # the long detail wraps, every word of it kept
    in_last_column(screen.out, "detail", checks[1]["detail"])


# -- runs / gc -----------------------------------------------------------------------------------------


def _listing(run: str, status: str, files: int) -> dict[str, Any]:
    return {"run": run, "command": run.split("/")[1].split("-")[0], "status": status, "started_at": 1_735_732_800.0,
            "target": None, "artifacts": files, "folder": f"/store/{run}"}


def test_runs_with_no_runs_says_so_on_stderr(screen: Screen) -> None:
    runs.show_runs({"command": "runs", "store": "/srv/store", "runs": []})
    assert screen.out == "" and screen.err.strip() == "no runs in /srv/store"


def test_runs_lists_short_run_ids_whole(screen: Screen) -> None:
    """A run id with a short pid (the shortest ids profkit makes) and every column whole."""
    short = "0123456789ab/gc-20250101T120000Z-42-abcd"
    runs.show_runs({"command": "runs", "store": "/srv/store", "runs": [_listing(short, "partial", 3)]})
    whole(screen.out, short, "partial")


def test_runs_lists_real_run_ids_whole_at_80_columns(screen: Screen) -> None:
    ids = ["0123456789ab-dirty/flame-20250101T120000Z-12345-abcd",
           "0123456789ab-dirty/async-20250101T120000Z-4194303-c78f"]
    runs.show_runs({"command": "runs", "store": "/srv/store",
                    "runs": [_listing(ids[0], "complete", 4), _listing(ids[1], "running", 12)]})
    whole(screen.out, *ids, "complete", "running", "files")


def test_gc_says_what_it_removed(screen: Screen) -> None:
    removed = [RUN, "0123456789ab-dirty/async-20250101T120000Z-4194303-c78f"]
    runs.show_gc({"command": "gc", "store": "/srv/store", "keep": 2, "dry_run": True, "removed": removed})
    whole(screen.err, "would remove 2 run(s) from /srv/store, kept the newest 2")
    whole(screen.out, *removed)
    assert screen.out.splitlines() == [f"  {r}" for r in removed]


# -- load / ci -----------------------------------------------------------------------------------------


def _stats(n: int) -> dict[str, Any]:
    return {"count": n, "rps": n / 10, "errors": 0, "p50_ms": 1.234, "p95_ms": 12.5, "p99_ms": 45.678,
            "max_ms": 123.4}


LOAD: dict[str, Any] = {
    "scenario": "search-heavy", "url": "http://127.0.0.1:8080", "concurrency": 64, "duration_s": 10.0,
    "operations": {"search": _stats(12_000), "get": _stats(3_000), "traverse": _stats(1_000)},
    "requests": 16_000, "rps": 1600.0, "errors": 2,
    "latency": {"p50_ms": 1.5, "p95_ms": 13.0, "p99_ms": 46.0, "max_ms": 130.0},
    "error_samples": ["POST /v1/agents/a/users/u/memories/search: 503 Service Unavailable"],
}


def test_load_shows_each_operation_and_the_errors(screen: Screen) -> None:
    load.show(LOAD)
    whole(screen.out, "search-heavy on http://127.0.0.1:8080 — 64 connections, 10.0 s", "search", "traverse",
          "12000", "1200", "45.68", "all", "1600")
    whole(screen.err, "error: POST /v1/agents/a/users/u/memories/search: 503 Service Unavailable")


def test_load_ws_hold_is_one_line(screen: Screen) -> None:
    load.show({"scenario": "ws-hold", "opened": 200, "requested": 200, "open_seconds": 1.2, "answered": 199,
               "hold_seconds": 5, "errors": 1, "server_rss_mb": 80.5})
    assert screen.out.splitlines() == ["WebSockets: 200/200 opened in 1.2 s, 199 answered after 5 s, errors 1, "
                                       "server RSS 80.5 MB"]


def _ci_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "folder": "/store/abc/ci-x", "load": LOAD, "flame": None, "flame_error": None, "commit": "a" * 40,
        "dirty": False, "index": "/store/abc/index.json", "bench": None, "mem": None, "async": None, "errors": {},
        "against": None, "seconds": 95.0, "runs": {}, "dashboard": "/store/site/index.html"}
    return doc | changes


def test_ci_shows_the_load_and_the_engines_hot_spots(screen: Screen) -> None:
    flame_doc = {"command": "flame", **summary(), "findings": {
        "samples": 100, "rate_hz": 100, "top_by_total": [],
        "top_functions": [_fn(LONG_FUNCTION, "agentmem/engine.py", 40.0, 60.0)]}}
    ci.show(_ci_doc(flame=flame_doc))  # type: ignore[arg-type]
    whole(screen.out, f"{LONG_FUNCTION} (agentmem/engine.py) 40%", f"flamegraph: {FOLDER}/flamegraph.svg",
          "artifacts: /store/abc/ci-x (load.json, metrics.prom, engine.log)")


def test_ci_without_a_flamegraph_says_why(screen: Screen) -> None:
    ci.show(_ci_doc(flame_error="py-spy: permission denied [see doctor]"))  # type: ignore[arg-type]
    whole(screen.err, "no flamegraph: py-spy: permission denied [see doctor]")


# -- bench / regress -----------------------------------------------------------------------------------


def _change(op: str, verdict: str, pct: float) -> dict[str, Any]:
    return {"op": op, "verdict": verdict, "change_pct": pct, "ci95_pct": [pct - 2, pct + 2], "p_value": 1e-5,
            "baseline_p50_ms": 0.25, "current_p50_ms": 0.25 * (1 + pct / 100)}


def _bench_doc(baseline: str | None) -> dict[str, Any]:
    def op(name: str, suite: str, budget: str, change: dict[str, Any] | None) -> dict[str, Any]:
        return {"op": name, "suite": suite, "p50_ms": 0.25, "p95_ms": 1.5, "p99_ms": 12.345, "mean_ms": 0.5,
                "stddev_ms": 0.1, "outliers": {"mild": 1, "severe": 0}, "budget": budget, "budget_checks": {},
                "change": change}

    return {"command": "bench", "reports": {"markdown": "reports/benchmark_x.md", "html": "reports/benchmark_x.html"},
            "run": RUN, "folder": FOLDER, "baseline": baseline, "saved_baseline": None, "duration_s": 35.2,
            "config": {}, "recall_at_10": {"search_small": 0.987},
            "operations": [op("list_importance", "database", "within", _change("list_importance", "regression", 12.3)),
                           op("get_uncached", "memory", "over", None)],
            "over_budget": ["get_uncached"], "regressions": ["list_importance"], "warnings": []}


def test_bench_shows_every_operation_and_its_budget(screen: Screen) -> None:
    bench.show(_bench_doc(None))  # type: ignore[arg-type]
    whole(screen.out, "profkit bench (35.2 s, times in ms)", "list_importance", "get_uncached", "within", "over",
          "12.345", "recall@10: search_small 0.987")
    whole(screen.err, "markdown  reports/benchmark_x.md")


def test_bench_against_a_baseline_shows_each_verdict(screens: Callable[[int], Screen]) -> None:
    screen = screens(160)
    bench.show(_bench_doc("main"))  # type: ignore[arg-type]
    whole(screen.out, "profkit bench (35.2 s, times in ms) vs baseline main", "list_importance", "get_uncached",
          "+12.3%", "[+10.3, +14.3]", "regression", "not in baseline")


def test_bench_against_a_baseline_fits_80_columns(screen: Screen) -> None:
    bench.show(_bench_doc("main"))  # type: ignore[arg-type]
    whole(screen.out, "list_importance", "get_uncached", "12.345", "+12.3%", "[+10.3, +14.3]", "regression",
          "not in baseline")


def test_bench_instruction_counts(screen: Screen) -> None:
    doc = {"command": "bench", "mode": "instructions", "reports": {"markdown": "r.md"}, "run": RUN, "folder": FOLDER,
           "baseline": "main", "saved_baseline": "/store/baselines/next.json", "duration_s": 80.0,
           "instructions": {"traverse_d3": 1_234_567.0, "get": 45_000.0},
           "changes": [{"op": "traverse_d3", "baseline": 1e6, "current": 1_234_567.0, "change_pct": 23.46,
                        "verdict": "regression"}], "regressions": ["traverse_d3"], "warnings": []}
    bench.show(doc)  # type: ignore[arg-type]
    whole(screen.out, "instructions per call (callgrind, 80.0 s)", "traverse_d3", "1,234,567",
          "+23.46% regression", "45,000")
    whole(screen.err, "baseline saved: /store/baselines/next.json")


def _regress_doc() -> dict[str, Any]:
    return {"command": "regress", "base": {"ref": "main", "commit": "1" * 40},
            "head": {"ref": "WORKTREE", "commit": "2" * 40, "dirty": True}, "report": "regression-report.md",
            "changes": [_change("list_importance", "regression", 12.3), _change("traverse_d3", "faster", -20.0),
                        _change("(suite-wide)", "no change", 0.4)],
            "verdict": "regression", "regressions": ["list_importance"], "warnings": [], "seconds": 300.0}


def test_regress_shows_each_operation_and_where_the_report_is(screens: Callable[[int], Screen]) -> None:
    screen = screens(120)
    regress.show(_regress_doc())  # type: ignore[arg-type]
    whole(screen.out, "WORKTREE against main", "list_importance", "traverse_d3", "(suite-wide)", "+12.3%",
          "[+10.3, +14.3]", "regression", "faster", "no change")
    whole(screen.err, "report: regression-report.md")


def test_regress_fits_80_columns(screen: Screen) -> None:
    regress.show(_regress_doc())  # type: ignore[arg-type]
    whole(screen.out, "list_importance", "traverse_d3", "+12.3%", "-20.0%", "[+10.3, +14.3]", "regression", "change")


# -- progress ------------------------------------------------------------------------------------------


def test_progress_is_silent_off_a_terminal_but_notes_still_print() -> None:
    buf = io.StringIO()
    reporter = TerminalReporter(Console(file=buf, width=80))
    assert not reporter.show
    with reporter.stage("sampling") as tick:
        tick("still sampling")
        tick()
    reporter.note("engine on http://127.0.0.1:8080")
    assert buf.getvalue() == "engine on http://127.0.0.1:8080\n"
