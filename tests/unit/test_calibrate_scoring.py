"""How the calibration script scores the detector, on constructed runs: no bench is run, nothing is timed.

``profkit.bench.calibrate`` measures the detector with real runs (minutes); what it computes from
them — A/A false regressions, detection of an injected slowdown, "no other operation flagged",
every operation slowed in turn, rescoring saved runs — is checked here on constructed runs whose
answers are known, and its orchestration (the run plan, interleaving worker by worker, the saved
runs) with the bench's store builder and worker process replaced by constructed ones.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from profkit.bench import calibrate as cal
from profkit.bench.runner import BenchConfig, assemble

from .test_compare import COMMIT, ROUNDS, synthetic_run, worker_doc

SEED = 1  # as in test_compare: the margins were checked from SEED = 1 to 200

# Six operations with many calls per round: enough (five or more) for the per-worker normalisation,
# and a third of the cost of all fourteen in every comparison.
SIX = ("get", "get_uncached", "update", "delete", "traverse_d1", "list_recent")


@cache
def _run(seed: int, slow: tuple[tuple[str, float], ...] = (), inject: tuple[tuple[str, float], ...] = ()
         ) -> dict[str, Any]:
    return synthetic_run(seed, ops=SIX, slow=dict(slow), inject=dict(inject))


def run(offset: int, *, slow: dict[str, float] | None = None, inject: dict[str, float] | None = None
        ) -> dict[str, Any]:
    """A constructed run of the six operations (the same object for the same arguments: never modify it)."""
    return _run(SEED * 1000 + offset, tuple((slow or {}).items()), tuple((inject or {}).items()))


def test_scaled_multiplies_one_operation_exactly_and_copies() -> None:
    a = run(0)
    before = json.dumps(a)
    out = cal.scaled(a, "delete", 1.12)
    assert out["samples_ns"]["delete"] == [[round(x * 1.12) for x in w] for w in a["samples_ns"]["delete"]]
    assert all(out["samples_ns"][op] == a["samples_ns"][op] for op in SIX if op != "delete")
    assert out["reference_ns"] == a["reference_ns"] and out["ops"] == a["ops"]
    assert json.dumps(a) == before  # the A run itself is left as it was


def test_score_counts_false_regressions_detections_and_others_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cal, "ALL_OPS", SIX)  # the per-operation rate's denominator: the operations calibrated
    # GIVEN four "A" runs, the last of which in fact has list_recent 30 % slower (so the three pairs it
    # is the later run of flag a false regression, on one operation each), and two slowed runs:
    # update 12 % slower by injection but traverse_d1 also 30 % slower in that run, and get slowed
    # by only 7 % (a warning, not a regression)
    runs = [run(1), run(2), run(3), run(4, slow={"list_recent": 1.3})]
    slowed = {"update": run(5, inject={"update": 1.12}, slow={"traverse_d1": 1.3}),
              "get": run(6, inject={"get": 1.07})}
    # WHEN scored as the calibration scores them
    r = cal.score(runs, slowed, normalise=True)
    # THEN
    assert r["aa_comparisons"] == 6
    assert r["aa_false_regression_rate"] == 0.5
    assert r["aa_false_regression_per_op_rate"] == round(3 / (6 * len(SIX)), 5)
    assert r["aa_any_warning_rate"] == 0.0
    update, get = r["detection"]["update"], r["detection"]["get"]
    assert update["comparisons"] == get["comparisons"] == 4
    assert (update["regression_rate"], update["flagged_rate"], update["others_clean_rate"]) == (1.0, 1.0, 0.0)
    assert (get["regression_rate"], get["flagged_rate"], get["others_clean_rate"]) == (0.0, 1.0, 1.0)
    assert all(abs(m - 12) < 1.5 for m in update["measured_change_pct"]), update
    assert all(abs(m - 7) < 1.5 for m in get["measured_change_pct"]), get
    assert r["detection_rate"] == 0.5  # 4 of the 8 injected comparisons
    assert r["others_clean_rate"] == 0.5


@pytest.mark.parametrize(("factor", "regression", "flagged"), [(1.12, 1.0, 1.0), (1.07, 0.0, 1.0), (1.02, 0.0, 0.0)])
def test_every_operation_slowed_in_turn_in_every_ordered_pair(factor: float, regression: float,
                                                              flagged: float) -> None:
    # GIVEN two A runs: 2 ordered pairs x 6 operations = 12 trials, each the later run with one
    # operation's times multiplied by the factor
    e = cal.score_every_op([run(10), run(11)], factor)
    # THEN 12 % is a regression, 7 % a warning and 2 % nothing, in every trial, on no other operation
    assert e["trials"] == 12
    assert (e["regression_rate"], e["flagged_rate"], e["others_clean_rate"]) == (regression, flagged, 1.0), e
    assert e["per_op_regression_rate"] == dict.fromkeys(SIX, regression)


def test_rescore_reproduces_the_scores_of_the_saved_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN runs saved as --save-runs saves them: two A runs, one run with list_recent slowed 1.5x
    runs, slowed = [run(20), run(21)], {"list_recent": run(22, inject={"list_recent": 1.5})}
    saved = tmp_path / "runs.json"
    saved.write_text(json.dumps({"aa": runs, "slowed": slowed, "interleaved": True}))
    # WHEN rescored in-process
    assert cal.main(["--rescore", str(saved), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # THEN it is exactly the scoring of those runs, the injected factor read from the saved runs
    assert report["injected_factor"] == 1.5
    assert report["machine_note"] == (f"rescored {saved}: 4 workers x {ROUNDS} rounds, 2000-memory store, "
                                      "runs interleaved worker by worker (as regress runs its two sides)")
    for mode, normalise in (("normalised", True), ("raw", False)):
        assert report[mode] == json.loads(json.dumps(cal.score(runs, slowed, normalise))), mode
    d = report["normalised"]["detection"]["list_recent"]
    assert (d["comparisons"], d["regression_rate"], d["others_clean_rate"]) == (2, 1.0, 1.0)
    assert all(abs(m - 50) < 3 for m in d["measured_change_pct"]), d
    # AND the text report, with every operation slowed in turn (by --factor: 1.12 by default), says so
    assert cal.main(["--rescore", str(saved), "--every-op"]) == 0
    text = capsys.readouterr().out
    assert "[normalised] A/A: 1 comparisons, 0.0 % flagged a regression" in text
    assert "list_recent slowed 1.50x: regression in 100 %, flagged in 100 %, no other op flagged in 100 %" in text
    assert "every operation slowed 1.12x in turn, 12 ordered A pairs x operations: regression 100.0 %" in text


def _fake_bench(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Calibrate six operations, with the store builder and the worker process replaced by constructed ones.

    Run k of the plan (its store template is store-k) gets seed SEED * 1000 + 40 + k; the fake worker
    applies the config's injected factor to the recorded times as the real worker does. Returns the
    log of (store, worker index) the workers were called with.
    """
    calls: list[tuple[str, int]] = []

    def build_store(cfg: BenchConfig, folder: Path) -> float:
        folder.mkdir(parents=True)
        return 0.5

    def measure_once(cfg: BenchConfig, template: Path, worker_index: int, scratch: Path) -> dict[str, Any]:
        calls.append((template.name, worker_index))
        return worker_doc(SEED * 1000 + 40 + int(template.name.split("-")[1]), worker_index, rounds=cfg.samples,
                          ops=cfg.ops, inject=cfg.inject)

    def run_bench(cfg: BenchConfig, commit: Any) -> dict[str, Any]:
        k = len({name for name, _ in calls})
        per = [measure_once(cfg, Path(f"store-{k}"), i, Path()) for i in range(cfg.workers)]
        return assemble(cfg, commit, per, started=0.0, build_s=0.5)

    monkeypatch.setattr(cal, "ALL_OPS", SIX)
    monkeypatch.setattr(cal, "build_store", build_store)
    monkeypatch.setattr(cal, "measure_once", measure_once)
    monkeypatch.setattr(cal, "run_bench", run_bench)
    return calls


def test_calibrate_interleaves_the_runs_worker_by_worker_and_saves_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_bench(monkeypatch)
    saved = tmp_path / "runs.json"
    report, runs = cal.calibrate(3, ["list_recent"], COMMIT, lambda _msg: None, str(saved), workers=4,
                                 samples=ROUNDS, quick=True, interleaved=True, factor=1.5)
    # The plan is A, slowed, A, A (slowed runs spread among the A runs); worker i of every run, in a
    # shuffled order of the runs, comes before worker i + 1 of any
    assert [i for _, i in calls] == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert all(sorted(name for name, i in calls if i == w) == [f"store-{k}" for k in range(4)] for w in range(4))
    assert len({tuple(name for name, i in calls if i == w) for w in range(4)}) > 1  # shuffled, not one order
    on_disk = json.loads(saved.read_text())
    assert on_disk["interleaved"] is True and on_disk["aa"] == json.loads(json.dumps(runs))
    assert [r["config"]["inject"] for r in on_disk["aa"]] == [{}, {}, {}]
    assert list(on_disk["slowed"]) == ["list_recent"]
    slow_run = on_disk["slowed"]["list_recent"]
    assert slow_run["config"]["inject"] == {"list_recent": 1.5}
    assert slow_run["samples_ns"]["list_recent"] == [
        [round(x * 1.5) for x in worker_doc(SEED * 1000 + 41, i, ops=SIX)["samples_ns"]["list_recent"]]
        for i in range(4)]
    assert report["injected_factor"] == 1.5
    assert report["machine_note"].startswith(f"quick preset: 4 workers x {ROUNDS} rounds, 2000-memory store, "
                                             "runs interleaved")
    norm = report["normalised"]
    assert (norm["aa_comparisons"], norm["aa_false_regression_rate"], norm["others_clean_rate"]) == (3, 0.0, 1.0)
    assert norm["detection"]["list_recent"]["regression_rate"] == 1.0
    assert all(abs(m - 50) < 3 for m in norm["detection"]["list_recent"]["measured_change_pct"]), norm
    assert report["raw"]["aa_comparisons"] == 3


def test_calibrate_sequential_runs_one_run_after_another(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_bench(monkeypatch)
    report, runs = cal.calibrate(2, ["get"], COMMIT, lambda _msg: None, None, workers=4, samples=ROUNDS,
                                 quick=True, interleaved=False, factor=1.5)
    # A, slowed, A: every worker of a run before the next run
    assert calls == [(f"store-{k}", i) for k in range(3) for i in range(4)]
    assert len(runs) == 2 and all(r["config"]["inject"] == {} for r in runs)
    assert "one after another" in report["machine_note"]
    d = report["normalised"]["detection"]["get"]
    assert (d["comparisons"], d["regression_rate"], d["others_clean_rate"]) == (2, 1.0, 1.0)
