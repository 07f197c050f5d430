"""profkit regress's pull-request comment: the verdict first, then one row per operation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..bench.compare import FASTER, NO_CHANGE, REGRESSION, SLOWER, SUITE_WIDE, Change, worst
from ..bench.regress import WORKTREE, Side
from ..bench.runner import BenchConfig

ICON = {REGRESSION: "❌ regression", SLOWER: "⚠️ slower", FASTER: "🚀 faster", NO_CHANGE: "no change"}


def _label(side: Side) -> str:
    sha = side.commit.sha[:12] + (" + uncommitted changes" if side.commit.dirty else "")
    return f"`{side.ref}` ({sha})" if side.ref != WORKTREE else f"work tree ({sha})"


def markdown(a: Side, b: Side, changes: list[Change], cfg: BenchConfig, seconds: float, *,
             explained: Sequence[Mapping[str, Any]] = (), report_dir: Path | None = None) -> str:
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
    for why in explained:
        lines += _explanation(why, report_dir)
    return "\n".join(lines)


def _explanation(why: Mapping[str, Any], report_dir: Path | None) -> list[str]:
    """Why one operation got slower: its functions whose share moved, with instructions where counted."""
    op = why["op"]
    if why.get("error"):
        return [f"### Why `{op}` is slower", "", f"Could not attribute it: {why['error']}", ""]
    out = [f"### Why `{op}` is slower", ""]
    ins = why.get("instructions_per_call")
    if ins:
        out += [f"Instructions per call (callgrind, deterministic): {ins[0]:,.0f} → {ins[1]:,.0f} "
                f"({why['instructions_change_pct']:+.1f} %).", ""]
    counted = ins is not None
    out += ["| function | file | share of the operation (total) | self | "
            + ("est. instructions per call |" if counted else ""),
            "|---|---|---:|---:|" + ("---:|" if counted else "")]
    for f in why["functions"]:
        row = (f"| `{f['function']}` | {f['file']} | {f['total_before_pct']:.1f} → {f['total_after_pct']:.1f} % "
               f"({f['total_delta_pct']:+.1f} pp) | {f['self_before_pct']:.1f} → {f['self_after_pct']:.1f} % |")
        if counted:
            row += f" {f.get('est_instructions_before', 0):,} → {f.get('est_instructions_after', 0):,} |"
        out.append(row)
    svg = Path(why["svg"]) if why.get("svg") else None
    if svg is not None:
        where = svg.name if report_dir is not None and svg.parent == report_dir else str(svg)
        out += ["", f"Differential flamegraph of the operation's own stacks: `{where}` (red: more of the head's "
                f"time, blue: less). {why['samples'][0]} base / {why['samples'][1]} head samples; shares, not "
                "samples, are compared; an estimate of a function's instructions is its inclusive share times "
                "the operation's instructions per call."]
    return [*out, ""]
