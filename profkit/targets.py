"""What a profiling command points at: a bundled scenario, a command line, or a live pid."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ProfkitError, TargetError, UsageError
from .process import child_timeout, pid_alive, run

DEFAULT_SCENARIO = "mixed"
_PYTHON_EXE = re.compile(r"^python(\d(\.\d+)?)?$")
_LIBPYTHON = re.compile(r"libpython(\d)\.(\d+)")
_FLAGS_WITH_VALUE = ("-X", "-W", "--check-hash-based-pycs")


@dataclass(frozen=True)
class Target:
    """Exactly one of: a scenario (run as a child), a command (run as a child), a pid (attach)."""

    kind: str  # "scenario" | "command" | "pid"
    argv: tuple[str, ...] = ()
    pid: int | None = None
    scenario: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "argv": list(self.argv), "pid": self.pid, "scenario": self.scenario}

    def timeout(self, duration: float, *, slowdown: float = 3.0) -> float:
        """How long a profiler of this target may run before it counts as hung."""
        return child_timeout(self.kind, duration, slowdown=slowdown)

    @property
    def label(self) -> str:
        if self.kind == "pid":
            return f"pid {self.pid}"
        if self.kind == "scenario":
            return f"scenario {self.scenario}"
        return " ".join(self.argv)


def scenario_argv(name: str, duration: float, *, asyncio_loop: bool = False) -> list[str]:
    """The bundled scenario as a plain Python process (engine in process, no HTTP)."""
    argv = [sys.executable, "-m", "agentmem.workload.run", name, "--duration", f"{duration:g}"]
    if asyncio_loop:
        argv += ["--loop", "asyncio"]
    return argv


def resolve(scenario: str | None, command: list[str], pid: int | None, *, duration: float,
            asyncio_loop: bool = False) -> Target:
    """Turn the three ways of naming a target into one, refusing ambiguous combinations."""
    given = sum(bool(x) for x in (scenario, command, pid is not None))
    if given > 1:
        raise UsageError("give one target: a scenario name, a command after --, or --pid PID")
    if pid is not None:
        check_pid(pid)
        return Target("pid", pid=pid)
    if command:
        return Target("command", argv=tuple(command))
    # The bundled engine is imported only when a scenario is asked for: profkit itself does not
    # depend on its sample workload.
    from agentmem.workload.scenarios import SCENARIOS

    name = scenario or DEFAULT_SCENARIO
    if name not in SCENARIOS:
        raise UsageError(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)} (or give -- COMMAND)")
    return Target("scenario", argv=tuple(scenario_argv(name, duration, asyncio_loop=asyncio_loop)), scenario=name)


def check_pid(pid: int) -> None:
    """A live process we may look at; raises one clear TargetError otherwise."""
    if pid <= 0:
        raise UsageError(f"--pid must be a positive process id, got {pid}")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise TargetError(f"no process with pid {pid} (has it exited?)") from None
    except PermissionError:
        raise TargetError(f"not allowed to inspect pid {pid}: run as its owner or as root") from None
    if not pid_alive(pid):
        raise TargetError(f"pid {pid} has exited (its parent has not reaped it yet)")


@dataclass(frozen=True)
class PythonInfo:
    executable: str | None
    version: tuple[int, int] | None


def python_of(pid: int) -> PythonInfo:
    """Whether pid runs CPython, and which version, from /proc (no ptrace needed)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = None
    version: tuple[int, int] | None = None
    try:
        maps = Path(f"/proc/{pid}/maps").read_text(errors="replace")
    except OSError:
        maps = ""
    m = _LIBPYTHON.search(maps)
    if m:
        version = (int(m.group(1)), int(m.group(2)))
    elif exe:
        name = Path(exe).name
        mv = re.match(r"^python(\d)\.(\d+)", name)
        if mv:
            version = (int(mv.group(1)), int(mv.group(2)))
        elif _PYTHON_EXE.match(name) or "python" in name:
            version = _version_from_exe(exe)
    return PythonInfo(exe, version)


def _version_from_exe(exe: str) -> tuple[int, int] | None:
    try:
        out = run([exe, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"], timeout=10)
    except (OSError, ProfkitError):  # a program that will not say its version is not one we can profile
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


Versions = tuple[tuple[int, int], tuple[int, int]]


def require_python_pid(pid: int, *, supported: Versions = ((3, 7), (3, 14))) -> PythonInfo:
    """The pid must run a CPython the tools support; one clear error otherwise."""
    check_pid(pid)
    info = python_of(pid)
    if info.version is None:
        raise TargetError(f"pid {pid} ({info.executable or 'unknown program'}) is not a Python process")
    lo, hi = supported
    if not lo <= info.version <= hi:
        raise TargetError(f"pid {pid} runs Python {info.version[0]}.{info.version[1]}, which the profiler does "
                          f"not support (supported: {lo[0]}.{lo[1]}-{hi[0]}.{hi[1]})")
    return info


@dataclass(frozen=True)
class PythonProgram:
    """``python SCRIPT ARGS``, ``python -m MODULE ARGS`` or ``python -c CODE ARGS``, for tools that run
    code in process."""

    script: str | None
    module: str | None
    args: tuple[str, ...]
    code: str | None = None


def python_program(target: Target, tool: str, *, code_ok: bool = False) -> PythonProgram:
    """The Python program of a command target; ``code_ok`` when the tool can run ``-c CODE`` too."""
    if target.kind == "pid":
        raise UsageError(f"{tool} cannot attach to a running process; give a scenario or -- python SCRIPT")
    argv = list(target.argv)
    if not argv or (not _PYTHON_EXE.match(Path(argv[0]).name) and argv[0] != sys.executable):
        raise UsageError(f"{tool} runs Python programs in process: give -- python SCRIPT ARGS or "
                         f"-- python -m MODULE ARGS (got {' '.join(argv) or 'nothing'})")
    rest = argv[1:]
    while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c"):
        # Interpreter flags such as -u or -X dev do not matter here; -X, -W and
        # --check-hash-based-pycs take the next word as their value unless it is attached (-Xdev).
        rest = rest[2:] if rest[0] in _FLAGS_WITH_VALUE else rest[1:]
    if rest[:1] == ["-c"]:
        if len(rest) < 2:
            raise UsageError("-c needs the code to run")
        if not code_ok:
            raise UsageError(f"{tool} runs a script or a module, not -c CODE: put the code in a file and give "
                             "-- python FILE")
        return PythonProgram(None, None, tuple(rest[2:]), code=rest[1])
    if rest[:1] == ["-m"]:
        if len(rest) < 2:
            raise UsageError("-m needs a module name")
        return PythonProgram(None, rest[1], tuple(rest[2:]))
    if not rest:
        raise UsageError("give the script to run after python")
    if not Path(rest[0]).is_file():
        raise UsageError(f"no such script: {rest[0]}")
    return PythonProgram(rest[0], None, tuple(rest[1:]))
