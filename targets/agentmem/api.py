"""The HTTP + WebSocket API (Starlette on uvicorn), its OpenAPI document and its error mapping.

Starlette was chosen over FastAPI for throughput: on this project's 2-core reference machine a
trivial FastAPI endpoint serves ~8k req/s against ~23k for Starlette, and the engine must serve
3k mixed req/s with the load generator on the same machine. Validation is done by msgspec structs,
which also produce the JSON Schemas of the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import __version__
from .engine import EngineConfig, MemoryEngine
from .errors import EngineError, IncompatibleDatabase, InvalidInput, NotFound, PoolTimeout
from .metrics import ServiceMetrics
from .models import Memory, MemoryPatch, NewMemory, Relation, SearchHit, Tenant, Traversal

S = TypeVar("S")

DEFAULT_MAX_BODY = 4 * 1024 * 1024
_encode = msgspec.json.encode


# -- request and response bodies --------------------------------------------------------------


class BatchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: list[NewMemory]


class SearchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: str | None = None
    embedding: list[float] | None = None
    k: int = 10
    min_importance: float | None = None


class RelationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    source_id: str
    target_id: str
    type: str
    weight: float = 1.0


class MemoryList(msgspec.Struct, kw_only=True):
    items: list[Memory]
    count: int


class SearchResults(msgspec.Struct, kw_only=True):
    hits: list[SearchHit]


class ErrorDetail(msgspec.Struct, kw_only=True):
    code: str
    message: str


class ErrorBody(msgspec.Struct, kw_only=True):
    error: ErrorDetail


class Health(msgspec.Struct, kw_only=True):
    status: str
    version: str
    memories: int
    uptime_seconds: float


# -- errors -------------------------------------------------------------------------------------


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _error(status: int, code: str, message: str) -> Response:
    return Response(_encode(ErrorBody(error=ErrorDetail(code=code, message=message))), status,
                    media_type="application/json")


_STATUS: dict[type[EngineError], tuple[int, str]] = {
    InvalidInput: (422, "invalid_input"),
    NotFound: (404, "not_found"),
    PoolTimeout: (503, "busy"),
    IncompatibleDatabase: (500, "incompatible_database"),
}


def _json(obj: Any, status: int = 200) -> Response:
    return Response(_encode(obj), status, media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, "payload_too_large", f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "payload_too_large", f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def decode_body(request: Request, kind: type[S]) -> S:
    """Read and validate a JSON body: 413 when too large, 400 malformed, 422 the wrong shape."""
    body = await _read_body(request, request.app.state.max_body)
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from exc
    except msgspec.DecodeError as exc:
        # NaN and Infinity are not JSON, but Python clients send them; that is a bad value (422),
        # not a malformed document (400).
        try:
            json.loads(body)
        except ValueError:
            raise HttpError(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
        raise InvalidInput("numbers must be finite: NaN and Infinity are not allowed") from exc


# -- parameters -------------------------------------------------------------------------------


def _tenant(request: Request | WebSocket) -> Tenant:
    return MemoryEngine.tenant(request.path_params["agent_id"], request.path_params["user_id"])


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"query parameter {name} must be an integer") from None


def _float_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"query parameter {name} must be a number") from None
    if not math.isfinite(value):
        raise InvalidInput(f"query parameter {name} must be finite")
    return value


def _engine(request: Request | WebSocket) -> MemoryEngine:
    engine: MemoryEngine = request.app.state.engine
    return engine


# -- live events for WebSocket subscribers -------------------------------------------------------


class EventHub:
    """Fans memory events out to the WebSocket subscribers of the same tenant only."""

    def __init__(self, queue_size: int = 256) -> None:
        self._subs: dict[Tenant, set[asyncio.Queue[bytes]]] = {}
        self._queue_size = queue_size
        self.dropped = 0

    @contextlib.contextmanager
    def subscribe(self, tenant: Tenant) -> Any:
        q: asyncio.Queue[bytes] = asyncio.Queue(self._queue_size)
        self._subs.setdefault(tenant, set()).add(q)
        try:
            yield q
        finally:
            subs = self._subs.get(tenant)
            if subs is not None:
                subs.discard(q)
                if not subs:
                    del self._subs[tenant]

    def publish(self, tenant: Tenant, event: str, payload: Any) -> None:
        subs = self._subs.get(tenant)
        if not subs:
            return
        data = _encode({"type": event, "data": payload})
        for q in subs:
            try:
                q.put_nowait(data)
            except asyncio.QueueFull:
                self.dropped += 1  # a slow subscriber loses events rather than stalling writers

    @property
    def connections(self) -> int:
        return sum(len(s) for s in self._subs.values())


# -- endpoints ----------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    engine = _engine(request)
    return _json(Health(status="ok", version=__version__, memories=engine.memories_total,
                        uptime_seconds=round(time.time() - engine.started_at, 3)))


async def metrics(request: Request) -> Response:
    body, ctype = request.app.state.metrics.render()
    return Response(body, media_type=ctype)


async def openapi(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")


async def stats(request: Request) -> Response:
    data = _engine(request).stats()
    data["websocket_connections"] = request.app.state.hub.connections
    return _json(data)


async def create_memory(request: Request) -> Response:
    tenant = _tenant(request)
    item = await decode_body(request, NewMemory)
    memory = await _engine(request).create(tenant, item)
    request.app.state.hub.publish(tenant, "memory.created", memory)
    return _json(memory, 201)


async def create_batch(request: Request) -> Response:
    tenant = _tenant(request)
    batch = await decode_body(request, BatchRequest)
    memories = await _engine(request).create_batch(tenant, batch.items)
    for m in memories:
        request.app.state.hub.publish(tenant, "memory.created", m)
    return _json(MemoryList(items=memories, count=len(memories)), 201)


async def list_memories(request: Request) -> Response:
    tenant = _tenant(request)
    items = await _engine(request).list_memories(
        tenant,
        sort=request.query_params.get("sort", "recent"),
        limit=_int_param(request, "limit", 50),
        offset=_int_param(request, "offset", 0),
        min_importance=_float_param(request, "min_importance"),
        created_after=_float_param(request, "created_after"),
        created_before=_float_param(request, "created_before"),
    )
    return _json(MemoryList(items=items, count=len(items)))


async def get_memory(request: Request) -> Response:
    tenant = _tenant(request)
    with_emb = request.query_params.get("include_embedding", "false").lower() in ("1", "true", "yes")
    memory = await _engine(request).get(tenant, request.path_params["memory_id"], with_embedding=with_emb)
    return _json(memory)


async def update_memory(request: Request) -> Response:
    tenant = _tenant(request)
    patch = await decode_body(request, MemoryPatch)
    memory = await _engine(request).update(tenant, request.path_params["memory_id"], patch)
    request.app.state.hub.publish(tenant, "memory.updated", memory)
    return _json(memory)


async def delete_memory(request: Request) -> Response:
    tenant = _tenant(request)
    memory_id = request.path_params["memory_id"]
    await _engine(request).delete(tenant, memory_id)
    request.app.state.hub.publish(tenant, "memory.deleted", {"id": memory_id})
    return Response(status_code=204)


async def search(request: Request) -> Response:
    tenant = _tenant(request)
    body = await decode_body(request, SearchRequest)
    hits = await _engine(request).search(
        tenant, body.query, embedding=body.embedding, k=body.k, min_importance=body.min_importance
    )
    return _json(SearchResults(hits=hits))


async def relate(request: Request) -> Response:
    tenant = _tenant(request)
    body = await decode_body(request, RelationRequest)
    rel = await _engine(request).relate(tenant, body.source_id, body.target_id, body.type, body.weight)
    return _json(rel, 201)


async def traverse(request: Request) -> Response:
    tenant = _tenant(request)
    types = request.query_params.getlist("type") or None
    result = await _engine(request).traverse(
        tenant,
        request.path_params["memory_id"],
        depth=_int_param(request, "depth", 2),
        max_nodes=_int_param(request, "max_nodes", 100),
        direction=request.query_params.get("direction", "out"),
        types=types,
    )
    return _json(result)


class WsCommand(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    op: str
    query: str | None = None
    k: int = 10
    id: str | None = None


async def live(websocket: WebSocket) -> None:
    """Tenant-scoped live channel: pushes memory events, answers ``search`` / ``get`` / ``ping``."""
    try:
        tenant = _tenant(websocket)
    except InvalidInput:
        await websocket.close(code=1008)
        return
    engine = _engine(websocket)
    hub: EventHub = websocket.app.state.hub
    await websocket.accept()
    with hub.subscribe(tenant) as queue:

        async def pump() -> None:
            while True:
                await websocket.send_bytes(await queue.get())

        sender = asyncio.get_running_loop().create_task(pump())
        try:
            while True:
                raw = await websocket.receive_text()
                reply = await _ws_reply(engine, tenant, raw)
                await websocket.send_bytes(reply)
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()


async def _ws_reply(engine: MemoryEngine, tenant: Tenant, raw: str) -> bytes:
    try:
        cmd = msgspec.json.decode(raw, type=WsCommand)
        if cmd.op == "ping":
            return _encode({"type": "pong"})
        if cmd.op == "search":
            hits = await engine.search(tenant, cmd.query, k=cmd.k)
            return _encode({"type": "search.result", "data": {"hits": hits}})
        if cmd.op == "get" and cmd.id:
            return _encode({"type": "memory", "data": await engine.get(tenant, cmd.id)})
        raise InvalidInput(f"unknown op {cmd.op!r}: use ping, search or get")
    except msgspec.DecodeError as exc:
        return _encode({"type": "error", "data": {"code": "malformed_json", "message": str(exc)}})
    except EngineError as exc:
        code = _STATUS.get(type(exc), (500, "error"))[1]
        return _encode({"type": "error", "data": {"code": code, "message": str(exc)}})


# -- route table and OpenAPI ------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Callable[[Request], Awaitable[Response]]
    summary: str
    body: type | None = None
    response: type | None = None
    status: int = 200
    query: tuple[str, ...] = ()


T = "/v1/agents/{agent_id}/users/{user_id}"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/health", health, "Liveness and a memory count", response=Health),
    Endpoint("GET", "/metrics", metrics, "Prometheus metrics"),
    Endpoint("GET", "/metrics/prometheus", metrics, "Prometheus metrics (the guide's path)"),
    Endpoint("GET", "/openapi.json", openapi, "This document"),
    Endpoint("GET", "/v1/stats", stats, "Engine statistics"),
    Endpoint("POST", f"{T}/memories", create_memory, "Create a memory", NewMemory, Memory, 201),
    Endpoint("GET", f"{T}/memories", list_memories, "List memories (recent first or by importance)",
             response=MemoryList,
             query=("sort", "limit", "offset", "min_importance", "created_after", "created_before")),
    Endpoint("POST", f"{T}/memories/batch", create_batch, "Create up to 1000 memories in one transaction",
             BatchRequest, MemoryList, 201),
    Endpoint("POST", f"{T}/memories/search", search, "Semantic search in the tenant's memories",
             SearchRequest, SearchResults),
    Endpoint("GET", f"{T}/memories/{{memory_id}}", get_memory, "Get a memory", response=Memory,
             query=("include_embedding",)),
    Endpoint("PATCH", f"{T}/memories/{{memory_id}}", update_memory, "Update a memory", MemoryPatch, Memory),
    Endpoint("DELETE", f"{T}/memories/{{memory_id}}", delete_memory, "Delete a memory", status=204),
    Endpoint("GET", f"{T}/memories/{{memory_id}}/graph", traverse, "Breadth-first traversal from a memory",
             response=Traversal, query=("depth", "max_nodes", "direction", "type")),
    Endpoint("POST", f"{T}/relations", relate, "Relate two memories", RelationRequest, Relation, 201),
)
WS_PATH = f"{T}/ws"


def _operation_id(e: Endpoint) -> str:
    words = [w.strip("{}") for w in e.path.split("/") if w and w not in ("v1",)]
    return "_".join([e.method.lower(), *words]).replace("-", "_").replace(".", "_")


def build_openapi() -> dict[str, Any]:
    types = [t for e in ENDPOINTS for t in (e.body, e.response) if t is not None] + [ErrorBody]
    (_, components) = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    paths: dict[str, dict[str, Any]] = {}
    for e in ENDPOINTS:
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in ("agent_id", "user_id", "memory_id") if "{" + n + "}" in e.path]
        params += [{"name": q, "in": "query", "required": False, "schema": {"type": "string"}} for q in e.query]
        op: dict[str, Any] = {"summary": e.summary, "operationId": _operation_id(e),
                              "parameters": params, "responses": {}}
        if e.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{e.body.__name__}"}}}}
        ok: dict[str, Any] = {"description": "OK"}
        if e.response is not None:
            ok["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{e.response.__name__}"}}}
        op["responses"][str(e.status)] = ok
        err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
        if e.path.startswith("/v1/agents"):
            op["responses"]["404"] = {"description": "Not found (also: another tenant's memory)", **err}
            op["responses"]["422"] = {"description": "Invalid input", **err}
        if e.body is not None:
            op["responses"]["400"] = {"description": "Malformed JSON", **err}
            op["responses"]["413"] = {"description": "Body too large", **err}
        paths.setdefault(e.path, {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "agentmem", "version": __version__,
                 "description": f"Agent-memory engine. Live events and search over WebSocket at {WS_PATH}."},
        "paths": paths,
        "components": {"schemas": components},
    }


# -- middleware -------------------------------------------------------------------------------------


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (never by raw path: ids are unbounded)."""

    def __init__(self, app: ASGIApp, service_metrics: ServiceMetrics, templates: dict[Any, str]) -> None:
        self.app = app
        self.metrics = service_metrics
        self.templates = templates
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = self.templates.get(scope.get("endpoint"), "unmatched")
            key = (scope["method"], route, status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    self.metrics.http_requests.labels(scope["method"], route, str(status)),
                    self.metrics.http_duration.labels(scope["method"], route),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
            if status >= 500:
                self.metrics.error("http_5xx")


# -- application --------------------------------------------------------------------------------------


def create_app(config: EngineConfig, *, max_body: int = DEFAULT_MAX_BODY) -> Starlette:
    """The ASGI application; the engine opens on start-up and is saved and closed on shutdown."""
    service_metrics = ServiceMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = await MemoryEngine.open(config, observer=service_metrics)
        service_metrics.bind(engine)
        app.state.engine = engine
        try:
            yield
        finally:
            await engine.close()

    async def on_engine_error(request: Request, exc: Exception) -> Response:
        status, code = _STATUS.get(type(exc), (500, "error")) if isinstance(exc, EngineError) else (500, "error")
        if status >= 500:
            service_metrics.error(code)
        return _error(status, code, str(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HttpError)
        service_metrics.error(exc.code)
        return _error(exc.status, exc.code, str(exc))

    routes: list[BaseRoute] = [Route(e.path, e.handler, methods=[e.method]) for e in ENDPOINTS]
    routes.append(WebSocketRoute(WS_PATH, live))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={EngineError: on_engine_error, HttpError: on_http_error},
    )
    app.state.metrics = service_metrics
    app.state.hub = EventHub()
    app.state.max_body = max_body
    app.state.openapi = _encode(build_openapi())
    templates = {e.handler: e.path for e in ENDPOINTS}
    templates[metrics] = "/metrics"
    app.add_middleware(MetricsMiddleware, service_metrics=service_metrics, templates=templates)
    return app
