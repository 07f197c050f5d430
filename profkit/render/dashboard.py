"""The dashboard's pages: the overview with one trend plot per operation, one page per commit, each
commit's async profile as a page, and memray pages made to load their scripts from the site instead of a CDN.

Plots are matplotlib SVGs inlined in the page (as in the bench report): no JavaScript, nothing
fetched, so the site opens from disk. One figure per operation, whatever the number of commits.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from ..trends import FASTER, REGRESSION, SLOWER, Point, Step
from .jinja import template

MAX_TICKS = 14
DOTS_UP_TO = 150
VERDICT_STYLE = {REGRESSION: ("^", "crimson"), SLOWER: ("^", "darkorange"), FASTER: ("v", "seagreen")}
# Text as text (not glyph outlines): a fifth of the size and selectable; a fixed salt makes the ids
# in the SVG the same from one build to the next, so an unchanged plot is an unchanged file.
SVG_RC: dict[str, Any] = {"svg.fonttype": "none", "svg.hashsalt": "profkit-dashboard", "font.size": 9}


def short(sha: str) -> str:
    return sha[:8]


def trend_svg(op: str, points: Sequence[Point], steps: Sequence[tuple[Step, Point]], labels: Sequence[str],
              href: Callable[[str], str]) -> str:
    """An operation's p50 (with its 95 % interval band, flagged comparisons and steps) over p99 and its budget.

    ``labels`` names every commit position (oldest first); ``href`` gives the link to a commit's page,
    put on the markers of flagged commits and steps so a click opens that commit.
    """
    with plt.rc_context(SVG_RC):  # type: ignore[arg-type]  # matplotlib types the keys as literals
        fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 4.4), height_ratios=(3, 2))
        x = np.array([p.position for p in points], dtype=float)
        p50 = np.array([p.p50_ms for p in points])
        lo = np.array([p.p50_ci95[0] if p.p50_ci95 else np.nan for p in points])
        hi = np.array([p.p50_ci95[1] if p.p50_ci95 else np.nan for p in points])
        top.fill_between(x, lo, hi, color="tab:blue", alpha=0.2, lw=0, label="p50 95 % interval")
        # Past a few hundred commits a marker per commit is a solid line of dots, and most of the SVG.
        dots = "o" if len(points) <= DOTS_UP_TO else None
        top.plot(x, p50, color="tab:blue", lw=1.2, marker=dots, ms=2.5, label="p50")
        for verdict, (marker, colour) in VERDICT_STYLE.items():
            flagged = [p for p in points if p.verdict == verdict]
            if flagged:
                marks = top.scatter([p.position for p in flagged], [p.p50_ms for p in flagged], marker=marker, s=40,
                                    color=colour, zorder=5, label=f"{verdict} (vs parent)")
                marks.set_urls([href(p.folder) for p in flagged])
        _levels(top, points, steps)
        top.set_ylabel("p50 ms")
        # Figure text rather than an axes title: a title is placed by measuring every tick label of
        # the axes under it, a third of the figure's drawing time.
        fig.text(0.075, 0.985, op, fontsize=11, fontweight="bold", va="top")
        top.legend(loc="upper left", fontsize=7, ncols=4, frameon=False)
        top.grid(alpha=0.3)
        top.set_ylim(*_room(np.concatenate([p50, lo[np.isfinite(lo)], hi[np.isfinite(hi)]])))

        p99 = np.array([p.p99_ms if p.p99_ms is not None else np.nan for p in points])
        budget = np.array([p.budget_p99_ms if p.budget_p99_ms is not None else np.nan for p in points])
        bottom.plot(x, p99, color="tab:purple", lw=1, marker=dots, ms=2, label="p99")
        if np.isfinite(budget).any():
            bottom.plot(x, budget, color="crimson", lw=1.2, ls="--", drawstyle="steps-mid", label="p99 budget")
            over = np.isfinite(budget) & np.isfinite(p99) & (p99 > budget)
            if over.any():
                bottom.scatter(x[over], p99[over], color="crimson", s=14, zorder=5, label="over budget")
        bottom.set_ylabel("p99 ms (log)")
        # A budget is often ten times the p99: on a log scale both, and the p99's own moves, show.
        bottom.set_yscale("log")
        bottom.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        bottom.yaxis.set_minor_locator(NullLocator())
        # Plain numbers (0.5, 2, 10): the default 10^x labels go through mathtext, slow and harder to read.
        bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        shown = np.concatenate([p99[np.isfinite(p99)], budget[np.isfinite(budget)]])
        if shown.size:
            bottom.set_ylim(shown.min() / 1.6, shown.max() * 1.6)
        # Between a p99 and a budget ten times higher, the middle of a log scale is empty.
        bottom.legend(loc="center left", fontsize=7, ncols=3, frameon=False)
        bottom.grid(alpha=0.3)
        ticks = _ticks(x, [s[1].position for s in steps])
        bottom.set_xticks(ticks, [labels[int(t)] for t in ticks], rotation=45, ha="right", fontsize=7)
        bottom.set_xlim(-0.5, max(len(labels) - 0.5, 0.5))
        # A fixed layout rather than bbox_inches="tight", which draws the figure twice: half the time.
        fig.subplots_adjust(left=0.075, right=0.99, top=0.92, bottom=0.19, hspace=0.06)
        fig.align_ylabels()
        return _svg(fig)


def _levels(ax: Any, points: Sequence[Point], steps: Sequence[tuple[Step, Point]]) -> None:
    """The fitted levels between steps, a line at each step and its size, linked to its commit."""
    if not steps:
        return
    edges = [0, *(s.index for s, _ in steps), len(points)]
    for a, b in itertools.pairwise(edges):
        level = float(np.median([p.p50_ms for p in points[a:b]]))
        ax.plot([points[a].position - 0.4, points[b - 1].position + 0.4], [level, level], color="black", lw=1,
                alpha=0.6)
    for step, at in steps:
        ax.axvline(at.position - 0.5, color="black", ls=":", lw=1)
        ax.annotate(f"step {100 * step.change:+.1f} %", (at.position - 0.5, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -10), textcoords="offset points", fontsize=7)


def _room(values: np.ndarray[Any, Any]) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.08 or hi * 0.05 or 1.0
    # Room above for the legend, which sits over the plot's top band.
    return max(lo - pad, 0.0), hi + 3.5 * pad


def _ticks(x: np.ndarray[Any, Any], must: Sequence[int]) -> list[int]:
    """At most MAX_TICKS positions to label, evenly spread, the steps' commits always among them."""
    if x.size == 0:
        return []
    every = max(1, math.ceil(x.size / MAX_TICKS))
    chosen = {int(v) for v in x[::every]} | {int(x[-1])}
    for m in must:
        chosen = {c for c in chosen if abs(c - m) * MAX_TICKS > x.size or c == m}
        chosen.add(int(m))
    return sorted(chosen)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def overview_html(**page: Any) -> str:
    return template("dashboard_index.html").render(**page)


def commit_html(**page: Any) -> str:
    return template("dashboard_commit.html").render(**page)


# -- the async profile ---------------------------------------------------------------------------------

# Fields of the coroutine table that only newer profkits write (garbage collection per step): a
# column is shown when a row of the run has it.
GC_COLUMNS = {"gc_ms": "GC ms", "max_step_gc_ms": "GC in max step ms", "max_step_gc_generation": "GC gen"}
NO_LOOP = ("no asyncio event-loop steps were seen: the program ran no asyncio loop, or a replacement (uvloop) that "
           "profkit cannot time; coroutine CPU time and blocking detection need the plain asyncio loop")


def async_html(table: Mapping[str, Any], *, title: str, nav: Mapping[str, str], raw: Mapping[str, str],
               top: int) -> str:
    """A run's coroutine table (yappi_runner's ``coroutines.json``) as a page.

    It is read here, field by field with ``get``, rather than through ``profkit async``'s summary: a
    store holds tables of every profkit version that ran on it, older ones without the garbage
    collection fields, newer ones with fields this one does not know, and each gets its page. The
    selections are the command's: the program's coroutines by wall time (the entry point and the
    standard library's apart), loop blockers and stalls, GC pauses, functions by wall time.
    """
    rows = _dicts(table.get("coroutines"))
    program = [r for r in rows if r.get("origin") == "program"]
    ranked = sorted((r for r in program if not r.get("entry") and _real(r.get("wall_ms"))),
                    key=lambda r: -float(r["wall_ms"]))
    entry = [r for r in program if r.get("entry")]
    steppers = [{**r, "kind": "coroutine"} for r in rows if r.get("steps") is not None]
    steppers += [{**c, "kind": "callback"} for c in _dicts(table.get("callbacks"))]
    # Blocking by the CPU outside garbage collection where the table has it; stalls that also block
    # are listed once, as blocking.
    blocking = sorted((r for r in steppers if r.get("blocking")),
                      key=lambda r: -_value(r.get("max_step_own_cpu_ms"), r.get("max_step_cpu_ms")))
    stalled = sorted((r for r in steppers if r.get("stalled") and not r.get("blocking")),
                     key=lambda r: -_value(r.get("max_step_ms")))
    gc_pauses = sorted((r for r in steppers if r.get("gc_pause")), key=lambda r: -_value(r.get("max_gc_pause_gc_ms")))
    functions = [f for f in _dicts(table.get("top_functions")) if not str(f.get("file", "")).startswith("<frozen")]
    root = _common_folder([str(r.get("file")) for r in program])
    gc = [k for k in GC_COLUMNS if any(r.get(k) is not None for r in [*ranked, *entry])]
    ended = table.get("program")
    end: Mapping[str, Any] = ended if isinstance(ended, Mapping) else {}
    return template("dashboard_async.html").render(
        title=title, nav=nav, raw=raw, clock=table.get("clock"),
        threshold=_real_or_none(table.get("block_threshold_ms")),
        loop_steps=table.get("loop_steps"), note=NO_LOOP if table.get("loop_steps") == 0 else None,
        program_exit=end.get("exit_code"), failure=end.get("failure"), elapsed_s=_real_or_none(end.get("elapsed_s")),
        gc=[(k, GC_COLUMNS[k]) for k in gc],
        coroutines=[_coroutine(r, root, gc) for r in ranked[:top]], omitted=max(0, len(ranked) - top),
        entry=[_coroutine(r, root, gc) for r in entry],
        stdlib=sum(1 for r in rows if r.get("origin") == "stdlib"),
        blockers=[_blocker(f, root, "blocking") for f in blocking[:top]]
        + [_blocker(f, root, "stalled") for f in stalled[:top]],
        own_cpu=any(f.get("max_step_own_cpu_ms") is not None for f in blocking),
        gc_pauses=[_gc_pause(f, root) for f in gc_pauses[:top]],
        functions=[{"name": f.get("function"), **_place(f, root), "calls": _count(f.get("calls")),
                    "wall": _num(f.get("wall_ms")), "own": _num(f.get("own_wall_ms"))} for f in functions[:top]])


def _dicts(items: Any) -> list[Mapping[str, Any]]:
    return [x for x in items if isinstance(x, Mapping)] if isinstance(items, list) else []


def _real(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _real_or_none(x: Any) -> float | None:
    return float(x) if _real(x) else None


def _value(*xs: Any) -> float:
    """The first of ``xs`` that is a number, for sorting (0 when none is)."""
    return next((float(x) for x in xs if _real(x)), 0.0)


def _coroutine(r: Mapping[str, Any], root: str | None, gc: Sequence[str]) -> dict[str, Any]:
    wall, calls = r.get("wall_ms"), r.get("calls")
    mean = r.get("mean_wall_ms")
    if mean is None and _real(wall) and _real(calls) and calls:
        mean = wall / calls  # a table written before mean_wall_ms was stored
    marks = [(name, css) for name, css in (("blocking", "over"), ("stalled", "slower"), ("gc_pause", "drift"))
             if r.get(name)]
    return {"name": r.get("name"), **_place(r, root), "calls": _count(calls), "wall": _num(wall), "mean": _num(mean),
            "busy": _num(r.get("busy_ms")), "cpu": _num(r.get("cpu_ms")), "steps": _count(r.get("steps")),
            "max_step": _num(r.get("max_step_ms")),
            "gc": [_count(r.get(k)) if k.endswith("generation") else _num(r.get(k)) for k in gc],
            "marks": [(name.replace("_", " "), css) for name, css in marks]}


def _blocker(f: Mapping[str, Any], root: str | None, why: str) -> dict[str, Any]:
    return {"why": why, "css": "over" if why == "blocking" else "slower", "name": f.get("name"), "kind": f.get("kind"),
            **_place(f, root), "steps": _count(f.get("steps")), "blocking_steps": _count(f.get("cpu_blocking_steps")),
            "stalled_steps": _count(f.get("stalled_steps")), "max_cpu": _num(f.get("max_step_cpu_ms")),
            "own_cpu": _num(f.get("max_step_own_cpu_ms")), "max_step": _num(f.get("max_step_ms")),
            "cpu": _num(f.get("cpu_ms"))}


def _gc_pause(f: Mapping[str, Any], root: str | None) -> dict[str, Any]:
    return {"name": f.get("name"), "kind": f.get("kind"), **_place(f, root), "steps": _count(f.get("gc_pause_steps")),
            "longest": _num(f.get("max_gc_pause_ms")), "collected": _num(f.get("max_gc_pause_gc_ms")),
            "generation": _count(f.get("max_gc_pause_generation")), "gc": _num(f.get("gc_ms"))}


def _common_folder(paths: Sequence[str]) -> str | None:
    absolute = sorted({p for p in paths if os.path.isabs(p)})
    if not absolute:
        return None
    common = os.path.commonpath(absolute)
    return os.path.dirname(common) if len(absolute) == 1 else common


def _place(r: Mapping[str, Any], root: str | None) -> dict[str, str]:
    """Where a function is: below the folder the program's files share, else the file's last two parts."""
    path, line = str(r.get("file") or ""), r.get("line")
    if root and path.startswith(root + os.sep):
        # Keep that folder in the name: "agentmem/engine.py" says more than "engine.py".
        short = os.path.relpath(path, os.path.dirname(root))
    else:
        short = "/".join(path.split(os.sep)[-2:])
    at = f":{line}" if line is not None else ""
    return {"where": short + at, "path": path + at}


def _num(x: Any) -> str:
    return f"{x:,.3f}" if _real(x) else ""


def _count(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else ""


# -- memray pages offline ----------------------------------------------------------------------------------

# A tag that loads a script or a stylesheet from another host: <script src="https://...">,
# <link href="https://..."> (or protocol-relative //host/...).
_REMOTE_TAG = re.compile(
    r"""<(?P<tag>script|link)\b[^>]*?\b(?P<attr>src|href)\s*=\s*(?P<q>["'])(?P<url>(?:https?:)?//[^"']+)(?P=q)[^>]*>""",
    re.IGNORECASE)
# A page read from disk may not load a copy with these: integrity pins the CDN's bytes, and
# crossorigin asks for CORS, which file:// pages never get.
_CDN_ONLY_ATTRS = re.compile(r"""\s+(?:integrity|crossorigin)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?""",
                             re.IGNORECASE)
_CHARSET = re.compile(r"""\scharset\s*=""", re.IGNORECASE)


@dataclass(frozen=True)
class OfflinePage:
    html: str
    served: list[str]  # URLs now loaded from the site
    missing: list[str]  # URLs with no local copy: the tag was taken out, said in a comment in its place


def remote_urls(html: str) -> list[str]:
    """Every script and stylesheet the page loads from another host, in page order."""
    return [m["url"] for m in _REMOTE_TAG.finditer(html)]


def offline(html: str, local: Mapping[str, str | None]) -> OfflinePage:
    """The page with each remote script or stylesheet pointed at ``local[url]`` (a relative path)."""
    served: list[str] = []
    missing: list[str] = []

    def swap(m: re.Match[str]) -> str:
        url = m["url"]
        path = local.get(url)
        if path is None:
            missing.append(url)
            # Never the CDN: a page that waits on the network is what the site exists to avoid. A
            # script's closing tag stays behind; a lone </script> is ignored by every HTML parser.
            return f"<!-- profkit dashboard: {url.replace('--', '%2D%2D')} has no local copy -->"
        served.append(url)
        tag = m.group(0)
        start, end = m.start("url") - m.start(0), m.end("url") - m.start(0)
        tag = _CDN_ONLY_ATTRS.sub("", tag[:start] + path + tag[end:])
        if m["tag"].lower() == "script" and not _CHARSET.search(tag):
            # The CDN says UTF-8 in its Content-Type; a file has no header and would be decoded in the
            # page's encoding, windows-1252 for a page that names none, where lodash's non-ASCII keys
            # are a SyntaxError. The local copies are the packages' own files, UTF-8.
            tag = tag[:7] + ' charset="utf-8"' + tag[7:]
        return tag

    return OfflinePage(_REMOTE_TAG.sub(swap, html), served, missing)
