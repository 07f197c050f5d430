"""Open and hold many WebSocket connections to the engine, then prove each one still answers."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect

from .loadgen import LoadError
from .scenarios import make_tenants

_RSS = re.compile(rb"^process_resident_memory_bytes (\S+)$", re.M)


def server_rss(url: str) -> float | None:
    """The engine's resident memory in bytes, read from its own /metrics."""
    try:
        body = httpx.get(f"{url}/metrics", timeout=10).content
    except httpx.HTTPError:
        return None
    m = _RSS.search(body)
    return float(m.group(1)) if m else None


async def hold(
    url: str,
    connections: int,
    hold_seconds: float,
    *,
    open_concurrency: int = 200,
    on_progress: Callable[[float, int, int], None] | None = None,
) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.netloc:
        raise LoadError(f"--url must look like http://HOST:PORT, got {url!r}")
    tenants = make_tenants()
    gate = asyncio.Semaphore(open_concurrency)
    opened: list[ClientConnection] = []
    failures: list[str] = []
    start = time.perf_counter()

    async def open_one(i: int) -> None:
        t = tenants[i % len(tenants)]
        async with gate:
            try:
                ws = await connect(f"ws://{parts.netloc}{t.prefix}/ws", ping_interval=None, open_timeout=60,
                                   max_queue=4)
            except (TimeoutError, OSError, Exception) as exc:  # noqa: BLE001 - every failure is counted
                failures.append(f"{type(exc).__name__}: {exc}")
                return
            opened.append(ws)
        if on_progress is not None and len(opened) % 500 == 0:
            on_progress(time.perf_counter() - start, len(opened), len(failures))

    await asyncio.gather(*(open_one(i) for i in range(connections)))
    open_seconds = time.perf_counter() - start
    rss_open = server_rss(url)
    await asyncio.sleep(hold_seconds)

    answered = 0

    async def ping(ws: ClientConnection) -> None:
        nonlocal answered
        async with gate:
            try:
                await ws.send('{"op":"ping"}')
                # Events may be queued ahead of the pong: read until the pong arrives.
                for _ in range(10):
                    msg = await asyncio.wait_for(ws.recv(), 30)
                    if b'"pong"' in (msg if isinstance(msg, bytes) else msg.encode()):
                        answered += 1
                        return
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                failures.append(f"ping: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(ping(ws) for ws in opened))
    rss_after = server_rss(url)
    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    return {
        "scenario": "ws-hold",
        "url": url,
        "requested": connections,
        "opened": len(opened),
        "answered": answered,
        "errors": len(failures) + (len(opened) - answered),
        "error_samples": failures[:10],
        "open_seconds": round(open_seconds, 2),
        "hold_seconds": hold_seconds,
        "server_rss_bytes": max(rss_open or 0, rss_after or 0) or None,
        "server_rss_open_mb": round((rss_open or 0) / 2**20, 1),
        "server_rss_after_ping_mb": round((rss_after or 0) / 2**20, 1),
        "server_rss_mb": round(max(rss_open or 0, rss_after or 0) / 2**20, 1),
    }


def run_hold(url: str, connections: int, hold_seconds: float, **kwargs: Any) -> dict[str, Any]:
    from agentmem.server import raise_fd_limit

    raise_fd_limit()
    import uvloop

    result: dict[str, Any] = uvloop.run(hold(url, connections, hold_seconds, **kwargs))
    return result
