"""Start the agent inside a process that runs without it: what a debugger calls once it is in.

    import profkit.agent; profkit.agent.attach('{"host": "127.0.0.1", "port": 20104,
                                                 "monitor_ports": [20101, 20102, 20103], "ready_file": null}')

The debugger may call this from any thread, holding the GIL, while the loop's thread sits in
epoll; so ``attach`` only starts a thread ("profkit-agent-attach") and returns. That thread:

1. listens on host:port at once; GET /agent answers ``"status": "starting"``;
2. finds the running asyncio loop: the loops of the live tasks (else every loop object the
   garbage collector tracks) that are running; the one on the main thread, or the only one;
3. starts aiomonitor's UI thread (when "monitor" is not false in the config);
4. hands the rest to the loop's own thread with ``call_soon_threadsafe``; when it has run, the
   status turns ``"ready"``.

Any failure (no running loop, a port taken) turns the status into ``"failed: <why>"``; a failed
agent stops listening after a minute if nobody detaches it. When ``ready_file`` is given, the final
status is also written there as JSON (``{"status", "pid", "host", "port", "monitor"}``), which is the
only report when the port itself cannot be bound. Nothing is printed: the program's stdout and
stderr stay its own.
"""

from __future__ import annotations

import asyncio
import asyncio.tasks
import gc
import json
import os
import threading
from typing import Any

from . import core

FAILED_LINGER_S = 60.0


def attach(config_json: str) -> None:
    """Start the agent in the background from any thread; never blocks, never raises, never prints."""
    try:
        threading.Thread(target=_attach, args=(config_json,), name="profkit-agent-attach", daemon=True).start()
    except Exception:  # noqa: BLE001,S110 - the debugger's call must come back whatever happens
        pass


def _config(raw: dict[str, Any]) -> core.Config:
    ports = raw.get("monitor_ports") or core.DEFAULT_MONITOR_PORTS
    if len(ports) != 3:
        raise ValueError(f"monitor_ports must list 3 ports (telnet, web UI, console), not {ports!r}")
    return core.Config(host=str(raw.get("host") or core.DEFAULT_HOST), port=int(raw.get("port", core.DEFAULT_PORT)),
                       monitor=bool(raw.get("monitor", True)),
                       monitor_ports=(int(ports[0]), int(ports[1]), int(ports[2])),
                       allow_remote=bool(raw.get("allow_remote", False)), history=int(raw.get("history", 1000)))


def _attach(config_json: str) -> None:
    ready_file: str | None = None
    try:
        raw = json.loads(config_json)
        if not isinstance(raw, dict):
            raise ValueError("the config is not a JSON object")
        ready_file = raw.get("ready_file") or None
        config = _config(raw)
    except (ValueError, TypeError) as exc:
        if ready_file:
            core.write_status(ready_file, {"status": f"failed: bad attach config: {exc}", "pid": os.getpid()})
        return
    existing = core.current()
    if existing is not None:
        if ready_file:
            core.write_status(ready_file, {"status": f"failed: an agent already runs here, at {existing.address}",
                                           "pid": os.getpid(), "host": existing.host, "port": existing.port})
        return
    agent = core.Agent(config)
    agent.ready_file = ready_file
    try:
        agent.serve()
    except Exception as exc:  # noqa: BLE001 - reported in the ready file, the only channel left
        agent.fail(str(exc))
        agent.stop(keep_autostart=True)
        return
    try:
        core.register(agent)
        loop = pick_loop()
        agent.bind(loop)
        loop.call_soon_threadsafe(agent.hook)
    except Exception as exc:  # noqa: BLE001 - reported through GET /agent
        agent.fail(str(exc))
        timer = threading.Timer(FAILED_LINGER_S, agent.stop, kwargs={"keep_autostart": True})
        timer.name = "profkit-agent-linger"
        timer.daemon = True
        timer.start()


def _task_loops() -> list[asyncio.AbstractEventLoop]:
    registry = getattr(asyncio.tasks, "_all_tasks", None)
    if registry is None:
        return []
    for _ in range(100):
        try:
            tasks = list(registry)  # a WeakSet the loops change under us: copy, retry on a race
            break
        except RuntimeError:
            continue
    else:
        return []
    return [t.get_loop() for t in tasks]


def running_loops() -> list[asyncio.AbstractEventLoop]:
    found: dict[int, asyncio.AbstractEventLoop] = {}
    for loop in _task_loops():
        if loop.is_running():
            found[id(loop)] = loop
    if not found:  # a loop running callbacks and no task at all
        for obj in gc.get_objects():
            if isinstance(obj, asyncio.AbstractEventLoop) and obj.is_running():
                found[id(obj)] = obj
    return list(found.values())


def pick_loop() -> asyncio.AbstractEventLoop:
    loops = running_loops()
    if len(loops) == 1:
        return loops[0]
    if not loops:
        raise LookupError("no running asyncio loop in this process")
    main = threading.main_thread().ident
    on_main = [loop for loop in loops if getattr(loop, "_thread_id", None) == main]
    if len(on_main) == 1:
        return on_main[0]
    raise LookupError(f"{len(loops)} asyncio loops run in this process and none on the main thread: "
                      "start the agent from the one to watch (profkit.agent.start())")
