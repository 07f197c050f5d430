"""profkit flame with the real py-spy on real processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import pytest

from profkit.render.collapsed import read_collapsed
from tests.helpers import PROGRAMS, artifacts, one_line_error, profkit, snapshot

pytestmark = pytest.mark.slow

SCHEMA = json.loads((Path(__file__).parent / "data" / "speedscope-file-format-schema.json").read_text())
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def hot_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    store = tmp_path_factory.mktemp("store")
    proc = profkit("flame", "--store", str(store), "--json", "--", sys.executable, str(PROGRAMS / "cpu_hot.py"), "3")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def test_hot_function_tops_the_list(hot_run: dict[str, object]) -> None:
    findings = hot_run["findings"]
    assert isinstance(findings, dict)
    top = findings["top_functions"]
    assert top[0]["function"] == "hot_function", top[:3]
    assert top[0]["own_pct"] > 60
    assert findings["samples"] > 100


def test_artifacts_are_filed_with_a_manifest(hot_run: dict[str, object]) -> None:
    arts = artifacts(hot_run)
    assert {"collapsed", "flamegraph-svg", "speedscope", "findings-json"} <= set(arts)
    manifest = json.loads((Path(str(hot_run["folder"])) / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["manifest_version"] == 1
    assert manifest["tools"]["py-spy"]
    for a in manifest["artifacts"]:
        assert (Path(str(hot_run["folder"])) / a["path"]).stat().st_size == a["size"]
    stacks = read_collapsed(arts["collapsed"])
    assert stacks.total == hot_run["findings"]["samples"]  # type: ignore[index]


def test_speedscope_matches_the_published_schema(hot_run: dict[str, object]) -> None:
    doc = json.loads(artifacts(hot_run)["speedscope"].read_text())
    jsonschema.validate(doc, SCHEMA)
    names = {f["name"] for f in doc["shared"]["frames"]}
    assert "hot_function" in names


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (./dev.sh test installs Debian's)")
def test_svg_renders_in_headless_chromium(hot_run: dict[str, object], tmp_path: Path) -> None:
    svg = artifacts(hot_run)["flamegraph-svg"]
    assert "hot_function" in svg.read_text()
    png = tmp_path / "flame.png"
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tempfile.mkdtemp()}", "--window-size=1200,600", f"--screenshot={png}",
         svg.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # A blank page compresses to a few kB; coloured frames and text make it much larger.
    assert len(data) > 8_000, len(data)


def test_flame_on_an_unrelated_live_pid(tmp_path: Path) -> None:
    target = subprocess.Popen([sys.executable, str(PROGRAMS / "cpu_hot.py"), "60"])
    try:
        time.sleep(0.5)
        proc = profkit("flame", "--pid", str(target.pid), "--duration", "2", "--store", str(tmp_path), "--json")
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["findings"]["top_functions"][0]["function"] == "hot_function"
        assert doc["status"] == "complete"
        assert target.poll() is None, "the target must keep running after being sampled"
    finally:
        target.kill()
        target.wait()


def test_flame_on_the_bundled_scenario(tmp_path: Path) -> None:
    proc = profkit("flame", "mixed", "--duration", "3", "--store", str(tmp_path), "--json", "--rate", "200")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    files = {row["file"] for row in doc["findings"]["top_by_total"]}
    assert any("agentmem" in f for f in files), files


@pytest.fixture
def populated_store(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    proc = profkit("flame", "--store", str(store), "--json", "--", sys.executable, str(PROGRAMS / "cpu_hot.py"), "1")
    assert proc.returncode == 0, proc.stderr
    return store


def test_dead_pid(populated_store: Path) -> None:
    before = snapshot(populated_store)
    line = one_line_error(profkit("flame", "--pid", "999999", "--store", str(populated_store)))
    assert "no process with pid 999999" in line
    assert snapshot(populated_store) == before


def test_pid_that_is_not_python(populated_store: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        before = snapshot(populated_store)
        line = one_line_error(profkit("flame", "--pid", str(sleeper.pid), "--store", str(populated_store)))
        assert "not a Python process" in line
        assert snapshot(populated_store) == before
    finally:
        sleeper.kill()
        sleeper.wait()


def test_target_exiting_mid_profile_is_marked_partial(populated_store: Path) -> None:
    target = subprocess.Popen([sys.executable, str(PROGRAMS / "cpu_hot.py"), "1.5"])
    time.sleep(0.3)
    before = snapshot(populated_store)
    line = one_line_error(profkit("flame", "--pid", str(target.pid), "--duration", "5", "--store",
                                  str(populated_store)))
    target.wait()
    assert "exited before the profile finished" in line and "partial" in line
    after = snapshot(populated_store)
    assert all(after[k] == v for k, v in before.items()), "an earlier run was modified"
    manifests = [json.loads((populated_store / k).read_text()) for k in after if k.endswith("manifest.json")
                 and k not in before]
    assert [m["status"] for m in manifests] == ["partial"]


def test_unknown_scenario_and_bad_rate(populated_store: Path) -> None:
    before = snapshot(populated_store)
    assert "unknown scenario" in one_line_error(profkit("flame", "nope", "--store", str(populated_store)))
    assert "--rate" in one_line_error(profkit("flame", "--rate", "0", "--store", str(populated_store)))
    assert snapshot(populated_store) == before


def test_store_that_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = one_line_error(profkit("flame", "--store", str(blocker / "store"), "--", sys.executable,
                                  str(PROGRAMS / "cpu_hot.py"), "1"))
    assert "artifact store" in line
    assert blocker.read_text() == "not a folder"


def test_full_disk_is_one_clear_line(tmp_path: Path) -> None:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], capture_output=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        # Fill most of it with a "previous run" that must survive.
        (mnt / "keep").mkdir()
        (mnt / "keep" / "old.bin").write_bytes(b"x" * 8192)
        before = snapshot(mnt)
        line = one_line_error(profkit("flame", "--store", str(mnt), "--", sys.executable,
                                      str(PROGRAMS / "cpu_hot.py"), "2"))
        assert "full" in line or "space" in line, line
        after = snapshot(mnt)
        assert all(after.get(k) == v for k, v in before.items())
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
