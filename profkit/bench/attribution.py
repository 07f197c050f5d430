"""Why an operation got slower: the functions that account for it, base against head.

Two views of the slowed operation's own workload, each side running its own code:

* **where the time goes** — a bench worker that runs only that operation, sampled by py-spy; the
  samples are cut down to the operation's own stacks (from its closure in ``bench/suites.py``
  inward, so set-up and the harness are out) and diffed base against head with
  :func:`profkit.profiles.diff`, which ranks the functions whose share moved and paints the
  differential flamegraph;
* **how much work** — instructions per call under callgrind (the deterministic mode of ``bench
  --mode instructions``), so the report can say "+14 % instructions" and, per function, its
  estimated instructions per call (its inclusive share of the samples times the instructions per call).

callgrind sees the interpreter's C functions, not Python's, hence the estimate: the Python
function names come from the samples, the amount of work from the instruction count.
"""

from __future__ import annotations

import math
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..backends import pyspy
from ..errors import ProfkitError
from ..gitinfo import Commit
from ..process import run
from ..profiles import CPU, SAMPLES, Profile, diff
from ..render.collapsed import Stacks, parse_frame, read_collapsed
from ..render.diff_svg import render_diff_svg
from ..results import DiffFunction
from .instructions import count_instructions
from .runner import BenchConfig, worker_argv, worker_env
from .suites import CALLS_PER_ROUND

SUITES_FILE = "bench/suites.py"
# Functions of suites.py that build the bench, not operations of it.
SET_UP = frozenset({"load_store", "prepare", "make_ops", "recall_at_10", "hnsw_threshold", "suite_ops", "traverse"})
PROFILE_SECONDS = 4.0
PROFILE_RATE_HZ = 250
TOP_FUNCTIONS = 8


@dataclass(frozen=True)
class SideCode:
    """Where one side's code is, to run its worker: its interpreter and its checkout."""

    label: str
    python: str
    cwd: Path


def op_stacks(stacks: Stacks) -> Stacks:
    """Only the stacks that run inside an operation, each cut to start at the operation's frame."""
    kept: dict[tuple[str, ...], int] = {}
    for stack, count in stacks.counts.items():
        for i, text in enumerate(stack):
            frame = parse_frame(text)
            if frame.file.endswith(SUITES_FILE) and frame.function not in SET_UP:
                key = stack[i:]
                kept[key] = kept.get(key, 0) + count
                break
    return Stacks(kept)


def _rounds(p50_ms: float, op: str) -> int:
    """Rounds of the worker that keep the operation busy for about PROFILE_SECONDS."""
    per_round = max(p50_ms, 0.001) * CALLS_PER_ROUND.get(op, 1) / 1000
    return int(min(20_000, max(20, math.ceil(PROFILE_SECONDS / per_round))))


def profile_op(side: SideCode, cfg: BenchConfig, template: Path, op: str, rounds: int, out: Path) -> Profile:
    """py-spy on a worker of ``side`` that runs only ``op``; the operation's own stacks."""
    scratch = out.with_suffix(".db")
    worker = {"db_dir": str(scratch), "template": str(template), "size": cfg.size, "seed": cfg.seed, "ops": [op],
              "samples": rounds, "warmup": 3, "inject": {}}
    argv = pyspy.record_argv(out, pyspy.RecordFlags(rate=PROFILE_RATE_HZ), pid=None,
                             argv=worker_argv(side.python, worker), duration=None)
    proc = run(argv, timeout=600, env=worker_env(), cwd=side.cwd)
    if proc.returncode != 0 or not out.is_file():
        raise ProfkitError(f"profiling {op} on the {side.label} side failed: {proc.last_error_line()}")
    stacks = op_stacks(read_collapsed(out))
    if stacks.total == 0:
        raise ProfkitError(f"profiling {op} on the {side.label} side caught none of its frames")
    return Profile(stacks=stacks, kind=CPU, measure=SAMPLES, path=out, format="collapsed", counted=True, mode="cpu",
                   rate_hz=PROFILE_RATE_HZ)


def _instructions(side: SideCode, cfg: BenchConfig, op: str, template: Path) -> float:
    side_cfg = replace(cfg, ops=(op,), python=side.python, cwd=side.cwd)
    result = count_instructions(side_cfg, _commit_for(side), template=template)
    return float(result["instructions"][op])


def _commit_for(side: SideCode) -> Commit:
    # The counts are filed nowhere: the commit only labels the result document.
    return Commit(side.label, dirty=False)


def explain(op: str, base: SideCode, head: SideCode, cfg: BenchConfig, templates: dict[str, Path], p50_ms: float,
            folder: Path, *, instructions: bool = True) -> dict[str, Any]:
    """The attribution of one slowed operation; the differential flamegraph is written into ``folder``."""
    rounds = _rounds(p50_ms, op)
    with tempfile.TemporaryDirectory(prefix="profkit-explain-") as tmp_s:
        tmp = Path(tmp_s)
        # The two sides on the two cores at once: each is a single-threaded worker.
        with ThreadPoolExecutor(max_workers=2) as pool:
            fa = pool.submit(profile_op, base, cfg, templates[base.label], op, rounds, tmp / "base.collapsed")
            fb = pool.submit(profile_op, head, cfg, templates[head.label], op, rounds, tmp / "head.collapsed")
            a, b = fa.result(), fb.result()
            ia = ib = None
            if instructions:
                ja = pool.submit(_instructions, base, cfg, op, templates[base.label])
                jb = pool.submit(_instructions, head, cfg, op, templates[head.label])
                ia, ib = ja.result(), jb.result()
    result = diff(a, b)
    svg = folder / f"diff-{op}.svg"
    svg.write_text(render_diff_svg(result, title=f"{op}: {head.label} against {base.label}",
                                   subtitle=f"{a.total} / {b.total} samples of the operation's own stacks"))
    functions = [_with_instructions(row, ia, ib) for row in result.functions(top=TOP_FUNCTIONS)]
    return {"op": op, "samples": [a.total, b.total], "rounds": rounds, "svg": str(svg),
            "instructions_per_call": [ia, ib] if ia is not None else None,
            "instructions_change_pct": round(100 * (ib / ia - 1), 2) if ia and ib is not None else None,
            "functions": functions}


def _with_instructions(row: DiffFunction, before: float | None, after: float | None) -> dict[str, Any]:
    out: dict[str, Any] = dict(row)
    if before is not None and after is not None:
        # An estimate: the function's inclusive share of the op's samples times the op's instructions.
        out["est_instructions_before"] = round(before * row["total_before_pct"] / 100)
        out["est_instructions_after"] = round(after * row["total_after_pct"] / 100)
    return out
