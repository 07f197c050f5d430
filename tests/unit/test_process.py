"""profkit.process, the gateway to other programs: its pure helpers, and its checks on real short-lived children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from profkit.errors import TargetError, ToolMissing
from profkit.process import (
    COMMAND_TIMEOUT_S,
    START_SLACK_S,
    Background,
    Completed,
    child_timeout,
    exit_problem,
    last_line,
    pid_alive,
    run,
    tool_env,
)
from profkit.targets import Target, check_pid


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None


def _wait_for(condition: object, what: str, limit: float = 10.0) -> None:
    """Poll ``condition()`` until true; a bounded wait for the kernel to catch up, not a timing assertion."""
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


# -- last_line --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("", ""),
    ("\n\n   \n", ""),
    ("one", "one"),
    ("first\nTraceback...\nValueError: bad value\n\n", "ValueError: bad value"),
    ("  indented last words  \n  \n", "indented last words"),
    ("a\r\nb\r\n", "b"),
])
def test_last_line_is_the_last_non_blank_line_stripped(text: str, expected: str) -> None:
    assert last_line(text) == expected


def test_last_line_is_cut_to_the_limit() -> None:
    assert last_line("x" * 500) == "x" * 200
    assert last_line("early\n" + "y" * 50, limit=10) == "y" * 10


def test_completed_quotes_stderr_first_then_stdout() -> None:
    assert Completed(("p",), 1, "out last\n", "err last\n\n").last_error_line() == "err last"
    assert Completed(("p",), 1, "out last\n", "  \n").last_error_line() == "out last"
    assert Completed(("p",), 1, "", "").last_error_line() == ""


# -- exit_problem -----------------------------------------------------------------------------------


def test_exit_problem_is_none_for_a_clean_exit_whatever_the_detail() -> None:
    assert exit_problem(0) is None
    assert exit_problem(0, "noise on stderr") is None


@pytest.mark.parametrize(("code", "detail", "who", "expected"), [
    (1, "", "the profiled program", "the profiled program exited with code 1"),
    (3, "RuntimeError: boom", "the profiled program", "the profiled program exited with code 3 (RuntimeError: boom)"),
    (-9, "", "pid 42", "pid 42 was killed by signal 9"),
    (-11, "core dumped", "python app.py", "python app.py was killed by signal 11 (core dumped)"),
])
def test_exit_problem_says_how_it_ended(code: int, detail: str, who: str, expected: str) -> None:
    assert exit_problem(code, detail, who=who) == expected


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGSEGV])
def test_exit_problem_names_the_signal_that_really_ended_a_child(sig: signal.Signals) -> None:
    # GIVEN a real child that kills itself with a signal
    proc = subprocess.run([sys.executable, "-c", f"import os; os.kill(os.getpid(), {int(sig)})"], check=False)
    # THEN its return code, read by exit_problem, names that signal
    assert exit_problem(proc.returncode) == f"the profiled program was killed by signal {int(sig)}"


# -- child_timeout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["scenario", "pid"])
def test_child_timeout_of_a_bounded_target_is_its_slowed_duration_plus_slack(kind: str) -> None:
    assert child_timeout(kind, 10.0) == 10.0 * 3.0 + START_SLACK_S
    assert child_timeout(kind, 2.0, slowdown=10.0) == 20.0 + START_SLACK_S
    assert Target(kind).timeout(4.0, slowdown=2.0) == 8.0 + START_SLACK_S


def test_child_timeout_of_a_command_ignores_the_duration() -> None:
    """A command runs to its own end: only a hung tool is stopped."""
    assert child_timeout("command", 1.0) == child_timeout("command", 500.0, slowdown=10.0) == COMMAND_TIMEOUT_S
    assert Target("command", argv=("python", "x.py")).timeout(1.0) == COMMAND_TIMEOUT_S


# -- pid_alive ----------------------------------------------------------------------------------------


def test_pid_alive_for_this_process_and_never_for_impossible_pids() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0)
    assert not pid_alive(-1)
    assert not pid_alive(2**22 + 12345)  # above pid_max: no such /proc entry


def test_pid_alive_follows_a_real_child_from_running_to_reaped() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)


def test_a_zombie_child_counts_as_gone() -> None:
    # GIVEN a child that has exited but that we have not reaped (Popen reaps only in poll/wait)
    child = subprocess.Popen(["true"])
    try:
        _wait_for(lambda: _state(child.pid) == "Z", "the child to become a zombie")
        # THEN its /proc entry is still there, but pid_alive says it is gone
        assert Path(f"/proc/{child.pid}").exists()
        assert not pid_alive(child.pid)
        # AND check_pid, which kill(pid, 0) alone would let through, refuses it in one clear error
        with pytest.raises(TargetError, match="has exited"):
            check_pid(child.pid)
    finally:
        child.wait()


def test_pid_alive_reads_a_command_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    # GIVEN a process whose command name (the part of /proc/PID/stat in parentheses) has ") S (" in it
    odd = tmp_path / "a) Z (b"
    odd.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(odd), "30"])
    try:
        _wait_for(lambda: ") Z (" in Path(f"/proc/{child.pid}/stat").read_text(), "the exec of the odd name")
        # THEN the state is read after the last parenthesis: it runs
        assert pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()


# -- tool_env -----------------------------------------------------------------------------------------


def test_tool_env_drops_rust_backtrace_and_keeps_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    monkeypatch.setenv("RUST_LIB_BACKTRACE", "full")
    monkeypatch.setenv("PROFKIT_TEST_KEEP", "kept")
    env = tool_env({"EXTRA": "x"})
    assert "RUST_BACKTRACE" not in env and "RUST_LIB_BACKTRACE" not in env
    assert env["PROFKIT_TEST_KEEP"] == "kept" and env["EXTRA"] == "x"
    assert env["PATH"] == os.environ["PATH"]


def test_tool_env_lets_the_caller_set_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", "/somewhere/else")
    assert tool_env({"TMPDIR": "/private"})["TMPDIR"] == "/private"
    assert tool_env()["TMPDIR"] == "/somewhere/else"


def test_run_gives_a_tool_the_environment_without_rust_backtrace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    done = run([sys.executable, "-c", "import os; print(os.environ.get('RUST_BACKTRACE'))"], timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "None"


# -- run / Background ---------------------------------------------------------------------------------


def test_run_returns_both_streams_and_the_code() -> None:
    done = run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
               timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    assert done.argv[0] == sys.executable


def test_run_of_a_missing_program_is_tool_missing() -> None:
    with pytest.raises(ToolMissing, match="no-such-profiler-here is not installed"):
        run(["no-such-profiler-here", "--version"], timeout=5)


def test_run_timeout_stops_the_program_and_everything_it_started(tmp_path: Path) -> None:
    # GIVEN a program that starts a grandchild and then hangs
    pid_file = tmp_path / "grandchild.pid"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    # WHEN it outlives its timeout
    with pytest.raises(TargetError, match="did not finish within"):
        run(["sh", "-c", script], timeout=1.0)
    # THEN the grandchild was stopped with it (the whole process group was killed)
    grandchild = int(pid_file.read_text())
    _wait_for(lambda: not pid_alive(grandchild), "the grandchild to die")


def test_background_of_a_missing_program_is_tool_missing(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing):
        with Background(["no-such-engine-here"], log_path=tmp_path / "logs" / "engine.log"):
            pass
    assert (tmp_path / "logs").is_dir()


def test_background_that_dies_before_it_answers_says_so(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    argv = [sys.executable, "-c", "print('starting'); raise SystemExit(3)"]
    with pytest.raises(TargetError, match=r"exited with code 3 before it was ready; see .*engine\.log"):
        with Background(argv, log_path=log) as child:
            child.wait_http("http://127.0.0.1:9/health", timeout=60)
    assert "starting" in log.read_text()
