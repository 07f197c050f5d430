"""Run the suites: build the store once, then measure in several fresh worker processes.

Each worker starts from a copy of the same store, with hash randomisation pinned and address-space
randomisation off (``setarch -R``) so that two processes of the same code lay out memory alike;
what still differs between processes is measured (per-worker medians) rather than hidden.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ProfkitError, TargetError
from ..gitinfo import Commit
from ..process import last_line, run
from .suites import CALLS_PER_ROUND, FULL_SIZE, QUICK_SIZE

# 2: fast operations are called several times per round (suites.CALLS_PER_ROUND); results of
# version 1 sampled one call per round and are not comparable.
RESULT_VERSION = 2


@dataclass(frozen=True)
class BenchConfig:
    suites: tuple[str, ...]
    ops: tuple[str, ...]
    size: int
    workers: int
    samples: int  # per worker per operation
    warmup: int
    seed: int = 1
    inject: dict[str, float] = field(default_factory=dict)
    python: str = sys.executable
    cwd: Path | None = None  # where the code under test lives (worktrees for regress)

    @staticmethod
    def preset(quick: bool, suites: tuple[str, ...], ops: tuple[str, ...], **kw: Any) -> BenchConfig:
        if quick:
            return BenchConfig(suites, ops, size=QUICK_SIZE, workers=8, samples=100, warmup=10, **kw)
        return BenchConfig(suites, ops, size=FULL_SIZE, workers=10, samples=150, warmup=30, **kw)


def without_aslr(argv: list[str]) -> list[str]:
    """``argv`` with address-space randomisation off where ``setarch -R`` is there to turn it off."""
    setarch = shutil.which("setarch")
    return [setarch, "-R", *argv] if setarch else argv


def worker_argv(python: str, cfg: dict[str, Any]) -> list[str]:
    """The bench worker of the code at hand, with ``cfg`` (the worker reads its JSON)."""
    return [python, "-m", "profkit.bench.worker", json.dumps(cfg)]



def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    # Keep BLAS to one thread: the machine has two cores and the engine's numpy work is tiny.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def call_worker(cfg: dict[str, Any], python: str, cwd: Path | None, timeout: float) -> dict[str, Any]:
    proc = run(without_aslr(worker_argv(python, cfg)), timeout=timeout, env=worker_env(), cwd=cwd)
    if proc.returncode != 0:
        raise TargetError(f"benchmark worker failed (exit {proc.returncode}): {last_line(proc.stderr) or 'no output'}")
    try:
        doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise TargetError("benchmark worker printed no result") from exc
    return doc


def build_store(cfg: BenchConfig, folder: Path) -> float:
    doc = call_worker({"build": True, "db_dir": str(folder), "size": cfg.size, "seed": cfg.seed},
                      cfg.python, cfg.cwd, timeout=1800)
    return float(doc["seconds"])


def measure_once(cfg: BenchConfig, template: Path, worker_index: int, scratch: Path) -> dict[str, Any]:
    db_dir = scratch / f"w{worker_index}-{time.monotonic_ns()}"
    try:
        return call_worker({"db_dir": str(db_dir), "template": str(template), "size": cfg.size,
                            "seed": cfg.seed + worker_index, "ops": list(cfg.ops), "samples": cfg.samples,
                            "warmup": cfg.warmup, "inject": cfg.inject},
                           cfg.python, cfg.cwd, timeout=3600)
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)


def environment(commit: Commit) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("numpy", "usearch", "msgspec", "starlette", "scipy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(), "host": socket.gethostname(),
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "profkit": __version__, "packages": versions, "commit": commit.sha, "dirty": commit.dirty,
        "load_average": [round(x, 2) for x in os.getloadavg()], "time": time.time(),
        "aslr_disabled": shutil.which("setarch") is not None, "pythonhashseed": "0",
    }


Progress = Callable[[str], None]


def run_bench(cfg: BenchConfig, commit: Commit, progress: Progress | None = None) -> dict[str, Any]:
    """Build the store once, run every worker, and merge their samples into one result document."""
    say = progress or (lambda _msg: None)
    if not cfg.ops:
        raise ProfkitError("no operation matches: check --suite and --filter")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="profkit-bench-") as tmp:
        template = Path(tmp) / "template"
        say(f"building a store of {cfg.size} memories")
        build_s = build_store(cfg, template)
        per_worker: list[dict[str, Any]] = []
        for w in range(cfg.workers):
            say(f"worker {w + 1}/{cfg.workers}: {len(cfg.ops)} operations x {cfg.samples} samples")
            per_worker.append(measure_once(cfg, template, w, Path(tmp)))
    return assemble(cfg, commit, per_worker, started=started, build_s=build_s)


def assemble(cfg: BenchConfig, commit: Commit, per_worker: list[dict[str, Any]], *, started: float,
             build_s: float) -> dict[str, Any]:
    samples = {op: [w["samples_ns"][op] for w in per_worker] for op in cfg.ops}
    reference = [w["samples_ns"].get("_reference", []) for w in per_worker]
    recall: dict[str, list[float]] = {}
    for w in per_worker:
        for k, v in w.get("recall", {}).items():
            recall.setdefault(k, []).append(v)
    return {
        "result_version": RESULT_VERSION,
        "kind": "profkit-bench",
        "suites": list(cfg.suites),
        "ops": list(cfg.ops),
        "config": {"size": cfg.size, "workers": cfg.workers, "samples": cfg.samples, "warmup": cfg.warmup,
                   "seed": cfg.seed, "inject": cfg.inject,
                   "calls_per_round": {op: CALLS_PER_ROUND[op] for op in cfg.ops}},
        "environment": environment(commit),
        "started_at": started,
        "duration_s": round(time.time() - started, 2),
        "build_s": build_s,
        "samples_ns": samples,  # op -> one list per worker process
        "reference_ns": reference,  # the fixed reference work, one list per worker process
        "recall_at_10": {k: round(sum(v) / len(v), 4) for k, v in recall.items()},
    }
