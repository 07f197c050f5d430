"""The profkit CLI as a real subprocess, both as `profkit` and `python -m profkit`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROFKIT, REPO, EngineProcess, one_line_error, profkit

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("entry", ["script", "module"])
def test_help_everywhere(entry: str) -> None:
    base = [str(PROFKIT)] if entry == "script" else [sys.executable, "-m", "profkit"]
    top = subprocess.run([*base, "--help"], capture_output=True, text=True, check=True, timeout=60)
    for command in ("serve", "load", "ci"):
        assert command in top.stdout
        sub = subprocess.run([*base, command, "--help"], capture_output=True, text=True, check=True, timeout=60)
        assert "Usage" in sub.stdout


def test_load_against_nothing_is_one_clear_line() -> None:
    line = one_line_error(profkit("load", "--url", "http://127.0.0.1:9", "--duration", "1"))
    assert "cannot connect" in line


def test_unknown_scenario_and_bad_url() -> None:
    assert "unknown scenario" in one_line_error(profkit("load", "--scenario", "nope"))
    assert "--url" in one_line_error(profkit("load", "--url", "ftp://x", "--duration", "1"))


def test_serve_refuses_a_bad_port() -> None:
    assert "--port" in one_line_error(profkit("serve", "--port", "70000"))


def test_load_json_report(engine_proc: EngineProcess) -> None:
    proc = profkit("load", "--url", engine_proc.url, "--scenario", "mixed", "--duration", "2", "--concurrency", "8",
                   "--seed-per-tenant", "20", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["errors"] == 0 and report["rps"] > 0
    for op in ("get", "search", "create"):
        assert {"p50_ms", "p95_ms", "p99_ms", "count"} <= set(report["operations"][op])


@pytest.mark.parametrize("scenario", ["ingest", "search-heavy", "graph"])
def test_every_scenario_runs_clean(engine_proc: EngineProcess, scenario: str) -> None:
    proc = profkit("load", "--url", engine_proc.url, "--scenario", scenario, "--duration", "1", "--concurrency", "4",
                   "--seed-per-tenant", "10", "--warmup", "0.2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["errors"] == 0


def test_ws_hold_small(engine_proc: EngineProcess) -> None:
    proc = profkit("load", "--url", engine_proc.url, "--scenario", "ws-hold", "--concurrency", "200",
                   "--duration", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["opened"] == report["answered"] == 200 and report["server_rss_bytes"] > 0


def test_ci_job_files_artifacts_under_the_commit(tmp_path: Path) -> None:
    def head() -> str | None:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO, check=False)
        return proc.stdout.strip()[:12] if proc.returncode == 0 else None

    store = tmp_path / "store"
    before = head()  # others may commit while the job runs: it files under the commit it started at
    proc = profkit("ci", "--store", str(store), "--duration", "2", "--concurrency", "8", "--bench", "none",
                   "--profile-duration", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    folder = Path(result["folder"])
    assert folder.parent.parent == store
    if before is not None:
        assert folder.parent.name.split("-")[0] in {before, head()}, folder
    assert json.loads((folder / "load.json").read_text())["errors"] == 0
    assert "agentmem_http_requests_total" in (folder / "metrics.prom").read_text()
    assert "/metrics" in proc.stderr  # the job says where the metrics are
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["command"] == "ci"
    # The engine was sampled while under load: a flame run of the same commit, with engine frames in it.
    flame = result["flame"]
    assert flame["status"] == "complete" and Path(flame["folder"]).parent == folder.parent
    assert any("agentmem" in str(r["file"]) for r in flame["findings"]["top_by_total"])


def test_serve_warns_when_not_on_loopback(tmp_path: Path) -> None:
    env = dict(os.environ)
    proc = subprocess.Popen([str(PROFKIT), "serve", "--host", "0.0.0.0", "--port", "0", "--db",
                             str(tmp_path / "x.db")], stderr=subprocess.PIPE, text=True, env=env)
    _, err = proc.communicate(timeout=60)
    # Port 0 is refused after the warning, so the test never actually listens on every interface.
    assert "WARNING" in err and "0.0.0.0" in err
