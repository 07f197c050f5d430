"""A process that sits in a known function, for `profkit dump` and `profkit top`."""

from __future__ import annotations

import time


def wait_here_forever() -> None:
    while True:
        spin_a_little()
        time.sleep(0.01)


def spin_a_little() -> int:
    return sum(i * i for i in range(20_000))


if __name__ == "__main__":
    wait_here_forever()
