"""A small asyncio service for the agent's tests (``tests/test_agent.py``).

    python agent_target.py --until FILE [--limit SECONDS] [--uvloop]

Runs until FILE exists (or --limit passes), then stops its tasks and says so. Its stdout is the
same on every run, with or without the agent, so a test can check the agent left it alone:

* "handler": many short steps, like a server answering small requests;
* "blocker": one step of 50 ms of CPU every 0.3 s (a blocking call in a coroutine);
* "sleeper-0..2": suspended in nested coroutines (``middle`` -> ``deep_wait``) on an Event;
* one coroutine created and never awaited.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time


def burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def handle(n: int) -> int:
    await asyncio.sleep(0)
    return n * 2


async def handler(stop: asyncio.Event) -> int:
    total = 0
    while not stop.is_set():
        total += await handle(1)
        await asyncio.sleep(0.005)
    return total


async def blocker(stop: asyncio.Event) -> None:
    while not stop.is_set():
        burn(0.05)
        await asyncio.sleep(0.3)


async def deep_wait(stop: asyncio.Event) -> None:
    await stop.wait()


async def middle(stop: asyncio.Event) -> None:
    await deep_wait(stop)


async def forgotten() -> None:
    pass


async def main(until: str, limit: float) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(handler(stop), name="handler"), asyncio.create_task(blocker(stop), name="blocker")]
    tasks += [asyncio.create_task(middle(stop), name=f"sleeper-{i}") for i in range(3)]
    forgotten()  # type: ignore[unused-coroutine]  # never awaited: the agent counts it
    print("agent_target: started", flush=True)
    deadline = time.monotonic() + limit
    while not os.path.exists(until) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    print(f"agent_target: stopped {len(tasks)} tasks", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--until", required=True)
    parser.add_argument("--limit", type=float, default=120.0)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(main(args.until, args.limit))
    else:
        asyncio.run(main(args.until, args.limit))
