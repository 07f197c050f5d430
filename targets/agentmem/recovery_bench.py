"""Restart time of the HTTP server after a SIGKILL and after a clean stop, at a realistic size.

    python -m agentmem.recovery_bench [--rows 150000] [--since-save 86000] [--runs 3]

Builds a store the way a service fills it: ``rows - since_save`` memories through the batch
endpoint, a clean stop (SIGINT: the index is saved), a restart, ``since_save`` more memories, and
a SIGKILL straight after the last write. That state is copied aside; each run restores it, starts
``python -m agentmem`` and times process start -> port accepting connections ("listening") and
-> /health answering 200 ("healthy": the vector index is consistent with the database). Then the
same after a clean stop (the killed state, started once and stopped with SIGINT). Prints the
median of the runs in a small table, with what the server says it replayed.

Memories are spread over tenants of very different sizes as in ``python -m agentmem.bench``
(one holds 40 %, one 20 %, one 1 %, 17 share the rest), so the big tenants have HNSW graphs.
``--pythonpath DIR`` runs another copy of agentmem (say, an older commit's) for a comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from .bench import tenant_sizes
from .workload.corpus import Corpus

DB = "agentmem.db"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``python -m agentmem`` on a free port, with its start time and the moments it came up."""

    def __init__(self, folder: Path, log: Path, pythonpath: str | None, extra: list[str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
        self._log = open(log, "ab")  # closed in wait_exit
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentmem", "--port", str(self.port), "--db", str(folder / DB), *extra],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.listening: float | None = None
        self.healthy: float | None = None
        self.health_codes: list[int] = []

    def wait_up(self, timeout: float = 600.0) -> None:
        """Poll the port (every 5 ms) and /health (every 20 ms) until it answers 200."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited with code {self.proc.returncode}")
                if self.listening is None:
                    try:
                        socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                        self.listening = time.perf_counter() - self.started
                    except OSError:
                        time.sleep(0.005)
                        continue
                try:
                    code = client.get(f"{self.url}/health").status_code
                except httpx.HTTPError:
                    code = 0
                if not self.health_codes or self.health_codes[-1] != code:
                    self.health_codes.append(code)
                if code == 200:
                    self.healthy = time.perf_counter() - self.started
                    return
                time.sleep(0.02)
        raise RuntimeError(f"the server did not answer /health 200 within {timeout:.0f} s")

    def stats(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = httpx.get(f"{self.url}/v1/stats", timeout=30).json()
            return data
        except (httpx.HTTPError, ValueError):
            return {}

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait_exit(30)

    def stop(self) -> float:
        """SIGINT (a clean stop: the index is saved); the seconds it took."""
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGINT)
        self.wait_exit(1800)
        return time.perf_counter() - t0

    def wait_exit(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        finally:
            self._log.close()


def write(url: str, total: int, seed: int, batch: int, progress: Callable[[str], None]) -> None:
    """``total`` memories through the batch endpoint, spread over the bench's tenants."""
    corpus = Corpus(seed)
    plan = [(t, n) for t, n in tenant_sizes(total) if n > 0]
    done = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        left = dict(plan)
        while done < total:
            for tenant, _ in plan:
                n = min(batch, left[tenant])
                if n <= 0:
                    continue
                items = [{"content": f"{m.content} #{seed}-{done + i}", "importance": m.importance,
                          "metadata": {"topic": m.topic}} for i, m in enumerate(corpus.memories(n))]
                r = client.post(f"/v1/agents/{tenant.agent_id}/users/{tenant.user_id}/memories/batch",
                                json={"items": items})
                r.raise_for_status()
                left[tenant] -= n
                done += n
                progress(f"wrote {done}/{total}")


def copy_state(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


@contextmanager
def restored(template: Path, work: Path) -> Iterator[Path]:
    copy_state(template, work)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def time_restarts(template: Path, work: Path, runs: int, args: argparse.Namespace,
                  progress: Callable[[str], None], label: str) -> dict[str, Any]:
    listening: list[float] = []
    healthy: list[float] = []
    recovery: dict[str, Any] = {}
    codes: list[int] = []
    for i in range(runs):
        progress(f"{label}: restart {i + 1}/{runs}")
        with restored(template, work) as folder:
            server = Server(folder, folder / "restart.log", args.pythonpath, args.server_arg)
            try:
                server.wait_up()
                recovery = server.stats().get("index", {}).get("recovery", {})
                codes = server.health_codes
            finally:
                server.kill()
            assert server.listening is not None and server.healthy is not None
            listening.append(server.listening)
            healthy.append(server.healthy)
    return {"listening_s": round(statistics.median(listening), 3), "healthy_s": round(statistics.median(healthy), 3),
            "listening_all": [round(x, 3) for x in listening], "healthy_all": [round(x, 3) for x in healthy],
            "health_codes": codes, "recovery": recovery}


def run(args: argparse.Namespace, root: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    state, work = root / "state", root / "work"
    state.mkdir()
    t0 = time.perf_counter()
    first = args.rows - args.since_save
    server = Server(state, root / "build.log", args.pythonpath, args.server_arg)
    server.wait_up()
    write(server.url, first, 1, args.batch, progress)
    progress(f"clean stop after {first} rows (the indexer finishes first)")
    server.stop()
    server = Server(state, root / "build.log", args.pythonpath, args.server_arg)
    server.wait_up()
    write(server.url, args.since_save, 2, args.batch, progress)
    server.kill()  # straight after the last write: whatever checkpoint there is, is behind
    build_s = time.perf_counter() - t0

    killed = root / "killed"
    copy_state(state, killed)
    after_kill = time_restarts(killed, work, args.runs, args, progress, "after SIGKILL")

    progress("clean stop of the recovered store (the indexer finishes first)")
    clean = root / "clean"
    copy_state(killed, clean)
    server = Server(clean, root / "clean.log", args.pythonpath, args.server_arg)
    server.wait_up()
    stop_s = server.stop()
    after_clean = time_restarts(clean, work, args.runs, args, progress, "after clean stop")
    if args.keep:
        for name, folder in (("killed", killed), ("clean", clean)):
            copy_state(folder, Path(args.keep) / name)
    return {"rows": args.rows, "since_save": args.since_save, "runs": args.runs, "build_seconds": round(build_s, 1),
            "clean_stop_seconds": round(stop_s, 1), "after_sigkill": after_kill, "after_clean_stop": after_clean}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentmem.recovery_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=150_000, help="memories in the store (default 150000)")
    parser.add_argument("--since-save", type=int, default=86_000,
                        help="of those, written after the last clean stop (default 86000)")
    parser.add_argument("--runs", type=int, default=3, help="restarts timed per state; the median is shown")
    parser.add_argument("--batch", type=int, default=1000, help="memories per batch request")
    parser.add_argument("--pythonpath", default=None, help="run the agentmem found here (a comparison)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra argument for the server")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="keep both states (killed/, clean/) in DIR, to time restarts by hand")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if not 0 <= args.since_save <= args.rows or args.runs < 1:
        parser.error("need 0 <= --since-save <= --rows and --runs >= 1")

    def progress(msg: str) -> None:
        if not args.json:
            print(f"\r\033[K{msg}", end="", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="agentmem-recovery-") as tmp:
        report = run(args, Path(tmp), progress)
    if args.json:
        print(json.dumps(report))
        return 0
    print("\r\033[K", end="", file=sys.stderr)
    print(f"{report['rows']} memories, {report['since_save']} written since the last clean stop "
          f"(built in {report['build_seconds']} s); median of {report['runs']} restarts")
    print(f"{'restart after':<18}{'listening s':>13}{'healthy s':>11}  runs (healthy s)   recovery")
    for name, key in (("SIGKILL", "after_sigkill"), ("clean stop", "after_clean_stop")):
        r = report[key]
        rec = r["recovery"]
        said = (f"replayed {rec.get('replayed')} rows, index load {rec.get('load_seconds')} s, "
                f"ready {rec.get('seconds')} s" if rec else "-")
        print(f"{name:<18}{r['listening_s']:>13.2f}{r['healthy_s']:>11.2f}  "
              f"{' '.join(f'{x:.2f}' for x in r['healthy_all']):<18} {said}")
    print(f"(a clean stop of the killed store took {report['clean_stop_seconds']} s: the indexer finished first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
