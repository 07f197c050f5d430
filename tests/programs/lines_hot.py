"""Known answer for `profkit lines`: one line burns most of the CPU, another allocates most of the memory."""

from __future__ import annotations

import sys
import time


def crunch(n: int) -> int:
    total = 0
    for i in range(n):
        total += (i * i) % 7 ^ (i >> 3)  # HOT-CPU-LINE
    return total


def hoard(rounds: int) -> int:
    kept: list[bytearray] = []
    for _ in range(rounds):
        kept.append(bytearray(8 * 1024 * 1024))  # HOT-MEMORY-LINE
    return sum(len(b) for b in kept)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    end = time.monotonic() + seconds
    crunched = 0
    while time.monotonic() < end:
        crunched += crunch(200_000)
    print(f"crunched {crunched}, hoarded {hoard(12)} bytes")


if __name__ == "__main__":
    main()
