"""The Grafana dashboard (.github/grafana/agentmem-dashboard.json) asks Prometheus only what the engine answers.

The real engine under a little load (creates, cache hits, searches, 404s), scraped by a real Prometheus
(PROMETHEUS_BIN, as in tests/test_prometheus.py); every panel's every query must return data, and data
that is a number.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from profkit.process import free_port
from tests.helpers import REPO, EngineProcess

DASHBOARD = REPO / ".github" / "grafana" / "agentmem-dashboard.json"
METRICS_PY = REPO / "targets" / "agentmem" / "metrics.py"
PROMETHEUS = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
JOB = "agentmem"
# Grafana replaces $__rate_interval with max(4 x the data source's scrape interval, query step + scrape
# interval). Here Prometheus scrapes every second and the load runs the whole time, so any window of a few
# scrapes has data; 30s holds about 30 of them, so rate() sees the load and not one scrape's jitter.
RATE_WINDOW = "30s"
VARIABLES = {"$__rate_interval": RATE_WINDOW, "$job": JOB}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def queries() -> list[tuple[str, str]]:
    """(panel title and refId, expr) of every target of every panel, rows' nested panels included."""
    out: list[tuple[str, str]] = []
    stack = list(dashboard()["panels"])
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            out.append((f"{panel['title']} {target['refId']}", target["expr"]))
    return out


def concrete(expr: str) -> str:
    """The query as Grafana sends it, with the dashboard's variables given the test's values."""
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


def test_dashboard_panels_use_the_engines_metric_names() -> None:
    """Fast: the panels are there, each query names only metrics the engine exposes (metrics.py)."""
    doc = dashboard()
    titles = {p["title"] for p in doc["panels"]}
    for wanted in ("Request rate", "p95 latency", "Error rate", "Cache hit ratio", "Memories", "DB connections"):
        assert wanted in titles, titles
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
    exposed = set(re.findall(r'^    "(\w+)",$', METRICS_PY.read_text(), re.MULTILINE))
    assert "agentmem_http_requests_total" in exposed and "agentmem_cache_hits" in exposed
    for where, expr in queries():
        names = set(re.findall(r"\b((?:agentmem|process)_\w+)", expr))
        assert names, f"{where}: no metric in {expr}"
        for name in names:
            assert name.removesuffix("_bucket") in exposed, f"{where}: {name} is not an engine metric"
        assert 'job="$job"' in expr, f"{where}: not scoped to the dashboard's job: {expr}"


# -- the real thing ---------------------------------------------------------------------------------------


def drive(url: str, stop: threading.Event, counts: dict[str, int]) -> None:
    """A few hundred requests: creates, repeated gets (cache hits), searches, lists and gets of unknown ids."""
    tenant = "/v1/agents/grafana/users/u"
    with httpx.Client(base_url=url, timeout=10) as c:
        ids: list[str] = []
        i = 0
        while not stop.is_set():
            r = c.post(f"{tenant}/memories", json={"content": f"panel {i} of the dashboard", "importance": 0.6})
            counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1
            if r.status_code == 201:
                ids.append(r.json()["id"])
            for path in (f"{tenant}/memories/{ids[-1]}" if ids else None,   # just written: in the cache
                         f"{tenant}/memories/{ids[0]}" if ids else None,
                         f"{tenant}/memories/0000000000000000000{i:013d}"):   # no such memory
                if path is not None:
                    r = c.get(path)
                    counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1
            r = c.post(f"{tenant}/memories/search", json={"query": f"panel {i}", "k": 5})
            counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1
            r = c.get(f"{tenant}/memories", params={"limit": 10})
            counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1
            i += 1
            stop.wait(0.25)


@pytest.fixture
def prometheus(engine_proc: EngineProcess, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the engine every second, as tests/test_prometheus.py starts it; its URL."""
    assert PROMETHEUS is not None
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n    metrics_path: /metrics\n    static_configs:\n"
        f"      - targets: ['{engine_proc.url.removeprefix('http://')}']\n"
    )
    port = free_port()
    log = tmp_path / "prometheus.log"
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", f"{expr}: {r.status_code} {body}"
    assert body["data"]["resultType"] == "vector", body
    return body["data"]["result"]  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary (./dev.sh test fetches Debian's into .tools/)")
def test_every_panel_query_returns_data(engine_proc: EngineProcess, prometheus: str, tmp_path: Path) -> None:
    stop = threading.Event()
    counts: dict[str, int] = {}
    load = threading.Thread(target=drive, args=(engine_proc.url, stop, counts), daemon=True)
    load.start()
    try:
        # Prometheus up, and 15 scrapes of the engine under load: every rate window holds many.
        deadline = time.monotonic() + 90
        scrapes = 0.0
        while time.monotonic() < deadline and scrapes < 15:
            time.sleep(1)
            try:
                got = query(prometheus, f'count_over_time(up{{job="{JOB}"}}[1m])')
            except (httpx.HTTPError, ValueError):
                continue
            scrapes = float(got[0]["value"][1]) if got else 0.0
        assert scrapes >= 15, (tmp_path / "prometheus.log").read_text()[-2000:]
        assert query(prometheus, f'up{{job="{JOB}"}}')[0]["value"][1] == "1"
        empty, not_numbers = [], []
        for where, expr in queries():
            result = query(prometheus, concrete(expr))
            if not result:
                empty.append(f"{where}: {concrete(expr)}")
            elif not any(math.isfinite(float(s["value"][1])) for s in result):
                not_numbers.append(f"{where}: {result}")
    finally:
        stop.set()
        load.join(30)
    assert counts.get("201", 0) >= 10 and counts.get("200", 0) >= 50 and counts.get("404", 0) >= 10, counts
    assert sum(counts.values()) >= 200, counts
    assert not empty and not not_numbers, ("panel queries with no data:\n" + "\n".join(empty)
                                           + "\npanel queries with no finite value:\n" + "\n".join(not_numbers))
