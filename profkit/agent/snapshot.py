"""What the agent answers with, built on the agent's thread from what the loop's thread recorded.

Nothing here runs on the loop, so a snapshot can be taken while the loop is stuck in one step: that
step shows up as ``loop.blocked_for_ms`` / ``blocked_by`` and its task as "running", with the Python
stack the step is in right now as its await chain.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from .. import loopclock
from ..results import (
    ConsoleSnapshot,
    FinishedCoroutine,
    GcState,
    LoopState,
    StepHistogram,
    TaskDetail,
    TaskRow,
    TerminatedTask,
)
from . import histogram
from .awaits import Chain, chain, coro_name, folded_key
from .recorder import Ended

if TYPE_CHECKING:
    from .core import Agent

SCHEMA = 1
TERMINATED_SHOWN = 100  # newest first; the rest stays in aiomonitor's own UIs

Task = asyncio.Task[Any]


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def all_tasks(loop: asyncio.AbstractEventLoop) -> list[Task]:
    # asyncio.all_tasks copies its weak set with retries: safe from another thread.
    return sorted(asyncio.all_tasks(loop), key=id)


@dataclass(frozen=True)
class Running:
    """The step the loop is in right now, if any."""

    task: Task | None
    by: str | None
    for_s: float | None
    top: FrameType | None  # the loop thread's current frame, when a task is in the step
    gc_s: float | None = None  # garbage collection inside the step so far
    gc_generation: int | None = None  # the generation being collected now


NOT_RUNNING = Running(None, None, None, None)


def _in_coroutine(tasks: list[Task], loop_thread: int | None, blocked_for: float | None) -> Running:
    # Without the step hook (uvloop) the task in a step is the one whose coroutine is executing; how
    # long the loop has been held is at least the age of the lag probe still waiting for it.
    for task in tasks:
        if getattr(task.get_coro(), "cr_running", False):
            top = sys._current_frames().get(loop_thread) if loop_thread is not None else None
            return Running(task, task.get_name(), blocked_for, top)
    return NOT_RUNNING


def running_now(agent: Agent, tasks: list[Task]) -> Running:
    """The step the agent's loop is in right now (``tasks``: its tasks, for loops without the step hook)."""
    loop, loop_thread = agent.loop, agent.loop_thread()
    if agent.recorder is None or not agent.recorder.measured:
        return _in_coroutine(tasks, loop_thread, agent.lag.pending() if agent.lag is not None else None)
    current = loopclock.current_step()
    if current is None:
        return NOT_RUNNING
    handle, start = current
    if getattr(handle, "_loop", None) is not loop:
        return NOT_RUNNING
    callback = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    task = owner if isinstance(owner, asyncio.Task) and not owner.done() else None
    if task is not None:
        by = task.get_name()
    else:
        by = getattr(callback, "__qualname__", None) or type(callback).__qualname__
    top = sys._current_frames().get(loop_thread) if task is not None and loop_thread is not None else None
    gc_s, gc_generation = loopclock.current_step_gc()
    return Running(task, str(by), time.perf_counter() - start, top, gc_s, gc_generation)


def task_row(agent: Agent, task: Task, now: float, running: Running,
             skip: frozenset[CodeType]) -> tuple[TaskRow, Chain]:
    recorder = agent.recorder
    assert recorder is not None
    is_running = task is running.task
    found = chain(task, skip=skip, running_top=running.top if is_running else None)
    if is_running:
        state = "running"
    elif task.done():
        state = "done"
    else:
        waiter = getattr(task, "_fut_waiter", None)
        state = "scheduled" if waiter is None or waiter.done() else "idle"
    stats = recorder.stats_of(task)
    seen = stats.seen_from_start if stats is not None else recorder.seen_from_start(task)
    if stats is not None:
        created = stats.created
    elif seen:  # created since the agent started, and not run yet
        stamped = getattr(task, "_started_at", None)
        created = stamped if isinstance(stamped, float) else now
    else:
        created = recorder.started
    age = max(0.0, now - created)
    row: TaskRow = {
        "id": str(id(task)),
        "name": task.get_name(),
        "coro": coro_name(task),
        "state": state,
        "age_s": round(age, 3),
        "seen_from_start": seen,
        "steps": None, "busy_ms": None, "cpu_ms": None, "idle_ms": None, "scheduled_ms": None,
        "longest_step_ms": None, "longest_step_gc_ms": None, "longest_step_gc_generation": None,
        "awaiting": found.awaiting(),
        "await_chain": [f.as_dict() for f in found.frames],
        "created": agent.monitor.created(task) if agent.monitor is not None else None,
    }
    if recorder.measured:
        busy = stats.busy if stats is not None else 0.0
        scheduled = stats.scheduled if stats is not None else 0.0
        in_step = (running.for_s or 0.0) if is_running else 0.0
        row.update({
            "steps": stats.steps if stats is not None else 0,
            "busy_ms": _ms(busy),
            "cpu_ms": _ms(stats.cpu) if stats is not None else 0.0,
            "idle_ms": _ms(max(0.0, age - busy - scheduled - in_step)),
            "scheduled_ms": _ms(scheduled),
        })
        if stats is not None and stats.steps:
            row.update({
                "longest_step_ms": _ms(stats.longest),
                "longest_step_gc_ms": _ms(stats.longest_gc),
                "longest_step_gc_generation": stats.longest_gen,
            })
    return row, found


def _terminated(agent: Agent, now: float) -> list[TerminatedTask]:
    ended: list[Ended] = []
    if agent.recorder is not None:
        ended += list(agent.recorder.ended)
    if agent.monitor is not None:
        agent.monitor.drain()
        ended += list(agent.monitor.ended)
    ended.sort(key=lambda e: -e.ended)
    return [{"id": e.id, "name": e.name, "coro": e.coro, "ended_s_ago": round(now - e.ended, 3),
             "lived_s": round(max(0.0, e.ended - e.created), 3), "outcome": e.outcome, "exception": e.exception,
             "cancelled_by": e.cancelled_by} for e in ended[:TERMINATED_SHOWN]]


def loop_kind(loop: asyncio.AbstractEventLoop | None) -> str:
    if loop is None:
        return "unknown"
    if type(loop).__module__.split(".")[0] == "uvloop":
        return "uvloop"
    return "asyncio" if loopclock.hookable(loop) else type(loop).__qualname__


def _loop_state(agent: Agent, running: Running) -> LoopState:
    assert agent.recorder is not None and agent.lag is not None
    latest, p99, worst = agent.lag.state()
    return {
        "kind": loop_kind(agent.loop),
        "steps_measured": agent.recorder.measured,
        "steps": agent.recorder.steps,
        "lag_ms": _ms(latest),
        "lag_p99_ms": None if p99 is None else _ms(p99),
        "lag_max_ms": None if worst is None else _ms(worst),
        "blocked_for_ms": None if running.for_s is None else _ms(running.for_s),
        "blocked_by": running.by,
        "blocked_gc_ms": None if running.gc_s is None else _ms(running.gc_s),
        "blocked_gc_generation": running.gc_generation,
    }


def _gc_state(agent: Agent) -> GcState:
    clock = agent.gc
    return {"collections": list(clock.collections), "total_ms": _ms(clock.total), "longest_ms": _ms(clock.longest)}


def snapshot(agent: Agent) -> ConsoleSnapshot:
    assert agent.loop is not None and agent.recorder is not None
    now = time.perf_counter()
    live = all_tasks(agent.loop)
    running = running_now(agent, live)
    skip = agent.skip_codes()
    tasks = [task_row(agent, t, now, running, skip)[0] for t in live]
    return {
        "schema": SCHEMA,
        "taken_at": time.time(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "agent_uptime_s": round(now - agent.started_perf, 3),
        "loop": _loop_state(agent, running),
        "gc": _gc_state(agent),
        "tasks": tasks,
        "terminated": _terminated(agent, now),
        "unawaited": agent.unawaited.rows(),
        "warnings": [],
        "finished": _finished(agent),
    }


def _finished(agent: Agent) -> list[FinishedCoroutine]:
    recorder = agent.recorder
    if recorder is None or not recorder.measured:
        return []
    rows: list[FinishedCoroutine] = [
        {"coro": name, "tasks": f.tasks, "steps": f.steps, "busy_ms": _ms(f.busy), "cpu_ms": _ms(f.cpu),
         "scheduled_ms": _ms(f.scheduled), "longest_step_ms": _ms(f.longest)}
        for name, f in list(recorder.finished.items())]
    rows.sort(key=lambda r: -r["busy_ms"])
    return rows


def find_task(loop: asyncio.AbstractEventLoop, task_id: str) -> Task | None:
    return next((t for t in all_tasks(loop) if str(id(t)) == task_id), None)


def task_detail(agent: Agent, task: Task) -> TaskDetail:
    assert agent.loop is not None and agent.recorder is not None
    now = time.perf_counter()
    running = running_now(agent, [task])
    row, found = task_row(agent, task, now, running, agent.skip_codes())
    stats = agent.recorder.stats_of(task)
    stack = [f.formatted() for f in found.frames] + ([found.leaf] if found.leaf else [])
    history = [{"at_s": round(start - agent.started_perf, 6), "wall_ms": _ms(wall), "cpu_ms": _ms(cpu),
                "gc_ms": _ms(gc)} for start, wall, cpu, gc in (stats.recent() if stats is not None else [])]
    empty: StepHistogram = {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "buckets": []}
    return {
        "task": row,
        "stack": stack,
        "steps": histogram.summary(stats.step_counts, stats.longest) if stats is not None else empty,
        "scheduled": histogram.summary(stats.sched_counts, stats.sched_max) if stats is not None else empty,
        "history": history,
    }


def sample_awaits(agent: Agent, duration: float, hz: float, stopped: Any) -> dict[str, Any]:
    """Every task's await chain, ``hz`` times a second for ``duration`` seconds, folded."""
    assert agent.loop is not None
    folded: Counter[str] = Counter()
    interval = 1.0 / hz
    start = time.perf_counter()
    deadline = start + duration
    due = start
    samples = 0
    skip = agent.skip_codes()
    while not stopped():
        live = all_tasks(agent.loop)
        running = running_now(agent, live)
        for task in live:
            found = chain(task, skip=skip, running_top=running.top if task is running.task else None)
            folded[folded_key(task, found)] += 1
        samples += 1
        due += interval
        now = time.perf_counter()
        if due >= deadline:
            break
        if due < now:  # fell behind (many tasks, a high rate): skip the missed ticks
            due = now
        time.sleep(due - now)
    return {"duration_s": round(time.perf_counter() - start, 3), "hz": hz, "samples": samples,
            "folded": dict(folded)}
