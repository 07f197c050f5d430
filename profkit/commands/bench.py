"""profkit bench — the engine's four suites, against the budget and optionally a baseline."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.table import Table

from ..bench import baseline as baselines
from ..bench.budget import load_budget
from ..bench.compare import REGRESSION, SLOWER, compare
from ..bench.instructions import KIND, compare_instructions, count_instructions
from ..bench.report import VERDICT_COLOUR, VERDICT_MARK, analyse, html, markdown
from ..bench.runner import BenchConfig, run_bench
from ..bench.suites import suite_ops
from ..console import err, out
from ..errors import ProfkitError, UsageError
from ..session import progress, repo_commit
from ..store import ArtifactStore, write_atomic

EXIT_REGRESSION = 10


class RegressionFound(ProfkitError):
    exit_code = EXIT_REGRESSION


def parse_inject(specs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for spec in specs:
        op, _, factor = spec.partition("=")
        try:
            value = float(factor)
        except ValueError:
            raise UsageError(f"--inject takes OP=FACTOR such as get=1.12, got {spec!r}") from None
        if value < 1.0:
            raise UsageError("--inject can only slow an operation down (FACTOR >= 1)")
        out[op] = value
    return out


def report_paths(folder: Path) -> tuple[Path, Path, Path]:
    stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        base = f"benchmark_{stamp}" + (f"_{n}" if n else "")
        md = folder / f"{base}.md"
        if not md.exists():
            return md, folder / f"{base}.html", folder / f"{base}.json"
        n += 1


def run_bench_command(
    *, quick: bool, suites: list[str], op_filter: str | None, save_baseline: str | None, baseline: str | None,
    baselines_dir: Path, reports_dir: Path, store: Path, budget_path: Path | None, inject: list[str],
    workers: int | None, samples: int | None, mode: str = "time",
) -> dict[str, Any]:
    chosen, ops = suite_ops(suites, op_filter)
    if mode not in ("time", "instructions"):
        raise UsageError(f"--mode must be time or instructions, got {mode!r}")
    if mode == "instructions":
        if inject:
            raise UsageError("--inject scales recorded times; it has no meaning with --mode instructions")
        return run_instructions(quick=quick, chosen=chosen, ops=ops, save_baseline=save_baseline, baseline=baseline,
                                baselines_dir=baselines_dir, reports_dir=reports_dir, store=store)
    budget = load_budget(budget_path)
    base_result = baselines.load(baselines_dir, baseline, ops=ops) if baseline else None
    if save_baseline:
        baselines.path_for(baselines_dir, save_baseline)  # reject a bad name before minutes of work
    injected = parse_inject(inject)
    unknown = [op for op in injected if op not in ops]
    if unknown:
        raise UsageError(f"--inject names {unknown[0]!r}, which this run does not measure")
    cfg = BenchConfig.preset(quick, tuple(chosen), tuple(ops), inject=injected)
    for name, value in (("--workers", workers), ("--samples", samples)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, got {value}")
    if workers is not None or samples is not None:
        cfg = replace(cfg, workers=workers or cfg.workers, samples=samples or cfg.samples)
    commit = repo_commit()
    with progress("benchmarking") as tick:
        result = run_bench(cfg, commit, progress=tick)
        tick("analysing")
        changes = compare(base_result, result) if base_result else None
        analysis = analyse(result, budget, changes, baseline)
        md_text = markdown(analysis)
        html_text = html(analysis)
    md, html_path, raw = report_paths(reports_dir)
    write_atomic(raw, json.dumps(result).encode())
    write_atomic(md, md_text.encode())
    write_atomic(html_path, html_text.encode())
    with ArtifactStore(store).open_run("bench", commit=commit, target={"kind": "bench", "suites": chosen, "ops": ops},
                                       tools={}) as run:
        run.write(md.name, md_text.encode(), "bench-markdown")
        run.write(html_path.name, html_text.encode(), "bench-html")
        run.write(raw.name, json.dumps(result).encode(), "bench-json")
        run.finish("complete", findings={"over_budget": analysis["over_budget"],
                                         "regressions": analysis["regressions"], "warnings": analysis["warnings"]})
    saved = str(baselines.save(baselines_dir, save_baseline, result)) if save_baseline else None
    doc = {
        "command": "bench", "reports": {"markdown": str(md), "html": str(html_path), "json": str(raw)},
        "run": run.id, "folder": str(run.folder), "baseline": baseline, "saved_baseline": saved,
        "duration_s": result["duration_s"], "config": result["config"], "recall_at_10": result["recall_at_10"],
        "operations": [{"op": r["op"], "suite": r["suite"], **{k: r["summary"][k] for k in
                                                             ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "stddev_ms")},
                        "outliers": r["summary"]["outliers"], "budget": r["budget"]["status"],
                        "budget_checks": r["budget"]["checks"], "change": r["change"]} for r in analysis["rows"]],
        "over_budget": analysis["over_budget"], "regressions": analysis["regressions"],
        "warnings": analysis["warnings"],
    }
    return doc


def run_instructions(*, quick: bool, chosen: list[str], ops: list[str], save_baseline: str | None,
                     baseline: str | None, baselines_dir: Path, reports_dir: Path, store: Path) -> dict[str, Any]:
    """``--mode instructions``: callgrind instruction counts per call, compared without statistics."""
    base = baselines.load(baselines_dir, baseline, ops=ops, kind=KIND) if baseline else None
    if save_baseline:
        baselines.path_for(baselines_dir, save_baseline)
    cfg = BenchConfig.preset(quick, tuple(chosen), tuple(ops))
    commit = repo_commit()
    with progress("counting instructions under callgrind") as tick:
        result = count_instructions(cfg, commit, tick)
    changes = compare_instructions(base, result) if base else None
    lines = [f"# Instruction counts (callgrind), commit `{commit.sha[:12]}`{' (dirty)' if commit.dirty else ''}", "",
             "| operation | instructions per call |" + (" baseline | change | verdict |" if changes else ""),
             "|---|---:|" + ("---:|---:|---|" if changes else "")]
    by_op = {c["op"]: c for c in changes or []}
    for op in ops:
        row = f"| {op} | {result['instructions'][op]:,.0f} |"
        if changes:
            c = by_op.get(op)
            row += (f" {c['baseline']:,.0f} | {c['change_pct']:+.2f} % | {VERDICT_MARK[c['verdict']]} |" if c
                    else " | | not in baseline |")
        lines.append(row)
    md_text = "\n".join(lines) + "\n"
    md, _, raw = report_paths(reports_dir)
    write_atomic(raw, json.dumps(result).encode())
    write_atomic(md, md_text.encode())
    with ArtifactStore(store).open_run("bench", commit=commit, target={"kind": "bench-instructions", "ops": ops},
                                       tools={"valgrind": "callgrind"}) as run:
        run.write(md.name, md_text.encode(), "bench-markdown")
        run.write(raw.name, json.dumps(result).encode(), "bench-json")
        run.finish("complete", findings={"instructions": result["instructions"], "changes": changes})
    saved = str(baselines.save(baselines_dir, save_baseline, result)) if save_baseline else None
    return {"command": "bench", "mode": "instructions", "reports": {"markdown": str(md), "json": str(raw)},
            "run": run.id, "folder": str(run.folder), "baseline": baseline, "saved_baseline": saved,
            "duration_s": result["duration_s"], "instructions": result["instructions"], "changes": changes,
            "regressions": [c["op"] for c in changes or [] if c["verdict"] == REGRESSION],
            "warnings": [c["op"] for c in changes or [] if c["verdict"] == SLOWER]}


def render(doc: dict[str, Any]) -> None:
    if doc.get("mode") == "instructions":
        table = Table(title=f"instructions per call (callgrind, {doc['duration_s']} s)")
        for col in ("operation", "instructions", "change"):
            table.add_column(col, justify="left" if col == "operation" else "right")
        by_op = {c["op"]: c for c in doc["changes"] or []}
        for op, n in doc["instructions"].items():
            c = by_op.get(op)
            table.add_row(op, f"{n:,.0f}", f"{c['change_pct']:+.2f}% {c['verdict']}" if c else "")
        out.print(table)
        for kind, path in doc["reports"].items():
            err.print(f"  {kind:<9} {path}", highlight=False)
        return
    table = Table(title=f"profkit bench ({doc['duration_s']} s)" +
                  (f" vs baseline {doc['baseline']}" if doc["baseline"] else ""))
    cols = ["suite", "operation", "p50 ms", "p95 ms", "p99 ms", "budget"]
    if doc["baseline"]:
        cols.append("vs baseline")
    for c in cols:
        table.add_column(c, justify="left" if c in ("suite", "operation", "budget", "vs baseline") else "right")
    for o in doc["operations"]:
        budget = "[green]within[/]" if o["budget"] == "within" else f"[red]{o['budget']}[/]"
        row = [o["suite"], o["op"], f"{o['p50_ms']:.3f}", f"{o['p95_ms']:.3f}", f"{o['p99_ms']:.3f}", budget]
        if doc["baseline"]:
            c = o["change"]
            if c is None:
                row.append("not in baseline")
            else:
                colour = VERDICT_COLOUR[c["verdict"]]
                row.append(f"[{colour}]{VERDICT_MARK[c['verdict']]} {c['change_pct']:+.1f}%[/] "
                           f"[{c['ci95_pct'][0]:+.1f}, {c['ci95_pct'][1]:+.1f}]")
        table.add_row(*row)
    out.print(table)
    if doc["recall_at_10"]:
        out.print("recall@10: " + ", ".join(f"{k} {v:.3f}" for k, v in doc["recall_at_10"].items()))
    for kind, path in doc["reports"].items():
        err.print(f"  {kind:<9} {path}", highlight=False)
    if doc["saved_baseline"]:
        err.print(f"baseline saved: {doc['saved_baseline']}")


def check_exit(doc: dict[str, Any]) -> None:
    if doc["regressions"]:
        raise RegressionFound(f"regression (> 10 % slower) in {', '.join(doc['regressions'])}; "
                              f"see {doc['reports']['markdown']}")


__all__ = ["REGRESSION", "check_exit", "render", "run_bench_command"]
