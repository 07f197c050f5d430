"""The latency budget file (TOML) of the engine: the guide's numbers per operation, in ms.

The default is the engine's own, shipped inside the agentmem package (agentmem/perf-budget.toml) and
read with importlib.resources, so it is found from a wheel as from a clone; --budget FILE reads a
user's file instead.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ProfkitError

# The engine's packaged budget: (package, resource name).
DEFAULT_BUDGET = ("agentmem", "perf-budget.toml")


def _read_default() -> tuple[str, str]:
    package, name = DEFAULT_BUDGET
    label = f"{package}/{name} (packaged)"
    try:
        return resources.files(package).joinpath(name).read_text(encoding="utf-8"), label
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ProfkitError(f"budget file {label} not found (broken install?); pass --budget FILE") from exc


def load_budget(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        text, p = _read_default()
    else:
        p = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ProfkitError(f"budget file {p} not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfkitError(f"budget file {p} cannot be read: {exc}") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfkitError(f"budget file {p} is not valid TOML: {exc}") from exc
    budget = doc.get("budget")
    if doc.get("version") != 1 or not isinstance(budget, dict):
        raise ProfkitError(f"budget file {p} must have version = 1 and [budget.<operation>] tables")
    for op, b in budget.items():
        if not isinstance(b, dict):
            raise ProfkitError(f"budget file {p}: budget.{op} must be a table with p50, p95 and p99")
        for q in ("p50", "p95", "p99"):
            if not isinstance(b.get(q), (int, float)) or b[q] <= 0:
                raise ProfkitError(f"budget file {p}: budget.{op}.{q} must be a positive number of ms")
    return budget
