"""An asyncio program that ends abnormally on purpose: `exit0` (SystemExit(0) after the loop) or `crash`."""

from __future__ import annotations

import asyncio
import sys


async def worker(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
        await asyncio.sleep(0)
    return total


async def doomed() -> None:
    await worker(200)
    raise RuntimeError("doomed coroutine gave up")


async def main(how: str) -> None:
    await asyncio.gather(worker(500), worker(300))
    if how == "crash":
        await doomed()


if __name__ == "__main__":
    how = sys.argv[1] if len(sys.argv) > 1 else "exit0"
    asyncio.run(main(how))
    sys.exit(0)
