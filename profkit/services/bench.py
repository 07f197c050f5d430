"""profkit bench — the engine's four suites, against the budget and optionally a baseline."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..bench import baseline as baselines
from ..bench.analysis import analyse
from ..bench.budget import load_budget
from ..bench.compare import REGRESSION, SLOWER, compare
from ..bench.instructions import KIND, compare_instructions, count_instructions
from ..bench.runner import BenchConfig, run_bench
from ..bench.suites import suite_ops
from ..errors import RegressionFound, StoreError, UsageError
from ..progress import SILENT, Reporter
from ..render.bench_report import html, instructions_markdown, markdown
from ..results import BenchOperation, BenchResult, InstructionsResult
from ..session import repo_commit
from ..store import ArtifactStore, write_atomic


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
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the reports folder {folder}: {exc.strerror}; use --reports DIR") from exc
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
    workers: int | None, samples: int | None, mode: str = "time", reporter: Reporter = SILENT,
) -> BenchResult | InstructionsResult:
    """Raises RegressionFound (with the result) when a compared operation regressed."""
    chosen, ops = suite_ops(suites, op_filter)
    if mode not in ("time", "instructions"):
        raise UsageError(f"--mode must be time or instructions, got {mode!r}")
    if mode == "instructions":
        if inject:
            raise UsageError("--inject scales recorded times; it has no meaning with --mode instructions")
        return run_instructions(quick=quick, chosen=chosen, ops=ops, save_baseline=save_baseline, baseline=baseline,
                                baselines_dir=baselines_dir, reports_dir=reports_dir, store=store, reporter=reporter)
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
    with reporter.stage("benchmarking") as tick:
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
    doc: BenchResult = {
        "command": "bench", "reports": {"markdown": str(md), "html": str(html_path), "json": str(raw)},
        "run": run.id, "folder": str(run.folder), "baseline": baseline, "saved_baseline": saved,
        "duration_s": result["duration_s"], "config": result["config"], "recall_at_10": result["recall_at_10"],
        "operations": [_operation(r) for r in analysis["rows"]],
        "over_budget": analysis["over_budget"], "regressions": analysis["regressions"],
        "warnings": analysis["warnings"],
    }
    check_regressions(doc["regressions"], doc["reports"].get("markdown", ""), doc)
    return doc


def _operation(row: dict[str, Any]) -> BenchOperation:
    s = row["summary"]
    return {"op": row["op"], "suite": row["suite"], "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"],
            "p99_ms": s["p99_ms"], "mean_ms": s["mean_ms"], "stddev_ms": s["stddev_ms"], "outliers": s["outliers"],
            "ci95": s.get("ci95", {}),
            "budget": row["budget"]["status"], "budget_checks": row["budget"]["checks"], "change": row["change"]}


def run_instructions(*, quick: bool, chosen: list[str], ops: list[str], save_baseline: str | None,
                     baseline: str | None, baselines_dir: Path, reports_dir: Path, store: Path,
                     reporter: Reporter = SILENT) -> InstructionsResult:
    """``--mode instructions``: callgrind instruction counts per call, compared without statistics."""
    base = baselines.load(baselines_dir, baseline, ops=ops, kind=KIND) if baseline else None
    if save_baseline:
        baselines.path_for(baselines_dir, save_baseline)
    cfg = BenchConfig.preset(quick, tuple(chosen), tuple(ops))
    commit = repo_commit()
    with reporter.stage("counting instructions under callgrind") as tick:
        result = count_instructions(cfg, commit, tick)
    changes = compare_instructions(base, result) if base else None
    md_text = instructions_markdown(result, changes, commit)
    md, _, raw = report_paths(reports_dir)
    write_atomic(raw, json.dumps(result).encode())
    write_atomic(md, md_text.encode())
    with ArtifactStore(store).open_run("bench", commit=commit, target={"kind": "bench-instructions", "ops": ops},
                                       tools={"valgrind": "callgrind"}) as run:
        run.write(md.name, md_text.encode(), "bench-markdown")
        run.write(raw.name, json.dumps(result).encode(), "bench-json")
        run.finish("complete", findings={"instructions": result["instructions"], "changes": changes})
    saved = str(baselines.save(baselines_dir, save_baseline, result)) if save_baseline else None
    doc: InstructionsResult = {
        "command": "bench", "mode": "instructions", "reports": {"markdown": str(md), "json": str(raw)},
        "run": run.id, "folder": str(run.folder), "baseline": baseline, "saved_baseline": saved,
        "duration_s": result["duration_s"], "instructions": result["instructions"], "changes": changes,
        "regressions": [c["op"] for c in changes or [] if c["verdict"] == REGRESSION],
        "warnings": [c["op"] for c in changes or [] if c["verdict"] == SLOWER]}
    check_regressions(doc["regressions"], str(md), doc)
    return doc


def check_regressions(regressions: list[str], report: str, doc: BenchResult | InstructionsResult) -> None:
    if regressions:
        raise RegressionFound(f"regression (> 10 % slower) in {', '.join(regressions)}; see {report}", result=doc)
