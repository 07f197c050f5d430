"""ci — the continuous-profiling job for the current commit, in one command.

1. the bench suites (``bench --quick`` by default), as a ``bench`` run;
2. the engine in its own process under the mixed load while py-spy samples it (a ``flame`` run of
   its own), filed as a ``ci`` run with the load report, the engine's Prometheus metrics and log;
3. a memory profile (memray) and an async profile (yappi) of the mixed scenario, as ``mem`` and
   ``async`` runs;
4. the commit index ``<store>/<commit>/index.json`` pointing at all of them, with the bench figures;
5. with a commit to compare against (``--against REF``, by default the newest other commit of the
   store), the bench comparison, added to the index.

A step that fails is reported and the job goes on: a flamegraph is worth having when the memory
profile could not be made. Only failed requests under load fail the job (exit 1), as before.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx

from .. import commit_index
from ..backends.pyspy import CONTINUOUS
from ..bench.compare import REGRESSION, SLOWER, compare
from ..errors import CheckFailed, ProfkitError, UsageError
from ..gitinfo import Commit
from ..process import Background, free_port, python_module
from ..progress import SILENT, Reporter
from ..results import AsyncResult, BenchResult, CiComparison, CiResult, FlameResult, LoadReport, MemResult
from ..session import Options, repo_commit
from ..store import ArtifactStore
from .flame import run_flame
from .load import LoadProgress, drive, failure_line

PROFILE_SECONDS = 8.0
# bench presets of the job: (quick store?, workers, rounds); None = the preset's own. "smoke" checks
# that the job works end to end in seconds; its figures are too coarse for trends.
BENCH_PRESETS: dict[str, tuple[bool, int | None, int | None]] = {
    "quick": (True, None, None), "full": (False, None, None), "smoke": (True, 2, 20)}
Doc = TypeVar("Doc")


def run_ci(*, store: Path, duration: float, concurrency: int, scenario: str = "mixed", bench: str | None = "quick",
           profile_seconds: float = PROFILE_SECONDS, against: str | None = None, reporter: Reporter = SILENT,
           on_progress: LoadProgress | None = None) -> CiResult:
    """The whole job; raises CheckFailed (with the result) when requests of the load failed."""
    if bench not in (None, *BENCH_PRESETS):
        raise UsageError(f"--bench must be {', '.join(BENCH_PRESETS)} or none, got {bench!r}")
    commit = repo_commit()
    base = _comparison_base(store, commit, against)
    started = time.time()
    errors: dict[str, str] = {}

    def step(name: str, work: Callable[[], Doc]) -> Doc | None:
        with reporter.stage(f"ci: {name}"):
            try:
                return work()
            except ProfkitError as exc:
                if exc.result is not None and name != "load":
                    return exc.result  # type: ignore[return-value]  # partial work is still the step's result
                errors[name] = str(exc)
                reporter.note(f"[yellow]ci: {name} failed:[/] {exc}")
                return None

    bench_doc = step("bench", lambda: _bench(store, bench)) if bench else None
    with reporter.stage("ci: the engine under load, sampled by py-spy") as tick:
        def progress(elapsed: float, done: int, failed: int) -> None:
            tick(f"ci: the engine under load, sampled by py-spy: {elapsed:.0f}/{duration:g} s, {done} requests"
                 + (f", {failed} failed" if failed else ""))

        load = _load_and_flame(store, commit, duration, concurrency, scenario, reporter, on_progress or progress)
    mem_doc = step("memory profile", lambda: _mem(store, scenario, profile_seconds))
    async_doc = step("async profile", lambda: _async(store, scenario, profile_seconds))
    comparison = _compare(store, base, bench_doc) if base is not None and bench_doc is not None else None
    diffs: dict[str, str | None] = {}
    if base is not None:
        if load["flame"] is not None:
            diffs["flame_diff"] = step(f"CPU diff against {base['folder']}",
                                       lambda: _diff(store, base, commit, memory=False))
        if mem_doc is not None:
            diffs["memory_diff"] = step(f"memory diff against {base['folder']}",
                                        lambda: _diff(store, base, commit, memory=True))
        if comparison is not None:
            comparison["diffs"] = {k: v for k, v in diffs.items() if v}
    job = {"started_at": started, "ended_at": time.time(), "scenario": scenario, "errors": errors,
           "runs": {"bench": _run(bench_doc), "load": load["run"], "flame": _run(load["flame"]), "mem": _run(mem_doc),
                    "async": _run(async_doc)},
           "artifacts": {**_artifacts(store, commit, bench_doc, load, mem_doc, async_doc), **diffs},
           "bench": _bench_figures(store, commit, bench_doc), "against": comparison}
    index = commit_index.record_job(store, commit, job)
    site = step("dashboard", lambda: _dashboard(store))
    result: CiResult = {"folder": load["folder"], "load": load["report"], "flame": load["flame"],
                        "flame_error": load["flame_error"], "commit": commit.sha, "dirty": commit.dirty,
                        "index": str(store / commit.folder_name / commit_index.INDEX), "bench": bench_doc,
                        "mem": mem_doc, "async": async_doc, "errors": errors, "against": comparison,
                        "seconds": round(time.time() - started, 1), "runs": index["runs"], "dashboard": site}
    if load["report"]["errors"]:
        raise CheckFailed(failure_line(load["report"]), result=result)
    return result


def _run(doc: Any) -> str | None:
    return str(doc["run"]) if isinstance(doc, dict) and doc.get("run") else None


def _bench(store: Path, preset: str | None) -> BenchResult:
    from .bench import run_bench_command

    # The reports are filed in the bench run; the loose copies `profkit bench` also writes go nowhere.
    with tempfile.TemporaryDirectory(prefix="profkit-ci-reports-") as reports:
        quick, workers, samples = BENCH_PRESETS[preset or "quick"]
        doc = run_bench_command(quick=quick, suites=[], op_filter=None, save_baseline=None,
                                baseline=None, baselines_dir=store / "baselines", reports_dir=Path(reports),
                                store=store, budget_path=None, inject=[], workers=workers, samples=samples)
    result = cast(BenchResult, doc)  # the timed mode: never --mode instructions here
    folder = Path(result["folder"])
    r = result["reports"]
    result["reports"] = {"markdown": str(folder / Path(r.get("markdown", "")).name),
                         "html": str(folder / Path(r.get("html", "")).name),
                         "json": str(folder / Path(r.get("json", "")).name)}
    return result


def _mem(store: Path, scenario: str, seconds: float) -> MemResult:
    from .mem import run_mem

    opts = Options(scenario=scenario, command=(), pid=None, duration=seconds, store=store)
    return run_mem(opts, native=False, leaks=False, peak_budget=None, budget=None, top=15)


def _async(store: Path, scenario: str, seconds: float) -> AsyncResult:
    from .async_ import run_async

    opts = Options(scenario=scenario, command=(), pid=None, duration=seconds, store=store)
    return run_async(opts, block_threshold_ms=10.0, top=15)


def _load_and_flame(store: Path, commit: Commit, duration: float, concurrency: int, scenario: str,
                    reporter: Reporter, on_progress: LoadProgress | None) -> dict[str, Any]:
    """The engine in its own process under load, sampled by py-spy meanwhile; filed as a ``ci`` run."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    target = {"kind": "engine", "scenario": scenario, "duration": duration, "concurrency": concurrency}
    flame: dict[str, FlameResult] = {}
    flame_error: dict[str, str] = {}
    with ArtifactStore(store).open_run("ci", commit=commit, target=target, tools={}) as run, \
            tempfile.TemporaryDirectory(prefix="profkit-ci-") as tmp:
        argv = python_module("agentmem", "--port", str(port), "--db", str(Path(tmp) / "agentmem.db"))
        with Background(argv, log_path=run.path("engine.log")) as engine:
            engine.wait_http(f"{url}/health")
            reporter.note(f"engine pid {engine.pid} on {url}; Prometheus metrics at [bold]{url}/metrics[/] "
                          f"(and {url}/metrics/prometheus) while the job runs")

            def sample() -> None:
                opts = Options(scenario=None, command=(), pid=engine.pid, duration=duration, store=store)
                try:
                    flame["doc"] = run_flame(opts, rate=CONTINUOUS.rate, native=False, subprocesses=False,
                                             idle=False, gil=False, nonblocking=CONTINUOUS.nonblocking, top=10)
                except ProfkitError as exc:
                    flame_error["error"] = str(exc)

            sampler = threading.Thread(target=sample, name="profkit-ci-flame")
            sampler.start()
            report: LoadReport = drive(url=url, scenario=scenario, duration=duration, concurrency=concurrency,
                                       seed_per_tenant=100, warmup=2.0, on_progress=on_progress)
            sampler.join()
            metrics = httpx.get(f"{url}/metrics", timeout=30).content
        run.add("engine.log", "engine-log")
        run.write("load.json", json.dumps(report, indent=2).encode(), "load-json")
        run.write("metrics.prom", metrics, "prometheus-metrics")
        flame_doc = flame.get("doc")
        findings = {"rps": report["rps"], "errors": report["errors"], "latency": report["latency"],
                    "flame_run": flame_doc["run"] if flame_doc else None}
        run.finish("complete" if flame_doc else "partial", findings=findings, error=flame_error.get("error"))
    return {"run": run.id, "folder": str(run.folder), "report": report, "flame": flame_doc,
            "flame_error": flame_error.get("error")}


def _relative(store: Path, path: str | Path | None) -> str | None:
    """A path inside the store as the dashboard links it: relative to the store's root."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(store.resolve()))
    except ValueError:
        return None


def _artifact(store: Path, doc: Any, kind: str) -> str | None:
    if not isinstance(doc, dict):
        return None
    for a in doc.get("artifacts", []):
        if a["kind"] == kind:
            return _relative(store, a["path"])
    return None


def _bench_artifact(store: Path, doc: BenchResult | None, suffix: str) -> str | None:
    if doc is None:
        return None
    name = Path(doc["reports"].get("markdown", "")).with_suffix(suffix).name
    return _relative(store, Path(doc["folder"]) / name)


def _artifacts(store: Path, commit: Commit, bench: BenchResult | None, load: dict[str, Any], mem: MemResult | None,
               async_: AsyncResult | None) -> dict[str, str | None]:
    return {
        "bench_report": _bench_artifact(store, bench, ".html"),
        "bench_markdown": _bench_artifact(store, bench, ".md"),
        "bench_json": _bench_artifact(store, bench, ".json"),
        "load_report": _relative(store, Path(load["folder"]) / "load.json"),
        "metrics": _relative(store, Path(load["folder"]) / "metrics.prom"),
        "flamegraph": _artifact(store, load["flame"], "flamegraph-svg"),
        "speedscope": _artifact(store, load["flame"], "speedscope"),
        "collapsed": _artifact(store, load["flame"], "collapsed"),
        "memray_html": _artifact(store, mem, "memray-html"),
        "memory_stats": _artifact(store, mem, "stats-json"),
        "async_table": _artifact(store, async_, "coroutines-json"),
        "async_pstat": _artifact(store, async_, "pstat"),
    }


def _bench_figures(store: Path, commit: Commit, doc: BenchResult | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    ops = {}
    for o in doc["operations"]:
        checks = o["budget_checks"]
        ops[o["op"]] = {"suite": o["suite"], "p50_ms": o["p50_ms"], "p95_ms": o["p95_ms"], "p99_ms": o["p99_ms"],
                        "mean_ms": o["mean_ms"], "p50_ci95": o.get("ci95", {}).get("p50_ms"),
                        "budget": o["budget"],
                        "budget_p50_ms": checks.get("p50", {}).get("limit_ms"),
                        "budget_p99_ms": checks.get("p99", {}).get("limit_ms")}
    return {"run": doc["run"], "config": doc["config"], "ops": ops, "over_budget": doc["over_budget"],
            "json": _bench_artifact(store, doc, ".json")}


def _diff(store: Path, base: dict[str, Any], commit: Commit, *, memory: bool) -> str | None:
    """The differential flamegraph of the base commit's newest profile against this commit's."""
    from .diff import run_diff

    doc = run_diff(a=str(base["folder"]), b=commit.folder_name, store=store, top=15, min_share_pct=0.5, mem=memory)
    return _artifact(store, doc, "diff-svg")


def _dashboard(store: Path) -> str:
    from .dashboard import run_dashboard

    return run_dashboard(store=store)["index"]


def _comparison_base(store: Path, commit: Commit, against: str | None) -> dict[str, Any] | None:
    """The commit index to compare with; an explicit --against that is not in the store is refused now."""
    if against is None:
        return commit_index.previous(store, commit)
    found = commit_index.find(store, against)
    if found is None:
        from ..gitinfo import resolve

        sha = resolve(Path.cwd(), against)
        found = commit_index.find(store, sha) if sha else None
    if found is None:
        known = ", ".join(d["folder"] for d in commit_index.commits(store)[-5:]) or "none yet"
        raise UsageError(f"--against {against}: that commit has no ci job in {store} (newest: {known}); run "
                         f"profkit ci on it first")
    return found


def _compare(store: Path, base: dict[str, Any], bench: BenchResult) -> CiComparison | None:
    base_json = (base.get("bench") or {}).get("json")
    head_json = _bench_artifact(store, bench, ".json")
    if not base_json or not head_json:
        return None
    try:
        a = json.loads((store / base_json).read_text())
        b = json.loads((store / head_json).read_text())
    except (OSError, ValueError):
        return None
    if a.get("config", {}).get("size") != b.get("config", {}).get("size"):
        return None  # a quick bench against a full one: not the same store, not comparable
    changes = compare(a, b)
    return {"commit": str(base["commit"]), "folder": str(base["folder"]), "changes": [c.to_dict() for c in changes],
            "regressions": [c.op for c in changes if c.verdict == REGRESSION],
            "warnings": [c.op for c in changes if c.verdict == SLOWER],
            "note": "runs made at different times: the machine's drift adds to every change; profkit regress "
                    "interleaves both sides and is the merge gate"}
