"""Is an operation faster, unchanged, slower or regressed against a baseline?

The comparison is paired by worker process: worker *i* of both runs used the same seed and the
same store, so the ratio of their medians cancels what the seed decides (which ids, which cache
hits) and leaves the code and the machine. Each worker also timed a fixed reference workload every
round; dividing by its median takes out how fast the machine happened to be for that process (other
tenants of a shared machine, frequency scaling), which no comparison of two runs made at different
times could otherwise tell from a change of the code. The estimate is the geometric mean of those ratios, with
a hierarchical bootstrap interval (resampling workers, then samples within each), so the spread
between processes widens the interval instead of hiding in a pooled sample.

A change counts only if it is statistically real — Mann-Whitney U on the pooled samples at
p < 0.002 (asv's test and level) and a bootstrap interval that excludes "no change" — and then it is
graded by size with the guide's thresholds: at least 5 % faster is "faster", 5-10 % slower a
warning, over 10 % a regression. Anything smaller is "no change" however significant: on a shared
two-core machine a 2 % shift between processes is noise, not news.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

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

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "verdict": self.verdict, "change_pct": round(100 * self.change, 2),
                "ci95_pct": [round(100 * self.ci[0], 2), round(100 * self.ci[1], 2)],
                "p_value": self.p_value, "baseline_p50_ms": round(self.baseline_p50_ms, 4),
                "current_p50_ms": round(self.current_p50_ms, 4)}


def _medians(rng: np.random.Generator, workers: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """RESAMPLES bootstrap medians per worker: shape (workers, RESAMPLES)."""
    out = np.empty((len(workers), RESAMPLES))
    for i, w in enumerate(workers):
        idx = rng.integers(0, w.size, size=(RESAMPLES, w.size))
        out[i] = np.median(w[idx], axis=1)
    return out


def compare_op(op: str, baseline: list[list[int]], current: list[list[int]], seed: int = 0,
               ref_baseline: list[list[int]] | None = None, ref_current: list[list[int]] | None = None) -> Change:
    """Paired comparison; with reference samples, each worker's times are divided by its reference."""
    pairs = min(len(baseline), len(current))
    if pairs == 0:
        raise ValueError(f"no samples for {op}")
    base = [np.asarray(w, dtype=np.float64) for w in baseline[:pairs]]
    cur = [np.asarray(w, dtype=np.float64) for w in current[:pairs]]
    normalise = bool(ref_baseline and ref_current and all(ref_baseline[:pairs]) and all(ref_current[:pairs])
                     and len(ref_baseline) >= pairs and len(ref_current) >= pairs)
    if normalise:
        assert ref_baseline is not None and ref_current is not None
        rb = [np.asarray(w, dtype=np.float64) for w in ref_baseline[:pairs]]
        rc = [np.asarray(w, dtype=np.float64) for w in ref_current[:pairs]]
    else:
        rb = rc = [np.ones(1)] * pairs
    log_ratios = np.log([(np.median(c) / np.median(r_c)) / (np.median(b) / np.median(r_b))
                         for b, c, r_b, r_c in zip(base, cur, rb, rc, strict=True)])
    estimate = float(np.exp(log_ratios.mean()) - 1.0)

    rng = np.random.default_rng(seed)
    boot_log = np.log((_medians(rng, cur) / _medians(rng, rc)) / (_medians(rng, base) / _medians(rng, rb)))
    pick = rng.integers(0, pairs, size=(RESAMPLES, pairs))
    boot = np.exp(boot_log[pick, np.arange(RESAMPLES)[:, None]].mean(axis=1)) - 1.0
    lo, hi = (float(x) for x in np.percentile(boot, [2.5, 97.5]))

    pooled_b, pooled_c = np.concatenate(base), np.concatenate(cur)
    p = float(mannwhitneyu(pooled_c, pooled_b, alternative="two-sided").pvalue)
    real = p < ALPHA and (lo > 0 or hi < 0)
    if not real or abs(estimate) < WARN:
        verdict = NO_CHANGE
    elif estimate <= -WARN:
        verdict = FASTER
    elif estimate <= FAIL:
        verdict = SLOWER
    else:
        verdict = REGRESSION
    return Change(op, verdict, estimate, (lo, hi), p, float(np.median(pooled_b)) / 1e6,
                  float(np.median(pooled_c)) / 1e6)


def compare(baseline: dict[str, Any], current: dict[str, Any], *, normalise: bool = True) -> list[Change]:
    """Every operation measured in both results, in the current result's order."""
    rb = baseline.get("reference_ns") if normalise else None
    rc = current.get("reference_ns") if normalise else None
    return [compare_op(op, baseline["samples_ns"][op], current["samples_ns"][op], seed=i,
                       ref_baseline=rb, ref_current=rc)
            for i, op in enumerate(current["ops"]) if op in baseline["samples_ns"]]


def worst(changes: list[Change]) -> str:
    verdicts = {c.verdict for c in changes}
    for v in (REGRESSION, SLOWER, FASTER):
        if v in verdicts:
            return v
    return NO_CHANGE
