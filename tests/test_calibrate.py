"""The detector's calibration script, run for real on a tiny scale.

The figures it exists for take ten minutes and more; this checks that the script measures what it
says: real interleaved bench runs, an injected slowdown that shows up at its size in the slowed
operation and nowhere else, and a rescoring of the saved runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

ALL_OPS = 14


def calibrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "profkit.bench.calibrate", *args], capture_output=True, text=True,
                          timeout=600, cwd=REPO, check=False)


def test_calibration_measures_an_injected_slowdown_and_rescores(tmp_path: Path) -> None:
    saved = tmp_path / "runs.json"
    # A 50 % slowdown, so that two workers of twenty rounds see it plainly; the real calibration uses 12 %.
    proc = calibrate("--aa-runs", "3", "--injected", "list_recent", "--factor", "1.5", "--workers", "2",
                     "--samples", "20", "--save-runs", str(saved), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert "interleaved" in report["machine_note"]
    norm = report["normalised"]
    assert norm["aa_comparisons"] == 3
    hit = norm["detection"]["list_recent"]
    assert hit["comparisons"] == 3
    assert all(35 < m < 70 for m in hit["measured_change_pct"]), hit
    assert hit["regression_rate"] == 1.0
    assert hit["others_clean_rate"] == 1.0

    runs = json.loads(saved.read_text())
    assert len(runs["aa"]) == 3 and set(runs["slowed"]) == {"list_recent"}
    assert runs["slowed"]["list_recent"]["config"]["inject"] == {"list_recent": 1.5}

    again = calibrate("--rescore", str(saved), "--every-op", "--factor", "1.5", "--json")
    assert again.returncode == 0, again.stderr
    rescored = json.loads(again.stdout)
    assert rescored["normalised"]["detection"]["list_recent"]["measured_change_pct"] == hit["measured_change_pct"]
    every = rescored["every_op"]
    assert every["trials"] == 6 * ALL_OPS  # ordered pairs of three runs, every operation in each
    assert len(every["per_op_regression_rate"]) == ALL_OPS
    assert every["regression_rate"] >= 0.9, every


def test_rescoring_a_file_that_is_not_saved_runs_is_one_error(tmp_path: Path) -> None:
    bad = tmp_path / "runs.json"
    bad.write_text("{not json")
    proc = calibrate("--rescore", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "cannot rescore" in proc.stderr.strip().splitlines()[-1]
    assert bad.read_text() == "{not json"


def test_a_factor_that_does_not_slow_is_refused() -> None:
    proc = calibrate("--factor", "0.9")
    assert proc.returncode == 2
    assert "--factor must be above 1" in proc.stderr.strip().splitlines()[-1]


def test_an_unwritable_save_runs_is_refused_before_any_run(tmp_path: Path) -> None:
    # Found out after ten minutes of runs, the runs would be lost; it must be refused at once.
    proc = calibrate("--save-runs", str(tmp_path / "missing" / "runs.json"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a writable folder" in lines[0], proc.stderr
    assert not (tmp_path / "missing").exists()
