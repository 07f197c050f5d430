"""Trends across commits: each operation's bench figures in commit order, and where their level shifted.

A comparison with the previous commit (``profkit ci``'s ``against``) catches a slowdown that one
commit makes; it cannot see four commits that each add 1 %. Like asv's ``step_detect``, the series
of an operation's medians across commits is fitted with a piecewise-constant level, and every jump
of that level that is both large and real is reported as a step, at the commit where it began.

The rule (:func:`detect_steps`), on the logarithm of the figures so that a step is relative:

1. the noise of one point, ``sigma``, is read from the differences of neighbouring points
   (median absolute deviation, so the steps themselves do not inflate it), never below
   ``SIGMA_FLOOR``;
2. single outliers are taken out with a running median of three (it leaves a step's edge where it
   is: a level shift survives a median of three, one odd run does not);
3. the exact best partition into segments of at least ``MIN_SEGMENT`` points is found by dynamic
   programming (optimal partitioning): the sum of squared deviations from each segment's mean plus
   a penalty of ``PENALTY * sigma**2 * log(n)`` per step (the Schwarz criterion, doubled);
4. the partition is then pruned, weakest boundary first, until every boundary left separates two
   segments whose *medians* (of the original figures: robust to what step 2 smoothed) differ by at
   least ``MIN_STEP`` (3 %) and by at least ``MIN_Z`` standard errors of a difference of medians;
5. each boundary left is moved, between its neighbours, to where the two segments' absolute
   deviations from their medians are least (on the original figures: the smoothing of step 2 blurs
   where an edge is by a point now and then), and pruned again by the same test, plus one: the
   points either side of it must each be nearer their own side's level.

A level must hold for ``MIN_SEGMENT`` commits to be one: one or two slow runs in a row is the
machine, not the code, and the comparison with the parent commit already reports a single bad commit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The verdicts of a comparison with the parent commit, as profkit.bench.compare words them. Not imported
# from there: it brings scipy (a second or two) into commands that do no statistics; a unit test
# checks the two agree.
REGRESSION, SLOWER, FASTER, NO_CHANGE = "regression", "slower", "faster", "no change"

MIN_STEP = 0.03
MIN_SEGMENT = 4
MIN_Z = 4.0
PENALTY = 4.0
# Identical figures (a deterministic count, a synthetic store) would make any difference infinitely
# significant; real between-run noise of a median on the reference machine is 0.3-2 %.
SIGMA_FLOOR = 0.002
# The standard error of a median is sqrt(pi / 2) times that of a mean, for normal noise.
_MEDIAN_SE = math.sqrt(math.pi / 2)


@dataclass(frozen=True)
class Step:
    """A shift of an operation's level that began at point ``index`` of the series."""

    index: int  # the first point at the new level
    before: float  # median of the segment before, in the series' units
    after: float  # median of the segment from ``index`` on
    change: float  # relative: +0.04 is 4 % slower
    z: float  # the shift in standard errors of a difference of medians


def noise(values: Sequence[float]) -> float:
    """The relative noise of one point (sigma of its log), from neighbour differences; robust to steps."""
    y = _log(values)
    if len(y) < 3:
        return SIGMA_FLOOR
    d = np.diff(y)
    mad = float(np.median(np.abs(d - np.median(d))))
    # 1.4826 MAD is sigma for normal noise; a difference of two points has sqrt(2) times the sigma of one.
    return max(1.4826 * mad / math.sqrt(2), SIGMA_FLOOR)


def detect_steps(values: Sequence[float], *, min_step: float = MIN_STEP, min_segment: int = MIN_SEGMENT,
                 min_z: float = MIN_Z) -> list[Step]:
    """The level shifts of a series of positive figures (oldest first), in order; see the module's rule."""
    y = _log(values)
    n = len(y)
    if n < 2 * min_segment:
        return []
    sigma = noise(values)
    smooth = _median3(y)
    bounds = _partition(smooth, min_segment, PENALTY * sigma**2 * math.log(n))
    edges = _prune(y, [0, *bounds, n], sigma, min_step, min_z, edges_too=False)
    for i in range(1, len(edges) - 1):
        edges[i] = _place(y, edges[i - 1], edges[i + 1], min_segment)
    edges = _prune(y, edges, sigma, min_step, min_z, edges_too=True)
    steps = []
    for i in range(1, len(edges) - 1):
        a, k, b = edges[i - 1], edges[i], edges[i + 1]
        change, z = _test(y, a, k, b, sigma)
        steps.append(Step(k, math.exp(float(np.median(y[a:k]))), math.exp(float(np.median(y[k:b]))), change, z))
    return steps


def _prune(y: np.ndarray[Any, np.dtype[np.float64]], edges: list[int], sigma: float, min_step: float,
           min_z: float, *, edges_too: bool) -> list[int]:
    """Remove the boundaries that fail the rule, weakest first.

    The weakest goes first: removing it lengthens its neighbours' segments, which may make a boundary
    that failed next to it pass. With ``edges_too`` (once boundaries are placed), a boundary also fails
    when a point beside it sits nearer the other side's level: placed where the absolute deviations
    are least, that happens only where the minimum segment length stopped it, i.e. where a new level
    has not yet held for ``MIN_SEGMENT`` points (three slow commits at the end of a series).
    """
    edges = list(edges)
    while len(edges) > 2:
        failing = []
        for i in range(1, len(edges) - 1):
            a, k, b = edges[i - 1], edges[i], edges[i + 1]
            change, z = _test(y, a, k, b, sigma)
            if abs(change) < min_step or z < min_z or (edges_too and not _clean(y, a, k, b)):
                failing.append((z, i))
        if not failing:
            break
        edges.pop(min(failing)[1])
    return edges


def _clean(y: np.ndarray[Any, np.dtype[np.float64]], a: int, k: int, b: int) -> bool:
    """The points either side of boundary k are each nearer their own segment's median."""
    before, after = float(np.median(y[a:k])), float(np.median(y[k:b]))
    first, last = float(y[k]), float(y[k - 1])
    return abs(first - after) <= abs(first - before) and abs(last - before) <= abs(last - after)


def _log(values: Sequence[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
    y = np.asarray(values, dtype=np.float64)
    if y.size and not (np.all(np.isfinite(y)) and np.all(y > 0)):
        raise ValueError("a trend needs finite positive figures")
    return np.log(y)


def _median3(y: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    if len(y) < 3:
        return y.copy()
    out = y.copy()
    out[1:-1] = np.median(np.stack([y[:-2], y[1:-1], y[2:]]), axis=0)
    # The ends have one neighbour: the median of the end, its neighbour and the line through the next two.
    out[0] = np.median([y[0], y[1], 2 * y[1] - y[2]])
    out[-1] = np.median([y[-1], y[-2], 2 * y[-2] - y[-3]])
    return out


def _partition(y: np.ndarray[Any, np.dtype[np.float64]], m: int, penalty: float) -> list[int]:
    """Optimal partitioning: the boundaries minimising squared deviations plus ``penalty`` per segment."""
    n = len(y)
    s1 = np.concatenate([[0.0], np.cumsum(y)])
    s2 = np.concatenate([[0.0], np.cumsum(y * y)])
    best = np.full(n + 1, np.inf)
    best[0] = -penalty  # the first segment is not a step
    last = np.zeros(n + 1, dtype=np.int64)
    for j in range(m, n + 1):
        i = np.arange(0, j - m + 1)
        i = i[np.isfinite(best[i])]
        length = j - i
        cost = (s2[j] - s2[i]) - (s1[j] - s1[i]) ** 2 / length
        total = best[i] + cost + penalty
        k = int(np.argmin(total))
        best[j], last[j] = total[k], i[k]
    bounds = []
    j = n
    while j > 0:
        j = int(last[j])
        if j > 0:
            bounds.append(j)
    return bounds[::-1]


def _place(y: np.ndarray[Any, np.dtype[np.float64]], a: int, b: int, m: int) -> int:
    """Where in y[a:b] one boundary splits it with the least absolute deviation from the two medians."""
    def cost(k: int) -> float:
        left, right = y[a:k], y[k:b]
        return float(np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum())

    return min(range(a + m, b - m + 1), key=cost)


def _test(y: np.ndarray[Any, np.dtype[np.float64]], a: int, k: int, b: int, sigma: float) -> tuple[float, float]:
    """Relative change and z of the medians of y[a:k] and y[k:b]."""
    delta = float(np.median(y[k:b]) - np.median(y[a:k]))
    se = sigma * _MEDIAN_SE * math.sqrt(1 / (k - a) + 1 / (b - k))
    return math.expm1(delta), abs(delta) / se


# -- series from the store's commit indexes ---------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One commit's figures for one operation."""

    position: int  # the commit's place among all the commits given (oldest 0)
    folder: str
    commit: str
    p50_ms: float
    p99_ms: float | None
    p50_ci95: tuple[float, float] | None
    budget_p99_ms: float | None
    verdict: str | None  # of this operation in the commit's comparison with its parent, if it had one
    change_pct: float | None


def bench_size(doc: Mapping[str, Any]) -> Any:
    """What makes two commits' bench figures comparable: the size of the store they were measured on."""
    bench = doc.get("bench") or {}
    return (bench.get("config") or {}).get("size")


def operation_series(commits: Sequence[Mapping[str, Any]], *, size: Any = None) -> dict[str, list[Point]]:
    """Each operation's points across ``commits`` (commit indexes, oldest first), in that order.

    Only commits benched on a store of ``size`` memories count (by default the newest commit's size):
    a quick bench's 2,000 memories and a full bench's 20,000 are different workloads, and mixing them
    would draw a step at every switch.
    """
    benched = [(pos, d) for pos, d in enumerate(commits) if (d.get("bench") or {}).get("ops")]
    if not benched:
        return {}
    if size is None:
        size = bench_size(benched[-1][1])
    out: dict[str, list[Point]] = {}
    for pos, doc in benched:
        if bench_size(doc) != size:
            continue
        against = doc.get("against") or {}
        changes = {c["op"]: c for c in against.get("changes") or []}
        for op, f in doc["bench"]["ops"].items():
            p50 = f.get("p50_ms")
            if not isinstance(p50, int | float) or not p50 > 0:
                continue
            ci = f.get("p50_ci95")
            change = changes.get(op) or {}
            out.setdefault(op, []).append(Point(
                position=pos, folder=str(doc["folder"]), commit=str(doc["commit"]), p50_ms=float(p50),
                p99_ms=_number(f.get("p99_ms")),
                p50_ci95=(float(ci[0]), float(ci[1])) if isinstance(ci, list | tuple) and len(ci) == 2 else None,
                budget_p99_ms=_number(f.get("budget_p99_ms")), verdict=change.get("verdict"),
                change_pct=_number(change.get("change_pct"))))
    return out


def steps_of(points: Sequence[Point]) -> list[tuple[Step, Point]]:
    """The steps of an operation's p50 series, each with the point (commit) where the new level began."""
    return [(s, points[s.index]) for s in detect_steps([p.p50_ms for p in points])]


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def compare_commits(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Two commit indexes' bench figures side by side, per operation both measured (in ``after``'s order).

    A plain ratio of the medians, with whether the two p50 95 % intervals overlap: a quick look across
    any two commits, not a verdict (``profkit regress`` interleaves both sides and is the merge gate).
    """
    a = (before.get("bench") or {}).get("ops") or {}
    b = (after.get("bench") or {}).get("ops") or {}
    rows = []
    for op, f in b.items():
        if op not in a or not a[op].get("p50_ms") or not f.get("p50_ms"):
            continue
        ca, cb = a[op].get("p50_ci95"), f.get("p50_ci95")
        apart = bool(ca and cb) and (cb[0] > ca[1] or cb[1] < ca[0])
        rows.append({"op": op, "before_ms": a[op]["p50_ms"], "after_ms": f["p50_ms"],
                     "change_pct": round(100 * (f["p50_ms"] / a[op]["p50_ms"] - 1), 2),
                     "intervals_apart": apart, "before_p99_ms": a[op].get("p99_ms"), "after_p99_ms": f.get("p99_ms")})
    return rows
