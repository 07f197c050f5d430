"""Time every event-loop step of the pure-Python asyncio loop, with the garbage collection inside it.

Shared by ``profkit async`` (the yappi runner) and the live agent (``profkit.agent``). It imports only
the standard library: both run inside the profiled program.

asyncio runs every callback of its loop through ``asyncio.events.Handle._run``; a task step is a
callback whose ``__self__`` is the task (``TaskStepMethWrapper`` and the wake-up method of the C
``Task`` both expose it). Replacing ``Handle._run`` on the class therefore sees every task of every
loop, including tasks created before the hook, at the cost of one Python call per callback. uvloop
runs callbacks in compiled code, which cannot be hooked: :func:`hookable` says so.

Scheduled time (ready to run but waiting for the loop) is the delay between a handle entering the
ready queue and its run: ``call_soon`` is stamped, and a timer's ready time is its deadline.

Garbage collection runs inside whatever step allocated enough to trigger it, so a step's wall time
can be mostly a collection the step's own code did not cause; ``gc.callbacks`` measures each
collection, and every step reports how much of it was collection, and of which generation.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

# A handle stamped by call_soon and cancelled before it runs is never popped: past this size the
# stamps are dropped rather than grown without bound (scheduled time is then unknown for a moment).
_MAX_STAMPS = 200_000


@dataclass
class Step:
    """One callback run by the loop."""

    handle: asyncio.events.Handle
    task: asyncio.Task[Any] | None  # the task this step belongs to, None for a plain callback
    start: float  # perf_counter
    wall: float  # seconds
    cpu: float  # thread CPU seconds
    gc: float  # seconds of garbage collection inside the step
    gc_generation: int | None  # the oldest generation collected inside it
    scheduled: float | None  # seconds it was ready before it ran; None when unknown


Sink = Callable[[Step], None]


@dataclass
class GcClock:
    """Collections, and the time spent in them, as ``gc.callbacks`` reports them."""

    total: float = 0.0
    longest: float = 0.0
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    oldest_since_mark: int = -1
    _started: float | None = None
    _thread: int | None = None
    running_generation: int | None = None  # of the collection in progress

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._thread = threading.get_ident()
            self.running_generation = int(info.get("generation", 0))
            return
        if self._started is None:
            return
        took = time.perf_counter() - self._started
        self._started = None
        generation = int(info.get("generation", 0))
        self.total += took
        self.longest = max(self.longest, took)
        if 0 <= generation < len(self.collections):
            self.collections[generation] += 1
        self.oldest_since_mark = max(self.oldest_since_mark, generation)

    def running_for(self) -> float | None:
        """How long the collection in progress has lasted, when one is (read from another thread)."""
        started = self._started
        return None if started is None else time.perf_counter() - started


class _Hook:
    """The one replacement of ``Handle._run`` and ``call_soon``; sinks come and go."""

    def __init__(self) -> None:
        self.sinks: list[Sink] = []
        self.gc = GcClock()
        self.stamps: dict[asyncio.events.Handle, float] = {}
        self.current: tuple[asyncio.events.Handle, float] | None = None  # the step running now
        self.current_gc_before = 0.0  # the collector's total when that step began
        self.codes: frozenset[CodeType] = frozenset({GcClock.callback.__code__})
        self._undo: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add(self, sink: Sink) -> None:
        with self._lock:
            if not self.sinks:
                self._install()
            self.sinks.append(sink)

    def remove(self, sink: Sink) -> None:
        with self._lock:
            if sink in self.sinks:
                self.sinks.remove(sink)
            if not self.sinks:
                self._uninstall()

    def _install(self) -> None:
        original_run = asyncio.events.Handle._run
        original_call_soon = asyncio.base_events.BaseEventLoop.call_soon
        hook = self
        stamps = self.stamps
        clock = self.gc
        perf, thread_time, monotonic = time.perf_counter, time.thread_time, time.monotonic

        def call_soon(loop: Any, callback: Any, *args: Any, context: Any = None) -> asyncio.events.Handle:
            handle = original_call_soon(loop, callback, *args, context=context)
            if len(stamps) < _MAX_STAMPS:
                stamps[handle] = perf()
            else:
                stamps.clear()
            return handle

        def _run(handle: asyncio.events.Handle) -> None:
            start = perf()
            stamped = stamps.pop(handle, None)
            if stamped is not None:
                scheduled: float | None = start - stamped
            elif isinstance(handle, asyncio.events.TimerHandle):
                # A timer is ready at its deadline (loop.time() is time.monotonic()).
                scheduled = max(0.0, monotonic() - handle.when())
            else:
                scheduled = None
            owner = getattr(getattr(handle, "_callback", None), "__self__", None)
            # A done callback that is a method of the finished task (aiomonitor's TracedTask adds
            # one) is not a step of that task: a task in a step is never done when it starts.
            task = owner if isinstance(owner, asyncio.Task) and not owner.done() else None
            gc_before = clock.total
            clock.oldest_since_mark = -1
            cpu0 = thread_time()
            hook.current_gc_before = gc_before
            hook.current = (handle, start)
            try:
                original_run(handle)
            finally:
                cpu = thread_time() - cpu0
                wall = perf() - start
                hook.current = None
                gc_in = clock.total - gc_before
                generation = clock.oldest_since_mark if gc_in > 0 else None
                step = Step(handle, task, start, wall, cpu, gc_in, generation, scheduled)
                for sink in hook.sinks:
                    sink(step)

        self.codes = frozenset({_run.__code__, call_soon.__code__, GcClock.callback.__code__})
        asyncio.events.Handle._run = _run  # type: ignore[method-assign,assignment]
        asyncio.base_events.BaseEventLoop.call_soon = call_soon  # type: ignore[method-assign,assignment]
        gc.callbacks.append(clock.callback)
        self._undo = [
            lambda: setattr(asyncio.events.Handle, "_run", original_run),
            lambda: setattr(asyncio.base_events.BaseEventLoop, "call_soon", original_call_soon),
            lambda: gc.callbacks.remove(clock.callback) if clock.callback in gc.callbacks else None,
            stamps.clear,
        ]

    def _uninstall(self) -> None:
        for undo in self._undo:
            undo()
        self._undo = []


_HOOK = _Hook()


def hookable(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether this loop runs its callbacks through ``asyncio.events.Handle._run`` (uvloop does not)."""
    return isinstance(loop, asyncio.base_events.BaseEventLoop)


def add_sink(sink: Sink) -> None:
    """Call ``sink`` after every callback any pure-Python asyncio loop of this process runs."""
    _HOOK.add(sink)


def remove_sink(sink: Sink) -> None:
    """Stop calling ``sink``; the last one removed puts asyncio back as it was."""
    _HOOK.remove(sink)


def gc_clock() -> GcClock:
    return _HOOK.gc


def current_step() -> tuple[asyncio.events.Handle, float] | None:
    """The callback running now and its perf_counter start (read from another thread to spot a blocked loop)."""
    return _HOOK.current


def current_step_gc() -> tuple[float, int | None]:
    """Seconds of garbage collection inside the step running now, finished collections and the one in
    progress, and the generation being collected now (None when none is)."""
    clock = _HOOK.gc
    running = clock.running_for()
    done = max(0.0, clock.total - _HOOK.current_gc_before)
    return done + (running or 0.0), clock.running_generation if running is not None else None


def own_codes() -> frozenset[CodeType]:
    """The code of this module's hooks, which run inside the program's frames: a stack reader leaves them out."""
    return _HOOK.codes
