"""When to ask a source again after it failed: soon at first, then less and less often."""

from __future__ import annotations

import math

# The shortest refresh period the app accepts: a source asking for none would get a busy loop of redraws.
MIN_INTERVAL_S = 0.05
# A process that went away for good is still asked twice a minute, in case it comes back.
MOST_S = 30.0


class Backoff:
    def __init__(self, first_s: float, *, most_s: float = MOST_S) -> None:
        self.first_s = max(first_s, 0.01)
        self.most_s = max(most_s, self.first_s)
        self.failures = 0
        self._retry_at = 0.0

    def failed(self, now: float) -> float:
        """Count a failure at ``now``; the seconds to wait before the next try (doubling each time)."""
        self.failures += 1
        delay = min(self.first_s * 2.0 ** (self.failures - 1), self.most_s)
        self._retry_at = now + delay
        return delay

    def succeeded(self) -> bool:
        """Count a success; True when it ends a run of failures (the connection is back)."""
        back = self.failures > 0
        self.failures = 0
        self._retry_at = 0.0
        return back

    def wait(self, now: float) -> float:
        """Seconds left before the next try may be made (0 when it may be made now)."""
        return max(self._retry_at - now, 0.0)


def countdown(seconds: float) -> str:
    """'retrying in 4 s', rounded up: a countdown that shows 0 while it still waits looks stuck."""
    return f"retrying in {max(math.ceil(seconds - 1e-9), 1)} s" if seconds >= 0.95 else "retrying now"
