"""Start the agent when the program's event loop starts running (``profkit.agent.auto``, ``-m profkit.agent``).

``run_forever`` of asyncio's ``BaseEventLoop`` (and of ``uvloop.Loop`` when uvloop is installed) is
wrapped once: the first loop to run starts the agent, on its own thread, before its first
iteration. When that loop is closed and the program runs another one (a second ``asyncio.run``), the
agent moves to the new loop. Loops of the agent's own threads (aiomonitor's UI) are left alone.
Stopping or detaching the agent takes the wrapper out again.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import importlib.util
import os
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import core

ENV = "PROFKIT_AGENT"
MONITOR_ENV = "PROFKIT_AGENT_MONITOR_PORTS"  # aiomonitor's "telnet,web,console" ports (0: free ones), or "off"

_config: core.Config | None = None
_announce = True
_patched: dict[type, tuple[Callable[..., Any], Callable[..., Any] | None]] = {}  # class: (wrapper, own original)
_failed: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_lock = threading.Lock()


def config_from_env(environ: dict[str, str] | None = None) -> core.Config | None:
    """The agent's address from ``PROFKIT_AGENT`` ("host:port", ":port" or "port"; None for "off") and
    aiomonitor's ports from ``PROFKIT_AGENT_MONITOR_PORTS``."""
    env = os.environ if environ is None else environ
    value = env.get(ENV, "").strip()
    if value.lower() == "off":
        return None
    config = core.Config()
    if value:
        host, sep, port = value.rpartition(":")
        if not sep:
            host, port = "", value
        if not port.isdigit() or int(port) > 65535:
            raise core.AgentConfigError(f"{ENV}={value!r} is not HOST:PORT (e.g. 127.0.0.1:{core.DEFAULT_PORT}), "
                                        "PORT, or off")
        config = replace(config, host=host.strip("[]") or core.DEFAULT_HOST, port=int(port))
    ports = env.get(MONITOR_ENV, "").strip()
    if ports.lower() == "off":
        return replace(config, monitor=False)
    if ports:
        parts = ports.split(",")
        if len(parts) != 3 or not all(p.strip().isdigit() and int(p) <= 65535 for p in parts):
            raise core.AgentConfigError(f"{MONITOR_ENV}={ports!r} is not three ports TELNET,WEB,CONSOLE "
                                        "(0: a free one), or off")
        config = replace(config, monitor_ports=(int(parts[0]), int(parts[1]), int(parts[2])))
    return config


def _uvloop_class() -> type | None:
    module = sys.modules.get("uvloop")
    if module is None:
        if importlib.util.find_spec("uvloop") is None:
            return None
        import uvloop as module
    loop_class = getattr(module, "Loop", None)
    return loop_class if isinstance(loop_class, type) else None


def install(config: core.Config, *, announce: bool = True) -> None:
    """Start the agent with ``config`` when an event loop starts running (from now on; idempotent)."""
    global _config, _announce
    with _lock:
        _config, _announce = config, announce
        if _patched:
            return
        classes: list[type] = [asyncio.base_events.BaseEventLoop]
        uvloop_class = _uvloop_class()
        if uvloop_class is not None:
            classes.append(uvloop_class)
        for cls in classes:
            _patch(cls)


def _patch(cls: type) -> None:
    own = cls.__dict__.get("run_forever")
    inherited = cls.run_forever  # type: ignore[attr-defined]

    def run_forever(self: asyncio.AbstractEventLoop) -> None:
        _loop_starts(self)
        inherited(self)

    run_forever.__wrapped__ = inherited  # type: ignore[attr-defined]
    cls.run_forever = run_forever  # type: ignore[attr-defined]
    _patched[cls] = (run_forever, own)


def uninstall() -> None:
    global _config
    with _lock:
        _config = None
        for cls, (wrapper, own) in _patched.items():
            if cls.__dict__.get("run_forever") is not wrapper:
                continue  # wrapped again by someone since: ours stays in their chain, doing nothing
            if own is not None:
                cls.run_forever = own  # type: ignore[attr-defined]
            else:
                delattr(cls, "run_forever")
        _patched.clear()


def _loop_starts(loop: asyncio.AbstractEventLoop) -> None:
    config = _config
    if config is None or threading.current_thread().name.startswith("profkit-agent") or loop in _failed:
        return
    agent = core.current()
    if agent is not None:
        if agent.loop is loop or (agent.loop is not None and not agent.loop.is_closed()):
            return
        # The program closed the loop the agent watched and runs another: follow it, on the same ports.
        config = replace(config, port=agent.port, monitor_ports=agent.monitor.ports if agent.monitor else
                         config.monitor_ports)
        agent.stop(keep_autostart=True)
    try:
        agent = core.start(loop, host=config.host, port=config.port, monitor=config.monitor,
                           monitor_ports=config.monitor_ports, allow_remote=config.allow_remote,
                           history=config.history)
    except Exception as exc:  # noqa: BLE001 - the program goes on without the agent
        _failed.add(loop)
        sys.stderr.write(f"profkit agent: not started: {exc}\n")
        return
    if _announce:
        sys.stderr.write(announcement(agent))
        sys.stderr.flush()


def announcement(agent: core.Agent) -> str:
    line = f"profkit agent: http://{agent.address} (pid {os.getpid()}, `profkit console --agent {agent.address}`)"
    info = agent.monitor_info()
    if info is not None:
        line += (f"; aiomonitor: telnet {info['host']} {info['termui_port']}, "
                 f"http://{info['host']}:{info['webui_port']}")
    return line + "\n"
