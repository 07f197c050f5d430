"""profkit regress's pull-request comment: the verdict first, then one row per operation."""

from __future__ import annotations

from ..bench.compare import FASTER, NO_CHANGE, REGRESSION, SLOWER, SUITE_WIDE, Change, worst
from ..bench.regress import WORKTREE, Side
from ..bench.runner import BenchConfig

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
