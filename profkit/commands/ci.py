"""profkit ci — the main job: the bundled engine under a realistic load, profiled, for this commit.

Starts the engine in its own process, seeds it, drives the mixed scenario, and meanwhile samples
the engine with py-spy (a ``flame`` run of its own); files the load report, a snapshot of the
engine's Prometheus metrics and the engine log as a ``ci`` run under ``<store>/<commit>/``.
Benchmarks, memory and coroutine profiles join this job as their own runs in later steps.
"""

from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..console import err
from ..errors import ProfkitError
from ..process import Background, free_port, python_module
from ..session import Options, repo_commit
from ..store import ArtifactStore
from .flame import run_flame
from .load import run_load_command


@dataclass(frozen=True)
class CiResult:
    folder: Path
    load: dict[str, Any]
    flame: dict[str, Any] | None
    flame_error: str | None
    metrics_url: str


def run_ci(*, store: Path, duration: float, concurrency: int, scenario: str = "mixed") -> CiResult:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    target = {"kind": "engine", "scenario": scenario, "duration": duration, "concurrency": concurrency}
    with ArtifactStore(store).open_run("ci", commit=repo_commit(), target=target, tools={}) as run, \
            tempfile.TemporaryDirectory(prefix="profkit-ci-") as tmp:
        argv = python_module("agentmem", "--port", str(port), "--db", str(Path(tmp) / "agentmem.db"))
        with Background(argv, log_path=run.path("engine.log")) as engine:
            engine.wait_http(f"{url}/health")
            err.print(f"engine pid {engine.pid} on {url}; Prometheus metrics at [bold]{url}/metrics[/] "
                      f"(and {url}/metrics/prometheus) while the job runs")
            flame: dict[str, Any] = {}

            def sample() -> None:
                try:
                    flame["doc"] = run_flame(
                        Options(scenario=None, command=(), pid=engine.pid, duration=duration, store=store,
                                as_json=True),
                        rate=100, native=False, subprocesses=False, idle=False, gil=False, nonblocking=False,
                        top=10, show_progress=False)
                except ProfkitError as exc:
                    flame["error"] = str(exc)

            sampler = threading.Thread(target=sample, name="profkit-ci-flame")
            sampler.start()
            report = run_load_command(url=url, scenario=scenario, duration=duration, concurrency=concurrency,
                                      seed_per_tenant=100, warmup=2.0)
            sampler.join()
            metrics = httpx.get(f"{url}/metrics", timeout=30).content
        run.add("engine.log", "engine-log")
        run.write("load.json", json.dumps(report, indent=2).encode(), "load-json")
        run.write("metrics.prom", metrics, "prometheus-metrics")
        findings = {"rps": report["rps"], "errors": report["errors"], "latency": report["latency"],
                    "flame_run": flame["doc"]["run"] if "doc" in flame else None}
        run.finish("complete" if "doc" in flame else "partial", findings=findings, error=flame.get("error"))
    return CiResult(folder=run.folder, load=report, flame=flame.get("doc"), flame_error=flame.get("error"),
                    metrics_url=f"{url}/metrics")
