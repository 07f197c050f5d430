"""What the console UI watches: a live agent, or a recording played back (profkit.render.tui.source)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .console_lints import Thresholds, with_warnings
from .errors import AgentUnreachable, TargetError
from .render.tui.source import SourceError
from .results import ConsoleSnapshot, StepHistogram, TaskDetail, TaskRow

if TYPE_CHECKING:
    from .services.console import Connection, Recording

_NO_HISTOGRAM: StepHistogram = {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None,
                                "buckets": []}


class LiveSource:
    """Snapshots from the agent, linted here; the blocking HTTP calls run in a thread."""

    live = True

    def __init__(self, conn: Connection, thresholds: Thresholds, *, interval: float) -> None:
        self.conn = conn
        self.thresholds = thresholds
        self.interval = interval
        where = f"pid {conn.pid} ({conn.address})" if conn.pid is not None else conn.address
        self.label = where + (f", agent injected with {conn.injected}" if conn.injected else "")

    async def snapshot(self) -> ConsoleSnapshot:
        try:
            snap = await asyncio.to_thread(self.conn.client.snapshot)
        except AgentUnreachable as exc:
            raise SourceError(str(exc)) from None
        return with_warnings(snap, self.thresholds)

    async def task(self, task_id: str) -> TaskDetail | None:
        try:
            return await asyncio.to_thread(self.conn.client.task, task_id)
        except AgentUnreachable as exc:
            raise SourceError(str(exc)) from None

    async def cancel(self, task_id: str) -> str:
        try:
            done = await asyncio.to_thread(self.conn.client.cancel, task_id)
        except AgentUnreachable as exc:
            raise SourceError(str(exc)) from None
        except TargetError as exc:
            return str(exc)
        return f"cancelled {done.get('coro') or task_id}"


def _detail_from_row(row: TaskRow) -> TaskDetail:
    # A recording keeps each snapshot's rows; a task's histograms and step history were not recorded.
    stack = [f"{f['function']} ({f['file']}:{f['line']})" for f in row["await_chain"]]
    return {"task": row, "stack": stack, "steps": _NO_HISTOGRAM, "scheduled": _NO_HISTOGRAM, "history": []}


class ReplaySource:
    """A recording, one snapshot per refresh, pausable and seekable (the UI's space, arrows, home/end)."""

    live = False

    def __init__(self, recording: Recording, *, label: str, interval: float) -> None:
        self.snapshots = recording.snapshots
        self.label = f"recording {label} (pid {recording.header.get('pid')})"
        self.interval = interval
        self.paused = False
        self._index = 0
        self._hold = True  # the next snapshot() shows the current index instead of moving on

    def position(self) -> tuple[int, int]:
        return self._index, len(self.snapshots)

    def seek(self, index: int) -> None:
        self._index = max(0, min(index, len(self.snapshots) - 1))
        self._hold = True

    async def snapshot(self) -> ConsoleSnapshot:
        # The first call, and the first after a seek, show where the replay stands; each later one
        # moves on while playing, stopping at the last.
        if not self._hold and not self.paused:
            self._index = min(self._index + 1, len(self.snapshots) - 1)
        self._hold = False
        return self.snapshots[self._index]

    async def task(self, task_id: str) -> TaskDetail | None:
        row = next((t for t in self.snapshots[self._index]["tasks"] if t["id"] == task_id), None)
        return None if row is None else _detail_from_row(row)

    async def cancel(self, task_id: str) -> str:
        return "a recording cannot cancel anything"
