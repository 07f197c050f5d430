"""Known answer for `profkit async`.

- ``slow_waiter`` spends ~1.2 s awaiting sleeps: most wall time, next to no CPU, never blocks the loop.
- ``blocker`` burns ~50 ms of CPU in each of 4 steps: it blocks the event loop.
- ``sleeper`` calls time.sleep (30 ms) inside 3 steps: it stalls the loop without using CPU.
- ``quick`` coroutines finish in a few milliseconds.
"""

from __future__ import annotations

import asyncio
import time


def burn_cpu(seconds: float) -> int:
    # Spin on the thread's own CPU clock so the step costs the same CPU time on a busy machine.
    end = time.thread_time() + seconds
    spins = 0
    while time.thread_time() < end:
        spins += 1
    return spins


async def slow_waiter() -> None:
    for _ in range(3):
        await asyncio.sleep(0.4)


async def blocker() -> None:
    for _ in range(4):
        burn_cpu(0.05)
        await asyncio.sleep(0.01)


async def sleeper() -> None:
    for _ in range(3):
        time.sleep(0.03)
        await asyncio.sleep(0.01)


async def quick(i: int) -> int:
    await asyncio.sleep(0.002 * i)
    return i


async def main() -> None:
    await asyncio.gather(slow_waiter(), blocker(), sleeper(), *(quick(i) for i in range(5)))


if __name__ == "__main__":
    asyncio.run(main())
