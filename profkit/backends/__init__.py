"""One module per wrapped profiler: how to run it, how to read what it wrote."""

from __future__ import annotations
