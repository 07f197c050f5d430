"""profkit.trends: the step detector on constructed series (fixed seeds), and series from commit indexes."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from profkit import trends
from profkit.trends import detect_steps, noise, operation_series, steps_of

NOISE = 0.01  # relative sigma of one commit's p50, as between runs on the reference machine


def series(levels: list[tuple[int, float]], *, seed: int, sigma: float = NOISE,
           base: float = 2.5) -> np.ndarray[Any, Any]:
    """``levels``: (points, relative level) pieces, oldest first; lognormal noise of ``sigma``."""
    rng = np.random.default_rng(seed)
    true = np.concatenate([np.full(n, base * level) for n, level in levels])
    return true * np.exp(rng.normal(0, sigma, true.size))


# -- the step detector -----------------------------------------------------------------------------------


def test_a_4_percent_step_after_20_points_is_found_at_the_21st() -> None:
    steps = detect_steps(series([(20, 1.0), (20, 1.04)], seed=7))
    assert len(steps) == 1
    assert steps[0].index == 20  # the first commit at the new level
    assert steps[0].change == pytest.approx(0.04, abs=0.01)
    assert steps[0].after > steps[0].before


def test_a_4_percent_step_is_found_within_a_commit_of_where_it_began_whatever_the_seed() -> None:
    found = [detect_steps(series([(20, 1.0), (20, 1.04)], seed=s)) for s in range(50)]
    assert all(len(f) == 1 for f in found)
    at = [f[0].index for f in found]
    assert all(abs(i - 20) <= 1 for i in at)
    assert sum(i == 20 for i in at) >= 45  # exactly at the step in at least 90 % of seeds (94 % measured)


def test_no_single_comparison_crosses_10_percent_yet_the_drift_is_found() -> None:
    # Four commits of +1.2 % each: every comparison with the parent says "no change".
    ramp = [(30, 1.0)] + [(1, 1.012 ** k) for k in range(1, 4)] + [(30, 1.012 ** 4)]
    values = series(ramp, seed=3)
    assert max(abs(b / a - 1) for a, b in itertools.pairwise(values)) < 0.10
    steps = detect_steps(values)
    assert len(steps) == 1 and 30 <= steps[0].index <= 33
    assert steps[0].change == pytest.approx(0.049, abs=0.012)


@pytest.mark.parametrize("length", [40, 200, 500])
def test_a_flat_noisy_series_has_no_step(length: int) -> None:
    assert detect_steps(series([(length, 1.0)], seed=11)) == []


def test_flat_series_have_no_step_over_many_seeds_and_noise_levels() -> None:
    for sigma in (0.005, 0.01, 0.03):
        assert sum(bool(detect_steps(series([(120, 1.0)], seed=s, sigma=sigma))) for s in range(40)) == 0


@pytest.mark.parametrize("where", [0, 1, 15, 30, 38, 39])
def test_a_single_outlier_is_not_a_step(where: int) -> None:
    values = series([(40, 1.0)], seed=5)
    values[where] *= 1.5  # one run 50 % slow: the machine, not the code
    assert detect_steps(values) == []


def test_a_faster_step_is_found_with_a_negative_change() -> None:
    steps = detect_steps(series([(25, 1.0), (25, 0.92)], seed=2))
    assert [s.index for s in steps] == [25]
    assert steps[0].change == pytest.approx(-0.08, abs=0.01)


def test_a_bump_is_two_steps() -> None:
    steps = detect_steps(series([(30, 1.0), (15, 1.05), (30, 1.0)], seed=4))
    assert [s.index for s in steps] == [30, 45]
    assert steps[0].change > 0 > steps[1].change


def test_a_step_under_3_percent_is_not_reported_however_clear() -> None:
    assert detect_steps(series([(30, 1.0), (30, 1.02)], seed=1, sigma=0.001)) == []


def test_a_new_level_must_hold_for_four_points() -> None:
    values = series([(30, 1.0), (3, 1.2)], seed=6)
    assert detect_steps(values) == []  # two or three slow commits at the end are not yet a level
    assert [s.index for s in detect_steps(np.append(values, values[-1]))] == [30]


def test_identical_figures_are_not_infinitely_significant() -> None:
    assert detect_steps([1.0] * 20 + [1.01] * 20) == []  # 1 %: under the minimum step
    assert [s.index for s in detect_steps([1.0] * 20 + [1.05] * 20)] == [20]


def test_short_series_have_no_step() -> None:
    assert detect_steps([]) == []
    assert detect_steps([1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]) == []  # fewer than two segments of four


@pytest.mark.parametrize("bad", [[1.0, 0.0, 1.0], [1.0, -2.0], [1.0, float("nan")], [float("inf"), 1.0]])
def test_figures_must_be_finite_and_positive(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="finite positive"):
        detect_steps(bad)


def test_noise_is_read_from_neighbours_and_ignores_steps() -> None:
    flat = series([(200, 1.0)], seed=9)
    stepped = series([(100, 1.0), (100, 1.3)], seed=9)
    assert noise(flat) == pytest.approx(NOISE, rel=0.25)
    assert noise(stepped) == pytest.approx(noise(flat), rel=0.1)
    assert noise([1.0] * 10) == trends.SIGMA_FLOOR


def test_the_verdict_words_are_the_comparisons() -> None:
    from profkit.bench import compare

    assert (trends.REGRESSION, trends.SLOWER, trends.FASTER, trends.NO_CHANGE) == (
        compare.REGRESSION, compare.SLOWER, compare.FASTER, compare.NO_CHANGE)


# -- series from commit indexes ----------------------------------------------------------------------------


def index(i: int, ops: dict[str, float] | None, *, size: int = 2000,
          against: dict[str, str] | None = None) -> dict[str, Any]:
    sha = f"{i:02d}" * 20
    bench = None if ops is None else {"config": {"size": size}, "ops": {
        op: {"p50_ms": p50, "p99_ms": 3 * p50, "p50_ci95": [p50 * 0.99, p50 * 1.01], "budget_p99_ms": 10.0}
        for op, p50 in ops.items()}}
    changes = [{"op": op, "verdict": v, "change_pct": 12.0} for op, v in (against or {}).items()]
    return {"commit": sha, "folder": sha[:12], "created_at": float(i), "bench": bench,
            "against": {"changes": changes} if against else None}


def test_operation_series_in_commit_order_with_verdicts() -> None:
    commits = [index(0, {"get": 1.0, "create": 2.0}), index(1, None),
               index(2, {"get": 1.2}, against={"get": "regression"})]
    got = operation_series(commits)
    assert sorted(got) == ["create", "get"]
    assert [p.position for p in got["get"]] == [0, 2]  # a commit without bench figures is a gap
    assert [p.p50_ms for p in got["get"]] == [1.0, 1.2]
    assert got["get"][1].verdict == "regression" and got["get"][0].verdict is None
    assert got["get"][0].p50_ci95 == (0.99, 1.01) and got["get"][0].budget_p99_ms == 10.0
    assert got["get"][1].folder == "02" * 6


def test_operation_series_keeps_only_benches_of_the_newest_commits_store_size() -> None:
    commits = [index(0, {"get": 5.0}, size=20000), index(1, {"get": 1.0}), index(2, {"get": 1.1})]
    assert [p.position for p in operation_series(commits)["get"]] == [1, 2]
    assert [p.position for p in operation_series(commits, size=20000)["get"]] == [0]


def test_operation_series_of_no_bench_is_empty_and_bad_figures_are_skipped() -> None:
    assert operation_series([index(0, None)]) == {}
    assert operation_series([index(0, {"get": 0.0}), index(1, {"get": 1.0})])["get"][0].position == 1


def test_steps_of_names_the_commit_where_the_level_began() -> None:
    values = series([(12, 1.0), (12, 1.06)], seed=8)
    commits = [index(i, {"get": float(v)}) for i, v in enumerate(values)]
    (step, at), = steps_of(operation_series(commits)["get"])
    assert at.position == 12 and at.folder == "12" * 6
    assert step.change == pytest.approx(0.06, abs=0.015)


def test_compare_commits_side_by_side() -> None:
    a = index(0, {"get": 1.0, "create": 2.0})
    b = index(1, {"get": 1.1, "create": 2.0, "delete": 3.0})
    rows = trends.compare_commits(a, b)
    assert [r["op"] for r in rows] == ["get", "create"]  # delete: not measured before
    assert rows[0]["change_pct"] == pytest.approx(10.0) and rows[0]["intervals_apart"]
    assert rows[1]["change_pct"] == 0.0 and not rows[1]["intervals_apart"]
    assert trends.compare_commits(a, index(2, None)) == []
