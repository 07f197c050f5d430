"""profkit regress — one ref against another, interleaved, with a pull-request-ready report."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ..bench.compare import REGRESSION, SLOWER, worst
from ..bench.regress import run_regress
from ..bench.runner import BenchConfig
from ..bench.suites import suite_ops
from ..errors import RegressionFound, UsageError
from ..progress import SILENT, Reporter
from ..render.regress_report import markdown
from ..results import RegressResult
from ..store import write_atomic


def run_regress_command(*, base: str, head: str, quick: bool, suites: list[str], op_filter: str | None,
                        rounds: int | None, output: Path, repo: Path, reporter: Reporter = SILENT,
                        explain: str = "full") -> RegressResult:
    """``explain``: how a regression is attributed — "full" (the operation's profile diffed base
    against head, and instructions counted under callgrind), "samples" (the profile diff only, seconds
    instead of a minute or two) or "none"."""
    """Raises RegressionFound (with the result) on a regression; the report is written either way."""
    chosen, ops = suite_ops(suites, op_filter)
    cfg = BenchConfig.preset(quick, tuple(chosen), tuple(ops))
    if rounds is not None:
        if rounds < 2:
            raise UsageError("--rounds must be at least 2 (one A B and one B A)")
        cfg = replace(cfg, workers=rounds)
    start = time.time()
    folder = output.resolve().parent
    with reporter.stage("profkit regress") as tick:
        outcome = run_regress(repo, base, head, cfg, tick, explain_into=folder if explain != "none" else None,
                              count_instructions=explain == "full")
    a, b, changes = outcome.a, outcome.b, outcome.changes
    text = markdown(a, b, changes, cfg, time.time() - start, explained=outcome.explained, report_dir=folder)
    write_atomic(output, text.encode())
    doc: RegressResult = {"command": "regress", "base": {"ref": base, "commit": a.commit.sha},
            "head": {"ref": head, "commit": b.commit.sha, "dirty": b.commit.dirty}, "report": str(output),
            "changes": [c.to_dict() for c in changes], "verdict": worst(changes),
            "regressions": [c.op for c in changes if c.verdict == REGRESSION],
            "warnings": [c.op for c in changes if c.verdict == SLOWER], "seconds": round(time.time() - start, 1),
            "explained": outcome.explained}
    if doc["regressions"]:
        raise RegressionFound(f"regression (> 10 % slower) in {', '.join(doc['regressions'])}; see {output}",
                              result=doc)
    return doc
