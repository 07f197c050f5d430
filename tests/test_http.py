"""The API over a real server process on 127.0.0.1: status codes, tenancy, WebSocket, OpenAPI."""

from __future__ import annotations

import json

import httpx
import msgspec
import pytest
from websockets.sync.client import connect

from tests.helpers import EngineProcess

pytestmark = pytest.mark.slow

P = "/v1/agents/agent-a/users/u1"
Q = "/v1/agents/agent-b/users/u1"


def test_crud_round_trip(client: httpx.Client) -> None:
    r = client.post(f"{P}/memories", json={"content": "alice likes espresso", "importance": 0.8,
                                           "metadata": {"source": "chat"}})
    assert r.status_code == 201, r.text
    m = r.json()
    assert client.get(f"{P}/memories/{m['id']}").json()["content"] == "alice likes espresso"
    full = client.get(f"{P}/memories/{m['id']}", params={"include_embedding": "true"}).json()
    assert len(full["embedding"]) == 256
    r = client.patch(f"{P}/memories/{m['id']}", json={"importance": 0.1})
    assert r.status_code == 200 and r.json()["importance"] == 0.1
    hits = client.post(f"{P}/memories/search", json={"query": "espresso", "k": 5}).json()["hits"]
    assert hits[0]["memory"]["id"] == m["id"]
    assert client.delete(f"{P}/memories/{m['id']}").status_code == 204
    assert client.get(f"{P}/memories/{m['id']}").status_code == 404


def test_other_tenant_gets_404(client: httpx.Client) -> None:
    m = client.post(f"{P}/memories", json={"content": "secret of agent a"}).json()
    for method, path, body in [
        ("GET", f"{Q}/memories/{m['id']}", None),
        ("PATCH", f"{Q}/memories/{m['id']}", {"content": "overwritten"}),
        ("DELETE", f"{Q}/memories/{m['id']}", None),
        ("GET", f"{Q}/memories/{m['id']}/graph", None),
    ]:
        r = client.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    assert client.post(f"{Q}/memories/search", json={"query": "secret"}).json()["hits"] == []
    assert client.get(f"{Q}/memories").json()["items"] == []
    assert client.get(f"{P}/memories/{m['id']}").json()["content"] == "secret of agent a"
    missing = client.get(f"{Q}/memories/{'0' * 32}").json()["error"]["message"]
    foreign = client.get(f"{Q}/memories/{m['id']}").json()["error"]["message"]
    assert missing.replace("0" * 32, "X") == foreign.replace(m["id"], "X")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"content": "x"', 400),
        (b"not json at all", 400),
        (b'{"content": ""}', 422),
        (b'{"content": 5}', 422),
        (b'{"content": "x", "embedding": [0.1, 0.2]}', 422),
        (b'{"content": "x", "embedding": [NaN' + b", 0.0" * 255 + b"]}", 422),
        (b'{"content": "x", "embedding": [Infinity' + b", 0.0" * 255 + b"]}", 422),
        (b'{"content": "x", "embedding": [1e999' + b", 0.0" * 255 + b"]}", 422),
        (b'{"content": "x", "importance": 7}', 422),
        (b'{"content": "x", "unknown_field": 1}', 422),
    ],
)
def test_bad_bodies(client: httpx.Client, raw: bytes, status: int) -> None:
    before = client.get(f"{P}/memories", params={"limit": 1000}).json()["count"]
    r = client.post(f"{P}/memories", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert set(r.json()["error"]) == {"code", "message"}
    assert client.get(f"{P}/memories", params={"limit": 1000}).json()["count"] == before


def test_body_over_limit_is_413(client: httpx.Client) -> None:
    r = client.post(f"{P}/memories", content=b'{"content": "' + b"x" * (5 * 1024 * 1024) + b'"}')
    assert r.status_code == 413
    # Chunked upload without a Content-Length is cut off too.
    r = client.post(f"{P}/memories", content=iter([b'{"content": "', b"y" * (5 * 1024 * 1024), b'"}']))
    assert r.status_code == 413


def test_unknown_sort_and_bad_query_params(client: httpx.Client) -> None:
    assert client.get(f"{P}/memories", params={"sort": "content"}).status_code == 422
    assert client.get(f"{P}/memories", params={"limit": "ten"}).status_code == 422
    assert client.get(f"{P}/memories", params={"min_importance": "nan"}).status_code == 422
    assert client.get("/v1/agents/a%20b/users/u/memories").status_code == 422


def test_batch_is_all_or_nothing(client: httpx.Client) -> None:
    tenant = "/v1/agents/batcher/users/u1"
    items = [{"content": f"batch note {i}"} for i in range(100)]
    items[99] = {"content": "bad", "embedding": [float("nan")] * 256}
    r = client.post(f"{tenant}/memories/batch", content=json.dumps({"items": items}).encode())
    assert r.status_code == 422
    assert client.get(f"{tenant}/memories").json()["count"] == 0
    r = client.post(f"{tenant}/memories/batch", json={"items": items[:99]})
    assert r.status_code == 201 and r.json()["count"] == 99


def test_relations_and_traversal(client: httpx.Client) -> None:
    ids = [m["id"] for m in client.post(f"{P}/memories/batch",
                                        json={"items": [{"content": f"n{i}"} for i in range(4)]}).json()["items"]]
    for a, b in [(0, 1), (1, 2), (2, 3)]:
        r = client.post(f"{P}/relations", json={"source_id": ids[a], "target_id": ids[b], "type": "follows"})
        assert r.status_code == 201, r.text
    g = client.get(f"{P}/memories/{ids[0]}/graph", params={"depth": 2}).json()
    assert [n["id"] for n in g["nodes"]] == ids[:3] and len(g["edges"]) == 2
    assert client.get(f"{P}/memories/{ids[0]}/graph", params={"depth": 9}).status_code == 422
    r = client.post(f"{P}/relations", json={"source_id": ids[0], "target_id": ids[1], "type": "Bad Type"})
    assert r.status_code == 422


def test_openapi_document_is_valid(client: httpx.Client) -> None:
    from openapi_spec_validator import validate

    doc = client.get("/openapi.json").json()
    validate(doc)
    assert f"{P.replace('agent-a', '{agent_id}').replace('u1', '{user_id}')}/memories" in doc["paths"]


def test_websocket_search_and_tenant_scoped_events(engine_proc: EngineProcess, client: httpx.Client) -> None:
    ws_url = engine_proc.url.replace("http://", "ws://")
    with connect(f"{ws_url}{P}/ws") as mine, connect(f"{ws_url}{Q}/ws") as theirs:
        mine.send('{"op": "ping"}')
        assert json.loads(mine.recv(10))["type"] == "pong"
        created = client.post(f"{P}/memories", json={"content": "websocket event about espresso"}).json()
        event = json.loads(mine.recv(10))
        assert event["type"] == "memory.created" and event["data"]["id"] == created["id"]
        mine.send('{"op": "search", "query": "websocket espresso", "k": 3}')
        reply = json.loads(mine.recv(10))
        assert reply["type"] == "search.result"
        assert reply["data"]["hits"][0]["memory"]["id"] == created["id"]
        # The other tenant got no event: its next message is the answer to its own ping.
        theirs.send('{"op": "ping"}')
        assert json.loads(theirs.recv(10))["type"] == "pong"
        theirs.send(json.dumps({"op": "get", "id": created["id"]}))
        assert json.loads(theirs.recv(10))["data"]["code"] == "not_found"
        theirs.send("{broken")
        assert json.loads(theirs.recv(10))["data"]["code"] == "malformed_json"


def test_metrics_names_and_no_tenant_labels(client: httpx.Client) -> None:
    from agentmem.metrics import METRIC_NAMES

    client.get("/health")
    client.get(f"{P}/memories/{'0' * 32}")
    for path in ("/metrics", "/metrics/prometheus"):
        text = client.get(path).text
        names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}
        bases = names | {n.rsplit("_", 1)[0] for n in names}  # histogram _bucket/_sum/_count
        missing = [n for n in METRIC_NAMES if n not in bases]
        assert not missing, missing
        assert "agent_id=" not in text and "user_id=" not in text
        assert 'route="/v1/agents/{agent_id}/users/{user_id}/memories/{memory_id}"' in text


def test_health(client: httpx.Client) -> None:
    body = msgspec.json.decode(client.get("/health").content)
    assert body["status"] == "ok"
