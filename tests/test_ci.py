"""The continuous-profiling job on two commits: every artifact filed, one index per commit, the second
(which slows an engine function) compared with the first (bench changes, CPU and memory diffs),
`profkit diff` of the two commits naming that function first, and the dashboard with both (issue 10)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.helpers import commit_all, profkit, repo_copy

pytestmark = pytest.mark.slow

# Enough to exercise every step; the figures of a smoke bench are too coarse for trends.
JOB = ("--duration", "3", "--concurrency", "8", "--bench", "smoke", "--profile-duration", "2", "--json")
KINDS = ("bench", "load", "flame", "mem", "async")


@pytest.mark.timeout(900)
def test_ci_on_two_commits_files_compares_and_publishes(tmp_path: Path) -> None:
    repo, store = tmp_path / "repo", tmp_path / "store"
    repo.mkdir()
    repo_copy(repo)
    # The job runs the code of the checkout it is in, as it does for a user who installed profkit from
    # it: the copy's profkit and engine come first on the path, ahead of the editable install.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "targets"), str(repo)])}

    first = profkit("ci", "--store", str(store), *JOB, cwd=repo, timeout=600, env=env)
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    assert one["errors"] == {} and one["against"] is None  # nothing to compare with yet
    index_one = json.loads(Path(one["index"]).read_text())
    assert index_one["index_version"] == 1 and set(index_one["runs"]) == set(KINDS)
    for key in ("bench_report", "flamegraph", "memray_html", "async_table", "load_report"):
        assert (store / index_one["artifacts"][key]).is_file(), key

    # The second commit slows one engine function that most requests of the mixed load go through.
    embedding = repo / "targets" / "agentmem" / "embedding.py"
    text = embedding.read_text()
    needle = "    def embed(self, text: str) -> Vector:\n        idx, weights = self._features(text)\n"
    assert needle in text
    embedding.write_text(text.replace(needle, needle + "        _acc = 0\n        for _i in range(100_000):\n"
                                                      "            _acc += _i\n"))
    commit_all(repo, "slow down the embedder")
    second = profkit("ci", "--store", str(store), *JOB, cwd=repo, timeout=600, env=env)
    assert second.returncode == 0, second.stderr
    two = json.loads(second.stdout)
    assert two["errors"] == {}, two["errors"]
    against = two["against"]
    assert against is not None and against["folder"] == index_one["folder"]
    compared = {c["op"] for c in against["changes"]}
    assert set(index_one["bench"]["ops"]) <= compared  # every operation has its two points compared
    index_two = json.loads(Path(two["index"]).read_text())
    for key in ("flame_diff", "memory_diff"):
        svg = store / index_two["artifacts"][key]
        assert svg.is_file() and svg.read_text().lstrip().startswith("<"), key

    # profkit diff of the two commits ranks the slowed function first among those that grew (the
    # event loop's own share, idle polling in uvloop's C code, shrinks as much: the loop is busier).
    diffed = profkit("diff", index_one["folder"], index_two["folder"], "--store", str(store), "--json", cwd=repo,
                     env=env)
    assert diffed.returncode == 0, diffed.stderr
    rows = json.loads(diffed.stdout)["findings"]["functions"]
    grew = [r for r in rows if r["significant"] and r["self_delta_pct"] > 0]
    assert grew and grew[0]["function"] == "HashingEmbedder.embed" and grew[0]["self_delta_pct"] > 10, rows[:4]

    # The dashboard: both commits, and the second's page links its diff to a file that exists.
    site = Path(two["dashboard"]).parent
    page = next((site / "commits").glob(f"{index_two['folder']}*/index.html"))
    links = re.findall(r'href="([^"]+)"', page.read_text())
    diff_links = [link for link in links if "diff" in link and link.endswith(".svg")]
    assert diff_links, links
    for link in links:
        if not link.startswith(("http", "#", "mailto:")):
            assert (page.parent / link.split("#")[0]).resolve().exists(), link
    overview = (site / "index.html").read_text()
    assert index_one["folder"][:7] in overview and index_two["folder"][:7] in overview
