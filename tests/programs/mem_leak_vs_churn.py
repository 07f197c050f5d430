"""Known answer for `profkit mem --leaks`.

leaky() keeps ~20 MB for good (20,000 blocks of 1 KiB in a module-level list); churn() allocates
~200 MB in total (200,000 blocks of 1 KiB) and frees every block at once. A leak report must name
leaky and must not name churn, although churn allocates ten times more.
"""

from __future__ import annotations

BLOCK = 1024
KEPT: list[bytearray] = []


def leaky(blocks: int = 20_000) -> None:
    for _ in range(blocks):
        KEPT.append(bytearray(BLOCK))


def churn(blocks: int = 200_000) -> int:
    total = 0
    for _ in range(blocks):
        block = bytearray(BLOCK)
        total += len(block)
        del block
    return total


def main() -> None:
    churn(100_000)
    leaky()
    churn(100_000)


if __name__ == "__main__":
    main()
