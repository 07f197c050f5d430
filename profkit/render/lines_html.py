"""profkit lines' standalone HTML report: every profiled file's active lines, the hottest marked."""

from __future__ import annotations

from ..backends import scalene
from ..results import LinesFindings
from .jinja import template


def render_html(findings: LinesFindings, stats: list[scalene.FileStats], *, root: str | None, title: str,
                scalene_version: str | None) -> str:
    files = [{"file": f.file, "short": scalene.short(f.file, root), "cpu_pct": f.cpu_pct,
              "lines": [scalene.line_view(ln, root) for ln in f.lines if ln.active]} for f in stats]
    hot = {r["key"] for r in findings["top_cpu"][:3]} | {r["key"] for r in findings["top_memory"][:3]}
    at = findings["max_footprint_at"]
    return template("lines.html").render(
        title=title, scalene_version=scalene_version, elapsed_s=findings["elapsed_s"],
        max_footprint_mb=findings["max_footprint_mb"],
        max_footprint_at=f"{scalene.short(at['file'], root)}:{at['line']}" if at else None,
        top_cpu=findings["top_cpu"], top_memory=findings["top_memory"], files=files, hot=hot)
