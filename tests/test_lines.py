"""`profkit lines` end to end: the real CLI running real scalene on real programs."""

from __future__ import annotations

import html
import json
import os
import re
import sys
from pathlib import Path

import pytest

from tests.helpers import PROGRAMS, artifacts, one_line_error, profkit

pytestmark = pytest.mark.slow

HOT = PROGRAMS / "lines_hot.py"


def marked_line(marker: str) -> tuple[int, str]:
    for number, text in enumerate(HOT.read_text().splitlines(), start=1):
        if marker in text:
            return number, text.strip()
    raise AssertionError(marker)


def test_hot_lines_json_and_standalone_html(tmp_path: Path) -> None:
    proc = profkit("lines", "--store", str(tmp_path / "store"), "--top", "5", "--json", "--",
                   sys.executable, str(HOT), "2")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "complete"
    cpu_line, cpu_source = marked_line("HOT-CPU-LINE")
    mem_line, mem_source = marked_line("HOT-MEMORY-LINE")

    top_cpu = doc["findings"]["top_cpu"]
    assert any(r["line"] == cpu_line and r["file"] == str(HOT) for r in top_cpu[:3]), top_cpu
    first = top_cpu[0]
    assert first["line"] == cpu_line and first["source"].strip() == cpu_source
    assert first["cpu_pct"] > 50  # the loop does nothing else
    assert abs(first["cpu_pct"] - (first["cpu_python_pct"] + first["cpu_native_pct"] +
                                   first["cpu_system_pct"])) < 0.01
    top_memory = doc["findings"]["top_memory"]
    assert top_memory[0]["line"] == mem_line and top_memory[0]["alloc_mb"] >= 64  # 12 x 8 MiB, sampled

    files = artifacts(doc)
    raw = json.loads(files["scalene-json"].read_text())
    assert str(HOT) in raw["files"]

    page = files["scalene-html"].read_text()
    external = re.findall(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page,
                          re.IGNORECASE)
    assert external == []
    assert not re.search(r"@import|url\(\s*[\"']?(?:https?:)?//", page)
    text = html.unescape(page)
    assert cpu_source in text and mem_source in text


def test_crashing_program_keeps_its_profile_marked_partial(tmp_path: Path) -> None:
    store = tmp_path / "store"
    line = one_line_error(profkit("lines", "--store", str(store), "--", sys.executable, str(HOT), "1.5",
                                  "--crash"))
    assert "exited with code 1" in line and "lines_hot was asked to crash" in line and "partial" in line
    (folder,) = store.glob("*/lines-*")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "partial"
    assert {a["kind"] for a in manifest["artifacts"]} >= {"scalene-json", "scalene-html"}


def test_too_short_to_profile_is_one_line_and_stores_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    brief = tmp_path / "brief.py"
    brief.write_text("print(sum(range(10)))\n")
    line = one_line_error(profkit("lines", "--store", str(store), "--", sys.executable, str(brief)))
    assert "too briefly" in line and "Nothing was stored" in line
    assert not store.exists()


def test_pid_is_refused_in_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    line = one_line_error(profkit("lines", "--pid", str(os.getpid()), "--store", str(store)))
    assert "scalene cannot attach" in line
    assert not store.exists()
