"""Warnings over an agent's snapshot, like tokio-console's lints: what a person watching should look at.

Pure functions of one :class:`~profkit.results.ConsoleSnapshot`, so a live view, ``--snapshot --json``
and a replayed recording say the same thing about the same data.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from .results import ConsoleSnapshot, ConsoleWarning, TaskRow

SEVERITY = {"never-yields": 0, "blocking-step": 1, "loop-lag": 2, "gc-pause": 3, "never-awaited": 4,
            "idle-outlier": 5}


@dataclass(frozen=True)
class Thresholds:
    # asyncio's own debug mode calls a callback slow at 100 ms; a service with a latency budget of
    # tens of ms cannot afford a fifth of that in one step.
    block_ms: float = 20.0
    # A step still running after this long is not a slow step any more: the task does not yield.
    never_yields_ms: float = 1000.0
    lag_ms: float = 50.0
    # A task idle this many times longer than the median of its peers (same coroutine, at least
    # MIN_PEERS of them) and at least idle_floor_s: probably waiting on something that never comes.
    idle_factor: float = 10.0
    idle_floor_s: float = 30.0


MIN_PEERS = 3


def _who(t: TaskRow) -> str:
    return t["name"] if t["name"] == t["coro"] or not t["coro"] else f"{t['name']} ({t['coro']})"


def _step_warning(t: TaskRow, th: Thresholds) -> ConsoleWarning | None:
    longest = t["longest_step_ms"]
    if longest is None or longest <= th.block_ms:
        return None
    gc_ms = t["longest_step_gc_ms"] or 0.0
    if longest - gc_ms <= th.block_ms:
        generation = t["longest_step_gc_generation"]
        return {"kind": "gc-pause", "task_id": t["id"], "name": t["name"],
                "message": f"its longest step took {longest:.1f} ms, {gc_ms:.1f} ms of it garbage collection "
                           f"(generation {generation}): the collector, not {t['coro']}, held the loop",
                "value_ms": gc_ms}
    gc_note = f" ({gc_ms:.1f} ms of it garbage collection)" if gc_ms > 0 else ""
    return {"kind": "blocking-step", "task_id": t["id"], "name": t["name"],
            "message": f"{_who(t)} blocked the loop for {longest:.1f} ms in one step{gc_note}, "
                       f"over the {th.block_ms:g} ms threshold",
            "value_ms": longest}


def _idle_outliers(tasks: list[TaskRow], th: Thresholds) -> list[ConsoleWarning]:
    by_coro: dict[str, list[TaskRow]] = defaultdict(list)
    for t in tasks:
        if t["idle_ms"] is not None and t["state"] == "idle":
            by_coro[t["coro"]].append(t)
    found: list[ConsoleWarning] = []
    for coro, peers in by_coro.items():
        if len(peers) < MIN_PEERS:
            continue
        median = statistics.median(float(p["idle_ms"] or 0.0) for p in peers)
        for t in peers:
            idle = float(t["idle_ms"] or 0.0)
            if idle >= th.idle_floor_s * 1000.0 and idle > th.idle_factor * max(median, 1.0):
                found.append({"kind": "idle-outlier", "task_id": t["id"], "name": t["name"],
                              "message": f"idle {idle / 1000.0:.1f} s while the median of its {len(peers) - 1} "
                                         f"peers running {coro} is {median / 1000.0:.1f} s",
                              "value_ms": idle})
    return found


def lint(snapshot: ConsoleSnapshot, th: Thresholds = Thresholds()) -> list[ConsoleWarning]:
    """Every warning the snapshot deserves, the most urgent first."""
    found: list[ConsoleWarning] = []
    loop = snapshot["loop"]
    blocked = loop["blocked_for_ms"]
    running_now = None
    now_kind = None
    if blocked is not None and blocked > th.block_ms:
        running_now = next((t for t in snapshot["tasks"] if t["state"] == "running"), None)
        name = running_now["name"] if running_now else (loop["blocked_by"] or "a callback")
        who = _who(running_now) if running_now else name
        gc_ms = loop.get("blocked_gc_ms") or 0.0
        if blocked - gc_ms <= th.block_ms:
            now_kind = "gc-pause"
            generation = loop.get("blocked_gc_generation")
            of_gen = f" (generation {generation})" if generation is not None else ""
            message = (f"the step of {who} running now has lasted {blocked:.0f} ms, {gc_ms:.0f} ms of it garbage "
                       f"collection{of_gen}: the collector, not its code, holds the loop")
        elif blocked >= th.never_yields_ms:
            now_kind = "never-yields"
            message = f"{who} has not yielded for {blocked:.0f} ms"
        else:
            now_kind = "blocking-step"
            message = f"{who} is holding the loop right now: {blocked:.0f} ms"
        if gc_ms > 0 and now_kind != "gc-pause":
            message += f" ({gc_ms:.0f} ms of it garbage collection)"
        found.append({"kind": now_kind, "task_id": running_now["id"] if running_now else None, "name": name,
                      "message": message, "value_ms": blocked})
    for t in snapshot["tasks"]:
        w = _step_warning(t, th)
        # The task in a long step now is already named; its longest past step is only news when it says
        # something else (a GC pause in the past, blocking now).
        if w is not None and not (running_now is not None and t["id"] == running_now["id"] and w["kind"] == now_kind):
            found.append(w)
    lag = max(loop["lag_ms"], loop["lag_p99_ms"] or 0.0)
    if lag > th.lag_ms:
        found.append({"kind": "loop-lag", "task_id": None, "name": "event loop",
                      "message": f"callbacks wait {lag:.0f} ms for the loop (p99 {loop['lag_p99_ms'] or 0:.0f} ms, "
                                 f"max {loop['lag_max_ms'] or 0:.0f} ms)",
                      "value_ms": lag})
    for u in snapshot["unawaited"]:
        where = f" ({u['where']})" if u["where"] else ""
        found.append({"kind": "never-awaited", "task_id": None, "name": u["coro"],
                      "message": f"coroutine {u['coro']}{where} was created and never awaited {u['count']} time(s): "
                                 "its code never ran",
                      "value_ms": None})
    found += _idle_outliers(snapshot["tasks"], th)
    found.sort(key=lambda w: (SEVERITY.get(w["kind"], 9), -(w["value_ms"] or 0.0)))
    return found


def with_warnings(snapshot: ConsoleSnapshot, th: Thresholds = Thresholds()) -> ConsoleSnapshot:
    return {**snapshot, "warnings": lint(snapshot, th)}
