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

import tempfile
from pathlib import Path
from typing import Any

from ..backends import scalene
from ..errors import TargetError
from ..process import Completed, exit_problem
from ..progress import SILENT, Reporter
from ..render.lines_html import render_html
from ..results import LinesFindings, LinesResult
from ..session import Options, open_run, summary
from ..targets import python_program
from ..tools import require, versions

PROFILE = "scalene.json"
HTML = "lines.html"
LOG = "program.log"

def run_lines(opts: Options, *, top: int, reporter: Reporter = SILENT) -> LinesResult:
    require("scalene")
    target = opts.target()
    program = python_program(target, "scalene")
    timeout = target.timeout(opts.duration)
    tool_versions = versions("scalene")
    with tempfile.TemporaryDirectory(prefix="profkit-lines-") as tmp:
        raw = Path(tmp) / PROFILE
        child_tmp = Path(tmp) / "tmp"
        child_tmp.mkdir()
        with reporter.stage(f"scalene profiling {target.label}"):
            proc = scalene.record(raw, program, cwd=Path.cwd(), tmpdir=child_tmp, timeout=timeout)
        profile = scalene.load(raw)
        problem = _program_problem(proc)
        if profile is None:
            raise TargetError(_why_nothing(proc, problem, target.label, scenario=target.kind == "scenario"))
        stats = scalene.files(profile)
        root = scalene.common_folder([f.file for f in stats])
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
            run_.conclude(dict(findings), problem)
    doc: LinesResult = {"command": "lines", **summary(run_), "findings": findings}
    if problem:
        raise TargetError(f"{problem}; what was profiled is in {run_.folder} (marked partial)")
    return doc


def _program_problem(proc: Completed) -> str | None:
    return exit_problem(proc.returncode, scalene.program_failure(proc))


def _why_nothing(proc: Completed, problem: str | None, label: str, *, scenario: bool) -> str:
    if problem:
        return f"{problem}; scalene wrote no profile, nothing was stored"
    if scalene.too_short(proc):
        remedy = "a longer --duration" if scenario else "more work to do"
        return (f"{label} ran too briefly for scalene to profile (scalene: \"did not run for long enough to "
                f"profile\"; it needs about a second of work in the program's own files); give it {remedy}. "
                f"Nothing was stored")
    return f"scalene wrote no profile for {label}; nothing was stored"


def summarise(profile: dict[str, Any], stats: list[scalene.FileStats], *, top: int,
              root: str | None) -> LinesFindings:
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
        "top_cpu": [scalene.line_view(ln, root) for ln in by_cpu[:top]],
        "top_memory": [scalene.line_view(ln, root) for ln in by_memory[:top]],
    }
