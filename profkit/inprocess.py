"""Run a Python program inside this process the way ``python SCRIPT`` / ``python -m MODULE`` would.

Shared by the runners that must live in the profiled program's own process (the yappi runner, the
agent's ``python -m profkit.agent``). Standard library only: it is imported before the program.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import sys
import traceback
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def program_argv(argv: list[str], path0: str | None) -> Iterator[None]:
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = argv
    if path0 is not None:
        # `python SCRIPT` puts the script's folder first on sys.path; the program may rely on it.
        sys.path[0] = path0
    try:
        yield
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


def run_program(script: str | None, module: str | None, args: list[str]) -> None:
    if script is not None:
        # Python makes the main script's path absolute (3.9+); so do we, for __file__ and the profile.
        script = os.path.abspath(script)
        with program_argv([script, *args], os.path.dirname(script)):
            runpy.run_path(script, run_name="__main__")
    else:
        assert module is not None
        with program_argv([module, *args], None):
            runpy.run_module(module, run_name="__main__", alter_sys=True)


def exit_status(code: object) -> tuple[int, str | None]:
    """What `python` itself would do with SystemExit(code): its exit status and any message."""
    if code is None:
        return 0, None
    if isinstance(code, int):
        return code, None if code == 0 else f"exit code {code}"
    sys.stderr.write(f"{code}\n")
    return 1, str(code)


def print_program_traceback(exc: BaseException, *, runners: Callable[[str], bool]) -> None:
    """The traceback Python would show: the program's frames only (``runners`` says which files are not)."""
    te = traceback.TracebackException.from_exception(exc)
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if not runners(f.filename)])
    sys.stderr.write("".join(te.format()))
