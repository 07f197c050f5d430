from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from profkit.process import free_port


@dataclass
class EngineProcess:
    url: str
    db: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def start_engine(db: Path, log: Path, *extra: str) -> EngineProcess:
    port = free_port()
    fh = open(log, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentmem", "--port", str(port), "--db", str(db), *extra],
        stdout=fh, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"engine exited early: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return EngineProcess(url, db, proc, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("engine did not come up")


@pytest.fixture(scope="module")
def engine_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    d = tmp_path_factory.mktemp("engine")
    eng = start_engine(d / "agentmem.db", d / "engine.log")
    yield eng
    eng.stop()


@pytest.fixture(scope="module")
def client(engine_proc: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine_proc.url, timeout=30) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_leaked_env() -> Iterator[None]:
    before = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    yield
    after = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    assert after == before, "a test leaked environment changes"
