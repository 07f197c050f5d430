"""Known answer for `profkit async`'s garbage-collection attribution.

- ``spawn`` only creates tasks: a hundred per step, and it keeps every one (a service keeps its
  tasks somewhere), so the heap grows by over half a million tracked objects. Every so often one of
  its task creations tips the collector into a full (generation 2) collection of everything kept
  so far, and that step lasts tens of milliseconds: garbage collection, not the spawner's code.
- ``leaf`` tasks return their payload in one step; a finished task keeps its result alive.
- ``burner`` burns 60 ms of CPU in each of 4 steps and allocates next to nothing: it blocks the loop.

``python async_gc_heavy.py [TASKS]`` (default 60,000 leaves).
"""

from __future__ import annotations

import asyncio
import sys
import time

BATCH = 100  # tasks per step of the spawner: a millisecond or two of its own CPU, even under yappi


def burn_cpu(seconds: float) -> int:
    # Spin on the thread's own CPU clock so the step costs the same CPU time on a busy machine.
    end = time.thread_time() + seconds
    spins = 0
    while time.thread_time() < end:
        spins += 1
    return spins


async def leaf(payload: list[list[int]]) -> list[list[int]]:
    return payload


async def spawn(count: int, kept: list[asyncio.Task[list[list[int]]]]) -> None:
    for start in range(0, count, BATCH):
        for i in range(start, min(count, start + BATCH)):
            kept.append(asyncio.create_task(leaf([[i], [i], [i], [i], [i], [i], [i], [i]])))
        await asyncio.sleep(0)  # the leaves just created run before the spawner's next step


async def burner() -> None:
    for _ in range(4):
        burn_cpu(0.06)
        await asyncio.sleep(0.05)


async def main(count: int) -> list[asyncio.Task[list[list[int]]]]:
    kept: list[asyncio.Task[list[list[int]]]] = []
    await asyncio.gather(spawn(count, kept), burner())
    # Handed out rather than dropped here: freeing it all would be a long step of main's own.
    return kept


if __name__ == "__main__":
    KEPT = asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 60_000))
