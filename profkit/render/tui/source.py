"""What the console app watches: anything that hands it snapshots, live from an agent or from a recording.

The app only ever awaits these methods, so a source over a blocking client (``profkit.agent_client``)
runs its calls in a thread (``asyncio.to_thread``): a slow agent must not freeze the keyboard.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...results import ConsoleSnapshot, TaskDetail


class SourceError(Exception):
    """The source cannot answer now (the agent dropped the connection, the process went away).

    The app shows "connection lost" with the message (one line, shown as it is), keeps what it last
    saw and retries with backoff. A :class:`~profkit.errors.ProfkitError` from a source is shown and
    retried the same way; any other exception is a bug and is not swallowed."""


class Source(Protocol):
    label: str  # what is being watched, for the header: "pid 4242 (127.0.0.1:20104)", "recording run-12"
    live: bool  # False for a replay: nothing can be cancelled in a recording
    interval: float  # seconds between refreshes

    async def snapshot(self) -> ConsoleSnapshot:
        """The current snapshot (the one at the current position, for a replay). Raises SourceError."""
        ...

    async def task(self, task_id: str) -> TaskDetail | None:
        """One task in detail, or None when it is gone (finished, or not in this recording). Raises SourceError."""
        ...

    async def cancel(self, task_id: str) -> str:
        """Cancel the task; a one-line outcome for the status bar ("cancelled worker-3", "task 0x7f.. is gone").
        Raises SourceError when the request could not be made."""
        ...


@runtime_checkable
class Seekable(Protocol):
    """A replay the user can pause and move through; the app offers space, ←/→, home/end when the source is one.

    Positions are 0-based indexes into the recording's snapshots. While ``paused`` is True, ``snapshot()``
    keeps returning the snapshot at the current position; otherwise the source advances on its own
    (one per call, or by the recording's clock: the source decides). After ``seek(i)`` the next
    ``snapshot()`` returns snapshot i, playing or paused: the app asks for it at once to show it."""

    paused: bool

    def position(self) -> tuple[int, int]:
        """(index of the current snapshot, number of snapshots); shown as "replay index+1/count"."""
        ...

    def seek(self, index: int) -> None:
        """Make ``index`` the current snapshot, clamped to [0, count - 1]."""
        ...
