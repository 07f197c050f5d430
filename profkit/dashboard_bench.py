"""How long ``profkit dashboard`` takes on a big store: ``python -m profkit.dashboard_bench [--commits 500]``.

Writes a synthetic store of N commits into a temporary folder, as ``profkit ci`` files them: per
commit a bench, ci (load), flame, mem and async run with small stand-in artifacts and manifests,
and the commit index with bench figures of the fourteen operations (lognormal noise of about 1 %
per commit around realistic medians) and each commit's comparison with its parent. Planted in it
(see :func:`events`): a slow drift no single comparison flags, a step one comparison calls slower,
a regression that stays, a one-commit regression that does not, and an improvement. Then it builds
the site twice (first build, and a rebuild over an unchanged store) and prints the times.

:func:`make_store` is also what the dashboard's tests and the notebook's test build their stores with.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bench.compare import FAIL, FASTER, NO_CHANGE, REGRESSION, SLOWER, WARN
from .commit_index import INDEX, INDEX_VERSION
from .store import MANIFEST, MANIFEST_VERSION

TARGET_S = 10.0
NOISE = 0.01  # relative sigma of one commit's p50, as between runs on the reference machine

# op: (suite, p50 ms, p99 budget ms), the engine's quick-bench medians and its perf-budget.toml.
OPS: dict[str, tuple[str, float, float]] = {
    "create": ("memory", 0.35, 15), "get": ("memory", 0.045, 10), "get_uncached": ("memory", 0.09, 10),
    "update": ("memory", 0.40, 15), "delete": ("memory", 0.30, 15), "batch_100": ("memory", 12.0, 200),
    "traverse_d1": ("graph", 0.60, 50), "traverse_d2": ("graph", 2.5, 50), "traverse_d3": ("graph", 6.0, 50),
    "list_recent": ("database", 0.50, 10), "list_importance": ("database", 0.55, 10),
    "list_filtered": ("database", 0.70, 10), "search_small": ("vector", 0.80, 60),
    "search_large": ("vector", 3.5, 60),
}

# What memray's flamegraph page loads from a CDN (memray 1.x, reporters/templates/base.html and
# flamegraph.html), so the stand-in pages exercise the dashboard's offline rewrite.
MEMRAY_CDN = (
    '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/bootstrap@4.6.0/dist/css/bootstrap.min.css">',
    '<script src="https://cdn.jsdelivr.net/npm/popper.js@1.16.1/dist/umd/popper.min.js"></script>',
    '<script src="https://cdn.jsdelivr.net/npm/jquery@3.6.0/dist/jquery.min.js"></script>',
    '<script src="https://cdn.jsdelivr.net/npm/bootstrap@4.6.0/dist/js/bootstrap.min.js"></script>',
    '<script src="https://cdn.jsdelivr.net/npm/lodash@4.17.21/lodash.min.js"></script>',
    '<script src="https://cdn.jsdelivr.net/npm/plotly.js@2.11.1/dist/plotly.min.js"></script>',
    '<script src="https://cdn.jsdelivr.net/npm/d3@7.9.0/dist/d3.min.js"></script>',
    '<script src="https://cdn.jsdelivr.net/npm/d3-scale-chromatic@3.1.0/dist/d3-scale-chromatic.min.js"></script>',
    '<script src="https://cdn.jsdelivr.net/npm/d3-flame-graph@4.1.3/dist/d3-flamegraph.min.js"></script>',
)


@dataclass(frozen=True)
class Event:
    """A planted change: ``op``'s level times ``factor`` from commit ``start`` on (``length`` commits, 0: for good)."""

    op: str
    start: int
    factor: float
    ramp: int = 1  # the factor is reached over this many commits, each adding its share
    length: int = 0


@dataclass
class SyntheticStore:
    root: Path
    folders: list[str] = field(default_factory=list)  # oldest first
    events: list[Event] = field(default_factory=list)

    def folder_of(self, position: int) -> str:
        return self.folders[position]


def events(n: int) -> list[Event]:
    """The changes planted in a store of ``n`` commits (positions scale with n)."""
    def at(share: float) -> int:
        return max(4, min(n - 8, round(share * n)))

    return [
        Event("search_large", at(0.40), 1.05, ramp=4),  # +1.2 % a commit for 4 commits: drift, no comparison sees it
        Event("get", at(0.60), 1.06),  # one commit, 6 %: the comparison says slower, the step stays
        Event("traverse_d2", at(0.75), 1.15),  # a regression that stays
        Event("create", at(0.50), 1.25, length=1),  # a regression of one commit, reverted by the next
        Event("list_filtered", at(0.30), 0.92),  # an improvement
    ]


def levels(n: int, planted: list[Event]) -> dict[str, np.ndarray[Any, Any]]:
    """Each operation's true p50 per commit."""
    out = {op: np.full(n, base) for op, (_, base, _) in OPS.items()}
    for e in planted:
        for i in range(e.ramp):
            start = e.start + i
            end = start + e.length if e.length else n
            out[e.op][start:end] *= e.factor ** (1 / e.ramp)
    return out


def make_store(root: Path, commits: int, *, seed: int = 0, artifacts: bool = True,
               memray_page: str | None = None) -> SyntheticStore:
    """A store of ``commits`` commits with indexes (and, with ``artifacts``, run folders); see the module."""
    rng = np.random.default_rng(seed)
    planted = events(commits)
    true = levels(commits, planted)
    made = SyntheticStore(root, events=planted)
    t0 = 1_700_000_000.0
    previous: dict[str, Any] | None = None
    for i in range(commits):
        sha = hashlib.sha1(f"profkit synthetic commit {seed} {i}".encode()).hexdigest()  # noqa: S324 - a name
        folder = sha[:12]
        made.folders.append(folder)
        created = t0 + 3600.0 * i
        ops = {}
        for op, (suite, _, budget) in OPS.items():
            p50 = float(true[op][i] * math.exp(rng.normal(0, NOISE)))
            half = p50 * 0.012
            ops[op] = {"suite": suite, "p50_ms": round(p50, 5), "p95_ms": round(1.6 * p50, 5),
                       "p99_ms": round(2.4 * p50 * math.exp(rng.normal(0, 0.05)), 5), "mean_ms": round(1.1 * p50, 5),
                       "p50_ci95": [round(p50 - half, 5), round(p50 + half, 5)], "budget": "ok",
                       "budget_p50_ms": None, "budget_p99_ms": float(budget)}
        benched = i % 97 != 13  # now and then a job whose bench failed: a gap in the trends
        runs = _runs(root / folder, created, i, benched, artifacts, memray_page)
        doc: dict[str, Any] = {
            "index_version": INDEX_VERSION, "commit": sha, "dirty": False, "folder": folder,
            "created_at": created, "updated_at": created + 600,
            "jobs": [{"started_at": created, "ended_at": created + 600, "scenario": "mixed",
                      "errors": {} if benched else {"bench": "the bench's worker 3 died (synthetic)"},
                      "runs": {k: v["id"] for k, v in runs.items()}}],
            "runs": {k: [v["id"]] for k, v in runs.items()},
            "artifacts": {key: rel for v in runs.values() for key, rel in v["artifacts"].items()},
            "bench": {"run": runs["bench"]["id"], "config": {"size": 2000, "workers": 8, "samples": 100}, "ops": ops,
                      "over_budget": [], "json": runs["bench"]["artifacts"]["bench_json"]} if benched else None,
            "against": _against(previous, ops) if benched and previous is not None else None,
        }
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / INDEX).write_text(json.dumps(doc, indent=1))
        if benched:
            previous = doc
    return made


def _against(base: dict[str, Any], ops: dict[str, Any]) -> dict[str, Any]:
    """A comparison with the parent, as profkit ci records it: verdicts by the bench's thresholds."""
    changes = []
    for op, f in ops.items():
        before, now = base["bench"]["ops"][op]["p50_ms"], f["p50_ms"]
        change = now / before - 1
        verdict = (REGRESSION if change > FAIL else SLOWER if change > WARN else FASTER if change <= -WARN
                   else NO_CHANGE)
        changes.append({"op": op, "verdict": verdict, "change_pct": round(100 * change, 2),
                        "ci95_pct": [round(100 * change - 1.5, 2), round(100 * change + 1.5, 2)],
                        "p_value": 1e-6 if verdict != NO_CHANGE else 0.3, "baseline_p50_ms": before,
                        "current_p50_ms": now})
    return {"commit": base["commit"], "folder": base["folder"], "changes": changes,
            "regressions": [c["op"] for c in changes if c["verdict"] == REGRESSION],
            "warnings": [c["op"] for c in changes if c["verdict"] == SLOWER],
            "note": "synthetic: runs made at different times"}


# kind: (command, {index artifact key: (file name, manifest kind)})
_RUNS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "bench": ("bench", {"bench_report": ("benchmark_{stamp}.html", "bench-html"),
                        "bench_markdown": ("benchmark_{stamp}.md", "bench-markdown"),
                        "bench_json": ("benchmark_{stamp}.json", "bench-json")}),
    "load": ("ci", {"load_report": ("load.json", "load-json"), "metrics": ("metrics.prom", "prometheus-metrics")}),
    "flame": ("flame", {"flamegraph": ("flamegraph.svg", "flamegraph-svg"),
                        "speedscope": ("profile.speedscope.json", "speedscope"),
                        "collapsed": ("profile.collapsed", "collapsed")}),
    "mem": ("mem", {"memray_html": ("flamegraph.html", "memray-html"), "memory_stats": ("stats.json", "stats-json")}),
    "async": ("async", {"async_table": ("coroutines.json", "coroutines-json"),
                        "async_pstat": ("profile.pstat", "pstat")}),
}


def _runs(commit_dir: Path, created: float, i: int, benched: bool, artifacts: bool,
          memray_page: str | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created))
    for n, (kind, (command, files)) in enumerate(_RUNS.items()):
        if kind == "bench" and not benched:
            continue
        run = f"{command}-{stamp}-{1000 + i}-{n:04x}"
        names = {key: name.format(stamp=stamp) for key, (name, _) in files.items()}
        out[kind] = {"id": f"{commit_dir.name}/{run}",
                     "artifacts": {key: f"{commit_dir.name}/{run}/{name}" for key, name in names.items()}}
        if not artifacts:
            continue
        folder = commit_dir / run
        folder.mkdir(parents=True, exist_ok=True)
        listed = []
        for key, name in names.items():
            data = _artifact(key, i, memray_page)
            (folder / name).write_bytes(data)
            listed.append({"path": name, "kind": files[key][1], "size": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()})
        manifest = {"manifest_version": MANIFEST_VERSION, "command": command, "commit": commit_dir.name,
                    "dirty": False, "target": {"synthetic": True}, "tools": {}, "host": "synthetic", "pid": 1000 + i,
                    "started_at": created + n, "ended_at": created + n + 30, "status": "complete",
                    "artifacts": listed}
        (folder / MANIFEST).write_text(json.dumps(manifest))
    return out


def _artifact(key: str, i: int, memray_page: str | None) -> bytes:
    if key == "flamegraph":
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="80" viewBox="0 0 600 80">'
                f'<rect x="0" y="40" width="600" height="20" fill="#e5562c"/>'
                f'<rect x="0" y="20" width="{300 + i % 200}" height="20" fill="#f2a23a"/>'
                f'<text x="4" y="54" font-size="12">commit {i}: all</text></svg>').encode()
    if key == "memray_html":
        if memray_page is not None:
            return memray_page.encode()
        return ("<!DOCTYPE html><html><head><title>memray - flamegraph report</title>\n" + "\n".join(MEMRAY_CDN[:1])
                + "\n</head><body><h1>memray flamegraph (stand-in)</h1><div id=chart></div>\n"
                + "\n".join(MEMRAY_CDN[1:]) + f"\n<script>const packed_data = {{\"commit\": {i}}};</script>\n"
                '<a href="https://bloomberg.github.io/memray/flamegraph.html">documentation</a></body></html>\n'
                ).encode()
    if key == "bench_report":
        return f"<!doctype html><html><body><h1>Benchmark report {i}</h1></body></html>".encode()
    if key in ("bench_json", "load_report", "memory_stats", "async_table", "speedscope"):
        return json.dumps({"synthetic": True, "commit": i}).encode()
    if key == "metrics":
        return b"# TYPE agentmem_requests_total counter\nagentmem_requests_total 12345\n"
    if key == "collapsed":
        return b"main;serve;handle 120\nmain;serve;search 80\n"
    return f"synthetic {key} of commit {i}\n".encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m profkit.dashboard_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--commits", type=int, default=500, help="commits in the synthetic store (default 500)")
    parser.add_argument("--keep", type=Path, default=None, help="build the store here and keep it (a new folder)")
    args = parser.parse_args(argv)
    if args.commits < 2:
        parser.error("--commits must be at least 2")
    from .services.dashboard import run_dashboard

    tmp = Path(tempfile.mkdtemp(prefix="profkit-dashboard-bench-")) if args.keep is None else args.keep
    store = tmp / "store" if args.keep is None else args.keep
    try:
        t = time.perf_counter()
        made = make_store(store, args.commits)
        made_s = time.perf_counter() - t
        first = run_dashboard(store=store)
        again = run_dashboard(store=store)
        print(f"synthetic store of {args.commits} commits ({len(OPS)} operations, 5 runs each) made in {made_s:.1f} s")
        print(f"dashboard: first build {first['seconds']:.2f} s, rebuild of the unchanged store "
              f"{again['seconds']:.2f} s "
              f"(target < {TARGET_S:g} s); {first['pages']} commit pages, {first['memray_pages']} memray pages, "
              f"{len(first['assets'])} shared assets")
        print(f"steps found: {len(first['steps'])} (commit #: its place, oldest 0)")
        found = {s["op"]: s for s in first["steps"]}
        for e in made.events:
            s = found.pop(e.op, None)
            planted = f"#{e.start}" + (f"-#{e.start + e.ramp - 1} (a ramp)" if e.ramp > 1 else "")
            what = f"  {e.op:<14} planted x{e.factor:g} at {planted}" + (f" for {e.length} commit" if e.length else "")
            print(what + (f": step at #{s['position']} {s['change_pct']:+.1f} %"
                          + ("" if s["flagged"] else ", drift: no comparison flagged it") if s else ": no step"))
        for s in found.values():
            print(f"  {s['op']:<14} not planted: step at #{s['position']} {s['change_pct']:+.1f} %")
        print(f"site: {first['index']}" + ("" if args.keep else " (temporary, removed)"))
        return 0 if max(first["seconds"], again["seconds"]) < TARGET_S else 1
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
