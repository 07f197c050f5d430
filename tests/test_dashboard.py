"""profkit dashboard, end to end (slow): the real command over synthetic stores that hold real pages — memray's
flamegraph, profkit's own flamegraph and differential SVGs, bench report, line profile, and a real async
profile's table — opened in headless Chromium with the network off: every page the site links renders (its
screenshot is not one colour), logs no console error, throws nothing, requests nothing but files, and memray's
flamegraph draws from the site's own copy of its scripts.

Chromium is driven over ``--remote-debugging-pipe`` (the DevTools protocol on two file descriptors, the
standard library only): one browser for the module, one page after the other in one tab.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import fcntl
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from profkit import commit_index
from profkit.dashboard_bench import make_store
from tests.helpers import PROGRAMS, artifacts, profkit
from tests.unit.test_dashboard import broken_links, links

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="chromium is not installed (./dev.sh test installs Debian's)")
# Every request but file:// goes to a closed port: the network is off for the page.
OFFLINE = ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
# What a page may load without leaving the machine.
LOCAL_SCHEMES = {"file", "data", "blob", "about"}
# d3-flamegraph draws the chart as <svg class="partition d3-flame-graph"> of <g class="frame"> elements.
FLAMEGRAPH_DRAWN = "document.querySelector('svg.partition.d3-flame-graph g.frame') !== null"
# After the load event: two frames painted and a moment for scripts that draw on load.
SETTLE = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 50))))"
TIMEOUT_S = 60.0  # for one answer of Chromium's
READY_S = 20.0  # for a page's chart to draw: about a second when it does


# -- headless Chromium over the DevTools pipe ------------------------------------------------------------


@dataclass
class Visit:
    """What one page did in the browser."""

    url: str
    problems: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, failed loads
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, itself included
    png: bytes = b""
    ready: bool = True  # the page's own readiness check (``ready=``) held

    def remote(self) -> list[str]:
        return [u for u in self.requests if urlsplit(u).scheme not in LOCAL_SCHEMES]


class Browser:
    """One headless Chromium, one tab, driven by DevTools protocol messages (JSON, NUL-ended) on fds 3 and 4."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        to_browser, self._w = os.pipe()
        self._r, from_browser = os.pipe()
        # Kept above the descriptors the child gets (3, 4) so that moving them there clobbers nothing.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        os.close(to_browser)
        os.close(from_browser)

        def wire() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.log = profile / "chromium.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--remote-debugging-pipe", "--window-size=1200,900", f"--user-data-dir={profile / 'user'}",
                 *OFFLINE, "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(3, 4), preexec_fn=wire)
        for fd in high:
            os.close(fd)
        self._buffer = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []
        self._session = ""
        try:
            target = self._call("Target.createTarget", url="about:blank")["targetId"]
            self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, TimeoutError):
            self._call("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Chromium said nothing for {TIMEOUT_S:g} s; its log: {self.log}")
            if select.select([self._r], [], [], left)[0]:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise EOFError(f"Chromium closed the pipe (exit {self.proc.poll()}); its log: {self.log}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def _call(self, method: str, *, session: str | None = None, timeout: float = TIMEOUT_S,
              **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._id:
                assert "error" not in reply, (method, reply["error"])
                result: dict[str, Any] = reply["result"]
                return result
            self._events.append(reply)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the tab."""
        return self._call(method, session=self._session, **params)

    def _wait_for(self, method: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not any(e.get("method") == method for e in self._events):
            self._events.append(self._message(deadline))

    def evaluate(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return reply["result"].get("value")

    def open(self, url: str, *, ready: str | None = None) -> Visit:
        """Load ``url``, let it settle (until the expression ``ready`` is true, if given), and screenshot it."""
        self._events.clear()
        visit = Visit(url)
        failed = self.call("Page.navigate", url=url).get("errorText")
        if failed:
            visit.problems.append(f"did not load: {failed}")
        self._wait_for("Page.loadEventFired")
        self.evaluate(SETTLE)
        if ready is not None:
            deadline = time.monotonic() + READY_S
            while not self.evaluate(ready) and time.monotonic() < deadline:
                time.sleep(0.1)
            visit.ready = bool(self.evaluate(ready))
        visit.png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        for event in self._events:
            visit.problems += _problems(event)
            if event.get("method") == "Network.requestWillBeSent":
                visit.requests.append(event["params"]["request"]["url"])
        return visit


def _problems(event: dict[str, Any]) -> list[str]:
    """What an event says went wrong on the page: what the console would show in red."""
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return [f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}"]
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        said = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
        return [f"console.{params['type']}: {said}"]
    if method == "Log.entryAdded" and params["entry"].get("level") == "error":
        return [f"console: {params['entry'].get('text')} ({params['entry'].get('url', '')})"]
    if method == "Network.loadingFailed" and not params.get("canceled"):
        return [f"a load failed: {params.get('errorText')}"]
    return []


def colours(png: bytes) -> int:
    """How many distinct colours a screenshot has (1: a blank page)."""
    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    rgb = np.rint(pixels[..., :3] * 255).astype(np.uint32)
    return len(np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (./dev.sh test installs Debian's)")
    # Chromium's profile is tens of megabytes: gone with the module, whatever pytest keeps of its tmp folders.
    with tempfile.TemporaryDirectory(prefix="profkit-chromium-") as profile:
        b = Browser(Path(profile))
        try:
            yield b
        finally:
            b.close()


# -- stores ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memray:
    page: Path  # the flamegraph page as memray writes it: its scripts on a CDN
    captures: tuple[Path, Path]  # two programs' captures, for a memory diff


@pytest.fixture(scope="module")
def memray(tmp_path_factory: pytest.TempPathFactory) -> Memray:
    """Real memray captures and flamegraph page, as profkit mem makes them."""
    d = tmp_path_factory.mktemp("memray")
    captures = (d / "a.bin", d / "b.bin")
    codes = ("data = [bytearray(4096) for _ in range(5000)]",
             "data = [bytearray(4096) for _ in range(5000)]; more = [bytes(8192) for _ in range(3000)]")
    runs = [subprocess.Popen([sys.executable, "-m", "memray", "run", "--quiet", "--output", str(c), "-c", code],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for c, code in zip(captures, codes, strict=True)]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    page = d / "flamegraph.html"
    proc = subprocess.run([sys.executable, "-m", "memray", "flamegraph", "--force", "--output", str(page),
                           str(captures[0])], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "https://cdn.jsdelivr.net/npm/d3@" in page.read_text()
    return Memray(page, captures)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, memray: Memray) -> Iterator[tuple[Path, dict[str, object]]]:
    store = tmp_path_factory.mktemp("dashboard") / "store"
    make_store(store, 30, memray_page=memray.page.read_text())
    proc = profkit("dashboard", "--store", str(store), "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    yield store, json.loads(proc.stdout)


def _stacks(extra: int) -> str:
    """Collapsed stacks as py-spy records the engine (a little more of one path in the later commit)."""
    base = "process 1234:\"python -m agentmem\";<module> (agentmem/__main__.py:3);run (uvicorn/main.py:580)"
    serve = f"{base};serve (agentmem/api.py:120)"
    return "\n".join([
        f"{serve};search (agentmem/engine.py:310);cosine (agentmem/vector.py:44) {300 + extra}",
        f"{serve};create (agentmem/engine.py:200);<lambda> (agentmem/db.py:88) 120",
        f"{serve};traverse (agentmem/graph.py:61) 90",
        f"{base};_run_once (asyncio/base_events.py:1922) 40",
    ]) + "\n"


def _bench_report() -> str:
    """profkit bench's HTML report (plots of distributions, budget and comparison) of a small constructed run."""
    from profkit.bench.analysis import analyse
    from profkit.bench.compare import NO_CHANGE, REGRESSION, Change
    from profkit.bench.runner import BenchConfig, assemble
    from profkit.bench.suites import CALLS_PER_ROUND
    from profkit.gitinfo import Commit
    from profkit.render import bench_report

    rng = np.random.default_rng(3)
    medians = {"create": 250_000, "get": 7_000, "search_small": 160_000}
    per_worker = [{"samples_ns": {op: [int(x) for x in m * rng.lognormal(0, 0.1, 20 * CALLS_PER_ROUND[op])]
                                  for op, m in medians.items()}, "recall": {"search_small": 0.9}} for _ in range(2)]
    cfg = BenchConfig(("memory", "vector"), tuple(medians), size=2000, workers=2, samples=20, warmup=5)
    result = assemble(cfg, Commit("ab" * 20, dirty=False), per_worker, started=1_700_000_000.0, build_s=1.0)
    changes = [Change("create", NO_CHANGE, 0.004, (-0.01, 0.02), 0.4, 0.25, 0.251),
               Change("get", REGRESSION, 0.12, (0.08, 0.16), 1e-6, 0.007, 0.00784)]
    budget = {"get": {"p50": 1.0, "p95": 2.0, "p99": 3.0}}
    return bench_report.html(analyse(result, budget, changes, "main"), title="bench of ababab")


def _lines_report() -> str:
    """profkit lines' HTML report of a small constructed scalene profile."""
    from profkit.backends import scalene
    from profkit.render.lines_html import render_html
    from profkit.services.lines import summarise

    def line(n: int, source: str, py: float = 0.0, alloc: float = 0.0) -> dict[str, Any]:
        return {"lineno": n, "line": source, "n_cpu_percent_python": py, "n_cpu_percent_c": py / 4,
                "n_sys_percent": 0.5 if py else 0.0, "n_malloc_mb": alloc, "n_peak_mb": alloc, "n_avg_mb": alloc / 2,
                "n_usage_fraction": alloc / 100, "n_copy_mb_s": 0.0}

    profile = {"elapsed_time_sec": 2.5, "max_footprint_mb": 48.0, "max_footprint_fname": "/srv/agentmem/store.py",
               "max_footprint_lineno": 12, "files": {
                   "/srv/agentmem/vector.py": {"percent_cpu_time": 80.0, "lines": [
                       line(44, "    return sum(a * b for a, b in zip(u, v)) \\u003c limit\n", py=70.0),
                       line(45, "    pass\n")]},
                   "/srv/agentmem/store.py": {"percent_cpu_time": 20.0, "lines": [
                       line(12, "        rows.append(bytearray(1 \\u003c\\u003c 20))\n", py=5.0, alloc=48.0)]}}}
    stats = scalene.files(profile)
    root = scalene.common_folder([f.file for f in stats])
    return render_html(summarise(profile, stats, top=5, root=root), stats, root=root, title="python -m agentmem",
                       scalene_version="1.5")


def _diff_svg(scratch: Path, a: Path, b: Path, *, memory: bool) -> str:
    from profkit.services.diff import run_diff

    doc = run_diff(a=str(a), b=str(b), store=scratch, top=15, min_share_pct=0.5, mem=memory)
    return artifacts(doc)["diff-svg"].read_text()


@dataclass(frozen=True)
class RealSite:
    index: Path
    charts: list[Path]  # memray pages that draw a flamegraph


@pytest.fixture(scope="module")
def real_site(tmp_path_factory: pytest.TempPathFactory, memray: Memray) -> RealSite:
    """A site of three commits whose every page is one profkit (or memray) writes: the site of `profkit ci`
    without its minutes of profiling. The async table is a real run's; the others are rendered from small
    inputs by the commands' own renderers."""
    from profkit.render.collapsed import read_collapsed
    from profkit.render.flamegraph_svg import render_svg

    d = tmp_path_factory.mktemp("real-site")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # The one real profile: a child process that mostly waits, run while the rest is rendered here.
        profiled = pool.submit(profkit, "async", "--store", str(d / "async-store"), "--json", "--", "python",
                               str(PROGRAMS / "async_known.py"), timeout=120)
        store = d / "store"
        made = make_store(store, 3)
        stacks = []
        for i in range(3):
            stacks.append(d / f"profile-{i}.collapsed")
            stacks[-1].write_text(_stacks(extra=150 * i))
        cpu_diffs = [_diff_svg(d / "diff-store", stacks[i - 1], stacks[i], memory=False) for i in (1, 2)]
        memory_diff = _diff_svg(d / "diff-store", *memray.captures, memory=True)
        bench, lines = _bench_report(), _lines_report()
        proc = profiled.result()
    assert proc.returncode == 0, proc.stderr
    table = artifacts(json.loads(proc.stdout))["coroutines-json"].read_text()
    charts: list[Path] = []
    for i, folder in enumerate(made.folders):
        index = store / folder / commit_index.INDEX
        doc = json.loads(index.read_text())
        found = doc["artifacts"]
        (store / found["flamegraph"]).write_text(render_svg(read_collapsed(stacks[i]), title=f"commit {i}"))
        (store / found["async_table"]).write_text(table)
        (store / found["bench_report"]).write_text(bench)
        if i:
            # The oldest commit keeps profkit.dashboard_bench's stand-in: ASCII that names no encoding, so
            # Chromium reads it (and, but for the site's charset, the scripts it loads) as windows-1252.
            (store / found["memray_html"]).write_text(memray.page.read_text())
            charts.append(store / "site" / "commits" / folder / "memray.html")
        extra = {"lines_html": lines}
        if i:
            extra |= {"flame_diff": cpu_diffs[i - 1], "memory_diff": memory_diff}
        for key, text in extra.items():
            rel = f"{folder}/{key.replace('_', '-')}-run/{'lines.html' if key == 'lines_html' else 'diff.svg'}"
            (store / rel).parent.mkdir()
            (store / rel).write_text(text)
            found[key] = rel
        index.write_text(json.dumps(doc))
    built = profkit("dashboard", "--store", str(store), "--json", timeout=120)
    assert built.returncode == 0, built.stderr
    return RealSite(store / "site" / "index.html", charts)


def linked_pages(index: Path) -> list[Path]:
    """The index and every HTML or SVG page reached from it by links, the artifacts in the store included."""
    seen, order = {index.resolve()}, [index.resolve()]
    for page in order:  # grows as pages are found
        for url in links(page).urls:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if target.suffix in (".html", ".svg") and target.is_file() and target not in seen:
                seen.add(target)
                order.append(target)
    return order


# -- the site, without a browser -------------------------------------------------------------------------


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


def test_a_real_async_profile_reads_as_a_page(real_site: RealSite) -> None:
    """tests/programs/async_known.py's table: the blocker blocks, the sleeper stalls, the waiter waits."""
    page = real_site.index.parent / "commits" / real_site.charts[-1].parent.name / "async.html"
    text = page.read_text()
    ranked = text[text.index('id="coroutines"'):text.index('id="blockers"')]
    assert ranked.index(">slow_waiter<") < ranked.index(">blocker<")  # most Σ wall: 3 sleeps of 0.4 s
    blockers = text[text.index('id="blockers"'):text.index('id="functions"')]
    assert re.search(r'<span class="over">blocking</span></td><td class="l">blocker</td>', blockers)
    assert re.search(r'<span class="slower">stalled</span></td><td class="l">sleeper</td>', blockers)
    assert "slow_waiter" not in blockers
    commit_page = page.with_name("index.html")
    assert "async.html" in links(commit_page).urls
    assert any(u.endswith("/coroutines.json") for u in links(commit_page).urls)


# -- in Chromium, offline --------------------------------------------------------------------------------


@needs_chromium
def test_every_page_the_site_links_renders_offline_without_errors(real_site: RealSite, browser: Browser) -> None:
    pages = linked_pages(real_site.index)
    kinds = sorted(p.name if not p.name.startswith("benchmark_") else "bench report" for p in pages)
    assert kinds == sorted(["index.html"] * 4 + ["async.html", "memray.html", "flamegraph.svg", "bench report",
                                                 "lines.html"] * 3 + ["diff.svg"] * 4), kinds
    assert len(real_site.charts) == 2 and set(real_site.charts) <= set(pages)
    failures = []
    for page in pages:
        name = os.path.relpath(page, real_site.index.parent.parent)
        if page.name in ("index.html", "async.html"):  # the site's own pages (the others are the tools')
            failures += [f"{name}: broken link {u}" for u in broken_links(page)]
        visit = browser.open(page.as_uri(), ready=FLAMEGRAPH_DRAWN if page in real_site.charts else None)
        failures += [f"{name}: {p}" for p in visit.problems]
        failures += [f"{name}: requested {u}" for u in visit.remote()]
        if not visit.ready:
            failures.append(f"{name}: memray's flamegraph did not draw")
        # Text, tables and plots in several colours: a blank or one-colour page has a handful at most.
        if colours(visit.png) < 16:
            failures.append(f"{name}: the screenshot is blank ({colours(visit.png)} colours)")
    assert failures == [], "\n".join(failures)


@needs_chromium
@pytest.mark.parametrize("which", ["overview", "commit"])
def test_the_big_sites_pages_render_offline(which: str, site: tuple[Path, dict[str, object]],
                                            browser: Browser) -> None:
    store, doc = site
    folder = str(doc["steps"][0]["folder"]) if which == "commit" else ""  # type: ignore[index]
    page = store / "site" / ("index.html" if which == "overview" else f"commits/{folder}/index.html")
    visit = browser.open(page.as_uri())
    assert visit.problems == [] and visit.remote() == []
    # Not one colour, nor a bare page: text, tables and (on the overview) plots in several colours.
    assert colours(visit.png) > 50, colours(visit.png)


@needs_chromium
def test_memrays_flamegraph_draws_offline_from_the_sites_copy_and_not_from_memrays_own(
        site: tuple[Path, dict[str, object]], memray: Memray, browser: Browser) -> None:
    store, _ = site
    newest = commit_index.commits(store)[-1]["folder"]
    copy = browser.open((store / "site" / "commits" / newest / "memray.html").as_uri(), ready=FLAMEGRAPH_DRAWN)
    assert copy.ready, "memray's flamegraph did not draw from the site's scripts"
    assert copy.problems == [] and copy.remote() == []
    # The page as memray wrote it needs the CDN: with the network off it asks for it, fails, and draws nothing.
    # (The checks above would have caught a site page doing the same.)
    original = browser.open(memray.page.as_uri())
    assert not browser.evaluate(FLAMEGRAPH_DRAWN)
    assert any(u.startswith("https://cdn.jsdelivr.net/") for u in original.remote())
    assert any("load failed" in p for p in original.problems)
