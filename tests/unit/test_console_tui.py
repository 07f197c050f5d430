"""The console's terminal UI, headless (Textual's run_test), over in-memory sources built here by hand."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from profkit.console_sources import ReplaySource
from profkit.render.tui.app import ConsoleApp
from profkit.render.tui.format import histogram_lines, ms, seconds
from profkit.render.tui.retry import Backoff
from profkit.render.tui.screens import ConfirmScreen, TaskScreen
from profkit.render.tui.source import Seekable, Source, SourceError
from profkit.render.tui.task_table import TaskTable
from profkit.render.tui.tasks import Sort
from profkit.results import ConsoleSnapshot, StepHistogram, TaskDetail, TaskRow
from profkit.services.console import Recording

SIZE = (120, 40)
# Long enough that the timer never fires during a test that drives refreshes itself.
NEVER = 3600.0


def task(task_id: str, name: str, *, busy: float | None, steps: int = 10, state: str = "idle",
         coro: str = "worker") -> TaskRow:
    return {"id": task_id, "name": name, "coro": coro, "state": state, "age_s": 12.0, "seen_from_start": True,
            "steps": steps, "busy_ms": busy, "cpu_ms": busy, "idle_ms": 5000.0, "scheduled_ms": 1.5,
            "longest_step_ms": 3.0, "longest_step_gc_ms": None, "longest_step_gc_generation": None,
            "awaiting": "sleep (/srv/app/jobs.py:41)",
            "await_chain": [{"function": "run", "file": "/srv/app/jobs.py", "line": 40},
                            {"function": "sleep", "file": "/srv/app/jobs.py", "line": 41}],
            "created": "/srv/app/main.py:12"}


def snapshot(tasks: list[TaskRow], *, pid: int = 4242) -> ConsoleSnapshot:
    return {"schema": 1, "taken_at": 1_700_000_000.0, "pid": pid, "python": "3.11.9", "agent_uptime_s": 75.0,
            "loop": {"kind": "asyncio", "steps_measured": True, "steps": 1234, "lag_ms": 0.4, "lag_p99_ms": 2.5,
                     "lag_max_ms": 9.0, "blocked_for_ms": None, "blocked_by": None},
            "gc": {"collections": [10, 2, 0], "total_ms": 12.5, "longest_ms": 4.0},
            "tasks": tasks,
            "terminated": [{"id": "900", "name": "old-job", "coro": "job", "ended_s_ago": 3.0, "lived_s": 1.0,
                            "outcome": "failed", "exception": "ValueError('bad row')", "cancelled_by": None}],
            "unawaited": [],
            "warnings": [{"kind": "blocking-step", "task_id": "2", "name": "hog",
                          "message": "hog (worker) blocked the loop for 80.0 ms in one step", "value_ms": 80.0}]}


TASKS = [task("1", "light", busy=5.0), task("2", "hog", busy=900.0), task("3", "medium", busy=120.0),
         task("4", "fresh", busy=None, steps=0)]

STEPS: StepHistogram = {"count": 140, "p50_ms": 0.8, "p90_ms": 4.2, "p99_ms": 37.0, "max_ms": 80.0,
                        "buckets": [[1.0, 100], [5.0, 30], [50.0, 9], [100.0, 1]]}


class MemorySource:
    """A live source over snapshots held in memory; records what the app asked of it."""

    label = "pid 4242 (in memory)"
    live = True

    def __init__(self, snaps: list[ConsoleSnapshot], *, interval: float = NEVER) -> None:
        self.snaps = snaps
        self.interval = interval
        self.calls = 0
        self.cancelled: list[str] = []
        self.failing = False

    async def snapshot(self) -> ConsoleSnapshot:
        self.calls += 1
        if self.failing:
            raise SourceError("the agent at 127.0.0.1:20104 dropped the connection")
        return self.snaps[0]

    async def task(self, task_id: str) -> TaskDetail | None:
        row = next((t for t in self.snaps[0]["tasks"] if t["id"] == task_id), None)
        if row is None:
            return None
        return {"task": row, "stack": ["main (/srv/app/main.py:20)", "run (/srv/app/jobs.py:40)"],
                "steps": STEPS, "scheduled": {**STEPS, "p99_ms": 3.0, "buckets": [[1.0, 130], [5.0, 10]]},
                "history": [{"at_s": 70.0, "wall_ms": 2.0, "cpu_ms": 1.9, "gc_ms": 0.0}]}

    async def cancel(self, task_id: str) -> str:
        self.cancelled.append(task_id)
        return f"cancelled {task_id}"


def replay(snaps: list[ConsoleSnapshot]) -> ReplaySource:
    """profkit's own replay source over a recording of these snapshots."""
    header = {"format": "profkit-console-recording", "version": 1, "pid": snaps[0]["pid"]}
    return ReplaySource(Recording(header, snaps), label="run-1", interval=NEVER)


def in_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """An async test run in a loop of its own (the suite has no async test plugin)."""
    def run() -> None:
        asyncio.run(test())
    run.__doc__ = test.__doc__
    return run


def text(app: ConsoleApp, selector: str) -> str:
    content = app.screen.query_one(selector, Static).content
    return content.plain if isinstance(content, Text) else str(content)


def names(app: ConsoleApp) -> list[str]:
    return [t["name"] for t in app.query_one("#tasks", TaskTable).rows]


def line(app: ConsoleApp, y: int) -> str:
    """Line y of the tasks table as painted (0 is its header)."""
    return app.query_one("#tasks", TaskTable).render_line(y).text


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the app did not get there"
        await pilot.pause(0.01)


async def started(pilot: Pilot[Any]) -> ConsoleApp:
    app = pilot.app
    assert isinstance(app, ConsoleApp)
    await until(pilot, lambda: app.snapshot is not None and bool(app.query_one("#tasks", TaskTable).rows))
    return app


def test_sources_satisfy_the_protocols() -> None:
    live: Source = MemorySource([snapshot(TASKS)])
    replayed: Source = replay([snapshot(TASKS)])
    assert not isinstance(live, Seekable)
    assert isinstance(replayed, Seekable)


def test_formats() -> None:
    assert [ms(v) for v in (None, 0.0, 0.4, 12.34, 999.0, 1234.0)] == ["-", "0 ms", "400 µs", "12.3 ms", "999 ms",
                                                                       "1.23 s"]
    assert [seconds(v) for v in (3.0, 90.0, 7200.0)] == ["3.00 s", "1.50 min", "2.00 h"]
    lines = histogram_lines(STEPS, width=10)
    assert lines[0].endswith("██████████  100") and "≤ 100 ms" in lines[-1]


def test_sort_order_and_backoff() -> None:
    by_busy = Sort("busy", descending=True)
    assert [t["name"] for t in by_busy.order(TASKS)] == ["hog", "medium", "light", "fresh"]  # unknown last
    assert [t["name"] for t in by_busy.reversed().order(TASKS)] == ["light", "medium", "hog", "fresh"]
    assert Sort().clicked("busy") == Sort("busy", descending=False)
    assert Sort().clicked("name") == Sort("name", descending=False)
    assert Sort("name", descending=False).next() == Sort("state", descending=False)
    assert Sort("state").next() == Sort("age", descending=True)
    b = Backoff(1.0, most_s=5.0)
    assert [b.failed(0.0) for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert b.wait(1.0) == 4.0 and b.succeeded() and not b.succeeded()


@in_loop
async def test_table_shows_the_tasks_sorted_by_busy_and_reverses() -> None:
    app = ConsoleApp(MemorySource([snapshot(TASKS)]), title="profkit console")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert names(app) == ["hog", "medium", "light", "fresh"]  # busy, the busiest first
        header = text(app, "#header")
        assert "pid 4242" in header and "asyncio" in header and "live" in header
        assert line(app, 1).split() == ["hog", "idle", "12.0", "s", "10", "900", "ms", "5.00", "s", "1.50", "ms",
                                        "3.00", "ms", "sleep", "(jobs.py:41)"]
        assert "▼ busy" in line(app, 0)
        assert "blocking-step" in text(app, "#warnings-text") and "hog" in text(app, "#warnings-text")

        await pilot.press("r")
        assert names(app) == ["light", "medium", "hog", "fresh"]
        assert "▲ busy" in line(app, 0)
        await pilot.press("s")  # the next column: idle, biggest first; all equal, so by name
        assert "▼ idle" in line(app, 0) and "▼ busy" not in line(app, 0)
        assert names(app) == ["fresh", "hog", "light", "medium"]


@in_loop
async def test_a_click_on_a_header_sorts_by_it() -> None:
    app = ConsoleApp(MemorySource([snapshot(TASKS)]), title="t")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.click("#tasks", offset=(2, 0))  # the "name" header
        assert names(app) == ["fresh", "hog", "light", "medium"] and "name ▲" in line(app, 0)


@in_loop
async def test_a_click_selects_a_task_and_a_second_opens_it() -> None:
    app = ConsoleApp(MemorySource([snapshot(TASKS)]), title="t")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.click("#tasks", offset=(2, 3))  # the third row: light
        assert app.query_one("#tasks", TaskTable).selected_id() == "1" and not isinstance(app.screen, TaskScreen)
        await pilot.click("#tasks", offset=(2, 3))
        await until(pilot, lambda: isinstance(app.screen, TaskScreen))


@in_loop
async def test_selection_follows_the_task_across_refreshes() -> None:
    source = MemorySource([snapshot(TASKS)])
    app = ConsoleApp(source, title="t")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        table = app.query_one("#tasks", TaskTable)
        await pilot.press("down")  # medium
        assert table.selected_id() == "3"
        # medium becomes the busiest, light goes away, a new task arrives
        source.snaps = [snapshot([task("2", "hog", busy=900.0), task("3", "medium", busy=5000.0),
                                  task("5", "new", busy=1.0)])]
        await app.refresh_snapshot()
        assert names(app) == ["medium", "hog", "new"]
        assert table.selected_id() == "3" and table.cursor == 0


@in_loop
async def test_terminated_tab_shows_outcomes() -> None:
    app = ConsoleApp(MemorySource([snapshot(TASKS)]), title="t")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("t")
        ended: DataTable[Text] = app.query_one("#terminated", DataTable)
        assert [cell.plain for cell in ended.get_row_at(0)] == [
            "old-job", "job", "failed", "-", "ValueError('bad row')", "1.00 s", "3.00 s ago"]


@in_loop
async def test_enter_opens_the_task_with_its_histograms() -> None:
    app = ConsoleApp(MemorySource([snapshot(TASKS)]), title="t")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TaskScreen) and app.screen.detail is not None)
        body = text(app, "#task-detail")
        assert "hog" in body and "p50 800 µs  p90 4.20 ms  p99 37.0 ms  max 80.0 ms" in body
        assert "step time" in body and "≤ 100 ms" in body and "scheduled time" in body
        assert "run  /srv/app/jobs.py:40" in body  # the await chain
        assert "70.000 s" in body  # the recent step
        await pilot.press("escape")
        assert not isinstance(app.screen, TaskScreen)


@in_loop
async def test_cancel_asks_and_no_leaves_the_task() -> None:
    source = MemorySource([snapshot(TASKS)])
    app = ConsoleApp(source, title="t")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        assert text(app, "#question") == "Cancel task hog (worker)? y/n"
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen) and source.cancelled == []
        assert "hog left running" in text(app, "#status")


@in_loop
async def test_cancel_yes_cancels_and_shows_the_outcome() -> None:
    source = MemorySource([snapshot(TASKS)])
    app = ConsoleApp(source, title="t")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("down", "c", "y")  # medium
        await until(pilot, lambda: source.cancelled == ["3"] and "cancelled 3" in text(app, "#status"))


@in_loop
async def test_lost_connection_shows_and_recovers() -> None:
    source = MemorySource([snapshot(TASKS)], interval=0.05)
    app = ConsoleApp(source, title="t")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        source.failing = True
        await until(pilot, lambda: "disconnected" in text(app, "#header"))
        assert "connection lost" in text(app, "#status") and "dropped the connection" in text(app, "#status")
        assert names(app) == ["hog", "medium", "light", "fresh"]  # the last snapshot stays
        failed_at = source.calls
        source.failing = False
        await until(pilot, lambda: "reconnected" in text(app, "#status"))
        assert source.calls > failed_at and "live" in text(app, "#header")


@in_loop
async def test_replay_steps_and_cannot_cancel() -> None:
    source = replay([snapshot(TASKS, pid=1), snapshot(TASKS, pid=2), snapshot(TASKS, pid=3)])
    app = ConsoleApp(source, title="t")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert "replay 1/3" in text(app, "#header") and "pid 1" in text(app, "#header")
        await pilot.press("right")
        await until(pilot, lambda: "pid 2" in text(app, "#header"))
        assert source.paused and "replay 2/3 paused" in text(app, "#header")
        await pilot.press("end")
        await until(pilot, lambda: "pid 3" in text(app, "#header"))
        await pilot.press("left")
        await until(pilot, lambda: "pid 2" in text(app, "#header"))
        await pilot.press("space")  # playing again...
        assert not source.paused and "paused" not in text(app, "#header")
        await pilot.press("home")  # ...from the first snapshot, which shows before the replay moves on
        await until(pilot, lambda: "pid 1" in text(app, "#header"))
        await pilot.press("c")
        assert not isinstance(app.screen, ConfirmScreen) and "replay" in text(app, "#status")


@in_loop
async def test_thousands_of_tasks_are_capped() -> None:
    many = [task(str(i), f"t{i:05}", busy=float(i)) for i in range(3000)]
    source = MemorySource([snapshot(many)])
    app = ConsoleApp(source, title="t")
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert len(app.query_one("#tasks", TaskTable).rows) == 2000
        assert names(app)[0] == "t02999"
        assert "showing the first 2,000 of 3,000 tasks" in text(app, "#tasks-note")
        source.snaps = [snapshot(many[:1000])]
        await app.refresh_snapshot()
        assert len(app.query_one("#tasks", TaskTable).rows) == 1000 and names(app)[0] == "t00999"
        assert not app.query_one("#tasks-note", Static).display
