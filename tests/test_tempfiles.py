"""No command leaves temporary files behind.

Each command runs as the real CLI with TMPDIR pointing at a fresh empty folder, and that folder must
be empty again when the command has ended, whatever the profiler (py-spy, memray, yappi, scalene)
or the engine wrote there on the way. scalene is also watched in the system /tmp, where version
2.4 drops a ``scalene*`` folder of interpreter aliases on every run unless told otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PROGRAMS, profkit

pytestmark = pytest.mark.slow

SYSTEM_TMP = Path("/tmp")


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh, empty TMPDIR and the environment that points at it."""
    folder = tmp_path / "TMPDIR"
    folder.mkdir()
    return folder, {**os.environ, "TMPDIR": str(folder)}


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) + ("/" if p.is_dir() else "") for p in folder.rglob("*"))


def run_clean(args: list[str], tmpdir_env: tuple[Path, dict[str, str]], *, timeout: float = 300) -> dict[str, object]:
    """Run ``profkit ARGS --json`` with the fresh TMPDIR; it must succeed and leave that folder empty."""
    folder, env = tmpdir_env
    proc = profkit(*args, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    left = leftovers(folder)
    assert left == [], f"profkit {args[0]} left these in TMPDIR: {left}"
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def scalene_in_system_tmp() -> set[str]:
    return {p.name for p in SYSTEM_TMP.iterdir() if p.name.startswith("scalene")}


@pytest.fixture
def live_python() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, str(PROGRAMS / "idle_waiter.py")])
    yield proc
    proc.kill()
    proc.wait()


def test_flame_leaves_nothing(tmpdir_env: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    doc = run_clean(["flame", "--store", str(tmp_path / "store"), "--json", "--",
                     sys.executable, str(PROGRAMS / "cpu_hot.py"), "1"], tmpdir_env)
    assert doc["status"] == "complete"


def test_mem_leaves_nothing(tmpdir_env: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    doc = run_clean(["mem", "--store", str(tmp_path / "store"), "--leaks", "--json", "--",
                     sys.executable, str(PROGRAMS / "mem_alloc_loop.py"), "--lifetime", "1"], tmpdir_env)
    assert doc["status"] == "complete"


def test_async_leaves_nothing(tmpdir_env: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    doc = run_clean(["async", "--store", str(tmp_path / "store"), "--json", "--",
                     sys.executable, str(PROGRAMS / "async_known.py")], tmpdir_env)
    assert doc["status"] == "complete"


def test_lines_leaves_nothing_in_tmpdir_nor_in_the_system_tmp(tmpdir_env: tuple[Path, dict[str, str]],
                                                             tmp_path: Path) -> None:
    before = scalene_in_system_tmp()
    doc = run_clean(["lines", "--store", str(tmp_path / "store"), "--json", "--",
                     sys.executable, str(PROGRAMS / "lines_hot.py"), "1.5"], tmpdir_env)
    assert doc["status"] == "complete"
    new = sorted(scalene_in_system_tmp() - before)
    assert new == [], f"profkit lines left these in {SYSTEM_TMP}: {new}"


def test_lines_without_tmpdir_leaves_no_scalene_folder_in_the_system_tmp(tmp_path: Path) -> None:
    """The usual case: no TMPDIR at all, so whatever scalene makes would go to /tmp."""
    env = {k: v for k, v in os.environ.items() if k not in ("TMPDIR", "TEMP", "TMP")}
    before = scalene_in_system_tmp()
    proc = profkit("lines", "--store", str(tmp_path / "store"), "--json", "--",
                   sys.executable, str(PROGRAMS / "lines_hot.py"), "1.5", env=env)
    assert proc.returncode == 0, proc.stderr
    new = sorted(scalene_in_system_tmp() - before)
    assert new == [], f"profkit lines left these in {SYSTEM_TMP}: {new}"


def test_dump_of_a_live_pid_leaves_nothing(tmpdir_env: tuple[Path, dict[str, str]], tmp_path: Path,
                                           live_python: subprocess.Popen[bytes]) -> None:
    doc = run_clean(["dump", "--pid", str(live_python.pid), "--store", str(tmp_path / "store"), "--json"],
                    tmpdir_env)
    assert doc["status"] == "complete"
    assert live_python.poll() is None


@pytest.mark.timeout(900)  # ci loads, samples, benchmarks and profiles: over two minutes on a busy machine
def test_ci_leaves_nothing(tmpdir_env: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    doc = run_clean(["ci", "--store", str(tmp_path / "store"), "--duration", "3", "--bench", "smoke",
                     "--profile-duration", "2", "--json"], tmpdir_env,
                    timeout=900)
    assert Path(str(doc["folder"])).is_dir()
