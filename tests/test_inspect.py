"""profkit dump, top and doctor against real live processes."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PROFKIT, PROGRAMS, one_line_error, profkit, snapshot

pytestmark = pytest.mark.slow


@pytest.fixture
def live() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, str(PROGRAMS / "idle_waiter.py")])
    time.sleep(0.5)
    yield proc
    proc.kill()
    proc.wait()


def test_dump_shows_the_live_stack(live: subprocess.Popen[bytes], tmp_path: Path) -> None:
    proc = profkit("dump", "--pid", str(live.pid), "--store", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    frames = [f for t in doc["findings"]["threads"] for f in t["frames"]]
    assert any(f.startswith("wait_here_forever") for f in frames), frames
    kinds = {a["kind"] for a in doc["artifacts"]}
    assert kinds == {"stacks-json", "stacks-text"}
    assert "asyncio" in doc["findings"]["asyncio_tasks_note"]
    assert live.poll() is None


def test_dump_errors(tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    assert "no process" in one_line_error(profkit("dump", "--pid", "999999", "--store", str(tmp_path)))
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert "not a Python process" in one_line_error(profkit("dump", "--pid", str(sleeper.pid), "--store",
                                                                str(tmp_path)))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert snapshot(tmp_path) == before


def test_top_draws_a_live_view_in_a_terminal(live: subprocess.Popen[bytes]) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(PROFKIT), "top", "--pid", str(live.pid), "--duration", "3"],
                            stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(30)
    os.close(leader)
    assert proc.returncode == 0, screen[-2000:]
    assert b"spin_a_little" in screen or b"wait_here_forever" in screen, screen[-2000:]


def test_top_without_a_terminal_says_so(live: subprocess.Popen[bytes]) -> None:
    assert "needs a terminal" in one_line_error(profkit("top", "--pid", str(live.pid)))


def test_doctor_reports_tools_and_target(live: subprocess.Popen[bytes]) -> None:
    proc = profkit("doctor", "--json", "--pid", str(live.pid))
    doc = json.loads(proc.stdout)
    assert proc.returncode == (0 if doc["ok"] else 1)
    checks = {c["check"]: c for c in doc["checks"]}
    for tool in ("py-spy", "memray", "yappi", "scalene"):
        assert checks[f"{tool} installed"]["ok"], checks
    assert "ptrace" in " ".join(checks)
    assert doc["target"]["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert checks[f"py-spy supports pid {live.pid}"]["ok"]


def test_doctor_on_a_dead_pid_fails() -> None:
    proc = profkit("doctor", "--json", "--pid", "999999")
    assert proc.returncode == 1
    assert not json.loads(proc.stdout)["ok"]
