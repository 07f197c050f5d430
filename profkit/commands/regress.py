"""profkit regress — one ref against another, interleaved, with a pull-request-ready report."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.table import Table

from ..bench.compare import FASTER, NO_CHANGE, REGRESSION, SLOWER, SUITE_WIDE, Change, compare, worst
from ..bench.regress import WORKTREE, Side, run_regress
from ..bench.report import VERDICT_COLOUR
from ..bench.runner import BenchConfig
from ..bench.suites import suite_ops
from ..console import err, out
from ..errors import UsageError
from ..session import progress
from ..store import write_atomic
from .bench import RegressionFound

ICON = {REGRESSION: "❌ regression", SLOWER: "⚠️ slower", FASTER: "🚀 faster", NO_CHANGE: "no change"}


def _label(side: Side) -> str:
    sha = side.commit.sha[:12] + (" + uncommitted changes" if side.commit.dirty else "")
    return f"`{side.ref}` ({sha})" if side.ref != WORKTREE else f"work tree ({sha})"


def markdown(a: Side, b: Side, changes: list[Change], cfg: BenchConfig, seconds: float) -> str:
    verdict = worst(changes)
    regressions = [c for c in changes if c.verdict == REGRESSION]
    warnings = [c for c in changes if c.verdict == SLOWER]
    if regressions:
        head = "**❌ Performance regression** in " + ", ".join(
            f"`{c.op}` ({100 * c.change:+.1f} %)" for c in regressions)
    elif warnings:
        head = "**⚠️ No regression, but slower:** " + ", ".join(f"`{c.op}` ({100 * c.change:+.1f} %)" for c in warnings)
    else:
        head = "**✅ No performance regression.**" + (" Some operations got faster." if verdict == FASTER else "")
    lines = [f"## profkit regress: {_label(b)} against {_label(a)}", "", head, "",
             "| operation | base p50 (ms) | head p50 (ms) | change | 95 % interval | p-value | verdict |",
             "|---|---:|---:|---:|---|---:|---|"]
    for c in changes:
        if c.op == SUITE_WIDE:
            lines.append(f"| {c.op} | | | {100 * c.change:+.1f} % | [{100 * c.ci[0]:+.1f}, {100 * c.ci[1]:+.1f}] % "
                         f"| | {ICON[c.verdict]} |")
            continue
        lines.append(f"| `{c.op}` | {c.baseline_p50_ms:.3f} | {c.current_p50_ms:.3f} | {100 * c.change:+.1f} % | "
                     f"[{100 * c.ci[0]:+.1f}, {100 * c.ci[1]:+.1f}] % | {c.p_value:.2g} | {ICON[c.verdict]} |")
    lines += ["", f"<sub>{cfg.workers} worker processes per side, interleaved (A B, B A, ...), {cfg.samples} "
              f"rounds of every operation in each, store of {cfg.size} memories; {seconds:.0f} s. A change counts when "
              "Mann-Whitney U gives p < 0.002 and the paired bootstrap interval excludes zero; 5-10 % slower "
              "warns, over 10 % fails.</sub>", ""]
    return "\n".join(lines)


def run_regress_command(*, base: str, head: str, quick: bool, suites: list[str], op_filter: str | None,
                        rounds: int | None, output: Path, repo: Path) -> dict[str, Any]:
    chosen, ops = suite_ops(suites, op_filter)
    cfg = BenchConfig.preset(quick, tuple(chosen), tuple(ops))
    if rounds is not None:
        if rounds < 2:
            raise UsageError("--rounds must be at least 2 (one A B and one B A)")
        cfg = replace(cfg, workers=rounds)
    start = time.time()
    with progress("profkit regress") as tick:
        a, b, res_a, res_b = run_regress(repo, base, head, cfg, tick)
        changes = compare(res_a, res_b)
    text = markdown(a, b, changes, cfg, time.time() - start)
    write_atomic(output, text.encode())
    return {"command": "regress", "base": {"ref": base, "commit": a.commit.sha},
            "head": {"ref": head, "commit": b.commit.sha, "dirty": b.commit.dirty}, "report": str(output),
            "changes": [c.to_dict() for c in changes], "verdict": worst(changes),
            "regressions": [c.op for c in changes if c.verdict == REGRESSION],
            "warnings": [c.op for c in changes if c.verdict == SLOWER], "seconds": round(time.time() - start, 1)}


def render(doc: dict[str, Any]) -> None:
    table = Table(title=f"{doc['head']['ref']} against {doc['base']['ref']}")
    for col in ("operation", "base p50 ms", "head p50 ms", "change", "verdict"):
        table.add_column(col, justify="right" if "ms" in col or col == "change" else "left")
    for c in doc["changes"]:
        colour = VERDICT_COLOUR[c["verdict"]]
        table.add_row(c["op"], f"{c['baseline_p50_ms']:.3f}", f"{c['current_p50_ms']:.3f}",
                      f"{c['change_pct']:+.1f}% [{c['ci95_pct'][0]:+.1f}, {c['ci95_pct'][1]:+.1f}]",
                      f"[{colour}]{c['verdict']}[/]")
    out.print(table)
    err.print(f"report: {doc['report']}", highlight=False)


def check_exit(doc: dict[str, Any]) -> None:
    if doc["regressions"]:
        raise RegressionFound(f"regression (> 10 % slower) in {', '.join(doc['regressions'])}; see {doc['report']}")
