"""The console's warnings, on constructed snapshots."""

from __future__ import annotations

from typing import Any

from profkit.console_lints import Thresholds, lint, with_warnings
from profkit.results import ConsoleSnapshot, TaskRow


def task(name: str, **over: Any) -> TaskRow:
    row: dict[str, Any] = {"id": str(abs(hash(name))), "name": name, "coro": name, "state": "idle", "age_s": 10.0,
                           "seen_from_start": True, "steps": 10, "busy_ms": 5.0, "cpu_ms": 5.0, "idle_ms": 9000.0,
                           "scheduled_ms": 1.0, "longest_step_ms": 1.0, "longest_step_gc_ms": 0.0,
                           "longest_step_gc_generation": None, "awaiting": "sleep (x.py:1)", "await_chain": [],
                           "created": None}
    row.update(over)
    return row  # type: ignore[return-value]


def snapshot(tasks: list[TaskRow], **loop: Any) -> ConsoleSnapshot:
    return {"schema": 1, "taken_at": 0.0, "pid": 1, "python": "3.11.7", "agent_uptime_s": 10.0,
            "loop": {"kind": "asyncio", "steps_measured": True, "steps": 100, "lag_ms": 0.5, "lag_p99_ms": 1.0,
                     "lag_max_ms": 2.0, "blocked_for_ms": None, "blocked_by": None, **loop},
            "gc": {"collections": [1, 0, 0], "total_ms": 1.0, "longest_ms": 1.0},
            "tasks": tasks, "terminated": [], "unawaited": [], "warnings": []}


DEFAULT = Thresholds()


def kinds(snap: ConsoleSnapshot, th: Thresholds = DEFAULT) -> list[tuple[str, str]]:
    return [(w["kind"], w["name"]) for w in lint(snap, th)]


def test_a_quiet_process_has_no_warning() -> None:
    assert lint(snapshot([task("a"), task("b")])) == []


def test_a_long_step_is_blocking_and_named() -> None:
    snap = snapshot([task("fine"), task("blocker", longest_step_ms=52.0)])
    assert kinds(snap) == [("blocking-step", "blocker")]
    assert "52.0 ms" in lint(snap)[0]["message"]


def test_a_long_step_that_was_mostly_gc_blames_the_collector() -> None:
    snap = snapshot([task("creator", longest_step_ms=180.0, longest_step_gc_ms=170.0, longest_step_gc_generation=2)])
    [w] = lint(snap)
    assert w["kind"] == "gc-pause"
    assert "170.0 ms of it garbage collection (generation 2)" in w["message"]


def test_a_long_step_with_some_gc_stays_blocking_and_says_how_much() -> None:
    snap = snapshot([task("mixed", longest_step_ms=100.0, longest_step_gc_ms=30.0, longest_step_gc_generation=1)])
    [w] = lint(snap)
    assert w["kind"] == "blocking-step" and "30.0 ms of it garbage collection" in w["message"]


def test_the_step_running_now_is_reported_once_and_never_yielding_past_a_second() -> None:
    running = task("spinner", state="running", longest_step_ms=30.0)
    assert kinds(snapshot([running], blocked_for_ms=400.0, blocked_by="spinner")) == [("blocking-step", "spinner")]
    assert kinds(snapshot([running], blocked_for_ms=5000.0, blocked_by="spinner"))[0] == ("never-yields", "spinner")


def test_loop_lag_unawaited_and_idle_outliers() -> None:
    peers = [task(f"w{i}", coro="worker", idle_ms=2000.0) for i in range(4)]
    stuck = task("w-stuck", coro="worker", idle_ms=600_000.0)
    snap = snapshot([*peers, stuck], lag_ms=80.0)
    snap["unawaited"] = [{"coro": "forgotten", "count": 2, "where": "app.py:10"}]
    assert kinds(snap) == [("loop-lag", "event loop"), ("never-awaited", "forgotten"), ("idle-outlier", "w-stuck")]


def test_idle_outliers_need_enough_peers_and_a_long_idle() -> None:
    two = [task("a", coro="w", idle_ms=1000.0), task("b", coro="w", idle_ms=900_000.0)]
    assert lint(snapshot(two)) == []
    short = [task(f"w{i}", coro="w", idle_ms=10.0) for i in range(4)] + [task("x", coro="w", idle_ms=20_000.0)]
    assert lint(snapshot(short)) == []  # 2000x the median, but under the 30 s floor


def test_thresholds_are_the_users() -> None:
    snap = snapshot([task("t", longest_step_ms=15.0)])
    assert lint(snap) == []
    assert kinds(snap, Thresholds(block_ms=10.0)) == [("blocking-step", "t")]


def test_with_warnings_fills_the_snapshot_and_keeps_the_rest() -> None:
    snap = snapshot([task("blocker", longest_step_ms=52.0)])
    out = with_warnings(snap)
    assert out["tasks"] == snap["tasks"] and len(out["warnings"]) == 1 and snap["warnings"] == []


def test_a_step_running_now_that_is_mostly_a_collection_blames_the_collector() -> None:
    running = task("hoard", state="running", longest_step_ms=30.0, longest_step_gc_ms=28.0,
                   longest_step_gc_generation=2)
    [w] = lint(snapshot([running], blocked_for_ms=160.0, blocked_by="hoard", blocked_gc_ms=150.0,
                        blocked_gc_generation=2))
    assert w["kind"] == "gc-pause" and "150 ms of it garbage collection (generation 2)" in w["message"]
    both = kinds(snapshot([task("hoard", state="running", longest_step_ms=200.0, longest_step_gc_ms=190.0,
                                longest_step_gc_generation=2)], blocked_for_ms=90.0, blocked_by="hoard",
                          blocked_gc_ms=1.0))
    assert both == [("blocking-step", "hoard"), ("gc-pause", "hoard")]
