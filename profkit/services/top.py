"""profkit top — a live view of a running process (py-spy top, in this terminal)."""

from __future__ import annotations

import sys

from ..errors import UsageError
from ..process import run_attached
from ..targets import require_python_pid
from ..tools import require


def run_top(*, pid: int, rate: int, native: bool, duration: float | None) -> None:
    tool = require("py-spy")
    if duration is not None and duration <= 0:
        raise UsageError("--duration must be positive")
    if not sys.stdout.isatty():
        raise UsageError("profkit top draws a live view and needs a terminal; for a snapshot use profkit dump --pid")
    require_python_pid(pid)
    argv = [*tool.argv(), "top", "--pid", str(pid), "--rate", str(rate)]
    if native:
        argv.append("--native")
    run_attached(argv, duration=duration, what=f"pid {pid}")
