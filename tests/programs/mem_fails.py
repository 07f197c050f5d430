"""A target that allocates ~5 MB and then fails with an exception (exit code 1)."""

from __future__ import annotations

HELD = [bytearray(1024) for _ in range(5000)]
raise RuntimeError("mem_fails: giving up on purpose")
