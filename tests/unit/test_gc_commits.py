"""gc --keep-commits: whole commits go, the newest N and the pinned ones (saved baselines, --keep-ref) stay,
and a run still running is never removed."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from profkit import cli, commit_index
from profkit.dashboard_bench import make_store
from profkit.errors import UsageError
from profkit.gitinfo import Commit
from profkit.results import GcCommitsResult
from profkit.services.runs import run_gc_commits
from profkit.store import MANIFEST, ArtifactStore
from tests.helpers import snapshot

COMMITS = 8


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    make_store(root, COMMITS)
    return root


def folders(store: Path) -> list[str]:
    """Oldest first, as the synthetic store made them."""
    return [str(d["folder"]) for d in commit_index.commits(store)]


def on_disk(store: Path) -> set[str]:
    return {p.name for p in store.iterdir() if p.is_dir()}


def test_keeps_the_newest_commits_whole_and_removes_the_rest_whole(store: Path) -> None:
    names = folders(store)
    runs_before = {m["run"] for m in ArtifactStore(store).runs()}
    doc = run_gc_commits(store=store, keep_commits=3, keep_refs=[], dry_run=False)
    assert doc["kept"] == names[::-1][:3]
    assert doc["removed_commits"] == names[::-1][3:]
    assert on_disk(store) == set(names[-3:])
    assert {m["run"] for m in ArtifactStore(store).runs()} == {r for r in runs_before if r.split("/")[0] in names[-3:]}
    assert set(doc["removed"]) == {r for r in runs_before if r.split("/")[0] in names[:-3]}
    assert doc["running"] == [] and doc["pinned"] == []


def test_dry_run_says_the_same_and_removes_nothing(store: Path) -> None:
    before = snapshot(store)
    dry = run_gc_commits(store=store, keep_commits=3, keep_refs=[], dry_run=True)
    assert snapshot(store) == before
    real = run_gc_commits(store=store, keep_commits=3, keep_refs=[], dry_run=False)
    assert {**dry, "dry_run": False} == real


def test_the_commit_of_a_saved_baseline_is_kept(store: Path) -> None:
    names = folders(store)
    sha = commit_index.read(store / names[1])["commit"]  # type: ignore[index]
    (store / "baselines").mkdir()
    (store / "baselines" / "v1.0.0.json").write_text(json.dumps(
        {"baseline_version": 1, "name": "v1.0.0", "result": {"environment": {"commit": sha, "dirty": False}}}))
    (store / "baselines" / "broken.json").write_text("{not json")
    doc = run_gc_commits(store=store, keep_commits=2, keep_refs=[], dry_run=False)
    assert doc["pinned"] == [{"folder": names[1], "why": "baseline v1.0.0"}]
    assert doc["kept"] == [names[-1], names[-2], names[1]]
    assert on_disk(store) == {names[-1], names[-2], names[1], "baselines"}


def test_keep_ref_pins_a_commit_by_sha_prefix_or_folder(store: Path) -> None:
    names = folders(store)
    doc = run_gc_commits(store=store, keep_commits=1, keep_refs=[names[0][:7], names[2]], dry_run=False)
    assert [p["folder"] for p in doc["pinned"]] == [names[0], names[2]]
    assert doc["pinned"][0]["why"] == f"--keep-ref {names[0][:7]}"
    assert on_disk(store) == {names[-1], names[0], names[2]}


def test_a_keep_ref_that_names_no_commit_is_refused_before_anything_is_removed(store: Path) -> None:
    before = snapshot(store)
    with pytest.raises(UsageError, match="--keep-ref no-such-ref: no commit of"):
        run_gc_commits(store=store, keep_commits=1, keep_refs=["no-such-ref"], dry_run=False, repo=store)
    assert snapshot(store) == before


def test_a_running_run_is_never_removed_and_keeps_its_commit(store: Path) -> None:
    names = folders(store)
    oldest = store / names[0]
    run_dirs = sorted(p for p in oldest.iterdir() if p.is_dir())
    busy = run_dirs[0]
    manifest = json.loads((busy / MANIFEST).read_text())
    manifest.update(status="running", pid=os.getpid(), host=socket.gethostname(), started_at=time.time())
    (busy / MANIFEST).write_text(json.dumps(manifest))
    doc = run_gc_commits(store=store, keep_commits=2, keep_refs=[], dry_run=False)
    assert doc["running"] == [f"{names[0]}/{busy.name}"]
    assert names[0] in doc["kept"] and names[0] not in doc["removed_commits"]
    assert sorted(p.name for p in oldest.iterdir()) == sorted([busy.name, commit_index.INDEX])
    assert all(f"{names[0]}/{r.name}" in doc["removed"] for r in run_dirs[1:])


def test_commits_without_an_index_go_by_their_newest_run(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    for sha in ("a" * 40, "b" * 40, "c" * 40):
        with store.open_run("flame", commit=Commit(sha, dirty=False), target={}, tools={}) as run:
            run.write("x.txt", b"x", "text")
        time.sleep(0.01)
    # The oldest commit gets a newer run: it is now the newest commit.
    with store.open_run("flame", commit=Commit("a" * 40, dirty=False), target={}, tools={}) as run:
        run.write("x.txt", b"x", "text")
    assert [f for f, _ in store.commit_folders()] == ["a" * 12, "c" * 12, "b" * 12]
    assert store.gc_commits(2).removed_commits == ["b" * 12]


def test_the_site_and_the_baselines_are_never_commits(store: Path) -> None:
    (store / "site" / "commits").mkdir(parents=True)
    (store / "baselines").mkdir()
    run_gc_commits(store=store, keep_commits=1, keep_refs=[], dry_run=False)
    assert {"site", "baselines"} <= on_disk(store)


def test_keeping_no_commit_is_refused(store: Path) -> None:
    with pytest.raises(UsageError, match="--keep-commits must be at least 1"):
        run_gc_commits(store=store, keep_commits=0, keep_refs=[], dry_run=False)


# -- the command line ----------------------------------------------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["profkit", *args])
    with pytest.raises(SystemExit) as ended:
        cli.main()
    captured = capsys.readouterr()
    return int(ended.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize(("args", "words"), [
    ((), "gc needs --keep N (the newest runs to keep) or --keep-commits N"),
    (("--keep", "2", "--keep-commits", "2"), "not both"),
    (("--keep", "2", "--keep-ref", "abc"), "--keep-ref goes with --keep-commits"),
    (("--keep-commits", "0"), "--keep-commits must be at least 1"),
])
def test_gc_options_are_checked_before_any_work(args: tuple[str, ...], words: str, store: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(store)
    code, out, err = run_cli(monkeypatch, capsys, "gc", *args, "--store", str(store))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err
    assert snapshot(store) == before


def test_gc_keep_commits_json(store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "gc", "--keep-commits", "5", "--store", str(store), "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert set(doc) == set(GcCommitsResult.__annotations__)
    assert doc["command"] == "gc" and len(doc["removed_commits"]) == COMMITS - 5


def test_gc_keep_commits_in_the_terminal(store: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    names = folders(store)
    code, out, err = run_cli(monkeypatch, capsys, "gc", "--keep-commits", "6", "--keep-ref", names[0], "--dry-run",
                             "--store", str(store))
    assert code == 0
    assert "would remove 1 commit(s) (5 run(s))" in err and "the newest 6 and 1 pinned" in err
    assert f"kept {names[0]}: --keep-ref {names[0]}" in err
    assert out.split() == [names[1]]


def test_gc_keep_still_counts_runs(store: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(monkeypatch, capsys, "gc", "--keep", "3", "--store", str(store), "--json")
    assert code == 0 and json.loads(out)["keep"] == 3
    assert len(ArtifactStore(store).runs()) == 3
