"""Bench reports: one analysis (profkit.bench.analysis) rendered as markdown and as HTML with plots."""

from __future__ import annotations

import io
import time
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

from ..bench.compare import FASTER, NO_CHANGE, REGRESSION, SLOWER
from ..gitinfo import Commit
from ..results import InstructionChange
from .jinja import template

VERDICT_MARK = {FASTER: "faster", NO_CHANGE: "no change", SLOWER: "WARNING slower", REGRESSION: "REGRESSION"}
# rich colour names for terminal tables
VERDICT_COLOUR = {REGRESSION: "red", SLOWER: "yellow", FASTER: "green", NO_CHANGE: "white"}


def _ci(s: dict[str, Any], key: str) -> str:
    ci = s.get("ci95", {}).get(key)
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def markdown(a: dict[str, Any], *, title: str = "Benchmark report") -> str:
    r = a["result"]
    env = r["environment"]
    cfg = r["config"]
    out = [f"# {title}", "",
           f"- commit `{env['commit'][:12]}`{' (dirty)' if env['dirty'] else ''}, "
           f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(r['started_at']))}",
           f"- {env['cpu']}, {env['cores']} cores, Python {env['python']}, load average "
           f"{' / '.join(str(x) for x in env['load_average'])}",
           f"- store of {cfg['size']} memories; {cfg['workers']} worker processes x {cfg['samples']} rounds "
           f"(fast operations are called several times a round) after {cfg['warmup']} warm-up rounds; "
           f"took {r['duration_s']} s",
           ""]
    if cfg.get("inject"):
        out += ["**Calibration run**: recorded times multiplied on purpose — "
                + ", ".join(f"`{op}` x{f}" for op, f in cfg["inject"].items()) + "; these are not the engine's times.",
                ""]
    if a["baseline"]:
        verdict = ("**regression**: " + ", ".join(a["regressions"]) if a["regressions"]
                   else "no regression" + (f"; warnings: {', '.join(a['warnings'])}" if a["warnings"] else ""))
        out += [f"Compared with baseline **{a['baseline']}**: {verdict}. The two runs were made at different "
                "times, so the machine's drift between them adds to each change (1-2 % per operation on a shared "
                "machine); `profkit regress` interleaves both sides and is the better merge gate.", ""]
    head = ("| suite | operation | p50 ms [95% CI] | p95 ms | p99 ms [95% CI] | mean ± sd ms | outliers "
            "| budget (p50/p95/p99) |")
    sep = "|---|---|---|---|---|---|---|---|"
    if a["baseline"]:
        head += " vs baseline |"
        sep += "---|"
    out += [head, sep]
    for row in a["rows"]:
        s, b = row["summary"], row["budget"]
        if b["checks"]:
            budget = " / ".join(f"{'ok' if c['within'] else 'OVER'} {c['value_ms']:.3g}≤{c['limit_ms']:g}"
                                if c["within"] else f"OVER {c['value_ms']:.3g}>{c['limit_ms']:g} (+{c['over_pct']}%)"
                                for c in b["checks"].values())
        else:
            budget = "no budget"
        line = (f"| {row['suite']} | {row['op']} | {s['p50_ms']:.3f}{_ci(s, 'p50_ms')} | {s['p95_ms']:.3f} | "
                f"{s['p99_ms']:.3f}{_ci(s, 'p99_ms')} | {s['mean_ms']:.3f} ± {s['stddev_ms']:.3f} | "
                f"{s['outliers']['mild']} mild, {s['outliers']['severe']} severe | {budget} |")
        if a["baseline"]:
            c = row["change"]
            line += (f" {VERDICT_MARK[c['verdict']]} {c['change_pct']:+.1f}% "
                     f"[{c['ci95_pct'][0]:+.1f}, {c['ci95_pct'][1]:+.1f}] |" if c else " not in baseline |")
        out.append(line)
    sw = a.get("suite_wide")
    if sw:
        out += ["", f"Suite-wide (every operation against the fixed reference workload): {VERDICT_MARK[sw['verdict']]} "
                f"{sw['change_pct']:+.1f}% [{sw['ci95_pct'][0]:+.1f}, {sw['ci95_pct'][1]:+.1f}]."]
    recall = r.get("recall_at_10") or {}
    if recall:
        out += ["", "Recall@10 of semantic search against exact search: "
                + ", ".join(f"{k} {v:.3f}" for k, v in recall.items()) + "."]
    out += ["", "Changes count only when Mann-Whitney U gives p < 0.002 and the bootstrap interval excludes zero; "
            "then 5-10 % slower is a warning and over 10 % a regression.", ""]
    return "\n".join(out)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def plots(a: dict[str, Any]) -> dict[str, str]:
    rows = a["rows"]
    ops = [r["op"] for r in rows]
    out: dict[str, str] = {}
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(ops) + 1.2))
    data = [np.asarray([x for w in a["result"]["samples_ns"][op] for x in w]) / 1e6 for op in ops]
    ax.boxplot(data, orientation="horizontal", tick_labels=ops, showfliers=True, flierprops={"markersize": 2})
    for i, r in enumerate(rows, start=1):
        if r["budget"]["checks"]:
            ax.plot([r["budget"]["checks"]["p99"]["limit_ms"]] * 2, [i - 0.4, i + 0.4], color="crimson", lw=2)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale); red bar: the operation's p99 budget")
    ax.set_title("Latency distributions")
    out["distributions"] = _svg(fig)

    fig, ax = plt.subplots(figsize=(10, 0.45 * len(ops) + 1.2))
    p99 = [r["summary"]["p99_ms"] for r in rows]
    limits = [r["budget"]["checks"]["p99"]["limit_ms"] if r["budget"]["checks"] else np.nan for r in rows]
    y = np.arange(len(ops))
    ax.barh(y, p99, color=["crimson" if r["budget"]["status"] == "over" else "seagreen" for r in rows])
    ax.scatter(limits, y, marker="|", s=400, color="black", label="p99 budget")
    ax.set_yticks(y, ops)
    ax.set_xscale("log")
    ax.set_xlabel("p99 latency (ms, log scale)")
    ax.legend(loc="lower right")
    ax.set_title("p99 against the budget")
    out["budget"] = _svg(fig)

    compared = [r for r in rows if r["change"]]
    if compared:
        fig, ax = plt.subplots(figsize=(10, 0.45 * len(compared) + 1.2))
        ch = [r["change"]["change_pct"] for r in compared]
        lo = [r["change"]["change_pct"] - r["change"]["ci95_pct"][0] for r in compared]
        hi = [r["change"]["ci95_pct"][1] - r["change"]["change_pct"] for r in compared]
        colours = {FASTER: "seagreen", NO_CHANGE: "grey", SLOWER: "orange", REGRESSION: "crimson"}
        y = np.arange(len(compared))
        ax.barh(y, ch, xerr=[lo, hi], color=[colours[r["change"]["verdict"]] for r in compared], capsize=3)
        for x in (-5, 5):
            ax.axvline(x, color="orange", ls="--", lw=1)
        ax.axvline(10, color="crimson", ls="--", lw=1)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [r["op"] for r in compared])
        ax.set_xlabel("change of the median against the baseline (%), with 95% interval")
        ax.set_title(f"Compared with {a['baseline']}")
        out["comparison"] = _svg(fig)
    return out


def html(a: dict[str, Any], *, title: str = "Benchmark report") -> str:
    return template("bench_report.html").render(a=a, title=title, plots=plots(a), md_table=markdown(a),
                                                         verdict_mark=VERDICT_MARK)


def instructions_markdown(result: dict[str, Any], changes: list[InstructionChange] | None, commit: Commit) -> str:
    """``bench --mode instructions``: counts per call, and against a baseline when there is one."""
    lines = [f"# Instruction counts (callgrind), commit `{commit.sha[:12]}`{' (dirty)' if commit.dirty else ''}", "",
             "| operation | instructions per call |" + (" baseline | change | verdict |" if changes else ""),
             "|---|---:|" + ("---:|---:|---|" if changes else "")]
    by_op = {c["op"]: c for c in changes or []}
    for op in result["ops"]:
        row = f"| {op} | {result['instructions'][op]:,.0f} |"
        if changes:
            c = by_op.get(op)
            row += (f" {c['baseline']:,.0f} | {c['change_pct']:+.2f} % | {VERDICT_MARK[c['verdict']]} |" if c
                    else " | | not in baseline |")
        lines.append(row)
    return "\n".join(lines) + "\n"
