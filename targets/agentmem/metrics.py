"""Prometheus metrics of perf-guide §7, in a registry of the service's own.

No metric carries agent_id or user_id labels: tenants are unbounded, and so would be the series.
Counts that the guide names without a ``_total`` suffix (cache hits and misses, connections) are
exposed as gauges read from the engine at scrape time, so that the guide's exact names are the
names a query finds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .engine import MemoryEngine

METRIC_NAMES = (
    "agentmem_http_requests_total",
    "agentmem_http_request_duration_seconds",
    "agentmem_errors_total",
    "agentmem_memory_operations_total",
    "agentmem_cache_hits",
    "agentmem_cache_misses",
    "agentmem_db_connections_active",
    "agentmem_db_connections_max",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_threads",
    "agentmem_memories_total",
    "agentmem_agents_total",
    "agentmem_memory_importance",
    "agentmem_llm_call_duration_seconds",
)

OPERATIONS = ("create", "batch_create", "get", "update", "delete", "list", "search", "relate", "traverse")
ERROR_KINDS = ("llm", "http_5xx", "payload_too_large", "malformed_json", "busy")

# Latency buckets sized around the guide's budget (1 ms get ... 5 s LLM call).
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)
LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
IMPORTANCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class _EngineCollector(Collector):
    """Reads gauges from the engine at scrape time instead of updating them on every request."""

    def __init__(self) -> None:
        self.engine: MemoryEngine | None = None

    def collect(self) -> Iterator[Metric]:
        e = self.engine
        threads = GaugeMetricFamily("process_threads", "Number of OS threads in the process.")
        threads.add_metric([], _thread_count())
        yield threads
        if e is None:
            return
        for name, doc, value in (
            ("agentmem_cache_hits", "Memory cache hits since start.", e.cache_stats.hits),
            ("agentmem_cache_misses", "Memory cache misses since start.", e.cache_stats.misses),
            ("agentmem_db_connections_active", "Database connections in use.", e.pool.active),
            ("agentmem_db_connections_max", "Most database connections the pool opens.", e.pool.max_size),
            ("agentmem_memories_total", "Memories stored.", e.memories_total),
            ("agentmem_agents_total", "Agents with at least one memory.", e.agents_total),
        ):
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], float(value))
            yield g


def _thread_count() -> float:
    try:
        with open(f"/proc/{os.getpid()}/status") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(threading.active_count())


class ServiceMetrics:
    """The service's registry and instruments; also the engine's :class:`EngineObserver`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._engine_collector = _EngineCollector()
        self.registry.register(self._engine_collector)
        r = self.registry
        self.http_requests = Counter(
            "agentmem_http_requests", "HTTP requests served.", ["method", "route", "status"], registry=r
        )
        self.http_duration = Histogram(
            "agentmem_http_request_duration_seconds", "HTTP request latency.", ["method", "route"],
            buckets=HTTP_BUCKETS, registry=r,
        )
        self.errors = Counter("agentmem_errors", "Errors by kind.", ["kind"], registry=r)
        self.operations = Counter(
            "agentmem_memory_operations", "Engine operations.", ["operation", "status"], registry=r
        )
        self.importance_hist = Histogram(
            "agentmem_memory_importance", "Importance of memories written.", buckets=IMPORTANCE_BUCKETS, registry=r
        )
        self.llm_duration = Histogram(
            "agentmem_llm_call_duration_seconds", "Duration of LLM fact-extraction calls.", ["outcome"],
            buckets=LLM_BUCKETS, registry=r,
        )
        # labels() takes a lock and builds a tuple: cache the children on the hot path.
        self._ops: dict[tuple[str, bool], Counter] = {}
        # Known label values start at zero, so that rate() and alerts work before the first event.
        for op in OPERATIONS:
            for ok in (True, False):
                self._ops[(op, ok)] = self.operations.labels(op, "ok" if ok else "error")
        for kind in ERROR_KINDS:
            self.errors.labels(kind)
        for outcome in ("ok", "error"):
            self.llm_duration.labels(outcome)

    def bind(self, engine: MemoryEngine) -> None:
        self._engine_collector.engine = engine

    # EngineObserver -------------------------------------------------------------------------

    def operation(self, name: str, ok: bool) -> None:
        child = self._ops.get((name, ok))
        if child is None:
            child = self._ops[(name, ok)] = self.operations.labels(name, "ok" if ok else "error")
        child.inc()

    def llm_call(self, seconds: float, ok: bool) -> None:
        self.llm_duration.labels("ok" if ok else "error").observe(seconds)

    def importance(self, value: float) -> None:
        self.importance_hist.observe(value)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    # exposition -----------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
