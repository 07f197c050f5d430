"""The artifact store: atomic writes, concurrent runs, partial runs, listing and retention."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from profkit.errors import ProfkitError
from profkit.gitinfo import Commit
from profkit.store import ArtifactStore, StoreError, write_atomic
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


def test_folder_name_marks_dirty_trees(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with store.open_run("mem", commit=Commit("abcdef1234567890", dirty=True), target={}, tools={}) as run:
        pass
    assert run.folder.parent.name == "abcdef123456-dirty"


def test_failure_inside_a_run_is_never_complete(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(RuntimeError):
        with store.open_run("flame", commit=COMMIT, target={}, tools={}) as run:
            run.write("half.txt", b"some", "text")
            raise RuntimeError("target killed")
    manifest = json.loads((run.folder / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["error"] == "target killed"
    with pytest.raises(KeyboardInterrupt):
        with store.open_run("flame", commit=COMMIT, target={}, tools={}) as run2:
            raise KeyboardInterrupt
    assert json.loads((run2.folder / "manifest.json").read_text())["status"] == "failed"


def test_atomic_write_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    write_atomic(target, b"old")
    write_atomic(target, b"new" * 10_000)
    assert target.read_bytes() == b"new" * 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]
    with pytest.raises(StoreError):
        write_atomic(tmp_path / "missing-folder" / "x", b"data")


def test_gc_keeps_the_newest_runs(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    folders = []
    for i in range(5):
        commit = Commit(f"{i}{i}" + "0" * 38, dirty=False)
        with store.open_run("flame", commit=commit, target={"i": i}, tools={}) as run:
            run.write("a.txt", b"x", "text")
        folders.append(run.folder)
        time.sleep(0.01)
    with pytest.raises(ProfkitError):
        store.gc(0)
    assert len(store.gc(2, dry_run=True)) == 3 and all(f.exists() for f in folders)
    removed = store.gc(2)
    assert len(removed) == 3
    assert [f.exists() for f in folders] == [False, False, False, True, True]
    assert not folders[0].parent.exists(), "empty commit folders are removed too"
    assert [r["target"]["i"] for r in store.runs()] == [4, 3]


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
