"""The detector's calibration script as a program: one real run on a tiny scale, and its argument errors.

What the script computes — false-alarm and detection rates, "no other operation flagged", every
operation slowed in turn, rescoring — is tested on constructed runs in tests/unit (no timing, the
same answer on every machine). The one real run here checks what only a real run can: the script
drives real interleaved bench runs, applies the injected factor to the named operation, saves
runs of the right shape, and rescoring them gives back its figures exactly. It asserts nothing a
timing could change: two workers of twenty rounds on a shared two-core machine cannot tell
whether a detector is right (in 14 runs, 3 had another operation flagged beside the slowed one and
4 a false A/A regression — the noise of so small a run, not a fault), so the rates are not checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from profkit.bench.suites import ALL_OPS, CALLS_PER_ROUND
from tests.helpers import REPO

ROUNDS = 20
FACTOR = 2.0


def calibrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "profkit.bench.calibrate", *args], capture_output=True, text=True,
                          timeout=600, cwd=REPO, check=False)


@pytest.mark.slow
def test_calibration_runs_saves_its_runs_and_rescores_them_exactly(tmp_path: Path) -> None:
    saved = tmp_path / "runs.json"
    proc = calibrate("--aa-runs", "3", "--injected", "list_recent", "--factor", str(FACTOR), "--workers", "2",
                     "--samples", str(ROUNDS), "--save-runs", str(saved), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["machine_note"].startswith(f"quick preset: 2 workers x {ROUNDS} rounds, 2000-memory store, "
                                             "runs interleaved"), report["machine_note"]
    assert report["injected_factor"] == FACTOR
    for mode in ("normalised", "raw"):
        r = report[mode]
        assert r["aa_comparisons"] == 3 and list(r["detection"]) == ["list_recent"], r
        d = r["detection"]["list_recent"]
        assert d["comparisons"] == 3 and len(d["measured_change_pct"]) == 3, d
        assert all(0 <= d[k] <= 1 for k in ("regression_rate", "flagged_rate", "others_clean_rate")), d
    # The injected factor reached the worker: the slowed operation's recorded times are exactly doubled,
    # so it measures 2 r - 1 where r is what an A/A comparison of list_recent would read. r stayed
    # within 0.88-1.09 (log sd 0.048) in 75 comparisons of 25 such runs, idle, beside the rest of the
    # machine's work and beside two busy loops; this fails only if r < 0.5, 14 sd away.
    measured = report["normalised"]["detection"]["list_recent"]["measured_change_pct"]
    assert all(m > 0 for m in measured), measured

    runs = json.loads(saved.read_text())
    assert runs["interleaved"] is True and len(runs["aa"]) == 3 and list(runs["slowed"]) == ["list_recent"]
    assert [r["config"]["inject"] for r in runs["aa"]] == [{}, {}, {}]
    assert runs["slowed"]["list_recent"]["config"]["inject"] == {"list_recent": FACTOR}
    for r in [*runs["aa"], runs["slowed"]["list_recent"]]:
        # Every worker ran every round, each operation called its number of times per round
        assert r["ops"] == list(ALL_OPS)
        assert {op: [len(w) for w in r["samples_ns"][op]] for op in ALL_OPS} == {
            op: [ROUNDS * CALLS_PER_ROUND[op]] * 2 for op in ALL_OPS}
        assert [len(w) for w in r["reference_ns"]] == [ROUNDS, ROUNDS]

    # Rescoring the saved runs gives back every figure, exactly
    again = calibrate("--rescore", str(saved), "--every-op", "--factor", str(FACTOR), "--json")
    assert again.returncode == 0, again.stderr
    rescored = json.loads(again.stdout)
    assert (rescored["normalised"], rescored["raw"]) == (report["normalised"], report["raw"])
    assert rescored["injected_factor"] == FACTOR
    every = rescored["every_op"]
    assert every["trials"] == 6 * len(ALL_OPS)  # ordered pairs of three runs, every operation in each
    assert set(every["per_op_regression_rate"]) == set(ALL_OPS)


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
