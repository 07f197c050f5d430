"""Plain data types shared by the engine and the HTTP layer (msgspec structs: fast to encode)."""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

# -- input rules ----------------------------------------------------------------------------------
# Patterns are written once, in the common subset of Python's and ECMAScript's regex syntax (explicit
# character classes and escapes: no \d, \w or \s, whose meaning differs), so the API can validate
# with them and publish them in its OpenAPI document unchanged. An anchored rule is a *core* that
# must match the whole string: `whole()` anchors it for Python (\A...\Z: `$` would also match
# before a final newline) and the OpenAPI document turns that into ^...$ for ECMAScript.

TENANT_ID_MAX = 128
TENANT_ID = rf"[A-Za-z0-9_.:@-]{{1,{TENANT_ID_MAX}}}"
"""agent_id and user_id: 1-128 letters, digits, _ . : @ - (the whole id)."""

MEMORY_ID_LEN = 32
MEMORY_ID = rf"[0-9a-f]{{{MEMORY_ID_LEN}}}"
"""A memory id as the engine makes them: 32 lower-case hexadecimal digits (uuid4().hex)."""

RELATION_TYPE_MAX = 64
RELATION_TYPE = rf"[a-z][a-z0-9_]{{0,{RELATION_TYPE_MAX - 1}}}"
"""A relation type: a lower-case letter, then up to 63 lower-case letters, digits, _."""

# The characters str.isspace() is true for (str.strip() removes them), spelled out: ECMAScript's \s
# is another set (it has U+FEFF and lacks U+001C-U+001F and U+0085).
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NON_BLANK = f"[^{_SPACE}]"
"""Found (unanchored) in a string that is not empty after strip(): content and search queries."""

EMBEDDING_MAX_ABS = 1e150
"""Largest magnitude of an embedding component: the squared norm of any allowed vector is finite."""

EMBEDDING_MIN_PEAK = 1e-150
"""At least one component must be this large in magnitude: the norm cannot underflow to zero."""


def whole(core: str) -> str:
    """A pattern matching exactly the strings `core` matches as a whole (Python syntax)."""
    return rf"\A(?:{core})\Z"


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
