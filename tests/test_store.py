"""The artifact store: atomic writes, concurrent runs, partial runs, listing and retention."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from profkit.gitinfo import Commit
from profkit.store import ArtifactStore
from tests.helpers import one_line_error, profkit

pytestmark = pytest.mark.slow

COMMIT = Commit("0123456789abcdef0123", dirty=False)


def _one_run(root: str, i: int) -> str:
    store = ArtifactStore(Path(root))
    with store.open_run("flame", commit=COMMIT, target={"kind": "test", "i": i}, tools={}) as run:
        run.write(f"data-{i}.txt", f"run {i}".encode() * 1000, "text")
        time.sleep(0.05)
    return str(run.folder)


def test_concurrent_runs_on_one_commit_never_share_a_folder(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        folders = pool.starmap(_one_run, [(str(tmp_path), i) for i in range(16)])
    assert len(set(folders)) == 16
    runs = ArtifactStore(tmp_path).runs()
    assert len(runs) == 16 and all(r["status"] == "complete" for r in runs)
    for r in runs:
        (art,) = r["artifacts"]
        assert (Path(r["folder"]) / art["path"]).read_bytes() == f"run {r['target']['i']}".encode() * 1000
    assert not list(tmp_path.rglob("*.tmp")), "temporary files were left behind"


def test_runs_and_gc_commands(tmp_path: Path) -> None:
    for _ in range(3):
        with ArtifactStore(tmp_path).open_run("flame", commit=COMMIT, target={}, tools={}) as run:
            run.write("a.txt", b"x", "text")
    listed = json.loads(profkit("runs", "--store", str(tmp_path), "--json").stdout)
    assert len(listed["runs"]) == 3
    gc = profkit("gc", "--keep", "1", "--store", str(tmp_path), "--json")
    assert gc.returncode == 0, gc.stderr
    assert len(json.loads(gc.stdout)["removed"]) == 2
    assert "at least 1" in one_line_error(profkit("gc", "--keep", "0", "--store", str(tmp_path)))
    assert len(json.loads(profkit("runs", "--store", str(tmp_path), "--json").stdout)["runs"]) == 1
