"""dashboard — the store's commit indexes as a static site: trends, steps, and every commit's artifacts.

``<site>/index.html`` (the site is ``STORE/site`` by default) has, per operation, the p50 trend
across commits with its 95 % interval band, the p99 against its budget, the commits whose
comparison with their parent flagged the operation, and the steps found by
:func:`profkit.trends.detect_steps`. ``<site>/commits/<folder>/index.html`` links every artifact of
that commit still in the store and shows its comparison with its parent. The async profile's table
(``coroutines.json``) is JSON, not a page to read: the site renders it as
``commits/<folder>/async.html`` (coroutines, loop blockers, GC pauses, functions) and links the JSON as raw.

The site is static and self-contained: relative links only (it can be published as it is, e.g. on
GitHub Pages, with the store beside it), no server, nothing fetched. Artifacts are linked in the
store, not copied; the one exception is memray's flamegraph page, which loads its scripts from a
CDN: the site gets a rewritten copy per commit (``commits/<folder>/memray.html``) that loads them
from one shared copy under ``<site>/assets/``, taken from memray's own package, which ships them
for its ``--no-web`` mode.
"""

from __future__ import annotations

import contextlib
import filecmp
import importlib.util
import json
import os
import secrets
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from .. import commit_index, trends
from ..errors import StoreError, UsageError
from ..render import dashboard as render
from ..results import DashboardAsset, DashboardFlag, DashboardResult, DashboardStep
from ..trends import FASTER, REGRESSION, SLOWER

SITE = "site"
# Written in every site this builds; a folder without it is never written into or pruned.
MARKER = ".profkit-dashboard"
MEMRAY_PAGE = "memray.html"
ASYNC_PAGE = "async.html"
# Rows of each table of the async page; the raw table keeps them all.
ASYNC_TOP = 50
ASSETS = "assets"

# What a commit page links, in this order: (index artifact key, label).
ARTIFACTS = (
    ("flamegraph", "CPU flamegraph of the engine under load (py-spy, SVG)"),
    ("flame_diff", "CPU differential flamegraph against the previous commit (SVG)"),
    ("memory_diff", "memory differential flamegraph against the previous commit (SVG)"),
    ("memray_html", "memory flamegraph (memray)"),
    ("async_table", "async profile, raw: the coroutine table (yappi, JSON)"),
    ("bench_report", "bench report (HTML)"),
    ("bench_markdown", "bench report (markdown)"),
    ("bench_json", "bench results (JSON)"),
    ("load_report", "load report (JSON)"),
    ("metrics", "engine metrics at the end of the load (Prometheus)"),
    ("speedscope", "CPU profile for speedscope"),
    ("collapsed", "collapsed stacks (flamegraph.pl, inferno)"),
    ("memory_stats", "memory statistics (JSON)"),
    ("async_pstat", "async profile (pstat, for snakeviz)"),
    ("lines_html", "line-level CPU and memory profile (scalene, HTML)"),
)
ASYNC_LABEL = "async profile: coroutines' wall and CPU time, loop blockers, functions (yappi)"


def run_dashboard(*, store: Path, out: Path | None = None) -> DashboardResult:
    """Build (or rebuild) the site; raises UsageError for a store with no commit index or a bad --out."""
    started = time.perf_counter()
    if store.exists() and not store.is_dir():
        raise UsageError(f"--store {store} is a file, not an artifact store folder")
    site = out if out is not None else store / SITE
    _check_site(store, site)
    commits = commit_index.commits(store)
    if not commits:
        raise UsageError(f"no commit index in {store}: profkit ci files one per commit (STORE/<commit>/index.json); "
                         "run it first")
    build = _Build(store=store.resolve(), site=site.resolve(), commits=commits)
    build.run()
    return {"command": "dashboard", "store": str(store), "site": str(site), "index": str(site / "index.html"),
            "commits": len(commits), "operations": sorted(build.series), "pages": len(commits),
            "steps": build.step_docs, "flags": build.flag_docs, "memray_pages": build.memray_pages,
            "assets": build.asset_docs(), "missing_assets": sorted(build.missing),
            "missing_artifacts": build.missing_artifacts, "seconds": round(time.perf_counter() - started, 2)}


def _check_site(store: Path, site: Path) -> None:
    """The site goes to STORE/site, or outside the store, into a folder that is new, empty or a site already."""
    if site.exists() and not site.is_dir():
        raise UsageError(f"--out {site} is a file; give a folder for the site")
    store_r, site_r = store.resolve(), site.resolve()
    if site_r != store_r / SITE and (site_r == store_r or store_r in site_r.parents):
        # Every other folder of the store is a commit to runs and gc: a site there would be listed
        # as runs of a commit, and removed by gc.
        raise UsageError(f"--out {site} is inside the store {store}: use the default ({store / SITE}) or a folder "
                         "outside the store")
    if site.is_dir() and any(site.iterdir()) and not (site / MARKER).exists():
        raise UsageError(f"--out {site} holds files and no dashboard built by profkit: give a new or empty folder")


def memray_assets() -> dict[str, Path]:
    """Scripts and stylesheets memray's HTML loads from a CDN, by file name, as memray's package ships them.

    memray keeps them in ``memray/reporters/templates/assets/vendor/`` to inline in ``--no-web`` pages.
    The package is found without importing it (importing memray loads its native extension).
    """
    spec = importlib.util.find_spec("memray")
    if spec is None or not spec.submodule_search_locations:
        return {}
    found: dict[str, Path] = {}
    for root in spec.submodule_search_locations:
        vendor = Path(root) / "reporters" / "templates" / "assets" / "vendor"
        if vendor.is_dir():
            found.update({p.name: p for p in vendor.iterdir() if p.is_file() and p.suffix in (".js", ".css")})
    return found


def asset_name(url: str) -> str:
    """The file a CDN URL serves: https://cdn.jsdelivr.net/npm/d3@7.9.0/dist/d3.min.js -> d3.min.js."""
    return urlsplit(url).path.rsplit("/", 1)[-1]


def _write(path: Path, text: str) -> None:
    """All at once (temp file and rename) but not fsynced: a site is rebuilt whole from the store.

    A page that would not change is left alone: most of a rebuild's pages are, and renaming over an
    existing file costs a flush of it on ext4.
    """
    data = text.encode()
    with contextlib.suppress(OSError):
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(f"cannot write the dashboard at {path}: {exc.strerror or exc}") from exc


@dataclass
class _Build:
    store: Path
    site: Path
    commits: list[dict[str, Any]]
    series: dict[str, list[trends.Point]] = field(default_factory=dict)
    steps: dict[str, list[tuple[trends.Step, trends.Point]]] = field(default_factory=dict)
    step_docs: list[DashboardStep] = field(default_factory=list)
    flag_docs: list[DashboardFlag] = field(default_factory=list)
    memray_pages: int = 0
    missing_artifacts: int = 0
    missing: set[str] = field(default_factory=set)
    served: dict[str, tuple[str, Path]] = field(default_factory=dict)  # url -> (site path, source)
    loads: dict[str, int] = field(default_factory=dict)  # url -> pages loading it
    state: dict[str, Any] = field(default_factory=dict)  # what the previous build did: <site>/.profkit-dashboard
    vendor: dict[str, Path] = field(default_factory=dict)
    to_store: str = ""  # from the site's root to the store's: ".." for the default STORE/site
    folders: set[str] = field(default_factory=set)

    def run(self) -> None:
        self.site.mkdir(parents=True, exist_ok=True)
        self.state = self._read_state()
        self.to_store = Path(os.path.relpath(self.store, self.site)).as_posix()
        self.series = trends.operation_series(self.commits)
        self.steps = {op: trends.steps_of(points) for op, points in sorted(self.series.items())}
        self.step_docs = sorted((self._step_doc(op, s, p) for op, found in self.steps.items() for s, p in found),
                                key=lambda d: (-d["position"], d["op"]))
        self.flag_docs = [{"folder": str(d["folder"]), "op": str(c["op"]), "verdict": str(c["verdict"]),
                           "change_pct": float(c["change_pct"])}
                          for d in reversed(self.commits) for c in (d.get("against") or {}).get("changes") or []
                          if c.get("verdict") in (REGRESSION, SLOWER)]
        self.vendor = memray_assets()
        self.folders = {str(d["folder"]) for d in self.commits}
        for i, doc in enumerate(self.commits):
            older = self.commits[i - 1] if i > 0 else None
            newer = self.commits[i + 1] if i + 1 < len(self.commits) else None
            self._commit_page(doc, older, newer)
        self._prune(self.folders)
        _write(self.site / "index.html", self._overview())
        _write(self.site / MARKER, json.dumps(self.state, indent=1))

    # -- pieces ---------------------------------------------------------------------------------------

    def _step_doc(self, op: str, step: trends.Step, at: trends.Point) -> DashboardStep:
        # Did the commit's own comparison with its parent say so too? If not, it is drift: a level that
        # moved by small changes, or one the comparison's noise hid.
        flagged = at.verdict in (REGRESSION, SLOWER) if step.change > 0 else at.verdict == FASTER
        return {"op": op, "folder": at.folder, "commit": at.commit, "position": at.position,
                "before_ms": round(step.before, 4), "after_ms": round(step.after, 4),
                "change_pct": round(100 * step.change, 2), "z": round(step.z, 1), "flagged": flagged}

    def _store_href(self, depth: int, rel: str) -> str:
        """A link from a page ``depth`` folders below the site's root to ``rel`` inside the store."""
        return quote("../" * depth + self.to_store + "/" + rel)

    def _commit_href(self, folder: str, depth: int = 0) -> str:
        return quote("../" * depth + f"commits/{folder}/index.html")

    def _commit_page(self, doc: Mapping[str, Any], older: Mapping[str, Any] | None,
                     newer: Mapping[str, Any] | None) -> None:
        folder = str(doc["folder"])
        page_dir = self.site / "commits" / folder
        links, gone = [], []
        for key, label in ARTIFACTS:
            rel = (doc.get("artifacts") or {}).get(key)
            if not rel:
                continue
            if not (self.store / rel).is_file():
                gone.append(key)
                continue
            link = {"label": label, "href": self._store_href(2, rel), "path": rel, "note": ""}
            if key == "memray_html":
                link.update(self._memray(self.store / rel, page_dir, folder))
            if key == "async_table":
                readable = self._async(doc, rel, page_dir)
                if readable is None:
                    link["note"] = "not a coroutine table this profkit reads: no page of it"
                else:
                    links.append(readable)
            links.append(link)
        if not any(link["href"] == ASYNC_PAGE for link in links):
            # The table is gone (gc) or unreadable now: the page of an earlier build would be stale.
            with contextlib.suppress(OSError):
                (page_dir / ASYNC_PAGE).unlink()
        self.missing_artifacts += len(gone)
        against = doc.get("against")
        page = {
            "c": {"folder": folder, "sha": doc["commit"], "short": render.short(str(doc["commit"])),
                  "dirty": doc.get("dirty"), "when": _when(doc.get("created_at")),
                  "updated": _when(doc.get("updated_at")),
                  "jobs": len(doc.get("jobs") or []),
                  "errors": sorted(((doc.get("jobs") or [{}])[0].get("errors") or {}).items())},
            "home": "../../index.html", "artifacts": links, "gone": gone,
            "older": self._nav(older), "newer": self._nav(newer),
            "steps": [s for s in self.step_docs if s["folder"] == folder],
            "against": self._against(against) if against else None,
            "bench": _bench_rows(doc), "runs": sorted((doc.get("runs") or {}).items()),
        }
        _write(page_dir / "index.html", render.commit_html(**page))

    def _nav(self, doc: Mapping[str, Any] | None) -> dict[str, str] | None:
        if doc is None:
            return None
        return {"href": f"../{quote(str(doc['folder']))}/index.html", "short": render.short(str(doc["commit"]))}

    def _against(self, against: Mapping[str, Any]) -> dict[str, Any]:
        known = against["folder"] in self.folders
        return {"short": render.short(str(against["commit"])), "changes": against.get("changes") or [],
                "href": f"../{quote(str(against['folder']))}/index.html" if known else None,
                "note": against.get("note") or ""}

    def _async(self, doc: Mapping[str, Any], rel: str, page_dir: Path) -> dict[str, str] | None:
        """The commit's async profile as a page of the site, from its raw table; None if it cannot be read."""
        try:
            table = json.loads((self.store / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not (isinstance(table, dict) and isinstance(table.get("coroutines"), list)):
            return None  # not yappi_runner's table (a hand-made store, a stand-in): linked raw only
        short = render.short(str(doc["commit"]))
        raw = {"raw table (coroutines.json)": self._store_href(2, rel)}
        pstat = (doc.get("artifacts") or {}).get("async_pstat")
        if pstat and (self.store / pstat).is_file():
            raw["pstat (for snakeviz)"] = self._store_href(2, pstat)
        run = str(Path(rel).parent)
        html = render.async_html(table, title=f"Async profile of {short}: run {run}", top=ASYNC_TOP,
                                 nav={"overview": "../../index.html", f"commit {short}": "index.html"}, raw=raw)
        _write(page_dir / ASYNC_PAGE, html)
        return {"label": ASYNC_LABEL, "href": ASYNC_PAGE, "path": rel, "note": ""}

    def _memray(self, source: Path, page_dir: Path, folder: str) -> dict[str, str]:
        """The commit's memray page for the site: its CDN scripts served from <site>/assets/."""
        st = source.stat()
        key = [str(source), st.st_mtime_ns, st.st_size]
        done = self.state.setdefault("memray", {}).get(folder)
        target = page_dir / MEMRAY_PAGE
        if done and done.get("source") == key and target.is_file():
            # Unchanged since the last build: memray pages are megabytes each, rewritten once.
            urls: list[str] = done["urls"]
            local = {url: self._asset(url) for url in urls}
        else:
            html = source.read_text(encoding="utf-8", errors="replace")
            urls = render.remote_urls(html)
            local = {url: self._asset(url) for url in urls}
            _write(target, render.offline(html, {u: f"../../{p}" if p else None for u, p in local.items()}).html)
        self.state["memray"][folder] = {"source": key, "urls": urls}
        self.memray_pages += 1
        for url in urls:
            self.loads[url] = self.loads.get(url, 0) + 1
        lacking = [asset_name(u) for u, p in local.items() if p is None]
        note = f"served from the site; no local copy of {', '.join(lacking)}" if lacking else \
            "served offline from this site" if urls else ""
        return {"href": MEMRAY_PAGE, "note": note}

    def _asset(self, url: str) -> str | None:
        """The site path of the local copy of ``url`` (copied once per build), or None."""
        if url in self.served:
            return self.served[url][0]
        name = asset_name(url)
        source = self.vendor.get(name)
        if source is None:
            self.missing.add(url)
            return None
        target = self.site / ASSETS / name
        try:
            if not (target.is_file() and filecmp.cmp(source, target, shallow=False)):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        except OSError as exc:
            raise StoreError(f"cannot copy {source} to {target}: {exc.strerror or exc}") from exc
        self.served[url] = (f"{ASSETS}/{name}", source)
        return self.served[url][0]

    def asset_docs(self) -> list[DashboardAsset]:
        docs: list[DashboardAsset] = [{"url": u, "asset": a, "source": str(s), "pages": self.loads.get(u, 0)}
                                      for u, (a, s) in self.served.items()]
        docs += [{"url": u, "asset": None, "source": None, "pages": self.loads.get(u, 0)} for u in sorted(self.missing)]
        return docs

    def _prune(self, folders: set[str]) -> None:
        """Pages of commits no longer in the store (gc removed them) go too."""
        commits_dir = self.site / "commits"
        if not commits_dir.is_dir():
            return
        for page_dir in commits_dir.iterdir():
            if page_dir.is_dir() and page_dir.name not in folders:
                shutil.rmtree(page_dir, ignore_errors=True)
                self.state.get("memray", {}).pop(page_dir.name, None)

    def _read_state(self) -> dict[str, Any]:
        try:
            state = json.loads((self.site / MARKER).read_text())
        except (OSError, ValueError):
            return {"built_by": "profkit dashboard"}
        return state if isinstance(state, dict) else {"built_by": "profkit dashboard"}

    def _overview(self) -> str:
        labels = [render.short(str(d["commit"])) for d in self.commits]
        plots = [{"op": op, "svg": render.trend_svg(op, points, self.steps.get(op, []), labels, self._commit_href)}
                 for op, points in sorted(self.series.items(), key=lambda kv: _op_order(kv[0], self.commits))]
        steps_at: dict[str, list[DashboardStep]] = {}
        for s in self.step_docs:
            steps_at.setdefault(s["folder"], []).append(s)
        rows = []
        for d in self.commits:
            changes = (d.get("against") or {}).get("changes") or []
            rows.append({"href": self._commit_href(str(d["folder"])), "short": render.short(str(d["commit"])),
                         "dirty": d.get("dirty"), "when": _when(d.get("created_at")),
                         "kinds": [k for k in commit_index.KINDS if (d.get("runs") or {}).get(k)],
                         "regressions": [c["op"] for c in changes if c.get("verdict") == REGRESSION],
                         "warnings": [c["op"] for c in changes if c.get("verdict") == SLOWER],
                         "steps": steps_at.get(str(d["folder"]), []),
                         "errors": sorted((d.get("jobs") or [{}])[0].get("errors") or {})})
        short_of = {str(d["folder"]): render.short(str(d["commit"])) for d in self.commits}
        notes = []
        if self.missing:
            notes.append(f"{len(self.missing)} script(s) or stylesheet(s) of memray pages have no local copy and are "
                         f"left out of those pages: " + ", ".join(sorted(asset_name(u) for u in self.missing)))
        return render.overview_html(
            store=str(self.store), built=_when(time.time()), commits=rows, oldest=rows[0]["short"],
            newest=rows[-1]["short"], size=trends.bench_size(self._newest_benched()), notes=notes,
            steps=[{**s, "short": short_of[s["folder"]], "href": self._commit_href(s["folder"])}
                   for s in self.step_docs],
            flags=[{**f, "short": short_of[f["folder"]], "href": self._commit_href(f["folder"])}
                   for f in self.flag_docs],
            latest=self._latest(), plots=plots, min_segment=trends.MIN_SEGMENT,
            min_step_pct=round(100 * trends.MIN_STEP), min_z=trends.MIN_Z)

    def _newest_benched(self) -> Mapping[str, Any]:
        return next((d for d in reversed(self.commits) if (d.get("bench") or {}).get("ops")), {})

    def _latest(self) -> dict[str, Any] | None:
        doc = self._newest_benched()
        if not doc:
            return None
        rows = [{"op": op, "p50_ms": f["p50_ms"], "ci": f.get("p50_ci95"), "p99_ms": f.get("p99_ms"),
                 "budget": f.get("budget_p99_ms"),
                 "over": f.get("budget_p99_ms") is not None and (f.get("p99_ms") or 0) > f["budget_p99_ms"]}
                for op, f in doc["bench"]["ops"].items()]
        return {"href": self._commit_href(str(doc["folder"])), "short": render.short(str(doc["commit"])), "rows": rows}


def _op_order(op: str, commits: Sequence[Mapping[str, Any]]) -> tuple[int, str]:
    """Operations in the bench's own order (suite by suite), as the newest commit lists them."""
    for d in reversed(commits):
        ops = list((d.get("bench") or {}).get("ops") or {})
        if op in ops:
            return ops.index(op), op
    return 10**6, op


def _bench_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    ops = ((doc.get("bench") or {}).get("ops")) or {}
    return [{"op": op, "suite": f.get("suite", ""), "p50_ms": f["p50_ms"], "ci": f.get("p50_ci95"),
             "p95_ms": _ms(f.get("p95_ms")), "p99_ms": _ms(f.get("p99_ms")), "mean_ms": _ms(f.get("mean_ms")),
             "budget": f.get("budget_p99_ms"),
             "over": f.get("budget_p99_ms") is not None and (f.get("p99_ms") or 0) > f["budget_p99_ms"]}
            for op, f in ops.items()]


def _ms(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, int | float) else ""


def _when(t: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(t))) if isinstance(t, int | float) else "?"
