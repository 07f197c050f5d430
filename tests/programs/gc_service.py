"""A long-running asyncio program whose long loop steps are garbage collections, not its own code.

    python gc_service.py [--seconds 60]

``hoard`` keeps small containers in steps of 2,000 (about a millisecond of its own work each),
up to 600,000 kept, then lets them go and starts again. While the heap grows, CPython's collector
runs full (generation 2) collections over everything kept, inside whichever of hoard's steps
tipped it: steps of tens of milliseconds that are the collector's. ``ticker`` prints a line a
second. Exits 0 after --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import time

STEP = 2_000
MOST = 600_000


async def hoard(stop: float) -> None:
    kept: list[dict[str, list[int]]] = []
    while time.monotonic() < stop:
        kept.extend({"v": [i]} for i in range(STEP))
        if len(kept) >= MOST:
            kept = []
        await asyncio.sleep(0)


async def ticker(stop: float) -> None:
    n = 0
    while time.monotonic() < stop:
        print(f"tick {n}", flush=True)
        n += 1
        await asyncio.sleep(1.0)


async def main(seconds: float) -> None:
    stop = time.monotonic() + seconds
    await asyncio.gather(asyncio.create_task(hoard(stop), name="hoard"),
                         asyncio.create_task(ticker(stop), name="ticker"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    asyncio.run(main(parser.parse_args().seconds))
