"""profkit.store in process: run folders and manifests, statuses, listing, retention, atomic writes."""

from __future__ import annotations

import errno
import json
import os
import secrets
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from profkit import __version__
from profkit.errors import StoreError, UsageError
from profkit.gitinfo import Commit
from profkit.store import MANIFEST, ArtifactStore, Run, write_atomic

COMMIT = Commit("0123456789abcdef0123456789abcdef01234567", dirty=False)


def manifest_of(run: Run) -> dict[str, Any]:
    return json.loads((run.folder / MANIFEST).read_text())


def a_run(store: ArtifactStore, command: str = "flame", **target: Any) -> Run:
    with store.open_run(command, commit=COMMIT, target=target, tools={"py-spy": "0.4"}) as run:
        run.write("a.txt", b"x", "text")
    return run


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# -- open_run ------------------------------------------------------------------------------------------


def test_a_run_files_a_complete_manifest_under_the_commit(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with store.open_run("mem", commit=COMMIT, target={"kind": "command", "argv": ["python", "x.py"]},
                        tools={"memray": "1.20"}) as run:
        # WHILE the block runs, the manifest already says so
        assert manifest_of(run)["status"] == "running" and manifest_of(run)["ended_at"] is None
        run.write("stats.json", b"{}", "stats-json")
        run.write_json("more.json", {"a": 1}, "stats-json")
    m = manifest_of(run)
    assert run.folder.parent == tmp_path / "store" / "0123456789ab"
    assert run.folder.name.startswith("mem-") and f"-{os.getpid()}-" in run.folder.name
    assert run.id == f"0123456789ab/{run.folder.name}"
    assert m["manifest_version"] == 1 and m["profkit_version"] == __version__
    assert (m["command"], m["commit"], m["dirty"], m["pid"]) == ("mem", COMMIT.sha, False, os.getpid())
    assert m["target"] == {"kind": "command", "argv": ["python", "x.py"]} and m["tools"] == {"memray": "1.20"}
    assert m["status"] == "complete" and m["ended_at"] >= m["started_at"]
    assert [(a["path"], a["kind"], a["size"]) for a in m["artifacts"]] == [("stats.json", "stats-json", 2),
                                                                           ("more.json", "stats-json", 12)]
    assert sorted(p.name for p in run.folder.iterdir()) == ["manifest.json", "more.json", "stats.json"]


def test_the_summary_gives_absolute_artifact_paths(tmp_path: Path) -> None:
    run = a_run(ArtifactStore(tmp_path))
    summary = run.summary()
    assert summary["run"] == run.id and summary["folder"] == str(run.folder) and summary["status"] == "complete"
    (art,) = summary["artifacts"]
    assert Path(art["path"]) == run.folder / "a.txt" and Path(art["path"]).read_bytes() == b"x"
    assert art["sha256"] == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


def test_a_dirty_tree_gets_its_own_commit_folder(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with store.open_run("flame", commit=Commit("abcdef1234567890", dirty=True), target={}, tools={}) as run:
        pass
    assert run.folder.parent.name == "abcdef123456-dirty"


def test_failure_in_the_block_marks_the_run_partial_when_something_was_filed(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(RuntimeError):
        with store.open_run("flame", commit=COMMIT, target={}, tools={}) as run:
            run.write("half.txt", b"some", "text")
            raise RuntimeError("target killed")
    m = manifest_of(run)
    assert (m["status"], m["error"]) == ("partial", "target killed")
    assert [a["path"] for a in m["artifacts"]] == ["half.txt"]


def test_failure_before_anything_was_filed_marks_the_run_failed(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with store.open_run("flame", commit=COMMIT, target={}, tools={}) as run:
            raise KeyboardInterrupt
    m = manifest_of(run)
    assert (m["status"], m["error"]) == ("failed", "KeyboardInterrupt")  # no message: the exception's name


def test_a_status_the_block_set_itself_is_kept(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with store.open_run("flame", commit=COMMIT, target={}, tools={}) as run:
        run.write("a.txt", b"x", "text")
        run.conclude({"samples": 3}, "pid 42 exited before the profile finished")
    m = manifest_of(run)
    assert (m["status"], m["error"], m["findings"]) == ("partial", "pid 42 exited before the profile finished",
                                                        {"samples": 3})
    with pytest.raises(ValueError):
        with store.open_run("flame", commit=COMMIT, target={}, tools={}) as run2:
            run2.finish("complete", findings={})
            raise ValueError("after finishing")
    assert manifest_of(run2)["status"] == "complete"


def test_adding_a_file_the_tool_did_not_write_is_a_store_error(tmp_path: Path) -> None:
    with ArtifactStore(tmp_path).open_run("flame", commit=COMMIT, target={}, tools={}) as run:
        with pytest.raises(StoreError, match=r"profile\.collapsed was not written by the profiler"):
            run.add("profile.collapsed", "collapsed")
        run.path("profile.collapsed").write_bytes(b"main 1\n")
        run.add("profile.collapsed", "collapsed")
        run.path("profile.collapsed").write_bytes(b"main 2\n")
        run.add("profile.collapsed", "collapsed")  # re-added: one entry, the new size and hash
    assert [a["path"] for a in manifest_of(run)["artifacts"]] == ["profile.collapsed"]


def test_a_store_that_is_a_file_is_one_store_error_and_nothing_is_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=r"cannot write to the artifact store .*a-file"):
        with ArtifactStore(blocker / "store").open_run("flame", commit=COMMIT, target={}, tools={}):
            raise AssertionError("the block must not run")
    assert blocker.read_text() == "not a folder"


def test_concurrent_runs_in_one_process_never_share_a_folder(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    folders: list[Path] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        run = a_run(store, i=i)
        with lock:
            folders.append(run.folder)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(folders)) == 12
    assert sorted(r["target"]["i"] for r in store.runs()) == list(range(12))


def test_a_folder_name_that_is_taken_is_never_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a random part that comes out the same twice, as two runs in the same second of one pid would draw
    real = secrets.token_hex
    drawn = iter(["beef", "beef", "cafe"])
    monkeypatch.setattr(secrets, "token_hex", lambda n=None: next(drawn) if n == 2 else real(n))
    store = ArtifactStore(tmp_path)
    first, second = a_run(store), a_run(store)
    # THEN the second run took another name instead of writing into the first one's folder
    assert first.folder.name.endswith("-beef") and second.folder.name.endswith("-cafe")
    assert first.folder.parent == second.folder.parent


# -- runs ----------------------------------------------------------------------------------------------


def test_runs_newest_first_with_folders_that_are_not_runs_left_out(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    made = [a_run(store, i=i) for i in range(3)]
    for i, run in enumerate(made):  # started_at decides the order, not the folder names
        m = manifest_of(run)
        m["started_at"] = 1000.0 + (2 - i) * 10
        (run.folder / MANIFEST).write_text(json.dumps(m))
    for skipped in ("baselines", "reports", ".cache"):
        (tmp_path / skipped / "not-a-run").mkdir(parents=True)
    (tmp_path / "stray-file").write_text("x")
    listed = store.runs()
    assert [r["target"]["i"] for r in listed] == [0, 1, 2]
    assert [r["run"] for r in listed] == [made[0].id, made[1].id, made[2].id]
    assert listed[0]["folder"] == str(made[0].folder)


def test_runs_lists_folders_without_or_with_a_broken_manifest_without_guessing(tmp_path: Path) -> None:
    (tmp_path / "abc" / "ci-20250101-1").mkdir(parents=True)
    broken = tmp_path / "abc" / "flame-20250101-2"
    broken.mkdir()
    (broken / MANIFEST).write_text("{not json")
    statuses = {r["run"]: (r["status"], r["command"]) for r in ArtifactStore(tmp_path).runs()}
    assert statuses == {"abc/ci-20250101-1": ("unknown", "ci"), "abc/flame-20250101-2": ("unreadable", "flame")}


def test_runs_of_a_store_that_does_not_exist_is_empty(tmp_path: Path) -> None:
    assert ArtifactStore(tmp_path / "nothing-here").runs() == []


# -- gc ------------------------------------------------------------------------------------------------


def _aged(store: ArtifactStore, n: int) -> list[Run]:
    """n runs on n commits, oldest first."""
    made = []
    for i in range(n):
        with store.open_run("flame", commit=Commit(f"{i:02d}" + "0" * 38, dirty=False), target={"i": i},
                            tools={}) as run:
            run.write("a.txt", b"x", "text")
        m = manifest_of(run)
        m["started_at"] = 1000.0 + i
        (run.folder / MANIFEST).write_text(json.dumps(m))
        made.append(run)
    return made


def test_gc_keeps_the_newest_and_removes_emptied_commit_folders(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    made = _aged(store, 5)
    assert store.gc(2, dry_run=True) == [made[2].id, made[1].id, made[0].id]
    assert all(r.folder.exists() for r in made)
    assert store.gc(2) == [made[2].id, made[1].id, made[0].id]
    assert [r.folder.exists() for r in made] == [False, False, False, True, True]
    assert not made[0].folder.parent.exists()
    assert [r["target"]["i"] for r in store.runs()] == [4, 3]
    assert store.gc(2) == []


def _running(run: Run, pid: int) -> None:
    m = manifest_of(run)
    m["status"], m["pid"] = "running", pid
    (run.folder / MANIFEST).write_text(json.dumps(m))


def test_gc_never_removes_a_run_whose_process_still_runs(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    made = _aged(store, 4)
    _running(made[0], os.getpid())  # the oldest is still being written, by a live process
    _running(made[1], dead_pid())  # this one's process died without finishing it
    removed = store.gc(1)
    assert made[0].id not in removed and made[0].folder.exists()
    assert set(removed) == {made[1].id, made[2].id}


@pytest.mark.parametrize("keep", [0, -1])
def test_gc_always_keeps_the_newest_run(tmp_path: Path, keep: int) -> None:
    store = ArtifactStore(tmp_path)
    made = _aged(store, 2)
    with pytest.raises(UsageError, match="--keep must be at least 1"):
        store.gc(keep)
    assert all(r.folder.exists() for r in made)


# -- write_atomic --------------------------------------------------------------------------------------


def test_write_atomic_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    write_atomic(target, b"old")
    write_atomic(target, b"new" * 10_000)
    assert target.read_bytes() == b"new" * 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_write_atomic_into_a_missing_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot write to the artifact store"):
        write_atomic(tmp_path / "missing-folder" / "x", b"data")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("code", "message"), [
    (errno.ENOSPC, "the disk holding {folder} is full; free some space or use --store DIR on another disk"),
    (errno.EACCES, "cannot write to the artifact store {folder}: permission denied; use --store DIR"),
    (errno.EROFS, "cannot write to the artifact store {folder}: permission denied; use --store DIR"),
    (errno.EIO, "cannot write to the artifact store {folder}: Input/output error"),
])
def test_a_failed_write_keeps_the_old_file_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int,
                                                        message: str) -> None:
    target = tmp_path / "report.md"
    target.write_bytes(b"the old report")

    def fail(*_args: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StoreError) as caught:
        write_atomic(target, b"the new report")
    monkeypatch.undo()
    assert str(caught.value) == message.format(folder=tmp_path)
    assert caught.value.exit_code == 5
    assert target.read_bytes() == b"the old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"], "the temporary file was left behind"
