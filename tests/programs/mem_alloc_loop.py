"""A live target for `profkit mem --pid`: allocates and frees in a loop, keeps a bounded amount.

Prints "ready" once running. With --die-after-attach S it ends abruptly (os._exit, as a crash
would: no atexit, no thread joins) S seconds after memray has been injected into it (memray's
module appears in sys.modules), to test a target that ends mid-recording. It never lives longer
than --lifetime seconds, so a failed test cannot leave it behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--die-after-attach", type=float, default=None)
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args()
    kept: list[bytes] = []
    print("ready", flush=True)
    end = time.monotonic() + args.lifetime
    attached_at: float | None = None
    while time.monotonic() < end:
        block = bytearray(256 * 1024)
        kept.append(bytes(4096))
        if len(kept) > 2000:
            kept.clear()
        del block
        time.sleep(0.005)
        if args.die_after_attach is not None:
            if attached_at is None and "memray" in sys.modules:
                attached_at = time.monotonic()
            if attached_at is not None and time.monotonic() - attached_at >= args.die_after_attach:
                os._exit(0)


if __name__ == "__main__":
    main()
