"""profkit console end to end, as a user runs it: the real engine under load with its agent, a program
flagged for blocking its loop, GC pauses told apart, an agent injected into a plain asyncio program
with gdb and with lldb, record and replay (in the real UI, under tmux), dump --pid, and the errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from profkit import inject
from profkit.agent_client import find_agent
from profkit.console_sources import ReplaySource
from profkit.process import free_port
from profkit.services.console import load_recording
from tests.helpers import PROGRAMS, one_line_error, profkit

pytestmark = pytest.mark.slow


def snapshot(*args: str) -> dict[str, Any]:
    proc = profkit("console", *args, "--snapshot", "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def wait_for_agent(address: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            info = httpx.get(f"http://{address}/agent", timeout=2, trust_env=False).json()
            if info.get("status", "ready") == "ready":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"no agent at {address}: {log.read_text()}")


class Program:
    """A program under ``python -m profkit.agent`` (or plain), stopped by a file."""

    def __init__(self, tmp: Path, argv: list[str]) -> None:
        self.stop_file = tmp / "stop"
        self.out, self.err = tmp / "out.log", tmp / "err.log"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen([*argv], stdout=out, stderr=err)

    def finish(self) -> int:
        self.stop_file.touch()
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Program, str]]:
    """tests/programs/agent_target.py with the agent: a 'blocker' task burns 50 ms of CPU per step."""
    port = free_port()
    prog = Program(tmp_path, [sys.executable, "-m", "profkit.agent", "--port", str(port), "--monitor-ports", "0,0,0",
                              str(PROGRAMS / "agent_target.py"), "--until", str(tmp_path / "stop")])
    address = f"127.0.0.1:{port}"
    wait_for_agent(address, prog.proc, prog.err)
    yield prog, address
    prog.finish()


def test_the_blocking_task_is_flagged_by_name_within_two_refreshes(watched: tuple[Program, str]) -> None:
    _, address = watched
    flagged = []
    for _ in range(2):
        doc = snapshot("--agent", address)
        flagged = [w for w in doc["snapshot"]["warnings"] if w["name"] == "blocker"]
        if flagged:
            break
        time.sleep(1.0)
    assert flagged and flagged[0]["kind"] in ("blocking-step", "never-yields"), doc["snapshot"]["warnings"]
    tasks = {t["name"]: t for t in doc["snapshot"]["tasks"]}
    assert tasks["blocker"]["longest_step_ms"] >= 40
    assert tasks["handler"]["steps"] > 10 and tasks["handler"]["busy_ms"] > 0
    assert {"sleeper-0", "sleeper-1", "sleeper-2"} <= set(tasks)
    assert [f["function"] for f in tasks["sleeper-0"]["await_chain"]][:2] == ["middle", "deep_wait"]


def test_record_then_replay_reproduces_the_snapshots(watched: tuple[Program, str], tmp_path: Path) -> None:
    _, address = watched
    out = tmp_path / "rec.jsonl"
    store = tmp_path / "store"
    proc = profkit("console", "--agent", address, "--record", str(out), "--duration", "2", "--interval", "0.5",
                   "--store", str(store), "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["snapshots"] >= 3
    filed = Path(doc["folder"]) / "recording.jsonl"
    assert filed.read_bytes() == out.read_bytes()  # filed in the store like every run
    recorded = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    recording = load_recording(out)
    assert recording.snapshots == recorded
    source = ReplaySource(recording, label="rec", interval=1.0)
    import asyncio

    async def play() -> list[Any]:
        return [await source.snapshot() for _ in recorded]

    assert asyncio.run(play()) == recorded
    # ...and in the real UI: the replay shows the recorded tasks and their warnings.
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    session = f"profkit-replay-{os.getpid()}"
    cmd = f"{Path(sys.executable).with_name('profkit')} console --replay {out} --interval 0.5"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "140", "-y", "40", cmd], check=True)
    try:
        deadline = time.monotonic() + 30
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True, check=False).stdout
            if "blocker" in screen and "replay" in screen:
                break
            time.sleep(0.3)
        assert "blocker" in screen and "handler" in screen and "replay" in screen, screen
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode != 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("q did not quit the replay")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_await_flamegraph_has_one_root_per_task_name(watched: tuple[Program, str], tmp_path: Path) -> None:
    _, address = watched
    proc = profkit("console", "--agent", address, "--awaits", "--duration", "1.5", "--store", str(tmp_path / "s"),
                   "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    folder = Path(doc["folder"])
    roots = {line.split(";")[0] for line in (folder / "awaits.collapsed").read_text().splitlines()}
    assert {"handler", "blocker", "sleeper-0"} <= roots, roots
    assert any("deep_wait" in line for line in (folder / "awaits.collapsed").read_text().splitlines())
    assert (folder / "awaits.svg").read_text().startswith("<?xml")


def test_dump_lists_the_tasks_through_the_agent(watched: tuple[Program, str], tmp_path: Path) -> None:
    prog, _ = watched
    proc = profkit("dump", "--pid", str(prog.proc.pid), "--store", str(tmp_path), "--json", timeout=120)
    assert proc.returncode == 0, proc.stderr
    f = json.loads(proc.stdout)["findings"]
    assert f["asyncio_tasks"], f["asyncio_tasks_note"]
    assert {"blocker", "handler"} <= {t["name"] for t in f["asyncio_tasks"]}
    assert "profkit agent at 127.0.0.1:" in f["asyncio_tasks_note"]


def test_gc_pauses_are_blamed_on_the_collector(tmp_path: Path) -> None:
    port = free_port()
    prog = Program(tmp_path, [sys.executable, "-m", "profkit.agent", "--port", str(port), "--monitor-ports", "0,0,0",
                              str(PROGRAMS / "gc_service.py"), "--seconds", "60"])
    address = f"127.0.0.1:{port}"
    try:
        wait_for_agent(address, prog.proc, prog.err)
        deadline = time.monotonic() + 40
        warnings: list[dict[str, Any]] = []
        while time.monotonic() < deadline and prog.proc.poll() is None:
            doc = snapshot("--agent", address)
            warnings = doc["snapshot"]["warnings"]
            if any(w["kind"] == "gc-pause" for w in warnings):
                break
            time.sleep(1.0)
        # hoard's own work is about a millisecond a step; its long steps are full collections, and the
        # warnings say so. (Whether a step of it also looks long for its own sake depends on the machine:
        # the warnings time steps on the wall clock, and a busy machine stretches any step.)
        pauses = [w for w in warnings if w["kind"] == "gc-pause"]
        assert pauses and {w["name"] for w in pauses} == {"hoard"}, warnings
        assert all("garbage collection (generation 2)" in w["message"] for w in pauses)
    finally:
        prog.proc.kill()
        prog.proc.wait()


def _debugger_or_skip(name: str, tmp_path: Path) -> None:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    problem = inject.probe(name, path, tmp_path / f"probe-{name}.log")
    if problem is not None:
        pytest.skip(f"{name} cannot inject into a process here: {problem}")


@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_console_pid_injects_into_a_plain_program_and_leaves_it_as_it_was(debugger: str, tmp_path: Path) -> None:
    _debugger_or_skip(debugger, tmp_path)
    prog = Program(tmp_path, [sys.executable, str(PROGRAMS / "plain_service.py"), "--stop-file",
                              str(tmp_path / "stop")])
    try:
        time.sleep(1.0)
        pid = str(prog.proc.pid)
        doc = snapshot("--pid", pid, "--debugger", debugger)
        assert doc["injected"] == debugger
        snap = doc["snapshot"]
        names = {t["name"] for t in snap["tasks"]}
        assert {"crunch", "worker-0", "worker-1", "worker-2"} <= names, names
        if not any(w["name"] == "crunch" for w in snap["warnings"]):  # a second refresh, as a user would see
            doc = snapshot("--pid", pid, "--debugger", debugger)
        assert any(w["name"] == "crunch" and w["kind"] in ("blocking-step", "never-yields")
                   for w in doc["snapshot"]["warnings"]), doc["snapshot"]["warnings"]
        # Detached: no agent listens in the program any more.
        assert find_agent(prog.proc.pid) is None
        ticks = prog.out.read_text().count("\n")
        deadline = time.monotonic() + 10
        while prog.out.read_text().count("\n") < ticks + 3:
            assert time.monotonic() < deadline, "the program stopped ticking after the console left"
            time.sleep(0.1)
    finally:
        code = prog.finish()
    assert code == 0, prog.err.read_text()
    assert prog.err.read_text() == ""
    lines = prog.out.read_text().splitlines()
    assert lines and all(re.fullmatch(r"tick \d+", line) for line in lines), lines[:5]


def test_the_engine_under_load_shows_busy_request_handlers(tmp_path: Path) -> None:
    port, agent_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        serve = subprocess.Popen([str(Path(sys.executable).with_name("profkit")), "serve", "--monitor", "--port",
                                  str(port), "--agent-port", str(agent_port), "--monitor-ports", "0,0,0",
                                  "--db", str(tmp_path / "a.db")], stdout=fh, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{agent_port}"
    try:
        wait_for_agent(address, serve, log)
        load = subprocess.Popen([str(Path(sys.executable).with_name("profkit")), "load", "--url",
                                 f"http://127.0.0.1:{port}", "--duration", "8", "--concurrency", "8",
                                 "--seed-per-tenant", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            handlers: list[dict[str, Any]] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and load.poll() is None:
                snap = snapshot("--agent", address)["snapshot"]
                assert snap["loop"]["steps_measured"]
                assert any(t["coro"].endswith("Server.serve") for t in snap["tasks"])
                # A handler lives for one request: the live ones have mostly not run yet, the ended ones
                # are added up by coroutine.
                handlers = [t for t in [*snap["tasks"], *snap["finished"]]
                            if "run_asgi" in t["coro"] and (t["busy_ms"] or 0) > 0]
                if handlers:
                    break
                time.sleep(0.2)
            assert handlers, "no request handler with busy time seen"
        finally:
            load.kill()
            load.wait()
    finally:
        serve.send_signal(2)
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


def test_errors_are_one_line(tmp_path: Path) -> None:
    gone = profkit("console", "--agent", f"127.0.0.1:{free_port()}", "--snapshot")
    assert gone.returncode == 11 and "nothing is listening" in one_line_error(gone)
    assert profkit("console", "--agent", "nohostport", "--snapshot").returncode == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("hello\n")
    assert "not a profkit console recording" in one_line_error(profkit("console", "--replay", str(bad)))
    assert "give one of" in one_line_error(profkit("console", "--snapshot", "--awaits"))
    assert "no process" in one_line_error(profkit("console", "--pid", "999999", "--snapshot"))
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert "not a Python process" in one_line_error(profkit("console", "--pid", str(sleeper.pid), "--snapshot"))
    finally:
        sleeper.kill()
        sleeper.wait()
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        no_agent = profkit("console", "--pid", str(plain.pid), "--snapshot", "--no-inject")
        assert "runs no profkit agent" in one_line_error(no_agent)
        no_loop = profkit("console", "--pid", str(plain.pid), "--snapshot")
        line = one_line_error(no_loop)
        assert "asyncio" in line or "debugger" in line, line
        assert plain.poll() is None, "the process died of the attempt"
    finally:
        plain.kill()
        plain.wait()
