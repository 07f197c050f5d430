"""``import profkit.agent.auto``: one line at the top of a program starts the agent with its first event loop.

The address comes from ``PROFKIT_AGENT`` ("host:port", default 127.0.0.1:20104; "off" disables it),
aiomonitor's ports from ``PROFKIT_AGENT_MONITOR_PORTS`` ("20101,20102,20103" by default; 0 a free one).
A bad value or a taken port is reported on stderr and the program runs on without the agent.
"""

from __future__ import annotations

import sys

from . import core, launch


def _install() -> None:
    try:
        config = launch.config_from_env()
    except core.AgentConfigError as exc:
        sys.stderr.write(f"profkit agent: not started: {exc}\n")
        return
    if config is not None:
        launch.install(config)


_install()
