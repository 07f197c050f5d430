"""A bench result read against the budget and, when there is one, a baseline: what the reports show."""

from __future__ import annotations

from typing import Any

import numpy as np

from .compare import REGRESSION, SLOWER, SUITE_WIDE, Change
from .stats import budget_status, summarise
from .suites import SUITES


def analyse(result: dict[str, Any], budget: dict[str, dict[str, Any]], changes: list[Change] | None,
            baseline_name: str | None) -> dict[str, Any]:
    rows = []
    by_op = {c.op: c for c in changes or []}
    for i, op in enumerate(result["ops"]):
        pooled = [x for w in result["samples_ns"][op] for x in w]
        s = summarise(pooled, seed=i)
        s["worker_p50_ms"] = [float(np.median(w)) / 1e6 for w in result["samples_ns"][op]]
        suite = next((name for name, ops in SUITES.items() if op in ops), "")
        rows.append({"op": op, "suite": suite, "summary": s, "budget": budget_status(s, budget.get(op)),
                     "change": by_op[op].to_dict() if op in by_op else None,
                     "recall": result.get("recall_at_10", {}).get(op)})
    wide = by_op.get(SUITE_WIDE)
    return {"result": result, "rows": rows, "baseline": baseline_name,
            "suite_wide": wide.to_dict() if wide else None,
            "over_budget": [r["op"] for r in rows if r["budget"]["status"] == "over"],
            "regressions": [c.op for c in changes or [] if c.verdict == REGRESSION],
            "warnings": [c.op for c in changes or [] if c.verdict == SLOWER]}
