"""profkit async's coroutine table: steps classified with their garbage collection, the table built from
constructed step stats, its findings, and how a terminal shows them at 80 columns."""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import gc
import io
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import yappi
from rich.console import Console

from profkit.backends import yappi_runner
from profkit.backends.yappi_runner import StepStats, StepTimer, build_table
from profkit.render.terminal import artifacts
from profkit.render.terminal import async_ as terminal
from profkit.services.async_ import summarise

THRESHOLD_S = 0.010
APP = "/srv/app/service.py"


def _stats(name: str, line: int, steps: list[tuple[float, float, float, int | None]]) -> StepStats:
    """A coroutine's steps as (wall, cpu, gc seconds, generation collected)."""
    s = StepStats(name, APP, line, "task")
    for wall, cpu, collected, generation in steps:
        s.add(wall, cpu, THRESHOLD_S, collected, generation)
    return s


# -- one step at a time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("wall", "cpu", "collected", "kind"), [
    (0.062, 0.060, 0.0, "blocking"),  # its own CPU
    (0.100, 0.095, 0.040, "blocking"),  # a collection, and still 55 ms of its own CPU
    (0.190, 0.188, 0.185, "gc"),  # the collection is the step
    (0.300, 0.170, 0.295, "gc"),  # a collection descheduled on a busy machine: more wall than CPU
    (0.015, 0.001, 0.006, "gc"),  # 9 ms without the collection: it is what took the step over
    (0.030, 0.001, 0.0, "stalled"),  # sleeping with the loop held
    (0.040, 0.001, 0.020, "stalled"),  # 20 ms of waiting besides the collection
    (0.009, 0.009, 0.005, "under"),
])
def test_a_step_is_blocking_by_its_cpu_outside_garbage_collection(wall: float, cpu: float, collected: float,
                                                                  kind: str) -> None:
    s = _stats("f", 1, [(wall, cpu, collected, 2 if collected else None)])
    assert (s.cpu_over, s.wall_over, s.gc_over) == {"blocking": (1, 0, 0), "stalled": (0, 1, 0), "gc": (0, 0, 1),
                                                    "under": (0, 0, 0)}[kind]
    assert s.gc_s == collected and s.max_own_cpu_s == pytest.approx(max(0.0, cpu - collected))


def test_the_longest_step_and_the_longest_gc_pause_are_kept_with_their_collection() -> None:
    s = _stats("spawn", 1, [(0.002, 0.002, 0.0, None), (0.080, 0.079, 0.078, 2), (0.015, 0.002, 0.012, 0),
                            (0.120, 0.001, 0.0, None)])
    assert s.max_wall_s == 0.120 and s.max_wall_gc_s == 0.0 and s.max_wall_gc_generation is None  # a stall
    assert s.gc_over == 2 and s.max_gc_pause_s == 0.080 and s.max_gc_pause_gc_s == 0.078
    assert s.max_gc_pause_generation == 2
    assert s.wall_over == 1 and s.max_stall_s == 0.120


# -- the table and its findings -------------------------------------------------------------------------


def _yappi_stat(name: str, line: int, calls: int, wall_s: float) -> SimpleNamespace:
    # the fields of a yappi YFuncStat that build_table reads
    return SimpleNamespace(module=APP, lineno=line, name=name, full_name=f"{APP}:{line} {name}", ncall=calls,
                           ttot=wall_s, tsub=wall_s / 10)


def _table() -> dict[str, Any]:
    timer = StepTimer(THRESHOLD_S)
    # spawn only creates tasks; two full collections landed in its steps
    timer.stats["spawn"] = _stats("spawn", 10, [(0.001, 0.001, 0.0, None)] * 50
                                  + [(0.187, 0.186, 0.185, 2), (0.042, 0.041, 0.040, 2)])
    timer.stats["burner"] = _stats("burner", 20, [(0.061, 0.060, 0.0, None)] * 4)
    timer.stats["handler"] = _stats("handler", 30, [(0.0002, 0.0002, 0.0, None)] * 2000)
    timer.stats["main"] = _stats("main", 40, [(0.001, 0.001, 0.0, None)] * 3)
    timer.entries.add(compile("pass", APP, "exec").replace(co_firstlineno=40))
    stats = [_yappi_stat("spawn", 10, 1, 4.0), _yappi_stat("burner", 20, 1, 0.5),
             _yappi_stat("handler", 30, 1000, 151.456), _yappi_stat("main", 40, 1, 17.0)]
    return {"clock": "wall", "block_threshold_ms": THRESHOLD_S * 1000, "schema": yappi_runner.SCHEMA_VERSION,
            "program": {"exit_code": 0, "failure": None, "elapsed_s": 17.0}, **build_table(stats, timer)}


def test_build_table_adds_the_mean_wall_per_call_and_the_garbage_collection_of_each_row() -> None:
    table = _table()
    rows = {r["name"]: r for r in table["coroutines"]}
    # still ordered by the summed wall time, which overlapping calls take past the run's length
    assert [r["name"] for r in table["coroutines"]] == ["handler", "main", "spawn", "burner"]
    handler, spawn, burner = rows["handler"], rows["spawn"], rows["burner"]
    assert handler["wall_ms"] == 151_456.0 and handler["mean_wall_ms"] == pytest.approx(151.456)
    assert handler["busy_ms"] == pytest.approx(400.0) and handler["gc_ms"] == 0.0
    assert spawn["gc_ms"] == pytest.approx(225.0) and spawn["max_step_ms"] == 187.0
    assert spawn["max_step_gc_ms"] == 185.0 and spawn["max_step_gc_generation"] == 2
    assert not spawn["blocking"] and spawn["gc_pause"] and spawn["gc_pause_steps"] == 2
    assert spawn["max_step_own_cpu_ms"] < 2 and spawn["max_step_cpu_ms"] == 186.0  # the CPU measured is kept
    assert burner["blocking"] and burner["cpu_blocking_steps"] == 4 and not burner["gc_pause"]
    assert burner["max_gc_pause_ms"] is None and burner["max_step_gc_generation"] is None
    assert rows["main"]["entry"]


def test_findings_report_a_collection_as_a_gc_pause_and_not_as_blocking() -> None:
    f = summarise(_table(), top=10)
    assert [b["name"] for b in f["blocking"]] == ["burner"]
    (pause,) = f["gc_pauses"]
    assert pause["name"] == "spawn" and pause["kind"] == "coroutine"
    assert pause["max_gc_pause_ms"] == 187.0 and pause["max_gc_pause_gc_ms"] == 185.0
    assert pause["max_gc_pause_generation"] == 2 and pause.get("gc_ms") == pytest.approx(225.0)
    assert [r["name"] for r in f["coroutines"]] == ["handler", "spawn", "burner"]  # main is the entry


def test_findings_of_a_table_written_before_garbage_collection_was_measured() -> None:
    table = _table()
    for row in [*table["coroutines"], *table["callbacks"]]:
        for key in [k for k in row if "gc" in k or "own_cpu" in k or k in ("mean_wall_ms", "max_stalled_step_ms")]:
            del row[key]
    f = summarise(table, top=10)
    assert f["gc_pauses"] == [] and [b["name"] for b in f["blocking"]] == ["burner"]
    assert "gc_ms" not in f["blocking"][0] and "max_step_own_cpu_ms" not in f["blocking"][0]


# -- a real loop: StepTimer is a loopclock sink ---------------------------------------------------------


def test_the_step_timer_sees_a_collection_inside_a_step_and_puts_asyncio_back() -> None:
    run, ruc = asyncio.events.Handle._run, asyncio.base_events.BaseEventLoop.run_until_complete

    async def helper() -> None:
        await asyncio.sleep(0)

    async def collects() -> None:
        await helper()
        gc.collect()

    async def main() -> None:
        await asyncio.create_task(collects())

    timer = StepTimer(60.0)  # nothing crosses it: only the measurement is under test
    timer.install()
    yappi.set_clock_type("wall")
    yappi.start(builtins=False)
    try:
        asyncio.run(main())
    finally:
        yappi.stop()
        timer.uninstall()
    try:
        rows = {r["name"].rsplit(".", 1)[-1]: r for r in build_table(yappi.get_func_stats(), timer)["coroutines"]}
    finally:
        yappi.clear_stats()
    assert asyncio.events.Handle._run is run and asyncio.base_events.BaseEventLoop.run_until_complete is ruc
    (stats,) = [s for s in timer.stats.values() if s.name.endswith("collects")]
    assert stats.steps == 2 and stats.gc_s > 0 and stats.max_wall_gc_generation == 2 and stats.gc_s <= stats.wall_s
    assert rows["collects"]["gc_ms"] > 0 and rows["collects"]["calls"] == 1
    # helper ran inside collects' steps: it has no steps, and no collection, of its own
    helper_row = rows["helper"]
    assert helper_row["steps"] is None and helper_row["gc_ms"] is None and helper_row["max_step_gc_generation"] is None
    assert helper_row["gc_pause"] is False and helper_row["calls"] == 1 and helper_row["mean_wall_ms"] is not None
    assert set(helper_row) == set(rows["collects"])  # every row has every key
    assert rows["main"]["entry"]


# -- the terminal ---------------------------------------------------------------------------------------


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """stdout and stderr of the async renderer, an 80-column terminal each, in one buffer."""
    buf = io.StringIO()
    console = Console(file=buf, width=80, soft_wrap=True)
    for module in (terminal, artifacts):
        for name in ("out", "err"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, console)
    yield buf


def _doc() -> dict[str, Any]:
    return {"command": "async", "run": "0123456789ab/async-20250101T120000Z-42-abcd", "folder": "/store/run",
            "status": "complete", "artifacts": [], "findings": summarise(_table(), top=10)}


def test_the_terminal_names_the_collection_instead_of_blaming_the_coroutine(screen: io.StringIO) -> None:
    terminal.show(_doc())  # type: ignore[arg-type]
    text = screen.getvalue()
    lines = text.splitlines()
    assert ("garbage collection: coroutine spawn (service.py:10): its longest step took 187.0 ms, 185.0 ms of it "
            "garbage collection (generation 2); 2 step(s) over the threshold only because of garbage collection"
            ) in lines
    assert any(line.startswith("blocks the loop: coroutine burner (service.py:20): 4 step(s)") for line in lines)
    assert not any(line.startswith("blocks the loop: coroutine spawn") for line in lines)
    assert any(line.startswith("Total wall time (wall_ms in --json) adds up every call's wall time, including time "
                               "suspended at await; overlapping calls make it exceed the run's length (17.0 s)")
               for line in lines)


def test_the_coroutine_table_fits_80_columns_with_every_header_and_name_whole(screen: io.StringIO) -> None:
    doc = _doc()
    doc["findings"]["coroutines"][0]["name"] = "MemoryEngine._search_with_filters"  # 33 characters
    terminal.show(doc)  # type: ignore[arg-type]
    # the title is a sentence the terminal wraps; the table under it is laid out to 80 columns
    table = screen.getvalue().split("Total wall time (wall_ms")[0].split("\n", 1)[1]
    assert max(len(line) for line in table.splitlines()) <= 80 and "…" not in table
    header = next(line for line in table.splitlines() if line.startswith("coroutine"))
    assert header.split() == ["coroutine", "calls", "wall", "busy", "cpu", "steps", "step", "gc"]
    assert any(line.startswith("MemoryEngine._search_with_filters ") for line in table.splitlines())
    row = next(line for line in table.splitlines() if line.startswith("MemoryEngine."))
    # calls, mean wall, busy, cpu, steps, max step, gc: the 151 s summed over overlapping calls is not shown
    assert row.split()[1:] == ["1000", "151", "400", "400", "2000", "0.20", "0.00"]
    spawn = next(line for line in table.splitlines() if line.startswith("spawn "))
    assert spawn.split()[-1] == "225" and spawn.split()[-2] == "187"


def test_a_gc_pause_that_is_not_the_longest_step_says_which_step_it_means(screen: io.StringIO) -> None:
    doc = _doc()
    (pause,) = doc["findings"]["gc_pauses"]
    pause["max_step_ms"] = 400.0  # its longest step was a stall
    terminal.show(doc)  # type: ignore[arg-type]
    assert ("garbage collection: coroutine spawn (service.py:10): 2 step(s) over the threshold only because of "
            "garbage collection, the longest took 187.0 ms, 185.0 ms of it garbage collection (generation 2)"
            ) in screen.getvalue().splitlines()
