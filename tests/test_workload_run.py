"""Scenarios run as plain processes (what later profilers attach to)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("scenario", "mode"), [("mixed", "engine"), ("ingest", "engine"), ("graph", "http")])
def test_scenario_as_a_process(scenario: str, mode: str) -> None:
    args = ["--ops", "2000"] if mode == "engine" else ["--duration", "1.5"]
    proc = subprocess.run(
        [sys.executable, "-m", "agentmem.workload.run", scenario, "--mode", mode, "--concurrency", "8",
         "--seed-per-tenant", "20", "--json", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["errors"] == 0 and report["mode"] == mode
    if mode == "engine":
        assert report["requests"] == 2000
    assert set(report["operations"]) <= {"create", "batch", "get", "search", "list", "update", "delete",
                                         "traverse", "relate"}
