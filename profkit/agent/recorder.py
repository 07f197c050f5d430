"""Per-task step statistics of one event loop, fed by :mod:`profkit.loopclock` on the loop's own thread.

The sink runs after every callback of every pure-Python asyncio loop in the process, so it does as
little as it can: one dict lookup keyed by ``id(task)`` (the entry is a weak reference to the task,
which both checks the id was not reused and drops the entry when the task is collected), a few
additions, two histogram buckets and four numbers into a small ring buffer. Everything else (names,
await chains, percentiles) is worked out by whoever reads, on the agent's thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import loopclock
from .awaits import coro_name
from .histogram import BOUNDS

HISTORY_STEPS = 64
_RING = HISTORY_STEPS * 4  # (start, wall, cpu, gc) per step

Task = asyncio.Task[Any]


class TaskStats(weakref.ref[Task]):
    """What one task's steps added up to since the agent first saw it; a weak reference to the task."""

    __slots__ = ("busy", "cpu", "created", "cursor", "history", "key", "longest", "longest_gc", "longest_gen",
                 "sched_counts", "sched_max", "scheduled", "seen_from_start", "step_counts", "steps")

    def __new__(cls, task: Task, callback: Any, key: int, created: float, seen_from_start: bool) -> TaskStats:
        return super().__new__(cls, task, callback)

    def __init__(self, task: Task, callback: Any, key: int, created: float, seen_from_start: bool) -> None:
        super().__init__(task, callback)  # type: ignore[call-arg]
        self.key = key
        self.created = created  # perf_counter
        self.seen_from_start = seen_from_start
        self.steps = 0
        self.busy = 0.0
        self.cpu = 0.0
        self.scheduled = 0.0
        self.sched_max = 0.0
        self.longest = 0.0
        self.longest_gc = 0.0
        self.longest_gen: int | None = None
        self.step_counts: dict[int, int] = {}  # histogram.BOUNDS bucket: steps
        self.sched_counts: dict[int, int] = {}
        self.history = array("d")
        self.cursor = 0

    def recent(self) -> list[tuple[float, float, float, float]]:
        """The latest steps, oldest first: (start, wall, cpu, gc)."""
        ring = array("d", self.history)  # a copy: the loop may write meanwhile
        cursor = self.cursor if len(ring) >= _RING else 0
        flat = list(ring[cursor:]) + list(ring[:cursor])
        return [(flat[i], flat[i + 1], flat[i + 2], flat[i + 3]) for i in range(0, len(flat) - 3, 4)]


# Coroutines with finished tasks kept in the totals; past this (a program making coroutines by the
# thousand, e.g. lambdas wrapped in tasks) new ones are not counted.
MAX_COROUTINES = 2000


@dataclass(slots=True)
class Finished:
    """The steps of every ended task of one coroutine, added up."""

    tasks: int = 0
    steps: int = 0
    busy: float = 0.0
    cpu: float = 0.0
    scheduled: float = 0.0
    longest: float = 0.0


@dataclass(slots=True)
class Ended:
    """A task that finished, as the snapshot lists it."""

    id: str
    name: str
    coro: str
    created: float  # perf_counter
    ended: float  # perf_counter
    outcome: str  # "finished", "cancelled", "failed"
    exception: str | None
    cancelled_by: str | None


def outcome_of(task: Task) -> tuple[str, str | None]:
    if task.cancelled():
        return "cancelled", None
    # The attribute, not exception(): that would mark the exception retrieved, and asyncio would no
    # longer log "Task exception was never retrieved" for the program.
    exc = getattr(task, "_exception", None)
    return ("failed", repr(exc)) if exc is not None else ("finished", None)


class Recorder:
    def __init__(self, loop: asyncio.AbstractEventLoop, *, history: int) -> None:
        self.loop = loop
        self.measured = loopclock.hookable(loop)
        self.started = time.perf_counter()
        self.steps = 0
        self.tasks: dict[int, TaskStats] = {}
        self.ended: deque[Ended] = deque(maxlen=history)
        # Tasks of this class are recorded by the monitor (see aiomon.py), which is told here when they end.
        self.finished: dict[str, Finished] = {}  # by coroutine: the steps of its tasks that have ended
        self.recorded_elsewhere: type | None = None
        self.on_recorded_end: Callable[[Task], None] | None = None
        self._preexisting: weakref.WeakSet[Task] = weakref.WeakSet()
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """On the loop's thread (or before the loop runs): what exists now was not seen starting."""
        self.started = time.perf_counter()
        self._preexisting = weakref.WeakSet(asyncio.all_tasks(self.loop))
        if self.measured:
            loopclock.add_sink(self.sink)
        self._started = True

    def stop(self) -> None:
        with self._lock:
            if self._started:
                self._started = False
                if self.measured:
                    loopclock.remove_sink(self.sink)

    def sink(self, step: loopclock.Step, bisect: Any = bisect_right, bounds: list[float] = BOUNDS) -> None:
        # The hot path: after every callback of every loop of the process. Locals and inlined
        # histogram adds, because each attribute lookup and call here is paid millions of times.
        if step.handle._loop is not self.loop:  # type: ignore[attr-defined]
            return
        self.steps += 1
        task = step.task
        if task is None:
            return
        stats = self.tasks.get(id(task))
        if stats is None or stats() is not task:
            stats = self._first_step(task, step)
        wall = step.wall
        stats.steps += 1
        stats.busy += wall
        stats.cpu += step.cpu
        counts = stats.step_counts
        index = bisect(bounds, wall)
        counts[index] = counts.get(index, 0) + 1
        scheduled = step.scheduled
        if scheduled is not None:
            stats.scheduled += scheduled
            counts = stats.sched_counts
            index = bisect(bounds, scheduled)
            counts[index] = counts.get(index, 0) + 1
            if scheduled > stats.sched_max:
                stats.sched_max = scheduled
        if wall > stats.longest:
            stats.longest = wall
            stats.longest_gc = step.gc
            stats.longest_gen = step.gc_generation
        ring = stats.history
        if len(ring) < _RING:
            ring.extend((step.start, wall, step.cpu, step.gc))
        else:
            at = stats.cursor
            ring[at] = step.start
            ring[at + 1] = wall
            ring[at + 2] = step.cpu
            ring[at + 3] = step.gc
            stats.cursor = (at + 4) % _RING
        if task.done():
            self._ended(task, stats)

    def _first_step(self, task: Task, step: loopclock.Step) -> TaskStats:
        seen = task not in self._preexisting
        if seen:
            created = getattr(task, "_started_at", None)  # aiomonitor's TracedTask stamps its creation
            if not isinstance(created, float):
                # A task's first step is queued by its constructor: it was created when that was stamped.
                created = step.start - (step.scheduled or 0.0)
        else:
            created = self.started
        key = id(task)
        stats = TaskStats(task, self._forget, key, created, seen)
        self.tasks[key] = stats
        return stats

    def _forget(self, ref: weakref.ref[Task]) -> None:
        key = getattr(ref, "key", None)
        if key is not None and self.tasks.get(key) is ref:
            self.tasks.pop(key, None)

    def _ended(self, task: Task, stats: TaskStats) -> None:
        self.tasks.pop(id(task), None)
        # A request handler lives for one request: what its steps cost is only seen added up by coroutine.
        name = coro_name(task)
        total = self.finished.get(name)
        if total is None:
            if len(self.finished) >= MAX_COROUTINES:
                return
            total = self.finished[name] = Finished()
        total.tasks += 1
        total.steps += stats.steps
        total.busy += stats.busy
        total.cpu += stats.cpu
        total.scheduled += stats.scheduled
        if stats.longest > total.longest:
            total.longest = stats.longest
        if self.recorded_elsewhere is not None and isinstance(task, self.recorded_elsewhere):
            if self.on_recorded_end is not None:
                self.on_recorded_end(task)
            return
        outcome, exc = outcome_of(task)
        self.ended.append(Ended(str(id(task)), task.get_name(), coro_name(task), stats.created,
                                time.perf_counter(), outcome, exc, None))

    def stats_of(self, task: Task) -> TaskStats | None:
        stats = self.tasks.get(id(task))
        return stats if stats is not None and stats() is task else None

    def seen_from_start(self, task: Task) -> bool:
        return task not in self._preexisting
