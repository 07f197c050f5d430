"""HTTP load driver: keep-alive connections, a scenario's operation mix, per-operation percentiles.

The client is a raw asyncio protocol with httptools' response parser rather than an HTTP client
library: the engine must be pushed past 3k req/s from the same 2-core machine, and a full client
library would spend more CPU per request than the server does.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools
import msgspec
import numpy as np

from .corpus import Corpus
from .scenarios import SCENARIOS, HttpOps, HttpRequest, OpPicker, TenantState, make_tenants

ProgressFn = Callable[[float, int, int], None]


class LoadError(Exception):
    """The target cannot be driven (unreachable, not the engine, bad arguments)."""


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only duck-typed ones.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self._body)
        self._body = []
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(exc or ConnectionResetError("server closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def request(self, raw: bytes, timeout: float) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await asyncio.wait_for(self.waiter, timeout)


def _encode_request(host: str, method: str, path: str, body: Any) -> bytes:
    payload = msgspec.json.encode(body) if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


def percentiles_ms(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0, "max_ms": 0.0}
    arr = np.asarray(samples) * 1000.0
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3),
            "mean_ms": round(float(arr.mean()), 3), "max_ms": round(float(arr.max()), 3)}


@dataclass
class LoadReport:
    scenario: str
    url: str
    concurrency: int
    duration_s: float
    ops: dict[str, OpStats]
    status_counts: dict[str, int]
    error_samples: list[str]
    seeded: int

    def to_dict(self) -> dict[str, Any]:
        requests = sum(len(s.latencies) for s in self.ops.values())
        errors = sum(s.errors for s in self.ops.values())
        every = [x for s in self.ops.values() for x in s.latencies]
        return {
            "scenario": self.scenario,
            "url": self.url,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "requests": requests,
            "rps": round(requests / self.duration_s, 1) if self.duration_s else 0.0,
            "errors": errors,
            "error_rate": round(errors / requests, 6) if requests else 0.0,
            "status_counts": self.status_counts,
            "error_samples": self.error_samples[:10],
            "seeded_memories": self.seeded,
            "latency": percentiles_ms(every),
            "operations": {
                op: {"count": len(s.latencies), "errors": s.errors,
                     "rps": round(len(s.latencies) / self.duration_s, 1) if self.duration_s else 0.0,
                     **percentiles_ms(s.latencies)}
                for op, s in sorted(self.ops.items())
            },
        }


class LoadDriver:
    """Seeds the engine, then runs ``concurrency`` connections through a scenario for ``duration``."""

    def __init__(
        self,
        url: str,
        scenario: str,
        *,
        duration: float = 10.0,
        concurrency: int = 64,
        warmup: float = 1.0,
        seed: int = 1,
        seed_per_tenant: int = 100,
        relations_per_memory: int = 2,
        tenants: list[TenantState] | None = None,
        request_timeout: float = 30.0,
        on_progress: ProgressFn | None = None,
    ) -> None:
        if scenario not in SCENARIOS:
            raise LoadError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise LoadError(f"--url must look like http://HOST:PORT, got {url!r}")
        if concurrency < 1 or duration <= 0:
            raise LoadError("concurrency must be >= 1 and duration > 0")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = parts.netloc
        self.scenario = scenario
        self.duration = duration
        self.concurrency = concurrency
        self.warmup = warmup
        self.seed = seed
        self.seed_per_tenant = seed_per_tenant
        self.relations_per_memory = relations_per_memory
        self.tenants = tenants or make_tenants()
        self.request_timeout = request_timeout
        self.on_progress = on_progress
        self._stats: dict[str, OpStats] = {}
        self._status: dict[str, int] = {}
        self._samples: list[str] = []
        self._done = 0
        self._errors = 0

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await loop.create_connection(_Conn, self.host, self.port)
        except OSError as exc:
            raise LoadError(f"cannot connect to {self.url}: {exc.strerror or exc}") from exc
        return proto

    async def _call(self, conn: _Conn, method: str, path: str, body: Any) -> tuple[int, bytes]:
        return await conn.request(_encode_request(self.host_header, method, path, body), self.request_timeout)

    async def check(self) -> None:
        conn = await self._connect()
        try:
            status, body = await self._call(conn, "GET", "/health", None)
        except (TimeoutError, OSError) as exc:
            raise LoadError(f"{self.url} did not answer /health: {exc}") from exc
        finally:
            if conn.transport is not None:
                conn.transport.close()
        if status != 200 or b'"status"' not in body:
            raise LoadError(f"{self.url}/health answered {status}: is this an agentmem engine?")

    async def seed_data(self) -> int:
        """Give every tenant memories (and relations between them) to read, search and traverse."""
        corpus = Corpus(self.seed + 1000)
        rng = random.Random(self.seed + 2000)
        conns = [await self._connect() for _ in range(min(8, len(self.tenants)))]
        seeded = 0

        async def seed_tenant(conn: _Conn, t: TenantState) -> int:
            left = self.seed_per_tenant
            new_ids: list[str] = []
            while left > 0:
                n = min(left, 100)
                items = [{"content": m.content, "importance": m.importance} for m in corpus.memories(n)]
                status, body = await self._call(conn, "POST", f"{t.prefix}/memories/batch", {"items": items})
                if status != 201:
                    raise LoadError(f"seeding failed: batch create answered {status}: {body[:200]!r}")
                new_ids += [m["id"] for m in msgspec.json.decode(body)["items"]]
                left -= n
            t.ids.extend(new_ids)
            for src in new_ids:
                for _ in range(self.relations_per_memory):
                    dst = rng.choice(t.ids)
                    if dst != src:
                        await self._call(conn, "POST", f"{t.prefix}/relations",
                                         {"source_id": src, "target_id": dst, "type": corpus.relation_type()})
            return len(new_ids)

        async def worker(i: int) -> int:
            total = 0
            for t in self.tenants[i :: len(conns)]:
                total += await seed_tenant(conns[i], t)
            return total

        try:
            seeded = sum(await asyncio.gather(*(worker(i) for i in range(len(conns)))))
        finally:
            for c in conns:
                if c.transport is not None:
                    c.transport.close()
        return seeded

    def _record(self, req: HttpRequest, status: int, body: bytes, elapsed: float, measuring: bool) -> None:
        if status in (201,) and req.op in ("create", "batch"):
            data = msgspec.json.decode(body)
            if req.op == "create":
                req.tenant.ids.append(data["id"])
            else:
                req.tenant.ids.extend(m["id"] for m in data["items"])
        if not measuring:
            return
        st = self._stats.setdefault(req.op, OpStats())
        st.latencies.append(elapsed)
        key = str(status)
        self._status[key] = self._status.get(key, 0) + 1
        self._done += 1
        if status not in req.expect:
            st.errors += 1
            self._errors += 1
            if len(self._samples) < 20:
                self._samples.append(f"{req.op} {req.method} {req.path} -> {status}: {body[:160]!r}")

    async def _worker(self, i: int, start_at: float, measure_from: float, stop_at: float) -> None:
        rng = random.Random(self.seed * 7919 + i)
        ops = HttpOps(self.tenants, Corpus(self.seed * 104729 + i), rng)
        picker = OpPicker(self.scenario, self.seed * 31 + i)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, start_at - loop.time()))
        conn: _Conn | None = None
        while (now := loop.time()) < stop_at:
            measuring = now >= measure_from
            if conn is None or conn.lost:
                try:
                    conn = await self._connect()
                except LoadError as exc:
                    self._fail("connect", str(exc), measuring)
                    await asyncio.sleep(0.05)
                    continue
            req = ops.request(picker.next())
            raw = _encode_request(self.host_header, req.method, req.path, req.body)
            t0 = time.perf_counter()
            try:
                status, body = await conn.request(raw, self.request_timeout)
            except (TimeoutError, OSError, httptools.HttpParserError) as exc:
                self._fail(req.op, f"{type(exc).__name__}: {exc}", measuring)
                if conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            self._record(req, status, body, time.perf_counter() - t0, measuring)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    def _fail(self, op: str, message: str, measuring: bool) -> None:
        if not measuring:
            return
        self._stats.setdefault(op, OpStats()).errors += 1
        self._errors += 1
        self._done += 1
        if len(self._samples) < 20:
            self._samples.append(f"{op}: {message}")

    async def run(self) -> LoadReport:
        await self.check()
        seeded = await self.seed_data() if self.seed_per_tenant > 0 else 0
        loop = asyncio.get_running_loop()
        # Connections start spread over 100 ms so 1000 of them do not all SYN at once.
        base = loop.time()
        measure_from = base + 0.1 + self.warmup
        stop_at = measure_from + self.duration
        workers = [
            loop.create_task(self._worker(i, base + 0.1 * i / self.concurrency, measure_from, stop_at))
            for i in range(self.concurrency)
        ]
        ticker = loop.create_task(self._tick(measure_from, stop_at))
        try:
            await asyncio.gather(*workers)
        finally:
            ticker.cancel()
        return LoadReport(self.scenario, self.url, self.concurrency, self.duration, self._stats, self._status,
                          self._samples, seeded)

    async def _tick(self, measure_from: float, stop_at: float) -> None:
        loop = asyncio.get_running_loop()
        while self.on_progress is not None:
            now = loop.time()
            self.on_progress(max(0.0, min(now, stop_at) - measure_from), self._done, self._errors)
            await asyncio.sleep(0.5)


def run_load(url: str, scenario: str, **kwargs: Any) -> dict[str, Any]:
    """Run a load test to completion on a fresh event loop (uvloop when available)."""
    from agentmem.server import raise_fd_limit

    raise_fd_limit()
    driver = LoadDriver(url, scenario, **kwargs)
    try:
        import uvloop

        runner: Callable[[Any], Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    report: LoadReport = runner(driver.run())
    return report.to_dict()

