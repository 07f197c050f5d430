"""Instruction counts per operation under valgrind's callgrind: deterministic, whatever the machine does.

Wall-clock timing on a shared two-core machine carries a few per cent of noise between processes;
counting executed instructions does not (CodSpeed's answer to cloud noise). Instructions are not
time — a cache miss costs nothing here — so this mode is for detecting changes in the work done,
next to the timed mode, not for the latency budget.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import TargetError, ToolMissing
from ..gitinfo import Commit
from ..process import last_line, run
from ..results import InstructionChange
from .runner import RESULT_VERSION, BenchConfig, build_store, environment, without_aslr, worker_argv, worker_env

KIND = "profkit-bench-instructions"
_TOTAL = re.compile(r"^(?:summary|totals):\s+(\d+)", re.M)


def _valgrind() -> str:
    path = shutil.which("valgrind")
    if path is None:
        raise ToolMissing("valgrind is not installed: apt-get install valgrind (bench --mode instructions)")
    return path


def _iterations(op: str) -> int:
    return 5 if op == "batch_100" else 20


def count_instructions(cfg: BenchConfig, commit: Commit, say: Any = None,
                       template: Path | None = None) -> dict[str, Any]:
    """Instructions per call of every operation; ``template``: a store already built for ``cfg`` (else one is)."""
    say = say or (lambda _m: None)
    valgrind = _valgrind()
    started = time.time()
    per_op: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="profkit-instr-") as tmp_s:
        tmp = Path(tmp_s)
        if template is None:
            say(f"building a store of {cfg.size} memories")
            template = tmp / "template"
            build_s = build_store(cfg, template)
        else:
            build_s = 0.0
        # One callgrind process per iteration count, all operations in it, each between markers.
        groups: dict[int, list[str]] = {}
        for op in cfg.ops:
            groups.setdefault(_iterations(op), []).append(op)
        for iterations, ops in groups.items():
            say(f"counting instructions of {', '.join(ops)} under callgrind")
            out = tmp / f"cg-{iterations}"
            out.mkdir()
            worker_cfg = {"instructions": True, "db_dir": str(tmp / f"db-{iterations}"),
                          "template": str(template), "size": cfg.size, "seed": cfg.seed, "ops": ops,
                          "iterations": iterations, "warmup": 3}
            argv = without_aslr([valgrind, "--tool=callgrind", "--dump-before=getppid", "--dump-instr=no",
                                 f"--callgrind-out-file={out / 'callgrind.out'}",
                                 *worker_argv(cfg.python, worker_cfg)])
            proc = run(argv, timeout=3600, env=worker_env(), cwd=cfg.cwd)
            if proc.returncode != 0:
                # valgrind's own lines start with "==PID==": the worker's error is the last other line.
                detail = last_line("\n".join(ln for ln in proc.stderr.splitlines() if not ln.startswith("==")))
                raise TargetError(f"callgrind run failed (exit {proc.returncode}): {detail or '?'}")
            parts = sorted(out.glob("callgrind.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
            totals = []
            for part in parts:
                m = _TOTAL.search(part.read_text(errors="replace"))
                totals.append(int(m.group(1)) if m else 0)
            # Numbered dumps, one per marker: (start .. op 1's first marker), (op 1's calls),
            # (op 2's warm-up), (op 2's calls), ...; the tail after the last marker goes to the
            # unnumbered file and is not needed.
            if len(totals) < 2 * len(ops):
                raise TargetError(f"callgrind wrote {len(totals)} dumps, expected {2 * len(ops)}")
            for i, op in enumerate(ops):
                per_op[op] = totals[2 * i + 1] / iterations
    return {"result_version": RESULT_VERSION, "kind": KIND, "mode": "instructions", "suites": list(cfg.suites),
            "ops": [op for op in cfg.ops], "instructions": per_op,
            "config": {"size": cfg.size, "seed": cfg.seed, "iterations": {op: _iterations(op) for op in cfg.ops}},
            "environment": environment(commit), "started_at": started, "duration_s": round(time.time() - started, 2),
            "build_s": build_s}


def compare_instructions(base: dict[str, Any], cur: dict[str, Any]) -> list[InstructionChange]:
    """Deterministic counts need no statistics: the change is the ratio, graded by the guide's thresholds."""
    from .compare import FAIL, FASTER, NO_CHANGE, REGRESSION, SLOWER, WARN

    out: list[InstructionChange] = []
    for op in cur["ops"]:
        if op not in base.get("instructions", {}):
            continue
        change = cur["instructions"][op] / base["instructions"][op] - 1.0
        verdict = (REGRESSION if change > FAIL else SLOWER if change >= WARN else FASTER if change <= -WARN
                   else NO_CHANGE)
        out.append({"op": op, "baseline": base["instructions"][op], "current": cur["instructions"][op],
                    "change_pct": round(100 * change, 2), "verdict": verdict})
    return out
