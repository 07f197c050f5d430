"""profkit bench: suites over the engine, statistics, budgets, baselines, change detection, reports."""

from __future__ import annotations
