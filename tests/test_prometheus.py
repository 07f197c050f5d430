"""A real Prometheus server scrapes the engine, and its query API returns the engine's series."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from profkit.process import free_port
from tests.helpers import EngineProcess

pytestmark = pytest.mark.slow

PROMETHEUS = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")


@pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary (./dev.sh test fetches Debian's into .tools/)")
def test_prometheus_scrapes_the_engine(engine_proc: EngineProcess, client: httpx.Client, tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    client.post("/v1/agents/prom/users/u/memories", json={"content": "scraped"})
    target = engine_proc.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: agentmem\n    metrics_path: /metrics/prometheus\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"),
    )
    try:
        deadline = time.monotonic() + 90
        result: list[dict[str, object]] = []
        while time.monotonic() < deadline and not result:
            time.sleep(1)
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query",
                              params={"query": "agentmem_http_requests_total"}, timeout=5)
                result = r.json()["data"]["result"] if r.status_code == 200 else []
            except httpx.HTTPError:
                continue
        assert result, (tmp_path / "prometheus.log").read_text()[-2000:]
        routes = {s["metric"]["route"] for s in result}  # type: ignore[index]
        assert "/v1/agents/{agent_id}/users/{user_id}/memories" in routes
        up = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": "up{job='agentmem'}"}).json()
        assert up["data"]["result"][0]["value"][1] == "1"
        for name in ("agentmem_cache_hits", "agentmem_memories_total", "process_threads"):
            r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": name}).json()
            assert r["data"]["result"], name
    finally:
        proc.terminate()
        proc.wait(30)
