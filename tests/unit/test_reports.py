"""Bench and regress reports (profkit.render.bench_report, regress_report) over constructed results.

The bench result is assembled by the runner's own ``assemble`` from per-worker documents with fixed
seeds; the changes are constructed :class:`Change` objects, so every figure in a report is known.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from profkit.bench.analysis import analyse
from profkit.bench.compare import FASTER, NO_CHANGE, REGRESSION, SLOWER, SUITE_WIDE, Change
from profkit.bench.regress import WORKTREE, Side
from profkit.bench.runner import BenchConfig, assemble
from profkit.bench.suites import CALLS_PER_ROUND
from profkit.gitinfo import Commit
from profkit.render import bench_report, regress_report
from profkit.results import InstructionChange

COMMIT = Commit("abcdef1234567890abcdef1234567890abcdef12", dirty=True)
OPS = ("create", "get", "search_small")
MEDIAN_NS = {"create": 250_000, "get": 7_000, "search_small": 160_000}
BUDGET = {"get": {"p50": 1.0, "p95": 2.0, "p99": 3.0},  # generous: within
          "create": {"p50": 0.001, "p95": 0.001, "p99": 0.001}}  # impossible: over; search_small has none


def bench_result(*, inject: dict[str, float] | None = None, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    per_worker = [{"samples_ns": {op: [int(x) for x in MEDIAN_NS[op] * rng.lognormal(0, 0.1, 20 * CALLS_PER_ROUND[op])]
                                  for op in OPS},
                   "recall": {"search_small": 0.9 + 0.01 * i}} for i in range(2)]
    cfg = BenchConfig(("memory", "vector"), OPS, size=2000, workers=2, samples=20, warmup=5, inject=inject or {})
    return assemble(cfg, COMMIT, per_worker, started=1_700_000_000.0, build_s=1.0)


CHANGES = [
    Change("create", NO_CHANGE, 0.004, (-0.01, 0.02), 0.4, 0.25, 0.251),
    Change("get", REGRESSION, 0.12, (0.08, 0.16), 1e-6, 0.007, 0.00784),
    Change(SUITE_WIDE, SLOWER, 0.06, (0.05, 0.07), 1e-4, 0.0, 0.0),
]


@cache
def compared() -> dict[str, Any]:
    return analyse(bench_result(), BUDGET, CHANGES, "main-baseline")


@cache
def alone() -> dict[str, Any]:
    return analyse(bench_result(), BUDGET, None, None)


def _row(md: str, op: str) -> str:
    return next(line for line in md.splitlines() if line.startswith("| ") and f"| {op} |" in line)


def test_markdown_without_a_baseline_has_one_row_per_operation_and_the_budget() -> None:
    md = bench_report.markdown(alone())
    assert md.startswith("# Benchmark report\n")
    assert "- commit `abcdef123456` (dirty), 2023-11-14 22:13:20 UTC" in md
    assert "2 worker processes x 20 rounds" in md and "store of 2000 memories" in md
    assert "vs baseline" not in md and "Compared with baseline" not in md
    assert "ok " in _row(md, "get") and "OVER" not in _row(md, "get")
    assert "OVER" in _row(md, "create")
    assert "no budget" in _row(md, "search_small")
    assert "Recall@10 of semantic search against exact search: search_small 0.905." in md
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(OPS)
    assert len({line.count("|") for line in table}) == 1, table  # every row has every column


def test_markdown_against_a_baseline_gives_each_verdict_and_the_suite_wide_change() -> None:
    md = bench_report.markdown(compared())
    assert "Compared with baseline **main-baseline**: **regression**: get." in md
    assert "REGRESSION +12.0% [+8.0, +16.0] |" in _row(md, "get")
    assert "no change +0.4% [-1.0, +2.0] |" in _row(md, "create")
    assert "not in baseline |" in _row(md, "search_small")
    assert "Suite-wide (every operation against the fixed reference workload): WARNING slower +6.0% [+5.0, +7.0]." in md
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in table}) == 1, table


def test_markdown_of_a_calibration_run_says_the_times_were_multiplied() -> None:
    md = bench_report.markdown(analyse(bench_result(inject={"get": 1.12}), BUDGET, None, None))
    assert "**Calibration run**: recorded times multiplied on purpose — `get` x1.12" in md


def test_markdown_warnings_only() -> None:
    changes = [Change("get", SLOWER, 0.07, (0.06, 0.08), 1e-5, 0.007, 0.0075)]
    md = bench_report.markdown(analyse(bench_result(), BUDGET, changes, "b"))
    assert "Compared with baseline **b**: no regression; warnings: get." in md
    assert "WARNING slower +7.0%" in _row(md, "get")


def test_html_report_has_the_table_the_plots_and_escapes_the_title() -> None:
    page = bench_report.html(compared(), title="bench <of> main & head")
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "<title>bench &lt;of&gt; main &amp; head</title>" in page
    assert "bench <of>" not in page
    for op in OPS:
        assert f"<td>{op}</td>" in page
    assert page.count("<svg") == 3  # distributions, budget, comparison
    assert "regression in get" in page
    assert not re.search(r"<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page)


def test_html_report_without_a_baseline_has_no_comparison_plot() -> None:
    page = bench_report.html(alone())
    assert page.count("<svg") == 2
    assert "vs baseline" not in page


def test_instructions_markdown_with_and_without_a_baseline() -> None:
    result = {"ops": ["get", "create"], "instructions": {"get": 123_456.4, "create": 9_876_543.0}}
    plain = bench_report.instructions_markdown(result, None, COMMIT)
    assert plain.splitlines()[0] == "# Instruction counts (callgrind), commit `abcdef123456` (dirty)"
    assert "| get | 123,456 |" in plain and "| create | 9,876,543 |" in plain and "baseline" not in plain
    changes: list[InstructionChange] = [
        {"op": "get", "baseline": 100_000.0, "current": 123_456.4, "change_pct": 23.46, "verdict": REGRESSION}]
    against = bench_report.instructions_markdown(result, changes, Commit("f" * 40, dirty=False))
    assert "(dirty)" not in against
    assert "| get | 123,456 | 100,000 | +23.46 % | REGRESSION |" in against
    assert "| create | 9,876,543 | | | not in baseline |" in against


# -- regress ------------------------------------------------------------------------------------------


BASE = Side("A", "main", Commit("1111111111112222", dirty=False), Path("/tmp/a"), "python")
HEAD = Side("B", WORKTREE, Commit("3333333333334444", dirty=True), Path("/tmp/b"), "python")
CFG = BenchConfig(("memory",), ("get", "create"), size=2000, workers=8, samples=100, warmup=10)


def test_regress_report_leads_with_the_regression() -> None:
    changes = [Change("get", REGRESSION, 0.153, (0.11, 0.2), 1e-7, 0.007, 0.00807),
               Change("create", SLOWER, 0.06, (0.05, 0.07), 1e-4, 0.25, 0.265),
               Change(SUITE_WIDE, NO_CHANGE, 0.01, (-0.01, 0.03), 0.3, 0.0, 0.0)]
    md = regress_report.markdown(BASE, HEAD, changes, CFG, 312.4)
    lines = md.splitlines()
    assert lines[0] == ("## profkit regress: work tree (333333333333 + uncommitted changes) "
                        "against `main` (111111111111)")
    assert lines[2] == "**❌ Performance regression** in `get` (+15.3 %)"
    assert "| `get` | 0.007 | 0.008 | +15.3 % | [+11.0, +20.0] % | 1e-07 | ❌ regression |" in lines
    assert "| `create` | 0.250 | 0.265 | +6.0 % | [+5.0, +7.0] % | 0.0001 | ⚠️ slower |" in lines
    assert "| (suite-wide) | | | +1.0 % | [-1.0, +3.0] % | | no change |" in lines
    assert "8 worker processes per side" in md and "100 rounds" in md and "312 s" in md


@pytest.mark.parametrize(("changes", "head"), [
    ([Change("get", SLOWER, 0.07, (0.06, 0.08), 1e-5, 0.007, 0.0075)],
     "**⚠️ No regression, but slower:** `get` (+7.0 %)"),
    ([Change("get", FASTER, -0.2, (-0.25, -0.15), 1e-6, 0.007, 0.0056)],
     "**✅ No performance regression.** Some operations got faster."),
    ([Change("get", NO_CHANGE, 0.001, (-0.01, 0.01), 0.5, 0.007, 0.007)], "**✅ No performance regression.**"),
])
def test_regress_report_verdict_line(changes: list[Change], head: str) -> None:
    md = regress_report.markdown(BASE, Side("B", "feature", Commit("5" * 40, dirty=False), Path("/b"), "python"),
                                 changes, CFG, 10.0)
    assert md.splitlines()[0] == "## profkit regress: `feature` (555555555555) against `main` (111111111111)"
    assert md.splitlines()[2] == head
