"""Known answer for `profkit flame`: hot_function burns ~90 % of the CPU, warm_function the rest."""

from __future__ import annotations

import sys
import time


def hot_function(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def warm_function(n: int) -> int:
    return sum(range(n))


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    end = time.time() + seconds
    while time.time() < end:
        hot_function(100_000)
        warm_function(50_000)


if __name__ == "__main__":
    main()
