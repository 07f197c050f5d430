"""Optional fact extraction against a real HTTP endpoint on 127.0.0.1 that answers, fails or stalls."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from agentmem.engine import EngineConfig, MemoryEngine
from agentmem.metrics import ServiceMetrics
from agentmem.models import NewMemory, Tenant

T = Tenant("agent-llm", "u")


class _Handler(BaseHTTPRequestHandler):
    mode = "ok"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        assert self.path == "/v1/chat/completions" and body["messages"][-1]["role"] == "user"
        if self.mode == "fail":
            self.send_response(500)
            self.end_headers()
            return
        if self.mode == "slow":
            time.sleep(3)
        reply = {"choices": [{"message": {"content": json.dumps(["user likes tea", "user lives in lisbon"])}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def llm_server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("H", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()


@pytest.mark.parametrize("mode", ["ok", "fail", "slow"])
def test_llm_enrichment_never_loses_the_memory(tmp_path: Path, llm_server: tuple[str, type[_Handler]],
                                                mode: str) -> None:
    url, handler = llm_server
    handler.mode = mode
    metrics = ServiceMetrics()

    async def main() -> dict[str, object]:
        e = await MemoryEngine.open(EngineConfig(db_path=str(tmp_path / "l.db"), llm_url=url, llm_timeout=1.0),
                                    observer=metrics)
        try:
            m = await e.create(T, NewMemory(content="I like tea and I live in Lisbon"))
            await e.wait_background()
            return (await e.get(T, m.id)).metadata
        finally:
            await e.close()

    metadata = asyncio.run(main())
    errors = metrics.registry.get_sample_value("agentmem_errors_total", {"kind": "llm"})
    calls = metrics.registry.get_sample_value("agentmem_llm_call_duration_seconds_count",
                                              {"outcome": "ok" if mode == "ok" else "error"})
    if mode == "ok":
        assert metadata == {"facts": ["user likes tea", "user lives in lisbon"]}
        assert errors == 0 and calls == 1
    else:
        assert metadata == {}  # stored as written, no facts
        assert errors == 1 and calls == 1
