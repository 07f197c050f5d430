"""py-spy: sampling CPU profiles of a child or a live pid, stack dumps, live top."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TargetError
from ..process import Completed, last_line, run
from ..tools import require


@dataclass(frozen=True)
class RecordFlags:
    rate: int = 100
    native: bool = False
    subprocesses: bool = False
    idle: bool = False
    gil: bool = False
    nonblocking: bool = False

    def argv(self) -> list[str]:
        out = ["--rate", str(self.rate)]
        for flag, on in (("--native", self.native), ("--subprocesses", self.subprocesses), ("--idle", self.idle),
                         ("--gil", self.gil), ("--nonblocking", self.nonblocking)):
            if on:
                out.append(flag)
        return out


# What a team leaves on (profkit ci's engine profile): py-spy reads the target's memory without
# pausing it (--nonblocking), so the target never stops for a sample. The price is the odd torn
# stack (a frame read while it changes), which is noise in a flamegraph of thousands of samples.
CONTINUOUS = RecordFlags(rate=100, nonblocking=True)


def explain_failure(proc: Completed, what: str) -> str:
    """py-spy's own error text, turned into one line that says what to do."""
    text = (proc.stderr + "\n" + proc.stdout).strip()
    low = text.lower()
    if "permission denied" in low or "operation not permitted" in low:
        return (f"py-spy may not read {what}: permission denied. Run as root, grant CAP_SYS_PTRACE "
                "(docker run --cap-add SYS_PTRACE), or set /proc/sys/kernel/yama/ptrace_scope to 0")
    if "failed to find python version" in low or "failed to get process executable" in low:
        return f"{what} is not a Python process py-spy understands (no Python interpreter found in it)"
    if "unsupported version" in low or ("python version" in low and "not supported" in low):
        return f"the Python version of {what} is not supported by this py-spy"
    if "no such process" in low or "failed to open process" in low:
        return f"{what} no longer exists"
    detail = last_line("\n".join(ln for ln in text.splitlines() if not ln.startswith("py-spy>")))
    return f"py-spy failed on {what}: {detail or f'exit code {proc.returncode}'}"


def record_argv(out: Path, flags: RecordFlags, *, pid: int | None, argv: list[str],
                duration: float | None) -> list[str]:
    """``py-spy record`` of raw (collapsed) stacks into ``out``, of a pid or of a program it starts."""
    cmd = [*require("py-spy").argv(), "record", "--format", "raw", "--output", str(out), *flags.argv()]
    if duration is not None:
        cmd += ["--duration", str(max(1, math.ceil(duration)))]
    if pid is not None:
        return [*cmd, "--pid", str(pid)]
    return [*cmd, "--", *argv]


def record(out: Path, flags: RecordFlags, *, pid: int | None, argv: list[str], duration: float | None,
           timeout: float) -> Completed:
    """Record raw (collapsed) stacks into ``out``."""
    return run(record_argv(out, flags, pid=pid, argv=argv, duration=duration), timeout=timeout, interruptible=True)


def dump(pid: int, *, native: bool, timeout: float = 60.0) -> list[dict[str, Any]]:
    cmd = [*require("py-spy").argv(), "dump", "--pid", str(pid), "--json"]
    if native:
        cmd.append("--native")
    proc = run(cmd, timeout=timeout)
    if proc.returncode != 0:
        raise TargetError(explain_failure(proc, f"pid {pid}"))
    try:
        threads: list[dict[str, Any]] = json.loads(proc.stdout)
    except ValueError as exc:
        raise TargetError(f"py-spy dump of pid {pid} printed no JSON: {proc.stdout[:200]!r}") from exc
    return threads
