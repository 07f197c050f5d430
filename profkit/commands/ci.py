"""profkit ci — the main job: run the bundled engine under a realistic load for the current commit.

Later stages (flamegraphs, memory, coroutine timing, benchmarks) join this job; today it starts
the engine in its own process, seeds it, drives the mixed scenario, and files the load report,
a snapshot of the engine's Prometheus metrics and the engine log under ``<store>/<commit>/``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..console import err
from ..gitinfo import current_commit
from ..process import Background, free_port, python_module
from .load import run_load_command


@dataclass(frozen=True)
class CiResult:
    folder: Path
    load: dict[str, Any]
    metrics_url: str


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def run_ci(*, store: Path, repo: Path, duration: float, concurrency: int, scenario: str = "mixed") -> CiResult:
    commit = current_commit(repo)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = store / commit.folder_name / f"ci-{stamp}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="profkit-ci-") as tmp:
        argv = python_module("agentmem", "--port", str(port), "--db", str(Path(tmp) / "agentmem.db"))
        with Background(argv, log_path=folder / "engine.log") as engine:
            engine.wait_http(f"{url}/health")
            err.print(f"engine pid {engine.pid} on {url}; Prometheus metrics at [bold]{url}/metrics[/] "
                      f"(and {url}/metrics/prometheus) while the job runs")
            report = run_load_command(url=url, scenario=scenario, duration=duration, concurrency=concurrency,
                                      seed_per_tenant=100, warmup=2.0)
            metrics = httpx.get(f"{url}/metrics", timeout=30).content
    _write_atomic(folder / "load.json", json.dumps(report, indent=2).encode())
    _write_atomic(folder / "metrics.prom", metrics)
    return CiResult(folder=folder, load=report, metrics_url=f"{url}/metrics")
