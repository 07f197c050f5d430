"""profkit lines — line-level CPU and memory with scalene: its JSON, a standalone HTML report, the hot lines.

scalene profiles into a private temporary folder first; a run is opened in the store only once
there is a profile to put in it. A program too brief for scalene to sample therefore leaves the
store exactly as it was, instead of a run folder with nothing in it to list and prune.

The HTML is profkit's own, rendered from scalene's JSON: scalene's ``view --standalone`` page is
self-contained too, but it is ~2 MB of JavaScript that shows nothing without it, and it carries
buttons that send the profiled source to AI providers. This one is a plain table that any browser
(or grep) can read offline.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from rich.table import Table

from ..backends import scalene
from ..console import err, out
from ..errors import TargetError, UsageError
from ..process import Completed
from ..session import Options, open_run, print_artifacts, progress, result
from ..targets import python_program
from ..tools import require, versions

PROFILE = "scalene.json"
HTML = "lines.html"
LOG = "program.log"

_env = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "render" / "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def run_lines(opts: Options, *, top: int) -> dict[str, Any]:
    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    require("scalene")
    target = opts.target()
    program = python_program(target, "scalene")
    timeout = opts.duration * 3 + 120 if target.kind == "scenario" else 24 * 3600
    tool_versions = versions("scalene")
    with tempfile.TemporaryDirectory(prefix="profkit-lines-") as tmp:
        raw = Path(tmp) / PROFILE
        child_tmp = Path(tmp) / "tmp"
        child_tmp.mkdir()
        with progress(f"scalene profiling {target.label}"):
            proc = scalene.record(raw, program, cwd=Path.cwd(), tmpdir=child_tmp, timeout=timeout)
        profile = scalene.load(raw)
        problem = _program_problem(proc)
        if profile is None:
            raise TargetError(_why_nothing(proc, problem, target.label, scenario=target.kind == "scenario"))
        stats = scalene.files(profile)
        root = _common_folder([f.file for f in stats])
        findings = summarise(profile, stats, top=top, root=root)
        if problem:
            findings["program_failure"] = problem
        html = render_html(findings, stats, root=root, title=target.label, scalene_version=tool_versions["scalene"])
        with open_run("lines", opts, target, tools=tool_versions) as run_:
            run_.write(PROFILE, raw.read_bytes(), "scalene-json")
            run_.write(HTML, html.encode(), "scalene-html")
            if proc.stdout or proc.stderr:
                run_.write(LOG, f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}".encode(),
                           "program-log")
            run_.conclude(findings, problem)
    doc = result("lines", run_, findings)
    if problem:
        raise TargetError(f"{problem}; what was profiled is in {run_.folder} (marked partial)")
    return doc


def _program_problem(proc: Completed) -> str | None:
    if proc.returncode == 0:
        return None
    detail = scalene.program_failure(proc)
    return f"the profiled program exited with code {proc.returncode}" + (f" ({detail})" if detail else "")


def _why_nothing(proc: Completed, problem: str | None, label: str, *, scenario: bool) -> str:
    if problem:
        return f"{problem}; scalene wrote no profile, nothing was stored"
    if scalene.too_short(proc):
        remedy = "a longer --duration" if scenario else "more work to do"
        return (f"{label} ran too briefly for scalene to profile (scalene: \"did not run for long enough to "
                f"profile\"; it needs about a second of work in the program's own files); give it {remedy}. "
                f"Nothing was stored")
    return f"scalene wrote no profile for {label}; nothing was stored"


def _line_view(line: scalene.LineStats, root: str | None) -> dict[str, Any]:
    return {**line.to_dict(), "short": _short(line.file, root), "key": f"{line.file}:{line.line}"}


def _common_folder(paths: list[str]) -> str | None:
    absolute = [p for p in paths if os.path.isabs(p)]
    if not absolute:
        return None
    common = os.path.commonpath(absolute)
    return os.path.dirname(common) if len(set(absolute)) == 1 else common


def _short(path: str, root: str | None) -> str:
    if root and os.path.isabs(path) and path.startswith(root + os.sep):
        # Keep the folder the files share in the name: "agentmem/engine.py" says more than "engine.py".
        return os.path.relpath(path, os.path.dirname(root))
    return path


def summarise(profile: dict[str, Any], stats: list[scalene.FileStats], *, top: int,
              root: str | None) -> dict[str, Any]:
    every = [ln for f in stats for ln in f.lines]
    by_cpu = sorted((ln for ln in every if ln.cpu_pct > 0), key=lambda ln: -ln.cpu_pct)
    by_memory = sorted((ln for ln in every if ln.alloc_mb > 0 or ln.peak_mb > 0),
                       key=lambda ln: (-ln.alloc_mb, -ln.peak_mb))
    at_file, at_line = profile.get("max_footprint_fname"), profile.get("max_footprint_lineno")
    return {
        "elapsed_s": round(float(profile.get("elapsed_time_sec") or 0.0), 3),
        "max_footprint_mb": round(float(profile.get("max_footprint_mb") or 0.0), 3),
        "max_footprint_at": {"file": at_file, "line": at_line} if at_file else None,
        "files": [{"file": f.file, "cpu_pct": round(f.cpu_pct, 3)} for f in stats],
        "top_cpu": [_line_view(ln, root) for ln in by_cpu[:top]],
        "top_memory": [_line_view(ln, root) for ln in by_memory[:top]],
    }


def render_html(findings: dict[str, Any], stats: list[scalene.FileStats], *, root: str | None, title: str,
                scalene_version: str | None) -> str:
    files = [{"file": f.file, "short": _short(f.file, root), "cpu_pct": f.cpu_pct,
              "lines": [_line_view(ln, root) for ln in f.lines if ln.active]} for f in stats]
    hot = {r["key"] for r in findings["top_cpu"][:3]} | {r["key"] for r in findings["top_memory"][:3]}
    at = findings["max_footprint_at"]
    return _env.get_template("lines.html").render(
        title=title, scalene_version=scalene_version, elapsed_s=findings["elapsed_s"],
        max_footprint_mb=findings["max_footprint_mb"],
        max_footprint_at=f"{_short(at['file'], root)}:{at['line']}" if at else None,
        top_cpu=findings["top_cpu"], top_memory=findings["top_memory"], files=files, hot=hot)


def render(doc: dict[str, Any]) -> None:
    f = doc["findings"]
    cpu = Table(title=f"top lines by CPU ({f['elapsed_s']:.1f} s profiled)")
    for col in ("line", "CPU %", "Python", "native", "system", "source"):
        cpu.add_column(col, justify="left" if col in ("line", "source") else "right")
    for r in f["top_cpu"]:
        cpu.add_row(f"{r['short']}:{r['line']}", f"{r['cpu_pct']:.1f}", f"{r['cpu_python_pct']:.1f}",
                    f"{r['cpu_native_pct']:.1f}", f"{r['cpu_system_pct']:.1f}", r["source"].strip())
    out.print(cpu)
    mem = Table(title=f"top lines by memory allocated (peak footprint {f['max_footprint_mb']:.1f} MB)")
    for col in ("line", "alloc MB", "alloc %", "peak MB", "avg MB", "source"):
        mem.add_column(col, justify="left" if col in ("line", "source") else "right")
    for r in f["top_memory"]:
        mem.add_row(f"{r['short']}:{r['line']}", f"{r['alloc_mb']:.1f}", f"{r['alloc_pct']:.1f}",
                    f"{r['peak_mb']:.1f}", f"{r['avg_mb']:.1f}", r["source"].strip())
    out.print(mem)
    print_artifacts(doc)
    err.print("scalene's own interactive view: python -m scalene view --standalone FILE.json", highlight=False)
