"""profkit dashboard over a synthetic store: pages, links that resolve, valid SVG plots, marked regressions
and steps, memray pages served offline, rebuilds, refusals, and the command line."""

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
    assert '<script src="../../assets/d3.min.js"></script>' in text
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
    assert page.html == ('<link rel="stylesheet" href="../../assets/b.css">'
                         "<script src='../../assets/c.js'></script><script src=\"local.js\"></script>")
    assert page.served == ["//cdn.x/a/b.css", "https://cdn.x/c.js"] and page.missing == []


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
