"""Packaging facts that are quick to check: the lock covers pyproject, the budget is package data."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from profkit.bench.budget import load_budget
from profkit.errors import ProfkitError
from tests.helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _locked() -> dict[str, list[tuple[str, str]]]:
    """constraints.txt: name -> [(version, marker)], a name pinned once per marker fork."""
    pins: dict[str, list[tuple[str, str]]] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)\s*(?:;\s*(.*))?$", line)
        if m:
            pins.setdefault(canonicalize_name(m[1]), []).append((m[2], m[3] or ""))
    return pins


def test_lock_pins_every_declared_dependency_within_its_range() -> None:
    declared = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"]["dev"],
                *PYPROJECT["dependency-groups"]["bootstrap"]]
    locked = _locked()
    # Debian 12, CPython 3.11, x86_64: the machine the lock must install on.
    env = {k: str(v) for k, v in default_environment().items()}
    env.update(python_version="3.11", python_full_version="3.11.7", sys_platform="linux", platform_system="Linux",
               platform_python_implementation="CPython", implementation_name="cpython", platform_machine="x86_64")
    stale = []
    for spec in declared:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        versions = [v for v, marker in locked.get(canonicalize_name(req.name), [])
                    if not marker or Marker(marker).evaluate(env)]
        if len(versions) != 1 or not req.specifier.contains(versions[0], prereleases=True):
            stale.append(f"{spec}: locked {versions or 'nothing'}")
    assert not stale, f"constraints.txt is behind pyproject.toml (README says how to update it): {'; '.join(stale)}"


def test_build_needs_a_setuptools_that_knows_spdx_licenses() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]
    assert "slow: takes more than a few seconds" in PYPROJECT["tool"]["pytest"]["ini_options"]["markers"]


def test_default_budget_is_the_packaged_one() -> None:
    budget = load_budget(None)
    assert budget["create"]["p99"] == 15 and budget["search_large"]["p99"] == 60
    assert not (REPO / "targets" / "perf-budget.toml").exists(), "the budget lives in targets/agentmem/ now"


def test_budget_file_of_ones_own(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text('version = 1\n[budget.get]\np50 = 1\np95 = 2\np99 = 3\n')
    assert load_budget(mine) == {"get": {"p50": 1, "p95": 2, "p99": 3}}
    with pytest.raises(ProfkitError, match="not found"):
        load_budget(tmp_path / "missing.toml")
    mine.write_text('version = 1\n[budget]\nget = 5\n')
    with pytest.raises(ProfkitError, match=r"budget\.get must be a table"):
        load_budget(mine)


def test_engine_bench_reads_the_same_budget_without_profkit() -> None:
    code = ("import sys, agentmem.bench as b; print(b.p99_budget_ms());"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'profkit'], 'agentmem imported profkit'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "'create': 15.0" in proc.stdout and "'traverse_100': 50.0" in proc.stdout
