"""profkit's error hierarchy. Errors become one line on stderr and an exit code in one place (cli.main)."""

from __future__ import annotations


class ProfkitError(Exception):
    """A failure the user can act on; the message says what happened and what to do."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(ProfkitError):
    exit_code = 2


class ToolMissing(ProfkitError):
    exit_code = 3


class TargetError(ProfkitError):
    """The process being profiled or driven failed, vanished or never came up."""

    exit_code = 4
