"""Summary statistics of latency samples, with bootstrap confidence intervals and outlier counts.

Percentile confidence intervals are percentile-method bootstraps (BCa fails on percentiles of
ties), drawn from the exact law of a resample's order statistic (``bootstrap_quantiles``) rather
than by resampling thousands of samples a thousand times; the mean's uses scipy's bootstrap.
Outliers are counted with Tukey's fences as criterion does (mild: beyond 1.5 IQR, severe: beyond
3 IQR) and reported, never dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

CONFIDENCE = 0.95
RESAMPLES = 1000


def bootstrap_quantiles(samples: npt.NDArray[np.float64], q: float, rng: np.random.Generator,
                        resamples: int = RESAMPLES) -> npt.NDArray[np.float64]:
    """``resamples`` draws of the q-quantile (0 < q < 1) of a bootstrap resample of ``samples``.

    A resample of n draws from n sorted values has its k-th smallest (k = ceil(q n)) at or below
    the j-th value exactly when at least k draws land at or below it, a binomial tail; sampling
    that law is the same as resampling, in O(n log n) instead of O(resamples x n).
    """
    ordered = np.sort(samples)
    n = ordered.size
    k = max(1, int(np.ceil(q * n)))
    cdf = sps.binom.sf(k - 1, n, np.arange(1, n + 1) / n)
    picks = np.searchsorted(cdf, rng.random(resamples), side="left")
    return ordered[np.minimum(picks, n - 1)]


def _quantile_ci(samples: npt.NDArray[np.float64], q: float, seed: int) -> tuple[float, float]:
    draws = bootstrap_quantiles(samples, q, np.random.default_rng(seed))
    lo, hi = np.percentile(draws, [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2])
    return float(lo), float(hi)


def _mean_ci(samples: npt.NDArray[np.float64], seed: int) -> tuple[float, float]:
    res = sps.bootstrap((samples,), np.mean, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                        method="percentile", vectorized=True, axis=-1, random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarise(samples_ns: list[int], seed: int = 0) -> dict[str, Any]:
    """p50/p95/p99/mean/stddev in milliseconds, each central figure with its 95 % interval."""
    x = np.asarray(samples_ns, dtype=np.float64) / 1e6
    q1, p50, q3, p95, p99 = (float(v) for v in np.percentile(x, [25, 50, 75, 95, 99]))
    iqr = q3 - q1
    mild = int(np.sum((x > q3 + 1.5 * iqr) | (x < q1 - 1.5 * iqr)))
    severe = int(np.sum((x > q3 + 3 * iqr) | (x < q1 - 3 * iqr)))
    out: dict[str, Any] = {
        "n": int(x.size),
        "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
        "mean_ms": float(x.mean()), "stddev_ms": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "min_ms": float(x.min()), "max_ms": float(x.max()),
        "outliers": {"mild": mild - severe, "severe": severe, "share": round(mild / x.size, 4)},
    }
    if x.size >= 20:
        out["ci95"] = {
            "p50_ms": _quantile_ci(x, 0.50, seed),
            "p99_ms": _quantile_ci(x, 0.99, seed + 1),
            "mean_ms": _mean_ci(x, seed + 2),
        }
    return out


def budget_status(summary: dict[str, Any], budget: dict[str, Any] | None) -> dict[str, Any]:
    """Within or over the budget at each of p50/p95/p99, and by how much (positive = over)."""
    if budget is None:
        return {"status": "no budget", "checks": {}}
    checks = {}
    for q in ("p50", "p95", "p99"):
        limit = float(budget[q])
        value = float(summary[f"{q}_ms"])
        checks[q] = {"limit_ms": limit, "value_ms": value, "over_pct": round(100 * (value / limit - 1), 1),
                     "within": value <= limit}
    return {"status": "within" if all(c["within"] for c in checks.values()) else "over", "checks": checks,
            "from": budget.get("from")}
