"""The agent in real programs: ``python -m profkit.agent``, ``import profkit.agent.auto``, aiomonitor's own UIs,
detaching from a program that goes on, and the runner's exit statuses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from profkit.agent_client import AgentClient
from profkit.errors import AgentUnreachable
from profkit.process import free_port
from tests.helpers import PROGRAMS

pytestmark = pytest.mark.slow

TARGET = PROGRAMS / "agent_target.py"
START_S = 60.0


@contextmanager
def running(argv: list[str], *, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


def ready_agent(address: str, proc: subprocess.Popen[str]) -> AgentClient:
    client = AgentClient(address)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if client.info()["status"] == "ready":
                return client
        except AgentUnreachable:
            pass
        time.sleep(0.1)
    client.close()
    raise AssertionError(f"no agent became ready at {address}")


def snapshot_when(client: AgentClient, done: Any, timeout: float = 30.0) -> dict[str, Any]:
    """The first snapshot ``done`` accepts (the program needs a moment to do what is looked for)."""
    deadline = time.monotonic() + timeout
    while True:
        snap: dict[str, Any] = dict(client.snapshot())
        if done(snap) or time.monotonic() > deadline:
            return snap
        time.sleep(0.2)


def by_name(snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in snap["tasks"]}


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def plain_output(tmp_path: Path, *extra: str) -> str:
    """What the program prints without the agent (told to stop at once)."""
    stop = tmp_path / "plain-stop"
    stop.touch()
    done = subprocess.run([sys.executable, str(TARGET), "--until", str(stop), *extra], capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout


def test_a_real_program_is_watched_then_detached_and_goes_on_unchanged(tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    port, termui, webui, console = free_port(), free_port(), free_port(), free_port()
    argv = [sys.executable, "-m", "profkit.agent", "--port", str(port), "--monitor-ports",
            f"{termui},{webui},{console}", str(TARGET), "--until", str(stop)]
    with running(argv) as proc:
        client = ready_agent(f"127.0.0.1:{port}", proc)
        with client:
            info = client.info()
            assert info["pid"] == proc.pid and info["loop"] == "asyncio" and info["task_factory"] == "aiomonitor"
            assert info["monitor"] == {"host": "127.0.0.1", "termui_port": termui, "webui_port": webui,
                                       "console_port": console}

            snap = snapshot_when(client, lambda s: (by_name(s).get("blocker", {}).get("longest_step_ms") or 0) >= 40
                                 and (by_name(s).get("handler", {}).get("steps") or 0) > 20)
            tasks = by_name(snap)
            blocker, handler = tasks["blocker"], tasks["handler"]
            # 50 ms of CPU in one step cannot take less than 50 ms of wall time; the threshold leaves room.
            assert blocker["longest_step_ms"] >= 40 and blocker["cpu_ms"] >= 40
            assert handler["busy_ms"] > 0 and handler["longest_step_ms"] < blocker["longest_step_ms"]
            assert handler["seen_from_start"] and blocker["created"].startswith("agent_target.py:")
            chain = [f["function"] for f in tasks["sleeper-1"]["await_chain"]]
            assert chain[:2] == ["middle", "deep_wait"] and tasks["sleeper-1"]["state"] == "idle"
            defined = TARGET.read_text().splitlines().index("async def forgotten() -> None:") + 1
            assert snap["unawaited"] == [{"coro": "forgotten", "count": 1, "where": f"agent_target.py:{defined}"}]
            assert snap["loop"]["steps"] > 0 and snap["loop"]["lag_p99_ms"] is not None

            detail = client.task(blocker["id"])
            assert detail is not None and (detail["steps"]["max_ms"] or 0.0) >= 40 and detail["history"]

            awaits = client.awaits(1.0, 20)
            roots = {stack.split(";")[0] for stack in awaits["folded"]}
            assert {"handler", "blocker", "sleeper-0", "sleeper-1", "sleeper-2", "Task-* main"} <= roots
            assert any(s.startswith("sleeper-0;middle (agent_target.py:") for s in awaits["folded"])

            # aiomonitor's own web UI and telnet UI, on the ports given.
            live = httpx.post(f"http://127.0.0.1:{webui}/api/live-tasks", data={"filter": ""}, timeout=10,
                              trust_env=False).json()
            assert {"handler", "blocker", "sleeper-0"} <= {t["name"] for t in live["tasks"]}
            with socket.create_connection(("127.0.0.1", termui), timeout=10) as telnet:
                assert telnet.recv(64)  # the telnet server's negotiation: it is there and talking

            client.detach()
        deadline = time.monotonic() + 10
        while any(listening(p) for p in (port, termui, webui)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(listening(p) for p in (port, termui, webui))
        time.sleep(0.5)
        assert proc.poll() is None  # detached, not stopped
        stop.touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == plain_output(tmp_path)
    assert f"profkit agent: http://127.0.0.1:{port}" in err


def test_a_uvloop_program_has_tasks_chains_and_lag_but_no_step_figures(tmp_path: Path) -> None:
    pytest.importorskip("uvloop")
    stop = tmp_path / "stop"
    port = free_port()
    argv = [sys.executable, "-m", "profkit.agent", "--port", str(port), "--monitor-ports", "0,0,0", str(TARGET),
            "--until", str(stop), "--uvloop"]
    with running(argv) as proc:
        with ready_agent(f"127.0.0.1:{port}", proc) as client:
            snap = snapshot_when(client, lambda s: s["loop"]["lag_p99_ms"] is not None
                                 and by_name(s).get("sleeper-0", {}).get("state") == "idle")
            assert snap["loop"]["kind"] == "uvloop" and snap["loop"]["steps_measured"] is False
            tasks = by_name(snap)
            assert {"handler", "blocker", "sleeper-0"} <= set(tasks)
            assert tasks["blocker"]["longest_step_ms"] is None and tasks["handler"]["steps"] is None
            assert [f["function"] for f in tasks["sleeper-0"]["await_chain"]][:2] == ["middle", "deep_wait"]
            client.detach()
        stop.touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == plain_output(tmp_path, "--uvloop")


def test_import_profkit_agent_auto_starts_it_at_the_address_in_the_environment(tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    port = free_port()
    code = ("import profkit.agent.auto, runpy, sys; "
            f"sys.argv = [{str(TARGET)!r}, '--until', {str(stop)!r}]; "
            f"runpy.run_path({str(TARGET)!r}, run_name='__main__')")
    # Free aiomonitor ports too: its defaults may be taken by another test running at the same time.
    env = {**os.environ, "PROFKIT_AGENT": f"127.0.0.1:{port}", "PROFKIT_AGENT_MONITOR_PORTS": "0,0,0"}
    with running([sys.executable, "-c", code], env=env) as proc:
        with ready_agent(f"127.0.0.1:{port}", proc) as client:
            snap = snapshot_when(client, lambda s: "handler" in by_name(s))
            assert {"handler", "blocker"} <= set(by_name(snap))
        stop.touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == plain_output(tmp_path)


def run_agent(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "profkit.agent", "--port", "0", "--no-monitor", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def test_the_runner_ends_as_python_would(tmp_path: Path) -> None:
    (tmp_path / "exits.py").write_text("import sys\nprint('ran', sys.argv[1:])\nsys.exit(3)\n")
    (tmp_path / "says.py").write_text("import sys\nsys.exit('stopped: no config')\n")
    (tmp_path / "fails.py").write_text("def broken():\n    raise ValueError('bad input')\n\nbroken()\n")
    (tmp_path / "mod_here.py").write_text("import asyncio, sys\n"
                                          "async def main():\n    await asyncio.sleep(0)\n"
                                          "asyncio.run(main())\nprint('module', __name__, sys.argv[1:])\n")

    exits = run_agent("exits.py", "--flag", cwd=tmp_path)
    assert exits.returncode == 3 and exits.stdout == "ran ['--flag']\n"

    says = run_agent("says.py", cwd=tmp_path)
    assert says.returncode == 1 and says.stderr.strip().splitlines()[-1] == "stopped: no config"

    fails = run_agent("fails.py", cwd=tmp_path)
    assert fails.returncode == 1 and fails.stderr.splitlines()[-1] == "ValueError: bad input"
    assert 'fails.py", line 2, in broken' in fails.stderr
    assert "runpy" not in fails.stderr and "profkit" not in fails.stderr

    module = subprocess.run([sys.executable, "-m", "profkit.agent", "--port", "0", "--no-monitor", "-m", "mod_here",
                             "x"], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert module.returncode == 0, module.stderr
    assert module.stdout == "module __main__ ['x']\n" and "profkit agent: http://127.0.0.1:" in module.stderr


def test_a_taken_port_stops_the_runner_before_the_program_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "prog.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "profkit.agent", "--port", str(taken), "prog.py"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert done.returncode == 2 and not marker.exists()
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {taken}" in lines[0] and "Traceback" not in done.stderr

    refused = subprocess.run([sys.executable, "-m", "profkit.agent", "--host", "0.0.0.0", "prog.py"],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr and not marker.exists()
