"""The HTTP + WebSocket API (Starlette on uvicorn), its OpenAPI document and its error mapping.

Starlette was chosen over FastAPI for throughput: on this project's 2-core reference machine a
trivial FastAPI endpoint serves ~8k req/s against ~23k for Starlette, and the engine must serve
3k mixed req/s with the load generator on the same machine. Validation is done by msgspec structs,
which also produce the JSON Schemas of the OpenAPI document: path and query parameters as well as
bodies, so that the document says exactly what the server accepts and cannot drift from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import GenericAlias
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import __version__
from .engine import DIRECTIONS, EngineConfig, MemoryEngine
from .errors import EngineError, IncompatibleDatabase, InvalidInput, NotFound, PoolTimeout
from .metrics import ServiceMetrics
from .models import (
    EMBEDDING_MAX_ABS,
    EMBEDDING_MIN_PEAK,
    MEMORY_ID,
    MEMORY_ID_LEN,
    NON_BLANK,
    RELATION_TYPE,
    RELATION_TYPE_MAX,
    TENANT_ID,
    TENANT_ID_MAX,
    Memory,
    MemoryPatch,
    NewMemory,
    Relation,
    SearchHit,
    Tenant,
    Traversal,
    whole,
)
from .storage import SORT_KEYS

S = TypeVar("S")
_P = TypeVar("_P", bound="_Params")

DEFAULT_MAX_BODY = 4 * 1024 * 1024
_encode = msgspec.json.encode


# -- input rules ------------------------------------------------------------------------------------
# The server validates path and query parameters and bodies by converting them to the msgspec types
# below, and the OpenAPI document is the JSON Schema of the very same types. A rule JSON Schema can
# say but msgspec cannot check sits in __post_init__, next to the schema fragment that states it.

TenantId = Annotated[str, Meta(min_length=1, max_length=TENANT_ID_MAX, pattern=whole(TENANT_ID),
                               description=f"1-{TENANT_ID_MAX} letters, digits, _ . : @ -")]
MemoryId = Annotated[str, Meta(min_length=MEMORY_ID_LEN, max_length=MEMORY_ID_LEN, pattern=whole(MEMORY_ID),
                               description="32 lower-case hexadecimal digits, as the engine makes them")]
RelationType = Annotated[str, Meta(min_length=1, max_length=RELATION_TYPE_MAX, pattern=whole(RELATION_TYPE),
                                   description="a lower-case letter, then up to 63 lower-case letters, digits, _")]
Importance = Annotated[float, Meta(ge=0.0, le=1.0)]
Component = Annotated[float, Meta(ge=-EMBEDDING_MAX_ABS, le=EMBEDDING_MAX_ABS)]
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]  # SQLite's integer range

if TYPE_CHECKING:
    SortKey = str
    Direction = str
else:
    SortKey = Literal[tuple(SORT_KEYS)]
    Direction = Literal[tuple(DIRECTIONS)]


class _Params(msgspec.Struct, kw_only=True):
    """Path or query parameters; every number among them must be finite."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")


class TenantPath(_Params):
    agent_id: TenantId
    user_id: TenantId


class MemoryPath(TenantPath):
    memory_id: MemoryId


class ListQuery(_Params):
    sort: SortKey = "recent"
    limit: Annotated[int, Meta(ge=1, le=1000)] = 50
    offset: Count = 0
    min_importance: Importance | UnsetType = UNSET
    created_after: float | UnsetType = UNSET
    created_before: float | UnsetType = UNSET


class GetQuery(_Params):
    include_embedding: bool = False


class GraphQuery(_Params):
    depth: Annotated[int, Meta(ge=1, le=5)] = 2
    max_nodes: Annotated[int, Meta(ge=1, le=1000)] = 100
    direction: Direction = "out"
    type: Annotated[list[RelationType], Meta(max_length=32)] = msgspec.field(default_factory=list)


def json_int(ge: int, le: int) -> Any:
    """An integer in a body, as JSON Schema counts them: 25.0 is one too.

    msgspec's int refuses 25.0 (and its lax mode would take "25" as well), so this is a float that must
    be whole; the OpenAPI document calls it an integer (see _published). Read it with int().
    """
    return Annotated[float, Meta(ge=ge, le=le, multiple_of=1)]


def _unset_none(value: S | UnsetType) -> S | None:
    return None if isinstance(value, UnsetType) else value


# -- request and response bodies --------------------------------------------------------------
# The shapes; request_bodies() subclasses them with the limits of a running engine (embedding
# dimension, content length, batch size, k), which are what the server validates with.


class BatchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: list[NewMemory]


class SearchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A non-empty query, or an embedding (which wins when both are given)."""

    query: str | None = None
    embedding: list[float] | None = None
    k: int = 10
    min_importance: float | None = None


class RelationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Relate two memories of the tenant (they must differ: a memory cannot be related to itself)."""

    source_id: MemoryId
    target_id: MemoryId
    type: RelationType
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


@dataclass(frozen=True)
class Limits:
    """The engine settings that bound what a request may carry."""

    dim: int
    max_content_chars: int
    max_metadata_bytes: int
    max_batch: int
    max_search_k: int

    @classmethod
    def of(cls, engine: MemoryEngine) -> Limits:
        c = engine.config
        return cls(engine.dim, c.max_content_chars, c.max_metadata_bytes, c.max_batch, c.max_search_k)


# An embedding must not be (or underflow to) the zero vector: one component at least this large.
_PEAK_SCHEMA = {"contains": {"type": "number", "anyOf": [{"minimum": EMBEDDING_MIN_PEAK},
                                                         {"maximum": -EMBEDDING_MIN_PEAK}]}}
# Search needs something to search with.
_QUERY_OR_EMBEDDING_SCHEMA = {"anyOf": [
    {"required": ["query"], "properties": {"query": {"type": "string", "pattern": NON_BLANK}}},
    {"required": ["embedding"], "properties": {"embedding": {"type": "array"}}},
]}
_NON_BLANK = re.compile(NON_BLANK)


def _check_peak(embedding: Sequence[float] | None) -> None:
    if embedding is not None and not any(abs(x) >= EMBEDDING_MIN_PEAK for x in embedding):
        raise ValueError(f"embedding needs a component of magnitude >= {EMBEDDING_MIN_PEAK:g} "
                         "(it must not be the zero vector)")


def _new_memory_post_init(self: NewMemory) -> None:
    _check_peak(self.embedding)


def _search_post_init(self: SearchRequest) -> None:
    _check_peak(self.embedding)
    if self.embedding is None and (self.query is None or not _NON_BLANK.search(self.query)):
        raise ValueError("give a non-empty query or an embedding")


def request_bodies(limits: Limits) -> dict[type, type]:
    """Each request body shape mapped to its subclass carrying the limits the server validates with."""
    # Types made at run time: typed Any, as a checker cannot read them.
    content: Any = Annotated[str, Meta(min_length=1, max_length=limits.max_content_chars, pattern=NON_BLANK,
                                       description="not blank (something besides white space)")]
    embedding: Any = Annotated[list[Component], Meta(
        min_length=limits.dim, max_length=limits.dim, extra_json_schema=_PEAK_SCHEMA,
        description=f"{limits.dim} numbers, not all (nearly) zero; computed from the content when absent")]
    metadata: Any = Annotated[dict[str, Any], Meta(
        description=f"any JSON object, at most {limits.max_metadata_bytes} bytes as compact JSON")]

    def struct(base: type, fields: list[tuple[str, Any, Any]], post_init: Any = None) -> type:
        namespace: dict[str, Any] = {"__doc__": base.__doc__}
        if post_init is not None:
            namespace["__post_init__"] = post_init
        return msgspec.defstruct(base.__name__, fields, bases=(base,), module=__name__, namespace=namespace,
                                 kw_only=True, forbid_unknown_fields=True)

    new_memory = struct(NewMemory, [
        ("content", content, msgspec.NODEFAULT),
        ("importance", Importance, 0.5),
        ("metadata", metadata, msgspec.field(default_factory=dict)),
        ("embedding", embedding | None, None),
    ], _new_memory_post_init)
    patch = struct(MemoryPatch, [
        ("content", content | None, None),
        ("importance", Importance | None, None),
        ("metadata", metadata | None, None),
        ("embedding", embedding | None, None),
    ], _new_memory_post_init)
    items: Any = Annotated[GenericAlias(list, (new_memory,)), Meta(min_length=1, max_length=limits.max_batch)]
    batch = struct(BatchRequest, [("items", items, msgspec.NODEFAULT)])
    search_ = struct(SearchRequest, [
        ("query", str | None, None),
        ("embedding", embedding | None, None),
        ("k", json_int(1, limits.max_search_k), 10),
        ("min_importance", float | None, None),
    ], _search_post_init)
    return {NewMemory: new_memory, MemoryPatch: patch, BatchRequest: batch, SearchRequest: search_,
            RelationRequest: RelationRequest}


def _body_schemas(bodies: dict[type, type]) -> dict[type, dict[str, Any]]:
    """Schema keywords a body type's own msgspec schema lacks (the checks of its __post_init__)."""
    return {bodies[SearchRequest]: _QUERY_OR_EMBEDDING_SCHEMA}


# -- errors -------------------------------------------------------------------------------------


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return Response(_encode(ErrorBody(error=ErrorDetail(code=code, message=message))), status,
                    headers=headers, media_type="application/json")


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
    """Read and validate a JSON body: 413 when too large, 400 malformed, 422 the wrong shape.

    `kind` is a body shape; it is decoded as the server's constrained subclass of it.
    """
    body = await _read_body(request, request.app.state.max_body)
    constrained: type[S] = request.app.state.bodies.get(kind, kind)
    try:
        return msgspec.json.decode(body, type=constrained)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from exc
    except RecursionError:
        raise InvalidInput("the body is nested too deeply") from None
    except msgspec.DecodeError as exc:
        # NaN and Infinity are not JSON, but Python clients send them; that is a bad value (422),
        # not a malformed document (400).
        try:
            json.loads(body)
        except (ValueError, RecursionError):
            raise HttpError(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
        raise InvalidInput("numbers must be finite: NaN and Infinity are not allowed") from exc


# -- parameters -------------------------------------------------------------------------------

_AT = re.compile(r" - at `\$\.?([^`]*)`$")


def _params(kind: type[_Params], values: dict[str, Any], where: str) -> Any:
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        m = _AT.search(message)
        if m is None:
            raise InvalidInput(f"{where} parameter {message}") from None
        name = m[1].split("[")[0]
        if name in ("agent_id", "user_id"):  # the message the engine gives for a bad tenant too
            raise InvalidInput(f"agent_id and user_id must be 1-{TENANT_ID_MAX} characters of letters, digits, "
                               "_ . : @ -") from None
        raise InvalidInput(f"{where} parameter {name}: {message[:m.start()]}") from None


def _list_fields(kind: type[_Params]) -> frozenset[str]:
    info = msgspec.inspect.type_info(kind)
    assert isinstance(info, msgspec.inspect.StructType)
    return frozenset(f.name for f in info.fields if isinstance(f.type, msgspec.inspect.ListType))


_LISTS: dict[type[_Params], frozenset[str]] = {}


def parse_query(request: Request, kind: type[_Params]) -> Any:
    lists = _LISTS.get(kind)
    if lists is None:
        lists = _LISTS[kind] = _list_fields(kind)
    q = request.query_params
    values: dict[str, Any] = {}
    for name in kind.__struct_fields__:
        if name in lists:
            if name in q:
                values[name] = q.getlist(name)
        elif name in q:
            values[name] = q[name]
    return _params(kind, values, "query")


def _path_kind(path: str) -> type[_Params] | None:
    if "{memory_id}" in path:
        return MemoryPath
    if "{agent_id}" in path:
        return TenantPath
    return None


def _tenant_of(p: TenantPath) -> Tenant:
    return MemoryEngine.tenant(p.agent_id, p.user_id)


def _path(request: Request) -> MemoryPath:
    """The validated path parameters of a memory's route (the dispatcher put them there)."""
    path: MemoryPath = request.state.path
    return path


def _query(request: Request, kind: type[_P]) -> _P:
    """The validated query parameters (the dispatcher put them there)."""
    query = request.state.query
    assert isinstance(query, kind)
    return query


def _tenant(request: Request) -> Tenant:
    path: TenantPath = request.state.path
    return _tenant_of(path)


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
    # 503 until the vector index is consistent after a restart ("recovering", or "failed"), so a
    # load balancer sends no traffic before then; 200 "ok" afterwards.
    engine = _engine(request)
    status = engine.status
    return _json(Health(status=status, version=__version__, memories=engine.memories_total,
                        uptime_seconds=round(time.time() - engine.started_at, 3)), 200 if status == "ok" else 503)


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
    q = _query(request, ListQuery)
    items = await _engine(request).list_memories(
        tenant,
        sort=q.sort,
        limit=q.limit,
        offset=q.offset,
        min_importance=_unset_none(q.min_importance),
        created_after=_unset_none(q.created_after),
        created_before=_unset_none(q.created_before),
    )
    return _json(MemoryList(items=items, count=len(items)))


async def get_memory(request: Request) -> Response:
    tenant = _tenant(request)
    q = _query(request, GetQuery)
    memory = await _engine(request).get(tenant, _path(request).memory_id, with_embedding=q.include_embedding)
    return _json(memory)


async def update_memory(request: Request) -> Response:
    tenant = _tenant(request)
    patch = await decode_body(request, MemoryPatch)
    memory = await _engine(request).update(tenant, _path(request).memory_id, patch)
    request.app.state.hub.publish(tenant, "memory.updated", memory)
    return _json(memory)


async def delete_memory(request: Request) -> Response:
    tenant = _tenant(request)
    memory_id = _path(request).memory_id
    await _engine(request).delete(tenant, memory_id)
    request.app.state.hub.publish(tenant, "memory.deleted", {"id": memory_id})
    return Response(status_code=204)


async def search(request: Request) -> Response:
    tenant = _tenant(request)
    body = await decode_body(request, SearchRequest)
    hits = await _engine(request).search(
        tenant, body.query, embedding=body.embedding, k=int(body.k), min_importance=body.min_importance
    )
    return _json(SearchResults(hits=hits))


async def relate(request: Request) -> Response:
    tenant = _tenant(request)
    body = await decode_body(request, RelationRequest)
    engine = _engine(request)
    if body.source_id == body.target_id:
        # A memory that does not exist is 404 whatever else is wrong with the request: 422 (related
        # to itself) is for an existing memory only, as no JSON Schema can say "these two differ".
        await engine.get(tenant, body.source_id)
    rel = await engine.relate(tenant, body.source_id, body.target_id, body.type, body.weight)
    return _json(rel, 201)


async def traverse(request: Request) -> Response:
    tenant = _tenant(request)
    q = _query(request, GraphQuery)
    result = await _engine(request).traverse(
        tenant,
        _path(request).memory_id,
        depth=q.depth,
        max_nodes=q.max_nodes,
        direction=q.direction,
        types=q.type or None,
    )
    return _json(result)


class WsCommand(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    op: str
    query: str | None = None
    k: int = 10
    id: str | None = None


async def live(websocket: WebSocket) -> None:
    """Tenant-scoped live channel: pushes memory events, answers ``search`` / ``get`` / ``ping``.

    Commands are JSON text frames; a binary frame closes the connection with 1003 (unsupported data).
    """
    try:
        tenant = _tenant_of(_params(TenantPath, dict(websocket.path_params), "path"))
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
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None:
                    sender.cancel()
                    await websocket.close(code=1003, reason="binary frames are not supported: send JSON text")
                    break
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
    query: type[_Params] | None = None


T = "/v1/agents/{agent_id}/users/{user_id}"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/health", health, "Liveness and a memory count", response=Health),
    Endpoint("GET", "/metrics", metrics, "Prometheus metrics"),
    Endpoint("GET", "/metrics/prometheus", metrics, "Prometheus metrics (the guide's path)"),
    Endpoint("GET", "/openapi.json", openapi, "This document"),
    Endpoint("GET", "/v1/stats", stats, "Engine statistics"),
    Endpoint("POST", f"{T}/memories", create_memory, "Create a memory", NewMemory, Memory, 201),
    Endpoint("GET", f"{T}/memories", list_memories, "List memories (recent first or by importance)",
             response=MemoryList, query=ListQuery),
    Endpoint("POST", f"{T}/memories/batch", create_batch, "Create up to 1000 memories in one transaction",
             BatchRequest, MemoryList, 201),
    Endpoint("POST", f"{T}/memories/search", search, "Semantic search in the tenant's memories",
             SearchRequest, SearchResults),
    Endpoint("GET", f"{T}/memories/{{memory_id}}", get_memory, "Get a memory", response=Memory, query=GetQuery),
    Endpoint("PATCH", f"{T}/memories/{{memory_id}}", update_memory, "Update a memory", MemoryPatch, Memory),
    Endpoint("DELETE", f"{T}/memories/{{memory_id}}", delete_memory, "Delete a memory", status=204),
    Endpoint("GET", f"{T}/memories/{{memory_id}}/graph", traverse, "Breadth-first traversal from a memory",
             response=Traversal, query=GraphQuery),
    Endpoint("POST", f"{T}/relations", relate, "Relate two memories", RelationRequest, Relation, 201),
)
WS_PATH = f"{T}/ws"


def _operation_id(e: Endpoint) -> str:
    words = [w.strip("{}") for w in e.path.split("/") if w and w not in ("v1",)]
    return "_".join([e.method.lower(), *words]).replace("-", "_").replace(".", "_")


_ANCHORED = re.compile(r"\\A\(\?:(.*)\)\\Z", re.DOTALL)


def _published(schema: Any) -> Any:
    """The schema as the document states it, in the standard spelling of what msgspec generated.

    Python's whole-string anchors \\A...\\Z become ECMAScript's ^...$, and a whole number (json_int:
    type number, multipleOf 1) becomes type integer; both say the same thing.
    """
    if isinstance(schema, dict):
        out = {k: _published(v) for k, v in schema.items()}
        pattern = out.get("pattern")
        if isinstance(pattern, str) and (m := _ANCHORED.fullmatch(pattern)):
            out["pattern"] = f"^(?:{m[1]})$"
        if out.get("type") == "number" and out.get("multipleOf") == 1:
            out["type"] = "integer"
            del out["multipleOf"]
        return out
    if isinstance(schema, list):
        return [_published(v) for v in schema]
    return schema


def _parameters(kind: type[_Params] | None, where: str) -> list[dict[str, Any]]:
    if kind is None:
        return []
    schema = msgspec.json.schema(kind)["$defs"][kind.__name__]
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        param: dict[str, Any] = {"name": name, "in": where, "required": where == "path" or name in required}
        if "description" in prop:
            param["description"] = prop.pop("description")
        param["schema"] = prop
        params.append(param)
    return params


def allowed_methods(methods: Sequence[str]) -> str:
    """The Allow header of a resource: its methods, and HEAD wherever GET is."""
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())
    return ", ".join(sorted(allowed))


def build_openapi(limits: Limits) -> dict[str, Any]:
    """The OpenAPI 3.1 document, built from the types the server validates with (see request_bodies)."""
    bodies = request_bodies(limits)
    extra = _body_schemas(bodies)
    types = [t for e in ENDPOINTS for t in (e.body, e.response) if t is not None] + [ErrorBody]
    types = [bodies.get(t, t) for t in types]
    (_, components) = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    for kind, keywords in extra.items():
        components[kind.__name__].update(keywords)
    paths: dict[str, dict[str, Any]] = {}
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for e in ENDPOINTS:
        params = _parameters(_path_kind(e.path), "path") + _parameters(e.query, "query")
        op: dict[str, Any] = {"summary": e.summary, "operationId": _operation_id(e),
                              "parameters": params, "responses": {}}
        if e.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{e.body.__name__}"}}}}
        ok: dict[str, Any] = {"description": "OK"}
        if e.response is not None:
            ok["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{e.response.__name__}"}}}
        op["responses"][str(e.status)] = ok
        if e.path.startswith("/v1/agents"):
            op["responses"]["404"] = {"description": "Not found (also: another tenant's memory)", **err}
            op["responses"]["422"] = {"description": "Invalid input (also what no schema can say: metadata "
                                                     "too large, a body nested too deeply, a memory related "
                                                     "to itself)", **err}
            op["responses"]["503"] = {"description": "Busy: no database connection became free in time", **err}
        if e.body is not None:
            op["responses"]["400"] = {"description": "Malformed JSON", **err}
            op["responses"]["413"] = {"description": "Body too large", **err}
        paths.setdefault(e.path, {})[e.method.lower()] = op
    doc: dict[str, Any] = _published({
        "openapi": "3.1.0",
        "info": {"title": "agentmem", "version": __version__,
                 "description": f"Agent-memory engine. Live events and search over WebSocket at {WS_PATH}: "
                                "JSON text frames (a binary frame closes the connection with 1003). "
                                "A method a path does not list answers 405 with an Allow header."},
        "paths": paths,
        "components": {"schemas": components},
    })
    return doc


class Resource:
    """One path and its methods: validates path and query parameters, then calls the method's handler.

    Answers 405 with the full Allow list for any other method (Starlette's router would name only the
    methods of the first route that matched the path).
    """

    def __init__(self, path: str, endpoints: Sequence[Endpoint]) -> None:
        self.path = path
        self.path_kind = _path_kind(path)
        self.by_method = {e.method: e for e in endpoints}
        if "GET" in self.by_method:
            self.by_method.setdefault("HEAD", self.by_method["GET"])
        self.allow = allowed_methods(list(self.by_method))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        e = self.by_method.get(request.method)
        if e is None:
            response = _error(405, "method_not_allowed", f"{request.method} is not allowed on {self.path}; "
                              f"allowed: {self.allow}", headers={"Allow": self.allow})
        else:
            if self.path_kind is not None:
                request.state.path = _params(self.path_kind, dict(request.path_params), "path")
            if e.query is not None:
                request.state.query = parse_query(request, e.query)
            scope["endpoint"] = e.handler  # metrics label requests by their handler's route
            response = await e.handler(request)
        await response(scope, receive, send)


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
        # The bodies' limits (the embedding dimension above all) are the running engine's.
        limits = Limits.of(engine)
        app.state.bodies = request_bodies(limits)
        app.state.openapi = _encode(build_openapi(limits))
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

    async def on_routing_error(request: Request, exc: Exception) -> Response:
        # Starlette's own 404 (no route has this path), in the error format of every other answer.
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), headers=exc.headers)

    by_path: dict[str, list[Endpoint]] = {}
    for e in ENDPOINTS:
        by_path.setdefault(e.path, []).append(e)
    resources = [Resource(path, endpoints) for path, endpoints in by_path.items()]
    routes: list[BaseRoute] = [Route(r.path, r) for r in resources]
    routes.append(WebSocketRoute(WS_PATH, live))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={EngineError: on_engine_error, HttpError: on_http_error, HTTPException: on_routing_error},
    )
    app.state.metrics = service_metrics
    app.state.hub = EventHub()
    app.state.max_body = max_body
    templates: dict[Any, str] = {r: r.path for r in resources}  # a 405 is counted under its path
    templates.update({e.handler: e.path for e in ENDPOINTS})
    templates[metrics] = "/metrics"
    app.add_middleware(MetricsMiddleware, service_metrics=service_metrics, templates=templates)
    return app
