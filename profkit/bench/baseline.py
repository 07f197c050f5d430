"""Named baselines: a bench result saved under a name (a branch, a release tag such as v1.0.0)."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from ..errors import BaselineError
from ..store import write_atomic
from .runner import RESULT_VERSION

BASELINE_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def path_for(folder: Path, name: str) -> Path:
    """Where baseline ``name`` lives; a name that is not allowed is refused here, before any work."""
    if not _NAME.match(name):
        raise BaselineError(f"baseline name {name!r} is not allowed: use letters, digits, '.', '_', '-' (e.g. v1.0.0)")
    return folder / f"{name}.json"


def save(folder: Path, name: str, result: dict[str, Any]) -> Path:
    path = path_for(folder, name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BaselineError(f"cannot create the baselines folder {folder}: {exc.strerror}") from exc
    doc = {"baseline_version": BASELINE_VERSION, "name": name, "saved_at": time.time(), "result": result}
    write_atomic(path, json.dumps(doc).encode())
    return path


def load(folder: Path, name: str, *, ops: list[str], kind: str = "profkit-bench") -> dict[str, Any]:
    """The saved result, or one clear error: missing, truncated, wrong version, wrong suite."""
    path = path_for(folder, name)
    if not path.is_file():
        saved = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        hint = f" (saved: {', '.join(saved)})" if saved else f" (none saved in {folder} yet)"
        raise BaselineError(f"no baseline named {name!r}{hint}; create it with --save-baseline {name}")
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BaselineError(f"baseline {name!r} ({path}) is corrupted or truncated; "
                            f"save it again with --save-baseline {name}") from exc
    if not isinstance(doc, dict) or "baseline_version" not in doc:
        raise BaselineError(f"{path} is not a profkit baseline")
    if doc["baseline_version"] != BASELINE_VERSION:
        raise BaselineError(f"baseline {name!r} has format version {doc['baseline_version']}; this profkit reads "
                            f"version {BASELINE_VERSION}: save it again with --save-baseline {name}")
    result = doc.get("result")
    if isinstance(result, dict) and isinstance(result.get("result_version"), int) \
            and result["result_version"] != RESULT_VERSION:
        raise BaselineError(f"baseline {name!r} was measured by another profkit (results version "
                            f"{result['result_version']}, this one makes version {RESULT_VERSION}): "
                            f"save it again with --save-baseline {name}")
    if not isinstance(result, dict) or result.get("result_version") != RESULT_VERSION:
        raise BaselineError(f"baseline {name!r} holds no usable results (truncated or from another tool)")
    if result.get("kind") != kind:
        modes = {"profkit-bench": "timed", "profkit-bench-instructions": "--mode instructions"}
        raise BaselineError(f"baseline {name!r} was measured {modes.get(str(result.get('kind')), 'differently')}; "
                            f"this run is {modes.get(kind, kind)}: compare like with like")
    data = result.get("samples_ns") if kind == "profkit-bench" else result.get("instructions")
    if not isinstance(data, dict):
        raise BaselineError(f"baseline {name!r} holds no usable results (truncated or from another tool)")
    shared = [op for op in ops if op in data]
    if not shared:
        raise BaselineError(f"baseline {name!r} measured {', '.join(result.get('ops', [])) or 'nothing'}; "
                            f"none of the operations run now ({', '.join(ops)}): use a baseline of the same suite")
    # Checked whole before minutes of measuring: a baseline that fails only at the comparison
    # would throw the new run away with it.
    for op in shared:
        problem = _bad_samples(data[op]) if kind == "profkit-bench" else _bad_count(data[op])
        if problem:
            raise BaselineError(f"baseline {name!r} is damaged: {op} {problem}; save it again with "
                                f"--save-baseline {name}")
    reference = result.get("reference_ns")
    if kind == "profkit-bench" and reference is not None and not (
            isinstance(reference, list) and all(isinstance(w, list) and all(_number(x) for x in w) for w in reference)):
        raise BaselineError(f"baseline {name!r} is damaged: its reference timings are not lists of positive "
                            f"numbers; save it again with --save-baseline {name}")
    return result


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _bad_samples(workers: object) -> str | None:
    """What is wrong with one operation's samples (a list of workers' lists of nanoseconds), or None."""
    if not isinstance(workers, list) or not workers:
        return "has no workers' samples"
    for i, samples in enumerate(workers):
        if not isinstance(samples, list) or not samples:
            return f"worker {i} has no samples"
        if not all(_number(x) for x in samples):
            return f"worker {i} has samples that are not positive numbers"
    return None


def _bad_count(count: object) -> str | None:
    return None if _number(count) else "has no instruction count"
