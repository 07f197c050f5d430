"""A plain asyncio program with nothing of profkit in it, for `profkit console --pid` and profkit.inject.

It prints ``tick N`` once per tick on stdout (and nothing else anywhere) and exits 0 after
``--seconds`` (20 by default), or as soon as the file given with ``--stop-file`` exists.
With ``--busy``, each tick spends most of its time computing in Python, so the main thread
holds the GIL most of the time instead of waiting in epoll.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time


def spin(seconds: float) -> int:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


async def main(seconds: float, tick: float, stop_file: str | None, busy: bool) -> None:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        print(f"tick {n}", flush=True)
        n += 1
        if stop_file and os.path.exists(stop_file):
            break
        if busy:
            spin(tick * 0.9)
            await asyncio.sleep(tick * 0.1)
        else:
            await asyncio.sleep(tick)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--tick", type=float, default=0.1)
    parser.add_argument("--stop-file")
    parser.add_argument("--busy", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.tick, args.stop_file, args.busy))
