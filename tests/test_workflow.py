"""The CI workflow (.github/workflows/performance.yml): valid for GitHub, clean for zizmor, and the guide's jobs.

check-jsonschema validates every workflow against GitHub's workflow schema (its vendored copy:
``--builtin-schema vendor.github-workflows``, no network); ``zizmor --offline`` audits them and no
finding may be of high severity. Both are dev dependencies: when they are missing the test fails and
says to run ./dev.sh, since a skipped security check reads as a passed one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO

WORKFLOWS = REPO / ".github" / "workflows"
PERFORMANCE = WORKFLOWS / "performance.yml"
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def tool(name: str) -> str:
    """The dev dependency's command, from this interpreter's environment (the venv) or PATH."""
    here = Path(sys.executable).with_name(name)
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it is a dev dependency, run ./dev.sh test (or ./dev.sh run) "
                    f"to install the locked dev dependencies into .venv")
    return found


def workflows() -> list[Path]:
    found = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
    assert PERFORMANCE in found
    return found


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def triggers(doc: dict[Any, Any]) -> dict[str, Any]:
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert isinstance(on, dict), on
    return on


def zizmor(folder: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([tool("zizmor"), "--offline", "--strict-collection", "--no-exit-codes", "--no-progress",
                           "--format", "json", str(folder)], capture_output=True, text=True, timeout=120, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    findings = json.loads(proc.stdout)
    assert isinstance(findings, list)
    return findings


def high(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['ident']} ({f['determinations']['confidence']} confidence): {f['desc']} at "
            + ", ".join(f"{loc['symbolic']['key']['Local']['verbatim_path']}:"
                        f"{loc['concrete']['location']['start_point']['row'] + 1}" for loc in f["locations"])
            for f in findings if f["determinations"]["severity"] == "High" and not f.get("ignored")]


# -- the tools -------------------------------------------------------------------------------------------


def test_workflows_match_githubs_schema() -> None:
    proc = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, workflows())], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: a job with no runs-on and a permission level GitHub does not have."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    permissions:\n      contents: admin\n    steps:\n      - run: 'true'\n")
    proc = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_zizmor_finds_nothing_of_high_severity() -> None:
    workflows()
    findings = zizmor(REPO / ".github" / "workflows")
    assert not high(findings), "zizmor --offline, high severity:\n" + "\n".join(high(findings))


def test_zizmor_catches_an_unsafe_workflow(tmp_path: Path) -> None:
    """The audit above can fail, and this is how its JSON reads: a tag pin and an injected PR title are high."""
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "bad.yml").write_text(
        "on: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n        with:\n          persist-credentials: false\n"
        "      - run: echo \"${{ github.event.pull_request.title }}\"\n")
    idents = {f.split(" ")[0] for f in high(zizmor(folder))}
    assert {"unpinned-uses", "template-injection"} <= idents, idents


# -- what the guide asks of it (perf-guide §5) -----------------------------------------------------------


def test_the_guides_four_jobs_and_their_triggers() -> None:
    doc = load(PERFORMANCE)
    on = triggers(doc)
    assert set(on["push"]["branches"]) == {"main", "develop"}
    assert "pull_request" in on and on["schedule"][0]["cron"]
    jobs = doc["jobs"]
    assert set(jobs) == {"benchmark", "regression", "continuous-profiling", "publish-results"}
    assert "if" not in jobs["benchmark"]  # every trigger: push, pull request, daily
    assert jobs["regression"]["if"] == "github.event_name == 'pull_request'"
    for name in ("continuous-profiling", "publish-results"):
        assert jobs[name]["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert jobs["publish-results"]["needs"] == "continuous-profiling"

    def runs(job: str) -> str:
        return "\n".join(s.get("run", "") for s in jobs[job]["steps"])

    assert "profkit bench $PRESET" in runs("benchmark")
    assert 'profkit regress --base "origin/$BASE_REF" --head HEAD --output regression-report.md' in runs("regression")
    assert "profkit ci" in runs("continuous-profiling")
    assert "profkit dashboard --store flamegraphs --out flamegraphs/site" in runs("publish-results")
    for job in jobs.values():  # installed from the lock, like ./dev.sh
        assert "-c constraints.txt --build-constraint constraints.txt -e" in "\n".join(
            s.get("run", "") for s in job["steps"])
    assert (REPO / "constraints.txt").exists()


def test_least_privilege_and_pinned_actions() -> None:
    text = PERFORMANCE.read_text()
    doc = load(PERFORMANCE)
    assert doc["permissions"] == {}
    wanted = {"benchmark": {"contents": "read", "pull-requests": "write"},
              "regression": {"contents": "read", "pull-requests": "write"},
              "continuous-profiling": {"contents": "read"},
              "publish-results": {"contents": "read", "pages": "write", "id-token": "write"}}
    assert {name: job["permissions"] for name, job in doc["jobs"].items()} == wanted
    for name, job in doc["jobs"].items():
        for step in job["steps"]:
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), f"{name}: {step['uses']} is not pinned to a commit"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
            assert "${{" not in step.get("run", ""), f"{name}: an expression inside a script: {step['run']}"
    for line in text.splitlines():  # every pin says which release it is
        if re.search(r"uses: \S+@[0-9a-f]{40}", line):
            assert re.search(r"@[0-9a-f]{40}  # v\d+\.\d+\.\d+$", line), line
