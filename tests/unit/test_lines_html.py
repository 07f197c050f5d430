"""profkit lines' findings and standalone HTML (services.lines.summarise, render.lines_html), from constructed
scalene stats."""

from __future__ import annotations

import html
import re
from typing import Any

from profkit.backends import scalene
from profkit.render.lines_html import render_html
from profkit.results import LinesFindings
from profkit.services.lines import summarise

ROOT = "/srv/project/pkg"


def _line(lineno: int, source: str, *, py: float = 0.0, c: float = 0.0, sys_: float = 0.0, alloc: float = 0.0,
          peak: float = 0.0, usage: float = 0.0) -> dict[str, Any]:
    return {"lineno": lineno, "line": source, "n_cpu_percent_python": py, "n_cpu_percent_c": c,
            "n_sys_percent": sys_, "n_malloc_mb": alloc, "n_peak_mb": peak, "n_avg_mb": peak / 2,
            "n_usage_fraction": usage, "n_copy_mb_s": 0.0}


# scalene's JSON as scalene 2.x writes it: escaped <, > and & in source lines, numbers per line.
PROFILE: dict[str, Any] = {
    "elapsed_time_sec": 2.5,
    "max_footprint_mb": 96.4,
    "max_footprint_fname": f"{ROOT}/store.py",
    "max_footprint_lineno": 12,
    "files": {
        f"{ROOT}/hot.py": {"percent_cpu_time": 85.0, "lines": [
            _line(1, "import sys\n"),
            _line(5, "    return sum(i for i in range(n) if i \\u003c k \\u0026 mask)\n", py=70.0, c=5.0, sys_=1.0),
            _line(6, "    return [x \\u003e 0 for x in xs]\n", py=4.0),
        ]},
        f"{ROOT}/sub/store.py": {"percent_cpu_time": 10.0, "lines": [
            _line(12, "        kept.append(bytearray(8 * 1024 * 1024))\n", py=1.0, alloc=96.0, peak=96.0, usage=0.9),
            _line(13, "    pass\n"),
        ]},
        "<frozen importlib._bootstrap>": {"percent_cpu_time": 5.0, "lines": [_line(1, "", c=5.0)]},
    },
}


def _findings(top: int = 5) -> tuple[LinesFindings, list[scalene.FileStats], str | None]:
    stats = scalene.files(PROFILE)
    root = scalene.common_folder([f.file for f in stats])
    return summarise(PROFILE, stats, top=top, root=root), stats, root


def test_scalene_stats_are_read_per_line_with_the_source_unescaped() -> None:
    stats = scalene.files(PROFILE)
    assert [f.file for f in stats] == [f"{ROOT}/hot.py", f"{ROOT}/sub/store.py", "<frozen importlib._bootstrap>"]
    hot = stats[0].lines[1]
    assert hot.source == "    return sum(i for i in range(n) if i < k & mask)"
    assert hot.cpu_pct == 76.0 and hot.active
    assert not stats[0].lines[0].active


def test_summarise_ranks_lines_by_cpu_and_by_memory() -> None:
    findings, _, root = _findings()
    assert root == ROOT
    assert [(r["short"], r["line"]) for r in findings["top_cpu"]] == [
        ("pkg/hot.py", 5), ("<frozen importlib._bootstrap>", 1), ("pkg/hot.py", 6), ("pkg/sub/store.py", 12)]
    assert [(r["short"], r["line"]) for r in findings["top_memory"]] == [("pkg/sub/store.py", 12)]
    assert findings["top_memory"][0]["alloc_pct"] == 90.0
    assert findings["top_cpu"][0]["key"] == f"{ROOT}/hot.py:5"
    assert findings["elapsed_s"] == 2.5 and findings["max_footprint_mb"] == 96.4
    assert findings["max_footprint_at"] == {"file": f"{ROOT}/store.py", "line": 12}
    assert [f["cpu_pct"] for f in findings["files"]] == [85.0, 10.0, 5.0]


def test_summarise_takes_only_top() -> None:
    findings, _, _ = _findings(top=1)
    assert len(findings["top_cpu"]) == 1 and findings["top_cpu"][0]["line"] == 5


def test_html_is_standalone_escaped_and_marks_the_hot_lines() -> None:
    findings, stats, root = _findings()
    page = render_html(findings, stats, root=root, title="python <hot>.py & co", scalene_version="2.4.0")
    assert "<title>profkit lines: python &lt;hot&gt;.py &amp; co</title>" in page
    # the source is shown as written, escaped once for HTML (never raw, never scalene's \\u003c)
    assert "i &lt; k &amp; mask" in page and "\\u003c" not in page and "i < k" not in page
    assert "bytearray(8 * 1024 * 1024)" in html.unescape(page)
    # the hottest lines are marked; an inactive line is not listed
    assert page.count('class="hot"') >= 2
    assert "    pass" not in page and "import sys" not in page
    assert "scalene 2.4.0" in page and "2.50 s profiled" in page and "peak memory 96.4 MB" in page
    assert "pkg/store.py:12" in page
    assert not re.search(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page)


def test_html_of_a_profile_with_no_hot_lines_says_so() -> None:
    quiet: dict[str, Any] = {"elapsed_time_sec": 1.0, "max_footprint_mb": 0.0,
                             "files": {"/a/b.py": {"percent_cpu_time": 0.0, "lines": [_line(1, "x = 1\n")]}}}
    stats = scalene.files(quiet)
    findings = summarise(quiet, stats, top=5, root=None)
    assert findings["max_footprint_at"] is None and findings["top_cpu"] == findings["top_memory"] == []
    page = render_html(findings, stats, root=None, title="quiet", scalene_version=None)
    assert "no line used a measurable share of the CPU" in page
    assert "no line allocated enough memory for scalene to sample" in page
