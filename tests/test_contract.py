"""The API keeps its OpenAPI contract: schemathesis against a real engine process, and the probe's findings.

Issue 12: the document now states the server's own input rules (so a spec-conforming request is
accepted and a non-conforming one refused), 405 answers list every method of the path, a tenant id
is the whole pattern (no trailing newline), and a binary WebSocket frame is refused with close code 1003.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.helpers import EngineProcess, start_engine

pytestmark = pytest.mark.slow  # every test here talks to a real engine process

P = "/v1/agents/contract-a/users/u1"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# Bounded and reproducible: ~45 s on the 2-core reference machine under load (100 examples: ~60-85 s).
SCHEMATHESIS_ARGS = ("--checks", "all", "--max-examples", "50", "--seed", "12345")


def _new_log_text(engine: EngineProcess, since: int) -> str:
    return engine.log.read_bytes()[since:].decode(errors="replace")


def test_schemathesis_finds_no_failure(tmp_path: Path) -> None:
    engine = start_engine(tmp_path / "agentmem.db", tmp_path / "engine.log")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
             "run", f"{engine.url}/openapi.json", *SCHEMATHESIS_ARGS,
             "--generation-database", "none", "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=280, check=False,
        )
    finally:
        engine.stop()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert re.search(r"\d+ generated, \d+ passed", out), out[-3000:]
    assert "API Operations:\n  Selected: 13/13\n  Tested: 13" in out, out[-3000:]
    log = engine.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


def test_openapi_parameters_are_typed_and_bounded(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    ops = doc["paths"]["/v1/agents/{agent_id}/users/{user_id}/memories/{memory_id}/graph"]["get"]
    params = {p["name"]: p for p in ops["parameters"]}
    assert params["agent_id"]["schema"]["pattern"] == "^(?:[A-Za-z0-9_.:@-]{1,128})$"
    assert params["memory_id"]["schema"]["pattern"] == "^(?:[0-9a-f]{32})$"
    assert params["depth"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 5, "default": 2}
    assert params["type"]["schema"]["items"]["pattern"] == "^(?:[a-z][a-z0-9_]{0,63})$"
    listing = {p["name"]: p["schema"] for p in doc["paths"]["/v1/agents/{agent_id}/users/{user_id}/memories"]
               ["get"]["parameters"]}
    assert set(listing["sort"]["enum"]) == {"recent", "created_at", "importance"}
    assert listing["min_importance"] == {"type": "number", "minimum": 0.0, "maximum": 1.0}
    schemas = doc["components"]["schemas"]
    embedding = schemas["NewMemory"]["properties"]["embedding"]["anyOf"][0]
    assert embedding["minItems"] == embedding["maxItems"] == 256
    assert schemas["NewMemory"]["properties"]["content"]["maxLength"] == 16_384
    assert schemas["SearchRequest"]["properties"]["k"] == {"type": "integer", "minimum": 1, "maximum": 100,
                                                           "default": 10}
    assert {tuple(branch["required"]) for branch in schemas["SearchRequest"]["anyOf"]} == {("query",), ("embedding",)}
    assert schemas["BatchRequest"]["properties"]["items"]["maxItems"] == 1000


def test_non_blank_pattern_is_what_strip_keeps() -> None:
    from agentmem.models import NON_BLANK

    pattern = re.compile(NON_BLANK)
    blank = "".join(c for c in map(chr, range(0x110000)) if not pattern.search(c))
    assert blank == "".join(c for c in map(chr, range(0x110000)) if c.isspace())


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": "espresso", "k": 25.0}, 200),  # 25.0 is an integer for JSON Schema
        ({"query": "espresso", "k": 25.5}, 422),
        ({"query": "espresso", "k": "25"}, 422),
        ({"query": " \t\u3000"}, 422),  # blank
        ({}, 422),  # neither a query nor an embedding
        ({"query": None, "embedding": None}, 422),
        ({"embedding": [0.0] * 256}, 422),  # the zero vector
        ({"embedding": [1e-200] * 256}, 422),  # its norm underflows to zero
        ({"embedding": [1e200] * 256}, 422),  # its norm overflows
        ({"embedding": [0.0] * 255 + [1e-150]}, 200),
    ],
)
def test_search_body_rules(client: httpx.Client, body: dict[str, object], status: int) -> None:
    r = client.post(f"{P}/memories/search", json=body)
    assert r.status_code == status, r.text


def test_content_must_not_be_blank_and_query_params_are_strict(client: httpx.Client) -> None:
    assert client.post(f"{P}/memories", json={"content": "\x1c\x85 "}).status_code == 422
    assert client.post(f"{P}/memories", json={"content": "\ufeff"}).status_code == 201  # not white space to strip()
    m = client.post(f"{P}/memories", json={"content": "strict query parameters"}).json()
    assert client.get(f"{P}/memories/{m['id']}", params={"include_embedding": "yes"}).status_code == 422
    assert client.get(f"{P}/memories/{m['id']}", params={"include_embedding": "false"}).json()["embedding"] is None
    assert client.get(f"{P}/memories", params={"offset": str(2**63)}).status_code == 422
    assert client.get(f"{P}/memories", params={"created_after": "inf"}).status_code == 422
    assert client.get(f"{P}/memories/{m['id']}/graph", params={"type": "Bad Type"}).status_code == 422
    assert client.get(f"{P}/memories/not-an-id").status_code == 422


def test_deeply_nested_body_is_refused_not_a_server_error(client: httpx.Client) -> None:
    nested = b'{"content": "deep", "metadata": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    r = client.post(f"{P}/memories", content=nested, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text


def test_relating_a_missing_memory_to_itself_is_404(client: httpx.Client) -> None:
    missing = "0" * 32
    r = client.post(f"{P}/relations", json={"source_id": missing, "target_id": missing, "type": "follows"})
    assert r.status_code == 404, r.text
    m = client.post(f"{P}/memories", json={"content": "self"}).json()
    r = client.post(f"{P}/relations", json={"source_id": m["id"], "target_id": m["id"], "type": "follows"})
    assert r.status_code == 422, r.text


# -- 405 and Allow ----------------------------------------------------------------------------------


def test_405_lists_every_method_of_the_path(client: httpx.Client) -> None:
    r = client.put(f"{P}/memories")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD, POST"
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert client.request("PUT", f"{P}/memories/{'0' * 32}").headers["allow"] == "DELETE, GET, HEAD, PATCH"
    assert client.request("OPTIONS", f"{P}/memories/{'0' * 32}").headers["allow"] == "DELETE, GET, HEAD, PATCH"


def test_allow_header_matches_the_document_on_every_path(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    fill = {"{agent_id}": "contract-a", "{user_id}": "u1", "{memory_id}": "0" * 32}
    for template, ops in doc["paths"].items():
        path = template
        for k, v in fill.items():
            path = path.replace(k, v)
        documented = {m.upper() for m in ops}
        expected = documented | ({"HEAD"} if "GET" in documented else set())
        for method in METHODS:
            if method in expected:
                continue
            r = client.request(method, path)
            assert r.status_code == 405, (method, template, r.status_code)
            assert set(r.headers["allow"].split(", ")) == expected, (method, template, r.headers["allow"])


def test_unknown_path_is_a_json_404(client: httpx.Client) -> None:
    r = client.get("/v1/nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


# -- tenant ids are the whole pattern --------------------------------------------------------------


def test_tenant_id_with_a_trailing_newline_is_rejected(engine_proc: EngineProcess, client: httpx.Client) -> None:
    tenant = "/v1/agents/agentA/users/u1"
    assert client.post(f"{tenant}/memories", json={"content": "belongs to agentA"}).status_code == 201
    for bad in ("/v1/agents/agentA%0A/users/u1", "/v1/agents/agentA/users/u1%0A", "/v1/agents/agentA%0D%0A/users/u1"):
        r = client.get(f"{bad}/memories")
        assert r.status_code == 422, (bad, r.text)  # not a tenant of its own (an empty list, before)
        assert r.json()["error"]["code"] == "invalid_input"
        assert client.post(f"{bad}/memories", json={"content": "new tenant?"}).status_code == 422
    m = client.get(f"{tenant}/memories").json()["items"][0]
    assert client.get(f"{tenant}/memories/{m['id']}%0A").status_code == 422
    r = client.post(f"{tenant}/relations", json={"source_id": m["id"], "target_id": "0" * 32, "type": "follows\n"})
    assert r.status_code == 422
    # No agent "agentA\n" came to be: every agent with memories is one this module wrote for.
    written = [a for a in ("agentA", "contract-a") if client.get(f"/v1/agents/{a}/users/u1/memories").json()["count"]]
    assert client.get("/v1/stats").json()["agents_total"] == len(written)
    ws_url = engine_proc.url.replace("http://", "ws://")
    with pytest.raises(InvalidStatus) as refused, connect(f"{ws_url}/v1/agents/agentA%0A/users/u1/ws"):
        pass
    assert refused.value.response.status_code == 403  # closed (1008) before the handshake completed


# -- WebSocket: a binary frame ------------------------------------------------------------------------


@pytest.fixture
def log_offset(engine_proc: EngineProcess) -> Iterator[int]:
    yield engine_proc.log.stat().st_size


def test_binary_websocket_frame_is_closed_with_1003(engine_proc: EngineProcess, log_offset: int) -> None:
    ws_url = engine_proc.url.replace("http://", "ws://")
    with connect(f"{ws_url}{P}/ws") as ws:
        ws.send('{"op": "ping"}')
        assert json.loads(ws.recv(10))["type"] == "pong"
        ws.send(b'{"op": "ping"}')
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1003
    assert "binary" in closed.value.rcvd.reason
    # The server is fine: another connection works, and nothing went wrong in its log.
    with connect(f"{ws_url}{P}/ws") as ws:
        ws.send('{"op": "ping"}')
        assert json.loads(ws.recv(10))["type"] == "pong"
    time.sleep(0.2)
    log = _new_log_text(engine_proc, log_offset)
    assert "Traceback" not in log and "KeyError" not in log, log
