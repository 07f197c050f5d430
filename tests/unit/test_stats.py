"""The closed-form bootstrap of quantiles must agree with plain resampling."""

from __future__ import annotations

import numpy as np
import pytest

from profkit.bench.stats import bootstrap_quantiles


@pytest.mark.parametrize("q", [0.5, 0.99])
@pytest.mark.parametrize("shape", ["bimodal", "skewed"])
def test_matches_resampling(q: float, shape: str) -> None:
    rng = np.random.default_rng(7)
    n = 1500
    if shape == "bimodal":  # a cache hit or a miss: the case that made medians jump
        x = np.concatenate([rng.normal(10, 1, n // 2), rng.normal(50, 5, n - n // 2)])
    else:
        x = rng.lognormal(0, 0.6, n)
    k = int(np.ceil(q * n)) - 1
    brute = np.sort(x[rng.integers(0, n, size=(4000, n))], axis=1)[:, k]
    fast = bootstrap_quantiles(x, q, np.random.default_rng(8), 4000)
    for p in (2.5, 25, 50, 75, 97.5):
        a, b = np.percentile(brute, p), np.percentile(fast, p)
        # Both are draws of the same law; compare them at the resolution of the sorted data.
        rank_a, rank_b = np.searchsorted(np.sort(x), [a, b])
        assert abs(int(rank_a) - int(rank_b)) <= max(3, n // 100), (p, a, b)
