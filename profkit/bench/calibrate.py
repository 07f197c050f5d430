"""Measure the change detector itself on this machine: false alarms and detection power.

    python -m profkit.bench.calibrate [--full] [--sequential] [--every-op] [--aa-runs 11] [--json]

A/A: ``--aa-runs`` bench runs of the same code, each with its own store; every pair of them is
one A/A comparison (11 runs give 55). Detection: one run per operation in ``--injected`` with that
operation's recorded times multiplied by exactly 1.12 (spinning for the extra time inside the call
measured 13-19 % in the engine, not 12 %), compared against every A run; ``--every-op`` also
slows every operation in turn in every ordered pair of A runs. Reported: the share of A/A
comparisons that flag any regression (target <= 2 %), the share of injected comparisons that flag
the slowed operation as a regression (target >= 95 %), and how often any other operation was
flagged alongside it.

By default the runs are interleaved worker by worker, which is how ``profkit regress`` runs its
two sides: this calibrates the merge gate. ``--sequential`` runs them one after the other, which is
how ``profkit bench --baseline`` compares against a baseline saved minutes or days earlier; the
machine's drift between the two runs then adds to the noise. Pairs share runs, so they are not
independent draws; the figures are what this machine does, not a confidence statement.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..gitinfo import Commit, current_commit
from ..store import write_atomic
from .compare import REGRESSION, SLOWER, compare
from .runner import BenchConfig, assemble, build_store, measure_once, run_bench
from .suites import ALL_OPS, SUITES

FACTOR = 1.12


def calibrate(aa_runs: int, injected: list[str], commit: Commit, say: Any,
              save_runs: str | None = None, workers: int | None = None,
              samples: int | None = None, quick: bool = True,
              interleaved: bool = True, factor: float = FACTOR) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The report, and the A runs it was scored on."""
    preset = BenchConfig.preset(quick, tuple(SUITES), ALL_OPS)
    base_cfg = replace(preset, workers=workers or preset.workers, samples=samples or preset.samples)
    plan: list[tuple[str | None, BenchConfig]] = []
    # Slowed runs are spread among the A runs, not run after them, so that the machine's drift
    # over the minutes of calibration does not stand in for the injected slowdown.
    for i in range(max(aa_runs, len(injected))):
        if i < aa_runs:
            plan.append((None, base_cfg))
        if i < len(injected):
            plan.append((injected[i], replace(base_cfg, inject={injected[i]: factor})))
    start = time.time()
    if interleaved:
        results = _interleaved(plan, commit, say)
    else:
        results = []
        for k, (op, cfg) in enumerate(plan):
            say(f"run {k + 1}/{len(plan)}: " + (f"{op} slowed by {factor:.2f}x" if op else "A"))
            results.append(run_bench(cfg, commit))
    runs = [r for (op, _), r in zip(plan, results, strict=True) if op is None]
    slowed = {op: r for (op, _), r in zip(plan, results, strict=True) if op is not None}
    if save_runs:
        write_atomic(Path(save_runs), json.dumps({"aa": runs, "slowed": slowed, "interleaved": interleaved}).encode())
    out: dict[str, Any] = {
        "machine_note": f"{'quick' if quick else 'full'} preset: {base_cfg.workers} workers x {base_cfg.samples} "
                        f"rounds, {base_cfg.size}-memory store, {_protocol(interleaved)}",
        "injected_factor": factor,
        "seconds": round(time.time() - start, 1),
    }
    for normalise in (True, False):
        out["normalised" if normalise else "raw"] = score(runs, slowed, normalise)
    return out, runs


def _protocol(interleaved: bool) -> str:
    if interleaved:
        return "runs interleaved worker by worker (as regress runs its two sides)"
    return "runs one after another (as bench compares against a saved baseline)"


def _interleaved(plan: list[tuple[str | None, BenchConfig]], commit: Commit, say: Any) -> list[dict[str, Any]]:
    """Every run of the plan, its workers interleaved with the other runs' as regress interleaves two sides.

    Each run builds its own store, as each side of a regress does; then worker 1 of every run (in a
    shuffled order), worker 2 of every run, and so on. Any two runs are compared worker by worker
    across at most one pass of the plan, so the machine's drift over minutes lands on both alike.
    """
    order_rng = random.Random(0)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="profkit-calibrate-") as tmp_s:
        tmp = Path(tmp_s)
        templates, build_s = [], []
        for k, (_, cfg) in enumerate(plan):
            say(f"building store {k + 1}/{len(plan)}")
            templates.append(tmp / f"store-{k}")
            build_s.append(build_store(cfg, templates[-1]))
        per: list[list[dict[str, Any]]] = [[] for _ in plan]
        workers = plan[0][1].workers
        for i in range(workers):
            order = list(range(len(plan)))
            order_rng.shuffle(order)
            for n, k in enumerate(order):
                say(f"worker {i + 1}/{workers} of run {n + 1}/{len(plan)}")
                per[k].append(measure_once(plan[k][1], templates[k], i, tmp))
    return [assemble(cfg, commit, per[k], started=started, build_s=build_s[k]) for k, (_, cfg) in enumerate(plan)]


def scaled(result: dict[str, Any], op: str, factor: float) -> dict[str, Any]:
    """The result with one operation's recorded times multiplied, as ``--inject`` records them."""
    samples = dict(result["samples_ns"])
    samples[op] = [[round(x * factor) for x in worker] for worker in samples[op]]
    return {**result, "samples_ns": samples}


def score_every_op(runs: list[dict[str, Any]], factor: float = FACTOR) -> dict[str, Any]:
    """Every operation slowed in turn, in every ordered pair of A runs.

    Since an injected run differs from an A run only by the multiplied times, an A run with one
    operation scaled is a slowed run of its own; this covers all operations and many more pairs
    than the dedicated runs, at the price of reusing them.
    """
    per_op: dict[str, list[int]] = {}
    flagged = clean = 0
    for a, b in itertools.permutations(range(len(runs)), 2):
        for op in runs[b]["ops"]:
            changes = compare(runs[a], scaled(runs[b], op, factor))
            verdict = next(c.verdict for c in changes if c.op == op)
            per_op.setdefault(op, []).append(verdict == REGRESSION)
            flagged += verdict in (REGRESSION, SLOWER)
            clean += not any(c.verdict == REGRESSION for c in changes if c.op != op)
    trials = sum(len(v) for v in per_op.values())
    return {"trials": trials, "regression_rate": round(sum(sum(v) for v in per_op.values()) / trials, 4),
            "flagged_rate": round(flagged / trials, 4), "others_clean_rate": round(clean / trials, 4),
            "per_op_regression_rate": {op: round(sum(v) / len(v), 3) for op, v in per_op.items()}}


def score(runs: list[dict[str, Any]], slowed: dict[str, dict[str, Any]], normalise: bool) -> dict[str, Any]:
    aa_any = aa_op_flags = aa_warn_any = 0
    pairs = list(itertools.combinations(range(len(runs)), 2))
    for a, b in pairs:
        aa = compare(runs[a], runs[b], normalise=normalise)
        flagged = [c for c in aa if c.verdict == REGRESSION]
        aa_any += bool(flagged)
        aa_op_flags += len(flagged)
        aa_warn_any += any(c.verdict == SLOWER for c in aa)
    detect: dict[str, dict[str, Any]] = {}
    for op, result in slowed.items():
        hits = warn_or_hit = clean = 0
        measured = []
        for base in runs:
            changes = {c.op: c for c in compare(base, result, normalise=normalise)}
            c = changes[op]
            measured.append(round(100 * c.change, 1))
            hits += c.verdict == REGRESSION
            warn_or_hit += c.verdict in (REGRESSION, SLOWER)
            clean += not any(x.verdict == REGRESSION for k, x in changes.items() if k != op)
        n = len(runs)
        detect[op] = {"comparisons": n, "regression_rate": round(hits / n, 3),
                      "flagged_rate": round(warn_or_hit / n, 3), "others_clean_rate": round(clean / n, 3),
                      "measured_change_pct": measured}
    total = sum(d["comparisons"] for d in detect.values())
    return {
        "aa_comparisons": len(pairs),
        "aa_false_regression_rate": round(aa_any / len(pairs), 4) if pairs else None,
        "aa_false_regression_per_op_rate": round(aa_op_flags / (len(pairs) * len(ALL_OPS)), 5) if pairs else None,
        "aa_any_warning_rate": round(aa_warn_any / len(pairs), 4) if pairs else None,
        "detection": detect,
        "detection_rate": round(sum(d["regression_rate"] * d["comparisons"] for d in detect.values()) / total, 4)
        if total else None,
        "others_clean_rate": round(sum(d["others_clean_rate"] * d["comparisons"] for d in detect.values()) / total, 4)
        if total else None,
    }


def _fail(message: str) -> int:
    print(f"calibrate: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profkit.bench.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--aa-runs", type=int, default=11)
    parser.add_argument("--injected", default="get,get_uncached,create,traverse_d2,list_recent,search_large")
    parser.add_argument("--factor", type=float, default=FACTOR,
                        help="how much slower the injected operation is made (default 1.12: the guide's 12 %%)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save-runs", default=None, help="also write every run's raw results to this file")
    parser.add_argument("--rescore", default=None,
                        help="score the runs saved by an earlier --save-runs again, without measuring")
    parser.add_argument("--full", action="store_true",
                        help="calibrate the full preset (what regress runs by default) instead of --quick")
    parser.add_argument("--every-op", action="store_true",
                        help="also slow every operation in turn in every ordered pair of A runs (a few minutes)")
    parser.add_argument("--sequential", action="store_true",
                        help="run the runs one after another, as bench --baseline compares against a saved "
                             "baseline (default: interleaved worker by worker, as regress runs its two sides)")
    parser.add_argument("--workers", type=int, default=None, help="workers per run (quick: 8, full: 10)")
    parser.add_argument("--samples", type=int, default=None, help="rounds per worker (quick: 100, full: 150)")
    args = parser.parse_args(argv)
    if args.factor <= 1.0:
        return _fail("--factor must be above 1 (1.12 makes the operation 12 % slower)")
    if args.save_runs:
        folder = Path(args.save_runs).resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            # Found out only after ten minutes of runs, this would lose them.
            return _fail(f"cannot write --save-runs {args.save_runs}: {folder} is not a writable folder")

    def say(msg: str) -> None:
        if not args.json:
            print(f"\r\033[K{msg}", end="", file=sys.stderr, flush=True)

    if args.rescore:
        try:
            saved = json.loads(Path(args.rescore).read_text())
            aa_runs, slowed = saved["aa"], saved["slowed"]
            cfg = aa_runs[0]["config"]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a file written by --save-runs"
            return _fail(f"cannot rescore {args.rescore}: {reason}")
        note = (f"rescored {args.rescore}: {cfg['workers']} workers x {cfg['samples']} rounds, "
                f"{cfg['size']}-memory store, {_protocol(bool(saved.get('interleaved')))}")
        slowed_factors = [f for r in slowed.values() for f in r["config"]["inject"].values()]
        report: dict[str, Any] = {"machine_note": note, "seconds": 0.0,
                                  "injected_factor": slowed_factors[0] if slowed_factors else args.factor}
        for normalise in (True, False):
            report["normalised" if normalise else "raw"] = score(aa_runs, slowed, normalise)
    else:
        injected = [op for op in args.injected.split(",") if op]
        report, aa_runs = calibrate(args.aa_runs, injected, current_commit(Path.cwd()), say, args.save_runs,
                                    args.workers, args.samples, quick=not args.full,
                                    interleaved=not args.sequential, factor=args.factor)
    if args.every_op:
        say("slowing every operation in turn")
        report["every_op"] = score_every_op(aa_runs, args.factor)
    if args.json:
        print(json.dumps(report))
        return 0
    print("\r\033[K", end="", file=sys.stderr)
    print(f"{report['machine_note']}; {report['seconds']} s")
    for mode in ("normalised", "raw"):
        r = report[mode]
        print(f"[{mode}] A/A: {r['aa_comparisons']} comparisons, {100 * r['aa_false_regression_rate']:.1f} % "
              f"flagged a regression (target <= 2 %), {100 * r['aa_any_warning_rate']:.1f} % a warning")
        for op, d in r["detection"].items():
            print(f"  {op} slowed {report['injected_factor']:.2f}x: regression in {100 * d['regression_rate']:.0f} %, "
                  f"flagged in {100 * d['flagged_rate']:.0f} %, no other op flagged in "
                  f"{100 * d['others_clean_rate']:.0f} % (measured {d['measured_change_pct']})")
        if mode == "normalised" and "every_op" in report:
            e = report["every_op"]
            print(f"  every operation slowed {args.factor:.2f}x in turn, {e['trials']} ordered A pairs x operations: "
                  f"regression {100 * e['regression_rate']:.1f} %, flagged {100 * e['flagged_rate']:.1f} %, "
                  f"others clean {100 * e['others_clean_rate']:.1f} %; per operation "
                  + ", ".join(f"{op} {100 * r:.0f} %" for op, r in e["per_op_regression_rate"].items()))
        flagged = sum(d["flagged_rate"] * d["comparisons"] for d in r["detection"].values()) / max(
            1, sum(d["comparisons"] for d in r["detection"].values()))
        print(f"  detection as a regression {100 * (r['detection_rate'] or 0):.1f} % (target >= 95 %), as a warning "
              f"or regression {100 * flagged:.1f} %, others clean {100 * (r['others_clean_rate'] or 0):.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
