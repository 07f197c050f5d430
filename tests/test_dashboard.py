"""profkit dashboard, end to end (slow): the real command over a synthetic store that holds a real memray
page, opened in headless Chromium with the network off — the pages render, every link resolves, and
memray's flamegraph draws from the site's own copy of its scripts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from profkit import commit_index
from profkit.dashboard_bench import make_store
from tests.helpers import profkit
from tests.unit.test_dashboard import broken_links

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="chromium is not installed (./dev.sh test installs Debian's)")
# Every request but file:// goes to a closed port: the network is off for the page.
OFFLINE = ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
# d3-flamegraph draws the chart as <svg class="partition d3-flame-graph"> of <g class="frame"> elements.
FLAMEGRAPH_DRAWN = re.compile(r'<svg[^>]*class="partition d3-flame-graph".*?<g[^>]*class="frame"', re.DOTALL)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tempfile.mkdtemp(prefix='profkit-chromium-')}", *OFFLINE, *args],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def memray_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real memray flamegraph page, as profkit mem writes it: its scripts on a CDN."""
    d = tmp_path_factory.mktemp("memray")
    capture, page = d / "capture.bin", d / "flamegraph.html"
    code = "data = [bytearray(4096) for _ in range(5000)]"
    for argv in (["run", "--quiet", "--output", str(capture), "-c", code],
                 ["flamegraph", "--force", "--output", str(page), str(capture)]):
        proc = subprocess.run([sys.executable, "-m", "memray", *argv], capture_output=True, text=True, timeout=120,
                              check=False)
        assert proc.returncode == 0, proc.stderr
    assert "https://cdn.jsdelivr.net/npm/d3@" in page.read_text()
    return page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, memray_page: Path) -> Iterator[tuple[Path, dict[str, object]]]:
    store = tmp_path_factory.mktemp("dashboard") / "store"
    make_store(store, 30, memray_page=memray_page.read_text())
    proc = profkit("dashboard", "--store", str(store), "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    yield store, json.loads(proc.stdout)


def test_the_command_builds_the_site(site: tuple[Path, dict[str, object]]) -> None:
    store, doc = site
    assert doc["index"] == str(store / "site" / "index.html")
    assert doc["commits"] == 30 and doc["memray_pages"] == 30 and doc["missing_assets"] == []


def test_no_page_of_the_site_loads_anything_from_the_network(site: tuple[Path, dict[str, object]]) -> None:
    store, _ = site
    pages = [store / "site" / "index.html", *(store / "site" / "commits").glob("*/*.html")]
    assert len(pages) == 61
    for page in pages:
        text = page.read_text()
        loads = re.findall(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""",
                           text)
        assert loads == [], (page, loads)
        if page.name == "index.html":
            assert not re.search(r"""\b(?:src|href)\s*=\s*["']?https?://""", text), page


def test_every_link_resolves(site: tuple[Path, dict[str, object]]) -> None:
    store, _ = site
    for page in [store / "site" / "index.html", *(store / "site" / "commits").glob("*/index.html")]:
        assert broken_links(page) == [], page


def colours(png: Path) -> int:
    from PIL import Image

    with Image.open(png) as img:
        counted = img.convert("RGB").getcolors(maxcolors=1 << 24)
    assert counted is not None
    return len(counted)


@needs_chromium
@pytest.mark.parametrize("which", ["overview", "commit"])
def test_pages_render_offline_in_chromium(which: str, site: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    store, doc = site
    folder = str(doc["steps"][0]["folder"]) if which == "commit" else ""  # type: ignore[index]
    page = store / "site" / ("index.html" if which == "overview" else f"commits/{folder}/index.html")
    png = tmp_path / f"{which}.png"
    proc = chromium("--window-size=1200,900", f"--screenshot={png}", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Not one colour, nor a bare page: text, tables and (on the overview) plots in several colours.
    assert colours(png) > 50, colours(png)


@needs_chromium
def test_memrays_flamegraph_draws_offline_from_the_sites_copy(site: tuple[Path, dict[str, object]],
                                                              memray_page: Path) -> None:
    store, _ = site
    newest = commit_index.commits(store)[-1]["folder"]
    copy = store / "site" / "commits" / newest / "memray.html"
    drawn = chromium("--virtual-time-budget=10000", "--dump-dom", copy.as_uri())
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert FLAMEGRAPH_DRAWN.search(drawn.stdout), "memray's flamegraph did not draw from the site's scripts"
    # The page as memray wrote it needs the CDN: with the network off it draws nothing.
    original = chromium("--virtual-time-budget=10000", "--dump-dom", memray_page.as_uri())
    assert original.returncode == 0
    assert not FLAMEGRAPH_DRAWN.search(original.stdout)
