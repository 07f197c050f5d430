"""How long a callback waits for the loop: a probe sent from the agent's thread every 100 ms.

Each probe is ``call_soon_threadsafe`` of a function that notes how long it took to run. Only one is
in flight at a time, so a blocked loop does not pile them up; while one waits, its age is the lag
(a loop stuck in one step shows its lag growing instead of the last value it had before it stuck).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque

INTERVAL_S = 0.1
WINDOW = 600  # probes: a minute at the interval


class LagProbe:
    def __init__(self, loop: asyncio.AbstractEventLoop, *, window: int = WINDOW) -> None:
        self.loop = loop
        self.samples: deque[float] = deque(maxlen=window)
        self.latest = 0.0
        self.loop_thread: int | None = None  # learnt from the first probe that lands
        self.closed = False
        self._sent: float | None = None
        self._last_sent = 0.0

    def tick(self) -> None:
        """From the agent's thread; sends a probe when one is due and none is in flight."""
        now = time.perf_counter()
        if self._sent is not None or now - self._last_sent < INTERVAL_S or self.closed:
            return
        self._sent = self._last_sent = now
        try:
            self.loop.call_soon_threadsafe(self._landed, now)
        except RuntimeError:  # the loop was closed
            self._sent = None
            self.closed = True

    def _landed(self, sent: float) -> None:
        lag = time.perf_counter() - sent
        self.latest = lag
        self.samples.append(lag)
        self.loop_thread = threading.get_ident()
        self._sent = None

    def pending(self) -> float | None:
        """The age of the probe still waiting for the loop, if one is."""
        sent = self._sent
        return None if sent is None else time.perf_counter() - sent

    def state(self) -> tuple[float, float | None, float | None]:
        """Latest lag, p99 and max over the window, in seconds (None before the first probe lands)."""
        samples = list(self.samples)
        waiting = self.pending()
        if waiting is not None:
            samples.append(waiting)
        latest = max(self.latest, waiting or 0.0)
        if not samples:
            return latest, None, None
        samples.sort()
        p99 = samples[min(len(samples) - 1, max(0, math.ceil(0.99 * len(samples)) - 1))]
        return latest, p99, samples[-1]
