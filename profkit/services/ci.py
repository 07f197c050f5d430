"""ci — the main job: the bundled engine under a realistic load, profiled, for this commit.

Starts the engine in its own process, seeds it, drives the mixed scenario, and meanwhile samples
the engine with py-spy (a ``flame`` run of its own); files the load report, a snapshot of the
engine's Prometheus metrics and the engine log as a ``ci`` run under ``<store>/<commit>/``.
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import httpx

from ..errors import CheckFailed, ProfkitError
from ..process import Background, free_port, python_module
from ..progress import SILENT, Reporter
from ..results import CiResult, FlameResult
from ..session import Options, repo_commit
from ..store import ArtifactStore
from .flame import run_flame
from .load import LoadProgress, drive, failure_line

SAMPLE_RATE_HZ = 100


def run_ci(*, store: Path, duration: float, concurrency: int, scenario: str = "mixed", reporter: Reporter = SILENT,
           on_progress: LoadProgress | None = None) -> CiResult:
    """Raises CheckFailed (with the result) when requests of the load failed; the runs are filed anyway."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    target = {"kind": "engine", "scenario": scenario, "duration": duration, "concurrency": concurrency}
    flame: dict[str, FlameResult] = {}
    flame_error: dict[str, str] = {}
    with ArtifactStore(store).open_run("ci", commit=repo_commit(), target=target, tools={}) as run, \
            tempfile.TemporaryDirectory(prefix="profkit-ci-") as tmp:
        argv = python_module("agentmem", "--port", str(port), "--db", str(Path(tmp) / "agentmem.db"))
        with Background(argv, log_path=run.path("engine.log")) as engine:
            engine.wait_http(f"{url}/health")
            reporter.note(f"engine pid {engine.pid} on {url}; Prometheus metrics at [bold]{url}/metrics[/] "
                          f"(and {url}/metrics/prometheus) while the job runs")

            def sample() -> None:
                opts = Options(scenario=None, command=(), pid=engine.pid, duration=duration, store=store)
                try:
                    flame["doc"] = run_flame(opts, rate=SAMPLE_RATE_HZ, native=False, subprocesses=False, idle=False,
                                             gil=False, nonblocking=False, top=10)
                except ProfkitError as exc:
                    flame_error["error"] = str(exc)

            sampler = threading.Thread(target=sample, name="profkit-ci-flame")
            sampler.start()
            report = drive(url=url, scenario=scenario, duration=duration, concurrency=concurrency,
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
    result: CiResult = {"folder": str(run.folder), "load": report, "flame": flame_doc,
                        "flame_error": flame_error.get("error")}
    if report["errors"]:
        raise CheckFailed(failure_line(report), result=result)
    return result
