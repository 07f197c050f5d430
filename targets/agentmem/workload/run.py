"""Run a named scenario as a plain process, so profilers can take it by command line or by pid.

    python -m agentmem.workload.run mixed --duration 10            # engine in process, no HTTP
    python -m agentmem.workload.run mixed --ops 20000 --json       # a fixed amount of work
    python -m agentmem.workload.run mixed --mode http --duration 10  # server + driver, one process

``engine`` mode drives the engine's async API directly with ``--concurrency`` coroutines: what
yappi, memray and scalene see is the engine, not an HTTP stack. ``http`` mode starts the real
server on a loopback port inside this process and drives it with the HTTP load driver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..engine import EngineConfig, MemoryEngine
from ..errors import NotFound
from ..models import MemoryPatch, NewMemory, Tenant
from .corpus import Corpus
from .loadgen import percentiles_ms
from .scenarios import BATCH_SIZE, SCENARIOS, OpPicker, TenantState, make_tenants


class EngineDriver:
    """Runs a scenario's operation mix against an engine object, in this event loop."""

    def __init__(self, engine: MemoryEngine, scenario: str, *, concurrency: int, seed: int,
                 seed_per_tenant: int) -> None:
        self.engine = engine
        self.scenario = scenario
        self.concurrency = concurrency
        self.seed = seed
        self.seed_per_tenant = seed_per_tenant
        self.tenants = make_tenants()
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.done = 0

    @staticmethod
    def _tenant(t: TenantState) -> Tenant:
        return Tenant(t.agent_id, t.user_id)

    async def seed_data(self) -> int:
        corpus = Corpus(self.seed + 1000)
        rng = random.Random(self.seed + 2000)
        total = 0
        for t in self.tenants:
            tenant = self._tenant(t)
            left = self.seed_per_tenant
            while left > 0:
                n = min(left, 100)
                stored = await self.engine.create_batch(
                    tenant, [NewMemory(content=m.content, importance=m.importance) for m in corpus.memories(n)])
                t.ids += [m.id for m in stored]
                left -= n
                total += n
            for src in t.ids:
                for _ in range(2):
                    dst = rng.choice(t.ids)
                    if dst != src:
                        await self.engine.relate(tenant, src, dst, corpus.relation_type())
        return total

    async def _op(self, op: str, rng: random.Random, corpus: Corpus) -> None:
        t = rng.choice(self.tenants)
        tenant = self._tenant(t)
        e = self.engine
        mid = rng.choice(t.ids) if t.ids else None
        if mid is None and op in ("get", "update", "delete", "traverse", "relate"):
            op = "create"
        if op == "create":
            m = corpus.memory()
            t.ids.append((await e.create(tenant, NewMemory(content=m.content, importance=m.importance))).id)
        elif op == "batch":
            stored = await e.create_batch(tenant, [NewMemory(content=m.content, importance=m.importance)
                                                   for m in corpus.memories(BATCH_SIZE)])
            t.ids += [m.id for m in stored]
        elif op == "get":
            await e.get(tenant, mid or "")
        elif op == "search":
            await e.search(tenant, corpus.query(), k=10)
        elif op == "list":
            await e.list_memories(tenant, sort="importance" if rng.random() < 0.5 else "recent", limit=20)
        elif op == "update":
            await e.update(tenant, mid or "", MemoryPatch(importance=round(rng.random(), 3)))
        elif op == "delete":
            assert mid is not None
            t.ids.remove(mid)
            await e.delete(tenant, mid)
        elif op == "traverse":
            await e.traverse(tenant, mid or "", depth=rng.randint(1, 3), max_nodes=100)
        elif op == "relate":
            other = rng.choice(t.ids)
            if other != mid:
                await e.relate(tenant, mid or "", other, corpus.relation_type())
        else:
            raise KeyError(op)

    async def _worker(self, i: int, stop_at: float, ops_left: list[int]) -> None:
        rng = random.Random(self.seed * 7919 + i)
        corpus = Corpus(self.seed * 104729 + i)
        picker = OpPicker(self.scenario, self.seed * 31 + i)
        while time.monotonic() < stop_at and ops_left[0] != 0:
            ops_left[0] -= 1
            op = picker.next()
            t0 = time.perf_counter()
            try:
                await self._op(op, rng, corpus)
            except NotFound:
                # A concurrent delete of the same memory: expected under a mixed load.
                pass
            except Exception:  # noqa: BLE001 - counted and reported, the run goes on
                self.errors[op] = self.errors.get(op, 0) + 1
            self.latencies.setdefault(op, []).append(time.perf_counter() - t0)
            self.done += 1
            # Yield like a real server between requests, so coroutines interleave.
            await asyncio.sleep(0)

    async def run(self, duration: float | None, ops: int | None) -> dict[str, Any]:
        seeded = await self.seed_data()
        start = time.monotonic()
        stop_at = start + duration if duration is not None else float("inf")
        ops_left = [ops if ops is not None else -1]
        await asyncio.gather(*(self._worker(i, stop_at, ops_left) for i in range(self.concurrency)))
        elapsed = time.monotonic() - start
        every = [x for v in self.latencies.values() for x in v]
        return {
            "scenario": self.scenario, "mode": "engine", "concurrency": self.concurrency,
            "duration_s": round(elapsed, 3), "requests": self.done,
            "rps": round(self.done / elapsed, 1) if elapsed else 0.0,
            "errors": sum(self.errors.values()), "seeded_memories": seeded, "latency": percentiles_ms(every),
            "operations": {op: {"count": len(v), "errors": self.errors.get(op, 0), **percentiles_ms(v)}
                           for op, v in sorted(self.latencies.items())},
        }


async def run_engine_mode(args: argparse.Namespace, db: Path) -> dict[str, Any]:
    engine = await MemoryEngine.open(EngineConfig(db_path=str(db)))
    try:
        driver = EngineDriver(engine, args.scenario, concurrency=args.concurrency, seed=args.seed,
                              seed_per_tenant=args.seed_per_tenant)
        return await driver.run(args.duration if args.ops is None else None, args.ops)
    finally:
        await engine.close()


async def run_http_mode(args: argparse.Namespace, db: Path) -> dict[str, Any]:
    import uvicorn

    from ..api import create_app
    from .loadgen import LoadDriver

    config = uvicorn.Config(create_app(EngineConfig(db_path=str(db))), host="127.0.0.1", port=0,
                            log_level="warning", access_log=False, loop="none", http="httptools")
    server = uvicorn.Server(config)
    serving = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        driver = LoadDriver(f"http://127.0.0.1:{port}", args.scenario, duration=args.duration,
                            concurrency=args.concurrency, seed=args.seed, seed_per_tenant=args.seed_per_tenant,
                            warmup=0.5)
        report = (await driver.run()).to_dict()
        report["mode"] = "http"
        return report
    finally:
        server.should_exit = True
        await serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentmem.workload.run",
                                     description="Run a workload scenario against the agentmem engine.")
    parser.add_argument("scenario", nargs="?", default="mixed", choices=sorted(SCENARIOS))
    parser.add_argument("--mode", choices=("engine", "http"), default="engine")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load (default 10)")
    parser.add_argument("--ops", type=int, default=None, help="stop after this many operations (engine mode)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seed-per-tenant", type=int, default=100)
    parser.add_argument("--db", type=Path, default=None, help="database file (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON document")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="event loop; profilers that hook asyncio itself need 'asyncio'")
    args = parser.parse_args(argv)
    if args.ops is not None and args.mode == "http":
        parser.error("--ops applies to --mode engine only")

    runner: Any = asyncio.run
    if args.loop == "uvloop":
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
            pass
    with tempfile.TemporaryDirectory(prefix="agentmem-run-") as tmp:
        db = args.db or Path(tmp) / "agentmem.db"
        fn = run_engine_mode if args.mode == "engine" else run_http_mode
        report: dict[str, Any] = runner(fn(args, db))
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['scenario']} ({report['mode']}): {report['requests']} operations in "
              f"{report['duration_s']} s = {report['rps']} ops/s, {report['errors']} errors")
        for op, s in report["operations"].items():
            print(f"  {op:<9} n={s['count']:<7} p50 {s['p50_ms']:.3f} ms  p95 {s['p95_ms']:.3f} ms  "
                  f"p99 {s['p99_ms']:.3f} ms")
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
