"""The latency budget file (TOML) of the engine: the guide's numbers per operation, in ms."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ..errors import ProfkitError

DEFAULT_BUDGET = Path(__file__).resolve().parents[2] / "targets" / "perf-budget.toml"


def load_budget(path: Path | None) -> dict[str, dict[str, Any]]:
    p = path or DEFAULT_BUDGET
    try:
        doc = tomllib.loads(p.read_text())
    except FileNotFoundError as exc:
        raise ProfkitError(f"budget file {p} not found; pass --budget FILE") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfkitError(f"budget file {p} is not valid TOML: {exc}") from exc
    budget = doc.get("budget")
    if doc.get("version") != 1 or not isinstance(budget, dict):
        raise ProfkitError(f"budget file {p} must have version = 1 and [budget.<operation>] tables")
    for op, b in budget.items():
        for q in ("p50", "p95", "p99"):
            if not isinstance(b.get(q), (int, float)) or b[q] <= 0:
                raise ProfkitError(f"budget file {p}: budget.{op}.{q} must be a positive number of ms")
    return budget
