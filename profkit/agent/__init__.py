"""The profkit agent: lives inside an asyncio program and answers ``profkit console`` over HTTP/JSON.

Ways in:

* ``python -m profkit.agent [--port P] [--host H] [--allow-remote] [--no-monitor] (SCRIPT | -m MODULE) ARGS...``
  runs a program with the agent (exit status as ``python`` would give);
* ``import profkit.agent.auto`` at the top of a program starts it with the first event loop;
* ``profkit.agent.start()`` from a coroutine (or ``start(loop)``), ``profkit.agent.stop()`` to end it;
* ``profkit.agent.attach(config_json)`` is what a debugger calls in a process without it
  (see :mod:`profkit.agent.attach`).

Environment: ``PROFKIT_AGENT`` = ``host:port`` (or ``port``) for ``profkit.agent.auto``; default
``127.0.0.1:20104``; ``off`` leaves the agent out. ``PROFKIT_AGENT_MONITOR_PORTS`` = aiomonitor's
``telnet,web,console`` ports (0: a free one) or ``off`` (no aiomonitor).

What it measures, per task of the watched loop (see :mod:`profkit.loopclock`): steps, time in them
(wall, CPU, garbage collection), time ready but waiting for the loop, the longest step, histograms of
both, the latest 64 steps; the loop's lag (a probe every 100 ms from the agent's thread); collections;
coroutines never awaited; each task's await chain. aiomonitor runs alongside (telnet 20101, web UI
20102, console 20103 by default) and records how tasks ended and who cancelled them. On uvloop,
whose callbacks cannot be hooked, step figures are None; the rest works.

It listens on loopback only unless told otherwise (``allow_remote``): whoever reaches it can cancel
the program's tasks, and aiomonitor's console runs arbitrary Python. Port 0 picks a free port.
Everything is read on the agent's own thread ("profkit-agent"), so a snapshot answers while the loop
is stuck in a step; POST /detach takes every hook out and leaves the program as it was.
"""

from __future__ import annotations

from .attach import attach
from .core import DEFAULT_HOST, DEFAULT_MONITOR_PORTS, DEFAULT_PORT, Agent, AgentConfigError, current, start, stop

__all__ = ["DEFAULT_HOST", "DEFAULT_MONITOR_PORTS", "DEFAULT_PORT", "Agent", "AgentConfigError", "attach", "current",
           "start", "stop"]
