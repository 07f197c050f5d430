"""Fixtures shared by the test modules; plain helpers are in tests/helpers.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import EngineProcess, start_engine


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
