"""Durations in fixed log buckets: cheap to add to on every loop step, percentiles within one bucket's width.

A bucket is an eighth of an octave (a power of two), from 1 us to 256 s, so a percentile read back is
at most 1/8 of an octave (< 10 %) above the true value. Counts are kept sparse, in a dict per
histogram (a task with a few steps costs a few entries), and the loop's hot path adds to them inline:
``counts[i] = counts.get(i, 0) + 1`` with ``i = bisect_right(BOUNDS, seconds)``.
"""

from __future__ import annotations

import math
from bisect import bisect_right

from ..results import StepHistogram

SUB = 8  # buckets per octave
MIN_EXP = -20  # 2**-20 s ~ 1 us: everything shorter lands in bucket 0
MAX_EXP = 8  # 2**8 s = 256 s: everything longer lands in the last bucket
# BOUNDS[i] is the upper bound (seconds) of bucket i; a value above the last lands in bucket len(BOUNDS).
BOUNDS: list[float] = [float(2.0 ** (MIN_EXP + i / SUB)) for i in range((MAX_EXP - MIN_EXP) * SUB + 1)]


def bucket(seconds: float) -> int:
    return bisect_right(BOUNDS, seconds)


def upper_bound(index: int) -> float:
    """The largest duration (seconds) bucket ``index`` holds (the last one has none: its lower bound)."""
    return BOUNDS[min(index, len(BOUNDS) - 1)]


def add(counts: dict[int, int], seconds: float) -> None:
    index = bisect_right(BOUNDS, seconds)
    counts[index] = counts.get(index, 0) + 1


def percentile(counts: dict[int, int], fraction: float, largest: float) -> float | None:
    """The duration (seconds) under which ``fraction`` of the values fall; None when there are none."""
    items = sorted(dict(counts).items())  # a copy: the loop's thread may add while another reads
    total = sum(count for _, count in items)
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for index, count in items:
        seen += count
        if seen >= rank:
            return min(upper_bound(index), largest)
    return largest


def summary(counts: dict[int, int], largest: float) -> StepHistogram:
    """``counts`` (bucket: count) and the largest value seen, as the console shows a histogram."""
    items = sorted(dict(counts).items())

    def ms(fraction: float) -> float | None:
        value = percentile(counts, fraction, largest)
        return None if value is None else round(value * 1000.0, 3)

    return {
        "count": sum(c for _, c in items),
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "max_ms": round(largest * 1000.0, 3) if items else None,
        "buckets": [[round(upper_bound(i) * 1000.0, 4), c] for i, c in items],
    }
