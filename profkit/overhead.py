"""How much each profiler slows the bundled mixed scenario down, measured here and now.

    python -m profkit.overhead [--ops 30000] [--repeats 5] [--json]

Every mode runs the same fixed amount of work (``--ops`` operations of the mixed scenario, same
seed, plain asyncio loop so yappi's and scalene's hooks see the same program) as its own process.
The figure per run is the scenario's own time for those operations (start-up and seeding excluded,
so the ratio is the profiler's cost on the work, not on importing modules). Modes are interleaved
round by round in alternating order so machine drift hits all of them alike, and each mode's
median is divided by the unprofiled median of the same invocation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from .backends import memray, pyspy, scalene
from .process import run
from .targets import PythonProgram
from .tools import require

# "continuous" is profkit ci's engine profile (pyspy.CONTINUOUS: 100 Hz, never pausing the target).
# "agent" is the profkit console's agent (profkit.agent, with aiomonitor) watching every task step.
TARGETS = {"flame": 1.05, "continuous": 1.03, "mem": 2.0, "agent": 1.10}


SCENARIO_MODULE = "agentmem.workload.run"


def scenario_args(ops: int) -> list[str]:
    return ["mixed", "--ops", str(ops), "--json", "--loop", "asyncio", "--concurrency", "16",
            "--seed-per-tenant", "100", "--seed", "7"]


def mode_run(mode: str, ops: int, work: Path) -> tuple[list[str], dict[str, str] | None]:
    """The argv (and environment) of one mode, built by the backend that profkit's command uses."""
    program = PythonProgram(None, SCENARIO_MODULE, tuple(scenario_args(ops)))
    plain = [sys.executable, "-m", SCENARIO_MODULE, *program.args]
    if mode == "baseline":
        return plain, None
    if mode == "flame":
        return pyspy.record_argv(work / "flame.collapsed", pyspy.RecordFlags(rate=100), pid=None, argv=plain,
                                 duration=None), None
    if mode == "continuous":
        return pyspy.record_argv(work / "continuous.collapsed", pyspy.CONTINUOUS, pid=None, argv=plain,
                                 duration=None), None
    if mode == "mem":
        return memray.run_argv(work / "mem.bin", program, memray.Flags()), None
    if mode == "async":
        require("yappi")
        from .backends import yappi_runner

        (work / "yappi").mkdir()
        return yappi_runner.argv(work / "yappi", program, block_threshold_ms=10), None
    if mode == "agent":
        # Free ports throughout: the measurement must not collide with an agent already running here.
        return [sys.executable, "-m", "profkit.agent", "--port", "0", "--monitor-ports", "0,0,0", "-m",
                SCENARIO_MODULE, *program.args], None
    if mode == "lines":
        (work / "tmp").mkdir()
        return scalene.record_argv(work / "scalene.json", program, cwd=Path.cwd()), scalene.record_env(work / "tmp")
    raise KeyError(mode)


def _scenario_seconds(stdout: str) -> float:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"duration_s"' in line:
            return float(json.loads(line)["duration_s"])
    raise RuntimeError(f"the scenario printed no report: {stdout[-300:]!r}")


def measure(modes: list[str], ops: int, repeats: int, progress: bool = True) -> dict[str, Any]:
    times: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="profkit-overhead-") as tmp:
        for r in range(repeats):
            order = modes if r % 2 == 0 else list(reversed(modes))
            for mode in order:
                work = Path(tmp) / f"{mode}-{r}"
                work.mkdir()
                argv, env = mode_run(mode, ops, work)
                proc = run(argv, timeout=1800, env=env)
                if proc.returncode != 0:
                    raise RuntimeError(f"{mode} failed ({proc.returncode}): {proc.stderr[-500:]}")
                times[mode].append(_scenario_seconds(proc.stdout))
                if progress:
                    print(f"\r\033[Kround {r + 1}/{repeats}: {mode} {times[mode][-1]:.3f} s", end="",
                          file=sys.stderr, flush=True)
    if progress:
        print("\r\033[K", end="", file=sys.stderr)
    base = statistics.median(times["baseline"])
    out: dict[str, Any] = {"ops": ops, "repeats": repeats, "baseline_median_s": round(base, 4), "modes": {}}
    for mode in modes:
        med = statistics.median(times[mode])
        ratio = med / base
        out["modes"][mode] = {"median_s": round(med, 4), "ratio": round(ratio, 3),
                              "runs_s": [round(t, 4) for t in times[mode]],
                              "target": TARGETS.get(mode), "within_target": ratio <= TARGETS.get(mode, float("inf"))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profkit.overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="baseline,flame,continuous,mem,async,lines,agent")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    if "baseline" not in modes:
        modes.insert(0, "baseline")
    report = measure(modes, args.ops, args.repeats, progress=not args.json)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"mixed scenario, {report['ops']} operations, median of {report['repeats']} interleaved runs")
        for mode, m in report["modes"].items():
            target = f"target <= {m['target']}x" if m["target"] else ""
            print(f"  {mode:<9} {m['median_s']:>8.3f} s  {m['ratio']:>6.2f}x  {target}")
    return 0 if all(m["within_target"] for m in report["modes"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
