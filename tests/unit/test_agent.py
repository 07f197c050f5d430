"""The asyncio agent on loops in this process: step statistics, histograms, await chains, terminations,
never-awaited coroutines, the HTTP API through profkit's own client, detaching, attaching."""

from __future__ import annotations

import asyncio
import asyncio.events
import gc
import json
import socket
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

import profkit.agent
import profkit.agent.aiomon  # aiomonitor's import (aiohttp, prompt_toolkit) is paid at collection, not in a test
from profkit import loopclock
from profkit.agent import histogram, launch, runner
from profkit.agent.awaits import chain
from profkit.agent.core import Agent, AgentConfigError
from profkit.agent_client import AgentClient
from profkit.errors import TargetError
from profkit.results import TaskRow

T = TypeVar("T")


def burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def with_agent(body: Callable[[Agent], Awaitable[T]], **options: Any) -> T:
    """Run ``body`` in a fresh loop with an agent on it (port 0, no aiomonitor unless asked)."""
    options.setdefault("port", 0)
    options.setdefault("monitor", False)
    options.setdefault("monitor_ports", (0, 0, 0))

    async def main() -> T:
        agent = profkit.agent.start(**options)
        try:
            return await body(agent)
        finally:
            agent.stop()

    return asyncio.run(main())


def row(snapshot: dict[str, Any] | Any, name: str) -> TaskRow:
    found: TaskRow = next(t for t in snapshot["tasks"] if t["name"] == name)
    return found


async def off_loop(fn: Callable[[], T]) -> T:
    """``fn`` on another thread, as the console's requests run (the loop goes on meanwhile)."""
    return await asyncio.get_running_loop().run_in_executor(None, fn)


# -- histogram ------------------------------------------------------------------------------------------


def test_histogram_percentiles_are_within_one_bucket_above_the_truth() -> None:
    counts: dict[int, int] = {}
    values = [0.001 * (i + 1) for i in range(100)]  # 1 .. 100 ms
    for v in values:
        histogram.add(counts, v)
    for fraction, truth in ((0.5, 0.050), (0.9, 0.090), (0.99, 0.099)):
        found = histogram.percentile(counts, fraction, max(values))
        assert found is not None and truth <= found <= truth * 2 ** (1 / histogram.SUB) + 1e-12
    summary = histogram.summary(counts, max(values))
    assert summary["count"] == 100 and summary["max_ms"] == 100.0
    bounds = [b for b, _ in summary["buckets"]]
    assert bounds == sorted(bounds) and sum(c for _, c in summary["buckets"]) == 100


def test_histogram_edges_empty_tiny_and_huge() -> None:
    assert histogram.percentile({}, 0.5, 0.0) is None
    assert histogram.summary({}, 0.0) == {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None,
                                          "max_ms": None, "buckets": []}
    counts: dict[int, int] = {}
    histogram.add(counts, 0.0)
    histogram.add(counts, 1e-9)
    histogram.add(counts, 10_000.0)
    assert min(counts) == 0 and max(counts) == len(histogram.BOUNDS)
    assert histogram.percentile(counts, 1.0, 10_000.0) == histogram.BOUNDS[-1]  # the top bucket: its lower bound


# -- per-task step statistics ---------------------------------------------------------------------------


def test_a_task_burning_60ms_in_one_step_has_the_longest_step_and_the_busy_time() -> None:
    stats: dict[str, Any] = {}

    async def body(agent: Agent) -> None:
        done = asyncio.Event()

        async def burner() -> None:
            await asyncio.sleep(0)
            burn(0.06)
            await done.wait()

        async def napper() -> None:
            for _ in range(5):
                await asyncio.sleep(0.01)
            await done.wait()

        tasks = [asyncio.create_task(burner(), name="burner"), asyncio.create_task(napper(), name="napper")]
        await asyncio.sleep(0.2)
        stats.update({t.get_name(): agent.recorder.stats_of(t) for t in tasks})  # type: ignore[union-attr]
        done.set()
        await asyncio.gather(*tasks)

    with_agent(body)
    burner, napper = stats["burner"], stats["napper"]
    assert burner.longest >= 0.04 and burner.cpu >= 0.04
    assert burner.busy > napper.busy and burner.longest > napper.longest
    assert napper.steps == 7 and burner.steps == 3  # the last one each after done.set()
    assert all(s.scheduled >= 0.0 and s.sched_max >= 0.0 for s in (burner, napper))


def test_snapshot_rows_measure_busy_idle_scheduled_and_the_longest_step() -> None:
    async def burner() -> None:
        burn(0.06)
        await asyncio.sleep(5)

    async def body(agent: Agent) -> Any:
        task = asyncio.create_task(burner(), name="burner")
        await asyncio.sleep(0.1)
        snap = await off_loop(agent.snapshot)
        task.cancel()
        return snap

    snap = with_agent(body)
    burned = row(snap, "burner")
    assert burned["seen_from_start"] and burned["steps"] == 1 and burned["state"] == "idle"
    assert burned["longest_step_ms"] is not None and burned["longest_step_ms"] >= 40.0
    assert burned["busy_ms"] == burned["longest_step_ms"] and burned["cpu_ms"] is not None
    assert burned["scheduled_ms"] is not None and burned["scheduled_ms"] >= 0.0
    assert burned["idle_ms"] is not None and burned["idle_ms"] >= 0.0
    assert burned["longest_step_gc_generation"] is None
    # The coroutine that started the agent existed before it: counted from then on.
    main = next(t for t in snap["tasks"] if t["coro"] == "main")
    assert main["seen_from_start"] is False and main["steps"] is not None
    assert snap["loop"]["kind"] == "asyncio" and snap["loop"]["steps_measured"] and snap["loop"]["steps"] > 0
    assert snap["warnings"] == [] and snap["schema"] == 1


def test_a_step_with_a_full_collection_reports_its_gc_time_and_generation_2() -> None:
    async def collector() -> None:
        junk = [[i] for i in range(20_000)]  # something for the collector to walk
        gc.collect()
        del junk
        await asyncio.sleep(5)

    async def body(agent: Agent) -> Any:
        task = asyncio.create_task(collector(), name="collector")
        await asyncio.sleep(0.05)
        snap = agent.snapshot()
        task.cancel()
        return snap

    snap = with_agent(body)
    collector_row = row(snap, "collector")
    assert collector_row["longest_step_gc_generation"] == 2
    assert collector_row["longest_step_gc_ms"] is not None and collector_row["longest_step_gc_ms"] > 0.0
    assert collector_row["longest_step_gc_ms"] <= (collector_row["longest_step_ms"] or 0.0)
    assert snap["gc"]["collections"][2] >= 1 and snap["gc"]["longest_ms"] > 0.0


def test_task_detail_has_histograms_history_and_the_stack_with_source() -> None:
    async def worker() -> None:
        for _ in range(3):
            await asyncio.sleep(0.005)
        await asyncio.sleep(5)

    async def body(agent: Agent) -> Any:
        task = asyncio.create_task(worker(), name="worker")
        await asyncio.sleep(0.1)
        detail = agent.task_detail(str(id(task)))
        task.cancel()
        return detail

    detail = with_agent(body)
    assert detail["task"]["name"] == "worker" and detail["task"]["steps"] == 4
    assert detail["steps"]["count"] == 4 and detail["scheduled"]["count"] == 4
    assert len(detail["history"]) == 4 and all(h["wall_ms"] >= 0.0 for h in detail["history"])
    assert [h["at_s"] for h in detail["history"]] == sorted(h["at_s"] for h in detail["history"])
    assert detail["stack"][-1] == "<sleep>" and "await asyncio.sleep(5)" in detail["stack"][-2]


def test_the_history_ring_keeps_the_latest_64_steps_in_order() -> None:
    async def stepper() -> None:
        for _ in range(100):
            await asyncio.sleep(0)
        await asyncio.sleep(5)

    async def body(agent: Agent) -> Any:
        task = asyncio.create_task(stepper(), name="stepper")
        await asyncio.sleep(0.05)
        stats = agent.recorder.stats_of(task)  # type: ignore[union-attr]
        task.cancel()
        return stats

    stats = with_agent(body)
    recent = stats.recent()
    assert stats.steps == 101 and len(recent) == 64
    assert [r[0] for r in recent] == sorted(r[0] for r in recent)


# -- await chains ---------------------------------------------------------------------------------------


async def inner_wait() -> None:
    await asyncio.sleep(5)


async def outer_wait() -> None:
    await inner_wait()


def test_the_await_chain_of_a_task_sleeping_in_nested_coroutines_names_the_inner_function() -> None:
    async def body(agent: Agent) -> Any:
        task = asyncio.create_task(outer_wait(), name="nested")
        other = asyncio.create_task(asyncio.sleep(5), name="plain")
        waiter = asyncio.create_task(asyncio.wait_for(task, 10), name="waiter")
        await asyncio.sleep(0.02)
        snap = await off_loop(agent.snapshot)
        found = chain(task)
        for t in (task, other, waiter):
            t.cancel()
        return snap, found

    snap, found = with_agent(body)
    nested = row(snap, "nested")
    assert [f["function"] for f in nested["await_chain"]] == ["outer_wait", "inner_wait"]
    assert nested["await_chain"][-1]["file"] == __file__
    assert nested["awaiting"] is not None and nested["awaiting"].startswith("inner_wait (test_agent.py:")
    assert found.leaf == "<sleep>"
    assert row(snap, "waiter")["await_chain"][-1]["function"] == "wait_for"


def test_awaits_sampling_folds_stacks_rooted_at_task_names() -> None:
    async def body(agent: Agent) -> Any:
        named = asyncio.create_task(outer_wait(), name="nested")
        unnamed = asyncio.create_task(outer_wait())
        await asyncio.sleep(0.01)
        folded = await off_loop(lambda: agent.sample_awaits(0.2, 20.0))
        named.cancel()
        unnamed.cancel()
        return folded

    result = with_agent(body)
    assert result["samples"] >= 2 and result["hz"] == 20.0
    stacks = result["folded"]
    line = next(s for s in stacks if s.startswith("nested;"))
    assert line.split(";")[1].startswith("outer_wait (test_agent.py:") and line.endswith(";<sleep>")
    assert stacks[line] == result["samples"]
    # Default names are all alike: the root says the coroutine instead of the number.
    assert any(s.startswith("Task-* outer_wait;") for s in stacks)


def test_a_snapshot_taken_while_the_loop_is_stuck_shows_the_running_step_and_where_it_is() -> None:
    started, release = threading.Event(), threading.Event()
    taken: dict[str, Any] = {}

    def spin_until_released() -> None:
        started.set()
        deadline = time.monotonic() + 10
        while not release.is_set() and time.monotonic() < deadline:
            pass

    async def stuck() -> None:
        await asyncio.sleep(0)
        spin_until_released()

    async def body(agent: Agent) -> None:
        def watcher() -> None:
            started.wait(10)
            time.sleep(0.03)
            taken["snap"] = agent.snapshot()
            release.set()

        thread = threading.Thread(target=watcher)
        thread.start()
        await asyncio.create_task(stuck(), name="stuck")
        thread.join(10)

    with_agent(body)
    snap = taken["snap"]
    assert snap["loop"]["blocked_by"] == "stuck"
    assert snap["loop"]["blocked_for_ms"] is not None and snap["loop"]["blocked_for_ms"] >= 20.0
    stuck_row = row(snap, "stuck")
    assert stuck_row["state"] == "running"
    assert [f["function"] for f in stuck_row["await_chain"]][:2] == ["stuck", "spin_until_released"]


# -- terminations, cancellations (aiomonitor) -----------------------------------------------------------


def test_terminated_tasks_say_how_they_ended_and_who_cancelled_them() -> None:
    caught: list[dict[str, Any]] = []

    async def victim() -> None:
        await asyncio.sleep(5)

    async def killer(target: asyncio.Task[None]) -> None:
        await asyncio.sleep(0.01)
        target.cancel()

    async def failing() -> None:
        raise ValueError("boom")

    async def body(agent: Agent) -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: caught.append(context))
        target = asyncio.create_task(victim(), name="victim")
        cancelling = asyncio.create_task(killer(target), name="killer")
        failed = asyncio.create_task(failing(), name="failing")
        await asyncio.sleep(0.05)
        del failed, cancelling
        gc.collect()  # the never-retrieved exception is logged when the task goes
        await asyncio.sleep(0.01)
        snap = await off_loop(agent.snapshot)
        monitor = agent.monitor
        assert monitor is not None
        return snap, dict(monitor._terminated_tasks), dict(monitor._canceller_chain)

    snap, terminated, chains = with_agent(body, monitor=True)
    ended = {t["name"]: t for t in snap["terminated"]}
    assert ended["victim"]["outcome"] == "cancelled" and ended["victim"]["cancelled_by"] == "killer"
    assert ended["killer"]["outcome"] == "finished" and ended["killer"]["cancelled_by"] is None
    assert ended["failing"]["outcome"] == "failed" and ended["failing"]["exception"] == "ValueError('boom')"
    assert ended["victim"]["lived_s"] >= 0.0 and ended["victim"]["ended_s_ago"] >= 0.0
    # aiomonitor's own UIs read the same history, cancellation chain and stacks.
    victim_info = terminated[ended["victim"]["id"]]
    assert victim_info.cancelled and chains[ended["victim"]["id"]] == ended["killer"]["id"]
    assert victim_info.canceller_stack and victim_info.canceller_stack[-1].name == "killer"
    assert terminated[ended["failing"]["id"]].exc_repr == "ValueError('boom')"
    # The program still hears about the exception nobody retrieved, as without the agent.
    assert any(c.get("message") == "Task exception was never retrieved" for c in caught)
    # The traced tasks' creation line is the program's.
    assert all(t["created"] is None or t["created"].startswith("test_agent.py:") for t in snap["tasks"])


def test_the_monitor_keeps_the_programs_own_task_factory_and_puts_back_none() -> None:
    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        return asyncio.Task(coro, loop=loop, **kw)

    async def own_factory() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(factory)
        agent = profkit.agent.start(port=0, monitor_ports=(0, 0, 0))
        kept = loop.get_task_factory() is factory
        info = agent.info()
        agent.stop()
        return kept, info, loop.get_task_factory() is factory

    kept, info, after = asyncio.run(own_factory())
    assert kept and after and info["task_factory"] == "the program's own"

    async def none_before() -> Any:
        loop = asyncio.get_running_loop()
        agent = profkit.agent.start(port=0, monitor_ports=(0, 0, 0))
        hooked = loop.get_task_factory() is not None
        agent.stop()
        return hooked, loop.get_task_factory()

    assert asyncio.run(none_before()) == (True, None)


# -- never-awaited coroutines ---------------------------------------------------------------------------


async def forgotten() -> None:
    pass


def test_unawaited_coroutines_are_counted_and_the_warning_is_unchanged() -> None:
    async def body(agent: Agent) -> Any:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            for _ in range(3):
                forgotten()  # type: ignore[unused-coroutine]  # each dies at once: never awaited
            gc.collect()
        return agent.unawaited.rows(), seen

    rows, seen = with_agent(body)
    assert rows == [{"coro": "forgotten", "count": 3, "where": f"test_agent.py:{forgotten.__code__.co_firstlineno}"}]
    messages = [w for w in seen if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 3 and str(messages[0].message) == "coroutine 'forgotten' was never awaited"
    assert messages[0].filename == __file__  # where CPython's own hook would point, not the agent's file
    assert warnings._warn_unawaited_coroutine.__module__ == "warnings"  # type: ignore[attr-defined]


# -- the HTTP API, through profkit's own client ---------------------------------------------------------


def test_http_api_end_to_end_then_detach_takes_every_hook_out() -> None:
    original_run = asyncio.events.Handle._run
    original_warn = warnings._warn_unawaited_coroutine  # type: ignore[attr-defined]
    callbacks_before = list(gc.callbacks)

    async def sleeper() -> None:
        await asyncio.sleep(5)

    async def body(agent: Agent) -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(sleeper(), name="sleeper")
        await asyncio.sleep(0.01)
        hooked = (asyncio.events.Handle._run is not original_run, loop.get_task_factory() is not None)

        def talk() -> dict[str, Any]:
            out: dict[str, Any] = {}
            with AgentClient(agent.address) as client:
                out["info"] = client.info()
                out["snapshot"] = client.snapshot()
                out["detail"] = client.task(str(id(task)))
                out["missing"] = client.task("12345")
                out["awaits"] = client.awaits(0.1, 20)
                out["cancel"] = client.cancel(str(id(task)))
                with pytest.raises(TargetError, match="no live task"):
                    client.cancel("12345")
                client.detach()
            return out

        out = await off_loop(talk)

        def closed() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", agent.port)) != 0

        # The agent answers /detach first and then takes itself out on its own thread: wait for that
        # (a busy machine may take a while), rather than for a fixed time.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
                profkit.agent.current() is None and closed()
                and not [t for t in threading.enumerate() if t.name.startswith("profkit-agent")]):
            await asyncio.sleep(0.02)
        out["cancelled"] = task.cancelled()
        out["hooked"] = hooked
        out["after"] = (asyncio.events.Handle._run is original_run, loop.get_task_factory() is None,
                        warnings._warn_unawaited_coroutine is original_warn,  # type: ignore[attr-defined]
                        gc.callbacks == callbacks_before, profkit.agent.current() is None)
        with socket.socket() as s:
            out["port_closed"] = s.connect_ex(("127.0.0.1", agent.port)) != 0
        out["threads"] = [t.name for t in threading.enumerate() if t.name.startswith("profkit-agent")]
        return out

    out = with_agent(body, monitor=True)
    info = out["info"]
    assert info["agent"] == "profkit" and info["status"] == "ready" and info["loop"] == "asyncio"
    assert info["monitor"]["termui_port"] > 0 and info["monitor"]["webui_port"] > 0
    assert str(row(out["snapshot"], "sleeper")["awaiting"]).startswith("sleeper (test_agent.py:")
    assert out["detail"]["task"]["name"] == "sleeper" and out["missing"] is None
    assert out["awaits"]["samples"] >= 1
    assert out["cancel"] == {"cancelled": True, "id": out["detail"]["task"]["id"], "name": "sleeper",
                             "coro": "sleeper"}
    assert out["cancelled"] and out["hooked"] == (True, True)
    assert out["after"] == (True, True, True, True, True)
    assert out["port_closed"] and out["threads"] == []


def test_stopping_does_not_wait_for_a_console_that_keeps_its_connection_open() -> None:
    async def body(agent: Agent) -> Any:
        client = AgentClient(agent.address)
        await off_loop(client.info)  # the connection stays open (keep-alive) in the client's pool
        started = time.monotonic()
        agent.stop()
        took = time.monotonic() - started
        threads = [t.name for t in threading.enumerate() if t.name == "profkit-agent"]
        client.close()
        return took, threads

    took, threads = with_agent(body)
    assert took < 5.0 and threads == []  # the idle connection would hold it for a minute


def test_requests_from_web_pages_and_foreign_hosts_are_refused() -> None:
    import httpx

    async def body(agent: Agent) -> Any:
        def talk() -> list[int]:
            base = f"http://{agent.address}"
            return [httpx.get(f"{base}/agent", timeout=5, trust_env=False).status_code,
                    httpx.post(f"{base}/detach", headers={"Origin": "http://evil.example"}, timeout=5,
                               trust_env=False).status_code,
                    httpx.get(f"{base}/snapshot", headers={"Host": "evil.example"}, timeout=5,
                              trust_env=False).status_code,
                    httpx.get(f"{base}/nowhere", timeout=5, trust_env=False).status_code,
                    httpx.get(f"{base}/awaits?duration=-1", timeout=5, trust_env=False).status_code]

        return await off_loop(talk), agent.stopped

    codes, stopped = with_agent(body)
    assert codes == [200, 403, 403, 404, 400] and not stopped


def test_a_non_loopback_host_is_refused_unless_allowed_and_then_loudly(capsys: pytest.CaptureFixture[str]) -> None:
    async def refused() -> None:
        profkit.agent.start(host="0.0.0.0", port=0, monitor=False)

    with pytest.raises(ValueError, match="not a loopback address"):
        asyncio.run(refused())
    assert profkit.agent.current() is None

    async def allowed() -> str:
        agent = profkit.agent.start(host="0.0.0.0", port=0, monitor=False, allow_remote=True)
        agent.stop()
        return agent.status

    assert asyncio.run(allowed()) == "stopped"
    assert "WARNING" in capsys.readouterr().err


def test_a_taken_port_is_refused_with_the_way_out() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]

        async def start() -> None:
            profkit.agent.start(port=taken, monitor=False)

        with pytest.raises(AgentConfigError, match=f"{taken}.*0 to pick a free one"):
            asyncio.run(start())

        async def monitor_port_taken() -> None:
            profkit.agent.start(port=0, monitor_ports=(0, taken, 0))

        with pytest.raises(AgentConfigError, match="aiomonitor web UI port"):
            asyncio.run(monitor_port_taken())
    assert profkit.agent.current() is None


def test_start_outside_a_loop_says_how_to_start_it() -> None:
    with pytest.raises(AgentConfigError, match=r"profkit\.agent\.auto"):
        profkit.agent.start()


# -- attach (what a debugger calls) ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(path: Path, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            loaded: dict[str, Any] = json.loads(path.read_text())
            return loaded
        time.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


def test_attach_from_another_thread_starts_the_agent_on_the_loops_thread(tmp_path: Path) -> None:
    port, ready = free_port(), tmp_path / "ready.json"

    async def main() -> Any:
        loop_thread = threading.get_ident()
        config = json.dumps({"host": "127.0.0.1", "port": port, "monitor": False, "ready_file": str(ready)})
        threading.Thread(target=profkit.agent.attach, args=(config,)).start()  # returns at once
        status = await off_loop(lambda: wait_for(ready))
        agent = profkit.agent.current()
        assert agent is not None
        info = await off_loop(lambda: AgentClient(f"127.0.0.1:{port}").info())
        await asyncio.sleep(0.25)  # a lag probe lands, from the loop's thread
        hooked_on = agent.lag.loop_thread if agent.lag else None
        agent.stop()
        return status, info, hooked_on, loop_thread

    status, info, hooked_on, loop_thread = asyncio.run(main())
    assert status["status"] == "ready" and status["port"] == port
    assert info["status"] == "ready" and info["loop"] == "asyncio"
    assert hooked_on == loop_thread


def test_attach_without_a_running_loop_reports_the_failure_over_http_and_in_the_ready_file(tmp_path: Path) -> None:
    port, ready = free_port(), tmp_path / "ready.json"
    profkit.agent.attach(json.dumps({"port": port, "monitor": False, "ready_file": str(ready)}))
    status = wait_for(ready)
    assert status["status"] == "failed: no running asyncio loop in this process"
    with AgentClient(f"127.0.0.1:{port}") as client:
        assert client.info()["status"] == status["status"]
        client.detach()
    assert profkit.agent.current() is None


def test_attach_with_a_bad_config_says_so_in_the_ready_file(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    profkit.agent.attach(json.dumps({"port": "x", "ready_file": str(ready)}))
    assert wait_for(ready)["status"].startswith("failed: bad attach config")


# -- uvloop ---------------------------------------------------------------------------------------------


def test_on_uvloop_steps_are_unknown_and_the_rest_works() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> Any:
        agent = profkit.agent.start(port=0, monitor=False)
        task = asyncio.create_task(outer_wait(), name="nested")
        await asyncio.sleep(0.25)
        snap = await off_loop(agent.snapshot)
        task.cancel()
        agent.stop()
        return snap

    snap = uvloop.run(main())
    assert snap["loop"]["kind"] == "uvloop" and snap["loop"]["steps_measured"] is False
    nested = row(snap, "nested")
    assert nested["steps"] is None and nested["busy_ms"] is None and nested["longest_step_ms"] is None
    assert [f["function"] for f in nested["await_chain"]] == ["outer_wait", "inner_wait"]
    assert snap["loop"]["lag_p99_ms"] is not None


# -- the runner's command line, the environment ---------------------------------------------------------


@pytest.mark.parametrize(("argv", "expected"), [
    (["prog.py", "-x"], ([], "prog.py", None, ["-x"])),
    (["--port", "0", "prog.py", "--port", "9"], (["--port", "0"], "prog.py", None, ["--port", "9"])),
    (["--no-monitor", "-m", "pkg.mod", "a", "-m"], (["--no-monitor"], None, "pkg.mod", ["a", "-m"])),
    (["-mpkg", "b"], ([], None, "pkg", ["b"])),
    (["--port=0", "--", "-odd.py"], (["--port=0"], "-odd.py", None, [])),
    (["--port", "0"], (["--port", "0"], None, None, [])),
])
def test_runner_splits_its_options_from_the_programs(argv: list[str], expected: tuple[Any, ...]) -> None:
    assert runner.split_argv(argv) == expected


def test_profkit_agent_env_gives_the_address() -> None:
    assert launch.config_from_env({}) == profkit.agent.core.Config()
    assert launch.config_from_env({"PROFKIT_AGENT": "127.0.0.1:7000"}).port == 7000  # type: ignore[union-attr]
    assert launch.config_from_env({"PROFKIT_AGENT": "7001"}).port == 7001  # type: ignore[union-attr]
    assert launch.config_from_env({"PROFKIT_AGENT": "[::1]:7002"}).host == "::1"  # type: ignore[union-attr]
    assert launch.config_from_env({"PROFKIT_AGENT": "off"}) is None
    with pytest.raises(AgentConfigError, match="PROFKIT_AGENT"):
        launch.config_from_env({"PROFKIT_AGENT": "host:port"})


def test_autostart_starts_with_the_first_loop_and_follows_the_program_to_its_next_one() -> None:
    launch.install(profkit.agent.core.Config(port=0, monitor=False), announce=False)
    try:
        async def first() -> Any:
            agent = profkit.agent.current()
            return agent, agent.loop if agent else None, asyncio.get_running_loop()

        agent1, watched1, loop1 = asyncio.run(first())
        agent2, watched2, loop2 = asyncio.run(first())
        assert watched1 is loop1 and watched2 is loop2
        assert agent1 is not agent2 and agent1.stopped and agent2.port == agent1.port
    finally:
        profkit.agent.stop()
    assert "run_forever" not in asyncio.base_events.BaseEventLoop.__dict__ or \
        not hasattr(asyncio.base_events.BaseEventLoop.run_forever, "__wrapped__")
    assert loopclock.current_step() is None
