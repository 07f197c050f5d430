"""Known answer for `profkit lines`: one line burns most of the CPU, another allocates most of the memory.

    python lines_hot.py [SECONDS] [--crash]    (--crash: raise once the work is done)
"""

from __future__ import annotations

import sys
import time


def crunch(n: int) -> int:
    return sum((i * i) % 7 ^ (i >> 3) for i in range(n))  # HOT-CPU-LINE


def hoard(rounds: int) -> int:
    kept: list[bytearray] = []
    for _ in range(rounds):
        kept.append(bytearray(8 * 1024 * 1024))  # HOT-MEMORY-LINE
    return sum(len(b) for b in kept)


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--crash"]
    seconds = float(args[0]) if args else 3.0
    end = time.monotonic() + seconds
    crunched = 0
    while time.monotonic() < end:
        crunched += crunch(200_000)
    print(f"crunched {crunched}, hoarded {hoard(12)} bytes")
    if "--crash" in sys.argv:
        raise RuntimeError("lines_hot was asked to crash")


if __name__ == "__main__":
    main()
