"""agentmem — an asyncio agent-memory engine (memories, semantic search, graph, HTTP API).

It is the bundled workload that profkit profiles, but it is a service in its own right and
knows nothing about profkit.
"""

from __future__ import annotations

__version__ = "0.1.0"
