"""profkit dashboard over a synthetic store: pages, links that resolve, valid SVG plots, marked regressions
and steps, memray pages served offline, async profiles as pages, rebuilds, refusals, and the command line."""

from __future__ import annotations

import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from profkit import cli, commit_index
from profkit.dashboard_bench import MEMRAY_CDN, make_store
from profkit.errors import UsageError
from profkit.render import dashboard as render
from profkit.results import DashboardResult
from profkit.services import dashboard
from profkit.services.dashboard import run_dashboard

COMMITS = 40  # the planted changes of profkit.dashboard_bench.events at #12, #16-#19, #20 (one commit), #24, #30


class Links(HTMLParser):
    """Every href and src of a page (SVG's xlink:href too) and its element ids."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "xlink:href") and value is not None:
                self.urls.append(value)
            if name == "id" and value:
                self.ids.add(value)


def links(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text())
    return parser


def broken_links(page: Path) -> list[str]:
    """The page's links that do not resolve to a file (or, for #fragments, an element of the page)."""
    found = links(page)
    bad = []
    for url in found.urls:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            bad.append(url)  # the site links nothing outside itself and the store
        elif not parts.path:
            if parts.fragment not in found.ids:
                bad.append(url)
        elif not (page.parent / unquote(parts.path)).is_file():
            bad.append(url)
    return bad


def svgs(page: Path) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DashboardResult]]:
    store = tmp_path_factory.mktemp("dash") / "store"
    make_store(store, COMMITS)
    yield store, run_dashboard(store=store)


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store of ten commits, whose site is built without the plots (a second or two each; the
    module's built site checks them)."""
    monkeypatch.setattr(render, "trend_svg",
                        lambda op, *_: f'<svg xmlns="http://www.w3.org/2000/svg"><text>{op}</text></svg>')
    store = tmp_path / "store"
    make_store(store, 10)
    return store


def _commits(store: Path) -> list[dict[str, Any]]:
    return commit_index.commits(store)


def folders(store: Path) -> list[str]:
    return [str(d["folder"]) for d in _commits(store)]


# -- the site ------------------------------------------------------------------------------------------


def test_every_page_exists(built: tuple[Path, DashboardResult]) -> None:
    store, doc = built
    site = store / "site"
    assert doc["index"] == str(site / "index.html") and (site / "index.html").is_file()
    assert doc["commits"] == doc["pages"] == COMMITS
    for folder in folders(store):
        assert (site / "commits" / folder / "index.html").is_file()
        assert (site / "commits" / folder / "memray.html").is_file()
    assert doc["memray_pages"] == COMMITS
    assert len(doc["operations"]) == 14


def test_every_link_of_every_page_resolves(built: tuple[Path, DashboardResult]) -> None:
    store, _ = built
    site = store / "site"
    pages = [site / "index.html", *sorted((site / "commits").glob("*/index.html"))]
    assert len(pages) == COMMITS + 1
    for page in pages:
        assert broken_links(page) == [], page
    # Links go into the store itself: nothing was copied but the memray pages.
    first = links(site / "commits" / folders(store)[0] / "index.html").urls
    assert any(u.startswith("../../../" + folders(store)[0] + "/flame-") and u.endswith("/flamegraph.svg")
               for u in first)


def test_the_pages_load_nothing_from_the_network(built: tuple[Path, DashboardResult]) -> None:
    store, _ = built
    site = store / "site"
    for page in [site / "index.html", *(site / "commits").glob("*/*.html")]:
        text = page.read_text()
        assert not re.search(r"""<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""", text), page


def test_one_trend_plot_per_operation_and_each_is_valid_svg(built: tuple[Path, DashboardResult]) -> None:
    store, doc = built
    plots = svgs(store / "site" / "index.html")
    assert len(plots) == len(doc["operations"])
    for svg in plots:
        root = ET.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_regressions_of_the_comparisons_are_marked(built: tuple[Path, DashboardResult]) -> None:
    store, doc = built
    names = folders(store)
    flagged = {(f["op"], f["folder"]): f["verdict"] for f in doc["flags"]}
    assert flagged[("traverse_d2", names[30])] == "regression"  # x1.15 from commit #30 on
    assert flagged[("create", names[20])] == "regression"  # x1.25 for commit #20 alone
    index = (store / "site" / "index.html").read_text()
    row = re.search(rf'href="commits/{names[30]}/index.html"><code>[0-9a-f]+</code></a></td><td class="l">traverse_d2'
                    r'</td>\s*<td class="l regression">regression', index)
    assert row, "the regression is in the table of comparisons"
    # ... and on the operation's plot: a marker that links to the commit.
    plot = next(s for s in svgs(store / "site" / "index.html") if ">traverse_d2<" in s)
    assert f'xlink:href="commits/{names[30]}/index.html"' in plot
    page = (store / "site" / "commits" / names[30] / "index.html").read_text()
    assert '<td class="l regression">regression</td>' in page


def test_steps_are_found_where_the_planted_changes_began(built: tuple[Path, DashboardResult]) -> None:
    store, doc = built
    names = folders(store)
    steps = {s["op"]: s for s in doc["steps"]}
    assert steps["traverse_d2"]["folder"] == names[30] and steps["traverse_d2"]["flagged"]
    assert steps["list_filtered"]["folder"] == names[12] and steps["list_filtered"]["change_pct"] < 0
    assert steps["get"]["folder"] == names[24]
    # +1.2 % a commit over #16-#19: no comparison flags it, the trend does.
    assert names.index(steps["search_large"]["folder"]) in range(16, 20)
    assert not steps["search_large"]["flagged"]
    assert "create" not in steps  # a one-commit regression is not a level
    index = (store / "site" / "index.html").read_text()
    assert index.count('<span class="drift">drift</span>') >= 1
    page = (store / "site" / "commits" / steps["get"]["folder"] / "index.html").read_text()
    assert "Steps that began here" in page and "get: p50" in page


def test_a_commit_page_links_its_artifacts_and_its_parent(built: tuple[Path, DashboardResult]) -> None:
    store, _ = built
    names = folders(store)
    page = store / "site" / "commits" / names[5] / "index.html"
    text = page.read_text()
    for label in ("CPU flamegraph", "memory flamegraph (memray)", "async profile", "bench report (HTML)",
                  "load report", "engine metrics"):
        assert label in text
    urls = links(page).urls
    assert "memray.html" in urls
    assert f"../{names[4]}/index.html" in urls  # the comparison's parent, and the older neighbour
    assert f"../{names[6]}/index.html" in urls
    assert "../../index.html" in urls


# -- memray pages, offline -----------------------------------------------------------------------------


def test_memray_pages_load_one_shared_copy_of_each_script(built: tuple[Path, DashboardResult]) -> None:
    store, doc = built
    site = store / "site"
    assets = sorted(p.name for p in (site / "assets").iterdir())
    assert assets == sorted(dashboard.asset_name(re.search(r'(?:src|href)="([^"]+)"', t)[1])  # type: ignore[index]
                            for t in MEMRAY_CDN)
    assert doc["missing_assets"] == []
    assert all(a["pages"] == COMMITS and a["asset"] for a in doc["assets"])
    vendor = dashboard.memray_assets()
    for name in assets:
        assert (site / "assets" / name).read_bytes() == vendor[name].read_bytes()  # memray's own copy
    page = site / "commits" / folders(store)[3] / "memray.html"
    text = page.read_text()
    assert '<script charset="utf-8" src="../../assets/d3.min.js"></script>' in text
    assert '<link rel="stylesheet" href="../../assets/bootstrap.min.css">' in text
    assert "cdn.jsdelivr.net" not in text
    assert "https://bloomberg.github.io/memray/flamegraph.html" in text  # a link to read, not a load
    assert broken_links(page) == ["https://bloomberg.github.io/memray/flamegraph.html"]


def test_an_asset_with_no_local_copy_is_said_and_never_loaded_from_the_cdn(small: Path) -> None:
    page = small / _commits(small)[2]["artifacts"]["memray_html"]
    page.write_text(page.read_text().replace(
        "</head>", '<script src="https://cdn.example.org/npm/left-pad@1.3.0/left-pad.min.js"></script></head>'))
    doc = run_dashboard(store=small)
    assert doc["missing_assets"] == ["https://cdn.example.org/npm/left-pad@1.3.0/left-pad.min.js"]
    copy = (small / "site" / "commits" / _commits(small)[2]["folder"] / "memray.html").read_text()
    assert "left-pad.min.js has no local copy" in copy and "cdn.example.org" in copy
    assert not re.search(r'src="https?://', copy)
    overview = (small / "site" / "index.html").read_text()
    assert "left-pad.min.js" in overview


def test_offline_drops_integrity_and_crossorigin_and_handles_protocol_relative_urls() -> None:
    html = ('<link rel="stylesheet" href="//cdn.x/a/b.css" integrity="sha384-xyz" crossorigin="anonymous">'
            "<script crossorigin src='https://cdn.x/c.js'></script><script src=\"local.js\"></script>")
    assert render.remote_urls(html) == ["//cdn.x/a/b.css", "https://cdn.x/c.js"]
    page = render.offline(html, {"//cdn.x/a/b.css": "../../assets/b.css", "https://cdn.x/c.js": "../../assets/c.js"})
    # A local script is read as UTF-8, as the CDN's Content-Type said, whatever the page's own encoding.
    assert page.html == ('<link rel="stylesheet" href="../../assets/b.css">'
                         "<script charset=\"utf-8\" src='../../assets/c.js'></script>"
                         "<script src=\"local.js\"></script>")
    assert page.served == ["//cdn.x/a/b.css", "https://cdn.x/c.js"] and page.missing == []
    named = render.offline('<SCRIPT charset="utf-8" src="//cdn.x/d.js"></SCRIPT>', {"//cdn.x/d.js": "d.js"})
    assert named.html == '<SCRIPT charset="utf-8" src="d.js"></SCRIPT>'


# -- async profiles as pages ---------------------------------------------------------------------------


def coroutine_table(*, gc: bool) -> dict[str, Any]:
    """A coroutine table as yappi_runner writes it: schema 2 (garbage collection per step, mean wall
    stored) with ``gc``, else schema 1."""
    def row(name: str, line: int, calls: int | None, wall: float | None, *, origin: str = "program",
            entry: bool = False, steps: int | None = None, cpu: float | None = None, busy: float | None = None,
            max_step: float | None = None, max_cpu: float | None = None, blocking: bool = False,
            stalled: bool = False, gc_ms: float | None = None, gc_pause: bool = False) -> dict[str, Any]:
        where = "/srv/app/svc/handlers.py" if origin == "program" else "/usr/lib/python3.11/asyncio/tasks.py"
        r: dict[str, Any] = {
            "name": name, "file": where, "line": line, "calls": calls, "wall_ms": wall, "cpu_ms": cpu, "steps": steps,
            "busy_ms": busy, "max_step_ms": max_step, "max_step_cpu_ms": max_cpu,
            "cpu_blocking_steps": 2 if blocking else 0, "stalled_steps": 3 if stalled else 0, "blocking": blocking,
            "stalled": stalled, "origin": origin, "entry": entry}
        if gc:
            # A stored mean a little off wall/calls: the page must show the stored one.
            r.update({"mean_wall_ms": None if wall is None or not calls else round(wall / calls + 0.5, 3),
                      "gc_ms": gc_ms, "max_step_gc_ms": None if gc_ms is None else gc_ms / 2,
                      "max_step_gc_generation": None if gc_ms is None else 2, "max_step_own_cpu_ms": max_cpu,
                      "gc_pause_steps": 1 if gc_pause else 0, "max_gc_pause_ms": 31.0 if gc_pause else None,
                      "max_gc_pause_gc_ms": 22.0 if gc_pause else None,
                      "max_gc_pause_generation": 2 if gc_pause else None, "gc_pause": gc_pause})
        return r

    return {
        "schema": 2 if gc else 1, "clock": "wall", "block_threshold_ms": 10.0, "loop_steps": 1234,
        "program": {"exit_code": 0, "failure": None, "elapsed_s": 3.5},
        "coroutines": [
            row("sleep", 637, 900, 9000.0, origin="stdlib"),
            row("main", 1, 1, 3400.0, entry=True, steps=2, cpu=1.0, busy=1.2, max_step=0.8, max_cpu=0.7),
            row("Service.handle", 40, 4, 100.0, steps=40, cpu=61.0, busy=62.5, max_step=21.0, max_cpu=20.5,
                blocking=True, gc_ms=4.0),
            row("poll_upstream", 70, 2, 80.0, steps=9, cpu=0.9, busy=35.0, max_step=15.5, max_cpu=0.2, stalled=True),
            row("_fetch <inner>", 90, 30, 12.0),
            row("collect", 120, 8, 40.0, steps=8, cpu=9.0, busy=33.0, max_step=31.0, max_cpu=9.0, gc_ms=25.0,
                gc_pause=True),
        ],
        "callbacks": [{**row("_on_timer", 200, None, None, steps=50, cpu=5.0, busy=5.5, max_step=0.5, max_cpu=0.4),
                       "calls": None}],
        "top_functions": [
            {"function": "Service.handle", "file": "/srv/app/svc/handlers.py", "line": 40, "calls": 4,
             "wall_ms": 100.0, "own_wall_ms": 7.5},
            {"function": "<frozen thing>", "file": "<frozen importlib._bootstrap>", "line": 1, "calls": 1,
             "wall_ms": 1.0, "own_wall_ms": 1.0},
        ],
    }


def cells(page: str, first: str) -> list[str]:
    """The text of each cell of the (first) table row whose first cell is ``first``."""
    row = re.search(rf"<tr><td class=\"l\">{re.escape(first)}</td>(.*?)</tr>", page, flags=re.DOTALL)
    assert row, first
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], flags=re.DOTALL)]


def _with_table(store: Path, position: int, table: dict[str, Any] | str) -> tuple[str, Path]:
    doc = _commits(store)[position]
    raw = store / doc["artifacts"]["async_table"]
    raw.write_text(table if isinstance(table, str) else json.dumps(table))
    return str(doc["folder"]), raw


def test_the_async_profile_gets_a_page_and_the_json_stays_linked_as_raw(small: Path) -> None:
    folder, raw = _with_table(small, 3, coroutine_table(gc=False))
    run_dashboard(store=small)
    page_dir = small / "site" / "commits" / folder
    commit_page = page_dir / "index.html"
    assert "async.html" in links(commit_page).urls
    raw_href = next(u for u in links(commit_page).urls if u.endswith("/coroutines.json"))
    assert (page_dir / unquote(raw_href)).resolve() == raw.resolve()
    assert "async profile, raw" in commit_page.read_text()
    page = page_dir / "async.html"
    assert broken_links(page) == []
    assert raw_href in links(page).urls and any(u.endswith("/profile.pstat") for u in links(page).urls)
    text = page.read_text()
    # calls, Σ wall, mean wall (wall/calls: this table predates mean_wall_ms), busy, CPU, steps, max step, flags
    assert cells(text, "Service.handle") == ["svc/handlers.py:40", "4", "100.000", "25.000", "62.500", "61.000", "40",
                                             "21.000", "blocking"]
    assert cells(text, "poll_upstream")[-1] == "stalled"
    assert cells(text, "_fetch &lt;inner&gt;")[1:] == ["30", "12.000", "0.400", "", "", "", "", ""]
    assert "GC ms" not in text and "Garbage-collection pauses" not in text
    # the entry coroutine apart, the standard library's left to the raw table
    assert text.index(">main<") > text.index("Entry point")
    assert ">sleep<" not in text and "1 of the standard library" in text
    # the loop blockers, worst first by kind, and the functions (no frozen importlib)
    blockers = text[text.index('id="blockers"'):text.index('id="functions"')]
    assert cells(blockers, '<span class="over">blocking</span>')[0] == "Service.handle"
    assert cells(blockers, '<span class="slower">stalled</span>')[0] == "poll_upstream"
    functions = text[text.index('id="functions"'):]
    assert cells(functions, "Service.handle") == ["svc/handlers.py:40", "4", "100.000", "7.500"]
    assert "frozen" not in functions
    assert "ran to its end in 3.50 s" in text and "1234 event-loop steps" in text


def test_garbage_collection_fields_are_shown_when_the_table_has_them(small: Path) -> None:
    folder, _ = _with_table(small, 2, coroutine_table(gc=True))
    run_dashboard(store=small)
    text = (small / "site" / "commits" / folder / "async.html").read_text()
    assert "<th>GC ms</th><th>GC in max step ms</th><th>GC gen</th>" in text
    # the stored mean wall (25.5), not wall/calls; GC 4 ms, 2 ms of it in the longest step, generation 2
    assert cells(text, "Service.handle")[3:] == ["25.500", "62.500", "61.000", "4.000", "2.000", "2", "40", "21.000",
                                                 "blocking"]
    assert cells(text, "poll_upstream")[6:9] == ["", "", ""]  # no collection in its steps


def test_the_async_page_lists_gc_pauses_and_reads_fields_it_does_not_know_past() -> None:
    table = coroutine_table(gc=True)
    for r in table["coroutines"]:
        r["a_field_of_schema_9"] = {"nested": [1, 2]}
    del table["coroutines"][2]["cpu_ms"]  # and one it expects, gone
    text = render.async_html(table, title="t", nav={"overview": "../../index.html"}, raw={}, top=50)
    gc = text[text.index('id="gc"'):text.index('id="functions"')]
    # steps over the threshold by GC, the longest of them, its collection, the generation, GC in all steps
    assert cells(gc, "collect") == ["coroutine", "svc/handlers.py:120", "1", "31.000", "22.000", "2", "25.000"]
    assert cells(text, "collect")[-1] == "gc pause"
    assert "<th>max step CPU outside GC ms</th>" in text
    assert cells(text, "Service.handle")[5] == ""


def test_the_async_page_keeps_to_top_rows_and_says_how_many_more() -> None:
    table = coroutine_table(gc=False)
    table["coroutines"] += [{"name": f"extra_{i}", "file": "/srv/app/svc/more.py", "line": i, "calls": 1,
                             "wall_ms": 1.0 + i, "origin": "program", "entry": False} for i in range(10)]
    text = render.async_html(table, title="t", nav={}, raw={}, top=5)
    ranked = text[text.index('id="coroutines"'):text.index("Entry point")]
    assert ranked.count("<tr><td") == 5 and "9 more of the program's coroutines" in ranked
    table["loop_steps"] = 0
    assert "no asyncio event-loop steps were seen" in render.async_html(table, title="t", nav={}, raw={}, top=5)


def test_a_table_profkit_cannot_read_is_linked_raw_only_and_a_stale_page_goes(small: Path) -> None:
    folder, raw = _with_table(small, 4, coroutine_table(gc=False))
    run_dashboard(store=small)
    page_dir = small / "site" / "commits" / folder
    assert (page_dir / "async.html").is_file()
    raw.write_text('{"coroutines": "not a table"}')
    run_dashboard(store=small)
    assert not (page_dir / "async.html").exists()
    text = (page_dir / "index.html").read_text()
    assert "async.html" not in links(page_dir / "index.html").urls
    assert "not a coroutine table this profkit reads" in text and "async profile, raw" in text
    # the stand-ins of the other commits: raw only, no page
    assert not any((small / "site" / "commits").glob("*/async.html"))


# -- rebuilds ------------------------------------------------------------------------------------------


def test_a_rebuild_reuses_memray_pages_and_drops_pages_of_removed_commits(small: Path) -> None:
    first = run_dashboard(store=small)
    site = small / "site"
    names = folders(small)
    memray = site / "commits" / names[1] / "memray.html"
    stamp = memray.stat().st_mtime_ns
    shutil.rmtree(small / names[0])  # as gc --keep-commits does
    again = run_dashboard(store=small)
    assert again["commits"] == first["commits"] - 1
    assert not (site / "commits" / names[0]).exists()
    assert memray.stat().st_mtime_ns == stamp  # unchanged source: not rewritten
    assert broken_links(site / "index.html") == []


def test_an_artifact_gc_removed_is_not_linked_and_is_counted(small: Path) -> None:
    commit = _commits(small)[4]
    (small / commit["artifacts"]["flamegraph"]).unlink()
    doc = run_dashboard(store=small)
    assert doc["missing_artifacts"] == 1
    page = small / "site" / "commits" / commit["folder"] / "index.html"
    assert "CPU flamegraph" not in page.read_text() and "removed by gc" in page.read_text()
    assert broken_links(page) == []


def test_a_site_outside_the_store_links_into_it(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "pages" / "public"
    doc = run_dashboard(store=small, out=out)
    assert doc["site"] == str(out)
    for page in [out / "index.html", *(out / "commits").glob("*/index.html")]:
        assert broken_links(page) == []
    assert not (small / "site").exists()


# -- refusals ------------------------------------------------------------------------------------------


def test_a_store_without_commit_indexes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no commit index"):
        run_dashboard(store=tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_a_site_inside_the_store_elsewhere_than_store_site_is_refused(small: Path) -> None:
    with pytest.raises(UsageError, match="inside the store"):
        run_dashboard(store=small, out=small / "pages")
    with pytest.raises(UsageError, match="inside the store"):
        run_dashboard(store=small, out=small)
    assert not (small / "pages").exists()


def test_a_folder_of_other_files_is_never_written_into(small: Path, tmp_path: Path) -> None:
    other = tmp_path / "docs"
    other.mkdir()
    (other / "README.md").write_text("mine")
    with pytest.raises(UsageError, match="no dashboard built by profkit"):
        run_dashboard(store=small, out=other)
    assert sorted(p.name for p in other.iterdir()) == ["README.md"]


def test_the_site_is_not_a_commit_to_runs_and_gc(small: Path) -> None:
    from profkit.store import ArtifactStore

    run_dashboard(store=small)
    store = ArtifactStore(small)
    assert not any(m["run"].startswith("site/") for m in store.runs())
    assert "site" not in [f for f, _ in store.commit_folders()]


# -- the command line ----------------------------------------------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["profkit", *args])
    with pytest.raises(SystemExit) as ended:
        cli.main()
    captured = capsys.readouterr()
    return int(ended.value.code or 0), captured.out, captured.err


def test_dashboard_json(small: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "dashboard", "--store", str(small), "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["command"] == "dashboard" and doc["index"] == str(small / "site" / "index.html")
    assert set(doc) == set(DashboardResult.__annotations__)


def test_dashboard_in_the_terminal(small: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "dashboard", "--store", str(small))
    assert code == 0
    assert f"dashboard: {small / 'site' / 'index.html'}" in out
    assert "10 commits, 10 commit pages, 10 memray pages" in err


def test_dashboard_of_an_empty_store_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "dashboard", "--store", str(tmp_path / "none"))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no commit index" in err
