"""A plain asyncio service with nothing of profkit in it, for `profkit console --pid` and `profkit dump`.

    python plain_service.py --stop-file FILE [--seconds 60]

Prints ``tick N`` every 0.2 s and nothing else; ``crunch`` computes for 60 ms in one step every
0.25 s (it blocks the loop); three ``worker`` tasks wait on a queue that stays empty. Exits 0 when
FILE exists or after --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time


def compute(seconds: float) -> int:
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += 1
    return n


async def crunch(stop: asyncio.Event) -> None:
    while not stop.is_set():
        compute(0.06)
        await asyncio.sleep(0.25)


async def worker(queue: asyncio.Queue[int], stop: asyncio.Event) -> None:
    getter = asyncio.ensure_future(queue.get())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([getter, stopper], return_when=asyncio.FIRST_COMPLETED)
    getter.cancel()
    stopper.cancel()


async def main(seconds: float, stop_file: str) -> None:
    stop = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue()
    tasks = [asyncio.create_task(crunch(stop), name="crunch")]
    tasks += [asyncio.create_task(worker(queue, stop), name=f"worker-{i}") for i in range(3)]
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end and not os.path.exists(stop_file):
        print(f"tick {n}", flush=True)
        n += 1
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--stop-file", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.stop_file))
