"""Reading console recordings back: what replay accepts, and one line for what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from profkit.errors import UsageError
from profkit.services.console import RECORDING_FORMAT, load_recording

HEADER = {"format": RECORDING_FORMAT, "version": 1, "pid": 7, "agent": "127.0.0.1:1", "interval_s": 1.0,
          "started_at": 0.0}


def snap(i: int) -> dict[str, object]:
    return {"schema": 1, "taken_at": float(i), "tasks": [{"id": str(i), "name": f"t{i}"}], "warnings": []}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_the_snapshots_come_back_in_order(tmp_path: Path) -> None:
    rec = load_recording(write(tmp_path / "r.jsonl", [json.dumps(HEADER), *(json.dumps(snap(i)) for i in range(3))]))
    assert rec.header["pid"] == 7
    assert [s["taken_at"] for s in rec.snapshots] == [0.0, 1.0, 2.0]


def test_a_recording_cut_off_mid_line_keeps_what_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(HEADER) + "\n" + json.dumps(snap(0)) + "\n" + json.dumps(snap(1))[:20])
    assert len(load_recording(path).snapshots) == 1


@pytest.mark.parametrize(("lines", "says"), [
    ([], "not a profkit console recording"),
    (["{\"format\": \"other\"}"], "not a profkit console recording"),
    (["not json"], "not a profkit console recording"),
    ([json.dumps({**HEADER, "version": 99})], "newer profkit"),
    ([json.dumps(HEADER)], "holds no snapshot"),
    ([json.dumps(HEADER), "garbage", json.dumps(snap(1))], "line 2 is not JSON"),
    ([json.dumps(HEADER), "[1, 2]"], "line 2 is not a snapshot"),
])
def test_bad_recordings_are_one_line(tmp_path: Path, lines: list[str], says: str) -> None:
    with pytest.raises(UsageError, match=says):
        load_recording(write(tmp_path / "r.jsonl", lines))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such recording"):
        load_recording(tmp_path / "nope.jsonl")
    with pytest.raises(UsageError, match="is a folder"):
        load_recording(tmp_path)
