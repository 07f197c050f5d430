"""Plain data types shared by the engine and the HTTP layer (msgspec structs: fast to encode)."""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec


class Tenant(NamedTuple):
    """Every read and write is scoped to one (agent_id, user_id) pair."""

    agent_id: str
    user_id: str


class Memory(msgspec.Struct, kw_only=True):
    id: str
    agent_id: str
    user_id: str
    content: str
    importance: float
    created_at: float
    updated_at: float
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    embedding: list[float] | None = None


class SearchHit(msgspec.Struct, kw_only=True):
    memory: Memory
    score: float


class Relation(msgspec.Struct, kw_only=True):
    source_id: str
    target_id: str
    type: str
    weight: float = 1.0


class Traversal(msgspec.Struct, kw_only=True):
    start_id: str
    nodes: list[Memory]
    edges: list[Relation]
    depth_reached: int
    truncated: bool


class NewMemory(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a caller sends to create a memory; the embedding is computed when absent."""

    content: str
    importance: float = 0.5
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    embedding: list[float] | None = None


class MemoryPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields to change; absent fields are left alone. New content re-embeds the memory."""

    content: str | None = None
    importance: float | None = None
    metadata: dict[str, Any] | None = None
    embedding: list[float] | None = None
