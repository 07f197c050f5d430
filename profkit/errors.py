"""profkit's errors and the exit code of each: the one table of exit codes.

Services raise these; only the CLI (``cli.main``) turns one into a line on stderr and an exit code.
An error may carry the result document of work that was done before it was raised (a profile of a
target that then crashed, a bench report with a regression in it): the CLI shows that result first,
so a CI gate gets both the report and the failure.

===== =====================================================================================
code  meaning
===== =====================================================================================
0     success
1     the job ran and its own check failed (load requests failed, a doctor check failed)
2     usage: a bad option, argument or combination, refused before any work
3     a tool profkit needs is missing
4     the target failed, vanished or never came up
5     the artifact store is not writable or the disk is full
6     peak memory over ``--peak-budget``
7     a baseline is missing, corrupted or not comparable
8     ``regress`` could not build one of its sides
10    a performance regression was found
11    no profkit agent answers (nothing listening, the connection dropped, the process exited)
12    code profkit injected into a live process ran there and raised
13    the profkit agent cannot start where asked (a taken port, a non-loopback address without leave)
130   interrupted (Ctrl-C)
===== =====================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

EXIT_INTERRUPTED = 130


class ProfkitError(Exception):
    """A failure the user can act on; the message says what happened and what to do."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, result: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


class CheckFailed(ProfkitError):
    """The work itself ran; what it found fails the check the command exists for."""

    exit_code = 1


class UsageError(ProfkitError):
    """A bad option, argument or combination, refused before any work."""

    exit_code = 2


class ToolMissing(ProfkitError):
    """A program profkit needs is not installed."""

    exit_code = 3


class TargetError(ProfkitError):
    """The process being profiled or driven failed, vanished or never came up."""

    exit_code = 4


class StoreError(ProfkitError):
    """The artifact store (or a report folder) cannot be written: permission, read-only, disk full."""

    exit_code = 5


class PeakBudgetExceeded(ProfkitError):
    """The run itself worked; its peak memory is over the limit the user set (a gate for CI)."""

    exit_code = 6


class BaselineError(ProfkitError):
    """A saved baseline is missing, corrupted, or was measured in a way that cannot be compared."""

    exit_code = 7


class RegressError(ProfkitError):
    """profkit regress could not check out, install or run one of its two sides."""

    exit_code = 8


class Interrupted(ProfkitError):
    """The user pressed Ctrl-C; what was recorded until then is kept and shown."""

    exit_code = EXIT_INTERRUPTED


class RegressionFound(ProfkitError):
    """A statistically real slowdown of more than 10 %."""

    exit_code = 10



class AgentUnreachable(ProfkitError):
    """No profkit agent answers at the address: nothing listens there, or the process went away."""

    exit_code = 11


class InjectedCodeFailed(ProfkitError):
    """Code injected into a live process (profkit.inject) ran there and raised; ``traceback`` is the
    target's formatted traceback."""

    exit_code = 12

    def __init__(self, message: str, *, traceback: str) -> None:
        super().__init__(message)
        self.traceback = traceback


class AgentConfigError(ProfkitError, ValueError):
    """The profkit agent (``profkit.agent``) cannot start as asked: a taken or bad port, a non-loopback
    address without ``allow_remote``, no event loop; refused before anything starts."""

    exit_code = 13
