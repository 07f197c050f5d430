"""Is an operation faster, unchanged, slower or regressed against a baseline?

Worker *i* of both runs used the same seed and the same store, so the comparison is paired: per
worker, the ratio of the operation's medians. On a shared two-core machine a whole process is
sometimes 10-15 % slow at everything (a neighbour, a frequency step), so each worker's ratios are
divided by that worker's median ratio over the other operations compared — a slowed operation
does not count in its own yardstick, while the process's mood cancels. The median over all the
operations, divided by a fixed reference workload timed in every round, is itself reported as the
"(suite-wide)" change, so a change that slows every operation alike still shows. The estimate is
the geometric mean of the per-worker ratios, with a hierarchical bootstrap interval (workers, then
samples within each).

A change counts only if it is statistically real — Mann-Whitney U on the pooled samples, each
worker's rescaled by its shift, at p < 0.002 (asv's test and level) — and then it is graded by size
with the guide's thresholds: at least 5 % faster is "faster", 5-10 % slower a warning, over 10 % a
regression — and a regression, which fails the merge, also needs the hierarchical bootstrap
interval to exclude zero; without that, an A/A comparison made in a noisy hour flags regressions.
Warnings never fail and use the test alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

from ..results import ChangeDoc
from .stats import bootstrap_quantiles

ALPHA = 0.002
WARN = 0.05
FAIL = 0.10
RESAMPLES = 1000

FASTER = "faster"
NO_CHANGE = "no change"
SLOWER = "slower"
REGRESSION = "regression"


@dataclass(frozen=True)
class Change:
    op: str
    verdict: str
    change: float  # relative: +0.12 is 12 % slower
    ci: tuple[float, float]
    p_value: float
    baseline_p50_ms: float
    current_p50_ms: float

    def to_dict(self) -> ChangeDoc:
        return {"op": self.op, "verdict": self.verdict, "change_pct": round(100 * self.change, 2),
                "ci95_pct": [round(100 * self.ci[0], 2), round(100 * self.ci[1], 2)],
                "p_value": self.p_value, "baseline_p50_ms": round(self.baseline_p50_ms, 4),
                "current_p50_ms": round(self.current_p50_ms, 4)}


def _medians(rng: np.random.Generator, workers: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """RESAMPLES bootstrap medians per worker: shape (workers, RESAMPLES)."""
    return np.stack([bootstrap_quantiles(w, 0.5, rng, RESAMPLES) for w in workers])


def _workers(lists: list[list[int]], n: int) -> list[np.ndarray[Any, Any]]:
    return [np.asarray(w, dtype=np.float64) for w in lists[:n]]


def _verdict(estimate: float, p: float, lo: float = 1.0, hi: float = 1.0) -> str:
    if p >= ALPHA or abs(estimate) < WARN:
        return NO_CHANGE
    if estimate <= -WARN:
        return FASTER
    if estimate <= FAIL:
        return SLOWER
    # Failing a merge takes more than a significant median shift: the worker-resampled interval must
    # exclude "no change" too. On a noisy hour of the reference machine this cut false regressions
    # from 18 % to 1.8 % of A/A comparisons; the slowdown is still reported, as a warning.
    return REGRESSION if lo > 0 else SLOWER


def _interval(rng: np.random.Generator, boot_log: np.ndarray[Any, Any]) -> tuple[float, float]:
    """Resample workers as well as samples: the spread between processes widens the interval."""
    pairs = boot_log.shape[0]
    pick = rng.integers(0, pairs, size=(RESAMPLES, pairs))
    boot = np.exp(boot_log[pick, np.arange(RESAMPLES)[:, None]].mean(axis=1)) - 1.0
    lo, hi = (float(x) for x in np.percentile(boot, [2.5, 97.5]))
    return lo, hi


SUITE_WIDE = "(suite-wide)"
MIN_OPS_FOR_SUITE_NORMALISATION = 5


def compare(baseline: dict[str, Any], current: dict[str, Any], *, normalise: bool = True) -> list[Change]:
    """Every operation measured in both results, in the current result's order.

    With ``normalise`` (and at least five operations), each worker's ratios are divided by that
    worker's median ratio over the other operations: a process that ran on a slow moment of a shared
    machine is slow at everything, and a slowed operation must not move its own yardstick. The
    median over all operations, divided by the fixed reference workload, is reported as a "(suite-wide)" change,
    so a change that slows every operation alike is still caught.
    """
    ops = [op for op in current["ops"] if op in baseline["samples_ns"]]
    if not ops:
        return []
    pairs = min(len(baseline["samples_ns"][ops[0]]), len(current["samples_ns"][ops[0]]))
    rng = np.random.default_rng(0)
    base = {op: _workers(baseline["samples_ns"][op], pairs) for op in ops}
    cur = {op: _workers(current["samples_ns"][op], pairs) for op in ops}
    point = {op: np.log([np.median(c) / np.median(b) for b, c in zip(base[op], cur[op], strict=True)]) for op in ops}
    boot = {op: np.log(_medians(rng, cur[op]) / _medians(rng, base[op])) for op in ops}

    op_shift_point = np.zeros(pairs)
    op_shift_boot = np.zeros((pairs, RESAMPLES))
    suite_wide: Change | None = None
    normalised = normalise and len(ops) >= MIN_OPS_FOR_SUITE_NORMALISATION
    if normalised:
        all_point, all_boot = np.stack([point[op] for op in ops]), np.stack([boot[op] for op in ops])
        suite_wide = _suite_wide(baseline, current, pairs, np.median(all_point, axis=0), np.median(all_boot, axis=0),
                                 rng)

    out = []
    for i, op in enumerate(ops):
        if normalised:
            # The worker's mood is judged by the *other* operations: with the operation itself in the
            # median, its own slowdown lifted the shift and came out at 11.7 % for a 12 % one.
            op_shift_point = np.median(np.delete(all_point, i, axis=0), axis=0)
            op_shift_boot = np.median(np.delete(all_boot, i, axis=0), axis=0)
        est_log = point[op] - op_shift_point
        estimate = float(np.exp(est_log.mean()) - 1.0)
        lo, hi = _interval(np.random.default_rng(i), boot[op] - op_shift_boot)
        # Significance on the samples themselves, each worker's current samples rescaled by its shift.
        pooled_b = np.concatenate(base[op])
        pooled_c = np.concatenate([c / np.exp(op_shift_point[j]) for j, c in enumerate(cur[op])])
        p = float(mannwhitneyu(pooled_c, pooled_b, alternative="two-sided").pvalue)
        out.append(Change(op, _verdict(estimate, p, lo, hi), estimate, (lo, hi), p,
                          float(np.median(pooled_b)) / 1e6, float(np.median(np.concatenate(cur[op]))) / 1e6))
    if suite_wide is not None:
        out.append(suite_wide)
    return out


def _suite_wide(baseline: dict[str, Any], current: dict[str, Any], pairs: int, shift_point: np.ndarray[Any, Any],
                shift_boot: np.ndarray[Any, Any], rng: np.random.Generator) -> Change | None:
    rb, rc = baseline.get("reference_ns") or [], current.get("reference_ns") or []
    if len(rb) < pairs or len(rc) < pairs or not all(rb[:pairs]) or not all(rc[:pairs]):
        return None
    ref_b, ref_c = _workers(rb, pairs), _workers(rc, pairs)
    ref_point = np.log([np.median(c) / np.median(b) for b, c in zip(ref_b, ref_c, strict=True)])
    ref_boot = np.log(_medians(rng, ref_c) / _medians(rng, ref_b))
    est_log = shift_point - ref_point
    estimate = float(np.exp(est_log.mean()) - 1.0)
    lo, hi = _interval(rng, shift_boot - ref_boot)
    # Every worker must agree: the reference is a coarse yardstick, one odd process proves nothing.
    agree = bool(np.all(est_log > np.log1p(WARN)) or np.all(est_log < -np.log1p(WARN)))
    verdict = _verdict(estimate, 0.0 if agree else 1.0, lo, hi)
    if verdict == REGRESSION:
        # The reference is a coarse yardstick: in a noisy hour the whole suite drifted more than 10 %
        # against it in A/A comparisons. A suite-wide slowdown is shown, as a warning; it never fails.
        verdict = SLOWER
    return Change(SUITE_WIDE, verdict, estimate, (lo, hi), 0.0 if agree else 1.0, 1.0, 1.0 + estimate)


def worst(changes: list[Change]) -> str:
    verdicts = {c.verdict for c in changes}
    for v in (REGRESSION, SLOWER, FASTER):
        if v in verdicts:
            return v
    return NO_CHANGE
