"""Workloads that drive the engine: a synthetic corpus, named scenarios and an HTTP load driver."""

from __future__ import annotations
