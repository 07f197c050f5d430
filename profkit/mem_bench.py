"""What `profkit mem` costs after a capture, next to memray's own reporters on the same file.

    python -m profkit.mem_bench [--seconds 4] [--repeats 3] [--capture FILE] [--json]

Makes a capture of a program that allocates fast (or takes ``--capture``), then times, interleaved
and ``--repeats`` times each, (a) what a user of memray runs for the same outputs — ``memray
flamegraph``, ``memray flamegraph --leaks`` and ``memray stats`` one after another — and (b)
profkit's reporting of that capture (its tables, the peak, the leaks, and both flamegraphs), the
code ``profkit mem --leaks`` runs. It reports the medians and their ratio (target <= 1.1x), and the
CPU time each side used (this process and its children): profkit's reporting runs on two cores, so
its wall time depends on a second core being idle, its CPU time does not.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .backends import memray
from .process import run
from .targets import PythonProgram
from .tools import require

TARGET_RATIO = 1.1
# Many short-lived allocations, some kept: the kind of capture that makes reporting slow. Sizes past
# pymalloc's 512-byte limit, so every one reaches malloc, where memray sees it.
ALLOCATOR = """
import sys, time
kept = []
stop = time.monotonic() + float(sys.argv[1])
def churn(n):
    return [bytearray(600 + i % 4096) for i in range(n)]
def keep(n):
    kept.extend(bytearray(700 + i) for i in range(n))
while time.monotonic() < stop:
    churn(2000)
    keep(50)
"""


def make_capture(folder: Path, seconds: float) -> Path:
    script = folder / "allocate.py"
    script.write_text(ALLOCATOR)
    capture = folder / "capture.bin"
    proc = run(memray.run_argv(capture, PythonProgram(str(script), None, (str(seconds),)), memray.Flags()),
               timeout=seconds * 20 + 120)
    if proc.returncode != 0 or not capture.is_file():
        raise SystemExit(f"mem_bench: memray run failed: {proc.last_error_line()}")
    return capture


def memray_own(capture: Path, out: Path) -> float:
    """memray's three reporters, one after another, as a user runs them."""
    started = time.perf_counter()
    for argv in (memray.flamegraph_argv(capture, out / "own.html", leaks=False),
                 memray.flamegraph_argv(capture, out / "own-leaks.html", leaks=True),
                 [*require("memray").argv(), "stats", "--json", "--force", "-o", str(out / "own-stats.json"),
                  str(capture)]):
        proc = run(argv, timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"mem_bench: {' '.join(argv[2:4])} failed: {proc.last_error_line()}")
    return time.perf_counter() - started


def profkit_report(capture: Path, out: Path) -> float:
    started = time.perf_counter()
    memray.report(capture, out / "pk.html", out / "pk-leaks.html", top=15, code=memray.CodeFilter(),
                  tick=lambda _text: None, timeout=3600)
    return time.perf_counter() - started


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(capture: Path, repeats: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"memray": [], "profkit": []}
    cpu: dict[str, list[float]] = {"memray": [], "profkit": []}
    with tempfile.TemporaryDirectory(prefix="profkit-mem-bench-out-") as tmp:
        out = Path(tmp)
        for r in range(repeats):
            order = ("memray", "profkit") if r % 2 == 0 else ("profkit", "memray")
            for who in order:
                before = cpu_seconds()
                times[who].append(memray_own(capture, out) if who == "memray" else profkit_report(capture, out))
                cpu[who].append(cpu_seconds() - before)
                print(f"\r\033[Kround {r + 1}/{repeats}: {who} {times[who][-1]:.1f} s", end="", file=sys.stderr,
                      flush=True)
    print("\r\033[K", end="", file=sys.stderr)
    own, ours = statistics.median(times["memray"]), statistics.median(times["profkit"])
    return {"capture_bytes": capture.stat().st_size, "repeats": repeats,
            "memray_median_s": round(own, 2), "profkit_median_s": round(ours, 2), "ratio": round(ours / own, 3),
            "target": TARGET_RATIO, "runs_s": {k: [round(t, 2) for t in v] for k, v in times.items()},
            "cpu_median_s": {k: round(statistics.median(v), 2) for k, v in cpu.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profkit.mem_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="how long the allocating program runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--capture", type=Path, help="report this capture instead of making one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="profkit-mem-bench-") as tmp:
        capture = args.capture or make_capture(Path(tmp), args.seconds)
        report = measure(capture, args.repeats)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"capture of {report['capture_bytes'] / 1e6:.0f} MB, median of {report['repeats']} interleaved runs")
        print(f"  memray flamegraph + flamegraph --leaks + stats  {report['memray_median_s']:>7.1f} s")
        print(f"  profkit mem reporting (tables, peak, leaks, both flamegraphs)  {report['profkit_median_s']:>7.1f} s")
        print(f"  ratio {report['ratio']:.2f}x (target <= {TARGET_RATIO}x); CPU time: memray "
              f"{report['cpu_median_s']['memray']:.1f} s, profkit {report['cpu_median_s']['profkit']:.1f} s")
    return 0 if report["ratio"] <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
