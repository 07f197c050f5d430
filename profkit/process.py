"""The one gateway through which profkit starts other programs: argv lists, timeouts, clear errors."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
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


def require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(f"{name} is not installed: {hint}")
    return path


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
        cwd: Path | None = None) -> Completed:
    """Run to completion; a timeout kills the program *and everything it started*, then raises.

    The program gets a session of its own so that a timeout can end its whole process group: a
    profiler's helpers (the debugger memray attach starts, the program py-spy runs) must not
    outlive it.
    """
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True)
    except FileNotFoundError as exc:
        raise ToolMissing(f"{argv[0]} is not installed or not on PATH") from exc
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TargetError(f"{shlex.join(argv)} did not finish within {timeout:.0f} s and was stopped") from exc
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return Completed(tuple(argv), proc.returncode, stdout, stderr)


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
    env = dict(os.environ)
    env.update(extra)
    return env
