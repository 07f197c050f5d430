"""The one gateway through which profkit starts other programs: argv lists, timeouts, clear errors."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from .errors import TargetError, ToolMissing

# A program run for the user's target gets this long to finish after --duration, for start-up,
# the profiler's own slowdown and writing its output; past it, it is hung and is stopped.
START_SLACK_S = 120.0
# A command the user gave runs as long as it runs; the timeout only catches a hung tool.
COMMAND_TIMEOUT_S = 24 * 3600.0


def child_timeout(kind: str, duration: float, *, slowdown: float = 3.0) -> float:
    """How long a profiler may run on a target of ``kind`` ("scenario", "command" or "pid").

    A scenario stops by itself after ``duration`` and a pid is sampled for ``duration``, but the
    profiler slows the work down by up to ``slowdown`` times; a command runs to its own end.
    """
    if kind == "command":
        return COMMAND_TIMEOUT_S
    return duration * slowdown + START_SLACK_S


def last_line(text: str, *, limit: int = 200) -> str:
    """The last non-empty line of a program's output (its error, usually), stripped and cut to ``limit``."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()[:limit]
    return ""


def exit_problem(returncode: int, detail: str = "", *, who: str = "the profiled program") -> str | None:
    """None for a clean exit, else one phrase: how the program ended, and its last words."""
    if returncode == 0:
        return None
    how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
    return f"{who} {how}" + (f" ({detail})" if detail else "")


def pid_alive(pid: int) -> bool:
    """True while pid runs; a zombie (exited, not yet reaped by its parent) counts as gone.

    /proc/PID/stat is readable for every user's processes, so this also answers for a pid that
    ``kill(pid, 0)`` would refuse with EPERM.
    """
    if pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself contain spaces.
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"], [])


# Variables of the user's shell that change what a tool prints rather than what it does: with
# RUST_BACKTRACE set, py-spy ends its error message with a backtrace, and the "last line" that
# explains the failure becomes "6: main".
_TOOL_NOISE = ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE")


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a tool runs with: the user's, less what only changes its messages."""
    env = {k: v for k, v in os.environ.items() if k not in _TOOL_NOISE}
    env.update(extra or {})
    return env


# After Ctrl-C, how long a profiler may take to write out what it has recorded.
INTERRUPT_GRACE_S = 30.0


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    interrupted: bool = False  # the user pressed Ctrl-C and the program was asked to stop early

    def last_error_line(self, *, limit: int = 200) -> str:
        """The last line the program wrote on stderr (else stdout): what to quote when it failed."""
        return last_line(self.stderr, limit=limit) or last_line(self.stdout, limit=limit)


def run(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
        cwd: Path | None = None, interruptible: bool = False) -> Completed:
    """Run to completion; a timeout kills the program *and everything it started*, then raises.

    The program gets a session of its own so that a timeout can end its whole process group: a
    profiler's helpers (the debugger memray attach starts, the program py-spy runs) must not
    outlive it. That also keeps the terminal's Ctrl-C from reaching it directly: with
    ``interruptible`` (a recording the user may cut short), Ctrl-C is passed on to the program's
    group as SIGINT, so the profiler stops and writes what it has, and the result says
    ``interrupted``; otherwise the group is killed and the KeyboardInterrupt goes on.
    """
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(env) if env is not None else tool_env(), cwd=cwd, start_new_session=True)
    except FileNotFoundError as exc:
        raise ToolMissing(f"{argv[0]} is not installed or not on PATH") from exc
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        proc.communicate()
        raise TargetError(f"{shlex.join(argv)} did not finish within {timeout:.0f} s and was stopped") from exc
    except KeyboardInterrupt:
        if not interruptible:
            _kill_group(proc)
            proc.wait()
            raise
        return _stop_early(proc, argv)
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    return Completed(tuple(argv), proc.returncode, stdout, stderr)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _stop_early(proc: subprocess.Popen[str], argv: Sequence[str]) -> Completed:
    """Ctrl-C during an interruptible run: SIGINT to the group, time to write, then the result."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
        _kill_group(proc)
        proc.wait()
        raise
    # What py-spy started (the profiled program) may outlive it; it goes with the recording.
    _kill_group(proc)
    return Completed(tuple(argv), proc.returncode, stdout or "", stderr or "", interrupted=True)


class Spawned:
    """A program started now and finished later (:meth:`finish`), so profkit can work meanwhile.

    The same rules as :func:`run`: its own session, killed with its group on timeout or when the
    block that owns it fails.
    """

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> None:
        self.argv = tuple(argv)
        try:
            self.proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         env=dict(env) if env is not None else tool_env(), start_new_session=True)
        except FileNotFoundError as exc:
            raise ToolMissing(f"{argv[0]} is not installed or not on PATH") from exc

    def finish(self, timeout: float) -> Completed:
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise TargetError(f"{shlex.join(self.argv)} did not finish within {timeout:.0f} s and was stopped") from exc
        except BaseException:
            self.kill()
            raise
        return Completed(self.argv, self.proc.returncode, stdout, stderr)

    def kill(self) -> None:
        if self.proc.returncode is None:
            _kill_group(self.proc)
            self.proc.communicate()


def run_attached(argv: Sequence[str], *, duration: float | None, what: str) -> int:
    """Run an interactive program on this terminal; stop it with SIGINT after ``duration`` seconds."""
    try:
        proc = subprocess.Popen(list(argv))
    except FileNotFoundError as exc:
        raise ToolMissing(f"{argv[0]} is not installed or not on PATH") from exc
    try:
        code = proc.wait(timeout=duration)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        return 0
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        return 0
    if code != 0:
        raise TargetError(f"{Path(argv[0]).name} stopped watching {what} (exit code {code}); has it exited?")
    return code


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Background:
    """A long-running child (e.g. the engine) that is always stopped when the block ends."""

    def __init__(self, argv: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._env = dict(env) if env is not None else None
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Background:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self._env,
                                         start_new_session=True)
        except FileNotFoundError as exc:
            log.close()
            raise ToolMissing(f"{self.argv[0]} is not installed or not on PATH") from exc
        self._log = log
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        """Wait until ``url`` answers 200, failing early if the child dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise TargetError(f"{self.argv[0]} exited with code {self.proc.returncode} before it was ready; "
                                  f"see {self.log_path}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TargetError(f"{url} did not come up within {timeout:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGINT first (the engine saves its index on a clean stop), SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        self._log.close()


def python_module(module: str, *args: str) -> list[str]:
    """argv to run a module with this interpreter (the one profkit is installed in)."""
    return [sys.executable, "-m", module, *args]


def child_env(**extra: str) -> dict[str, str]:
    return tool_env(extra)
