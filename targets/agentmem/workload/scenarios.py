"""Named workload scenarios: which operations, in what proportion, against which tenants.

A scenario only decides *what* to do next; drivers (HTTP in ``loadgen``, in-process in ``run``)
decide how. Both share the seeding so that reads always have something to read.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from typing import Any

from .corpus import Corpus

SCENARIOS: dict[str, dict[str, int]] = {
    # Reads dominate an agent's memory traffic: recall before every turn, a write after some.
    "mixed": {"get": 40, "search": 25, "list": 10, "create": 12, "update": 5, "traverse": 5, "delete": 3},
    "ingest": {"create": 70, "batch": 5, "get": 25},
    "search-heavy": {"search": 80, "get": 20},
    "graph": {"traverse": 70, "relate": 20, "get": 10},
}

BATCH_SIZE = 100


@dataclass
class TenantState:
    agent_id: str
    user_id: str
    ids: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"/v1/agents/{self.agent_id}/users/{self.user_id}"


def make_tenants(agents: int = 4, users: int = 5) -> list[TenantState]:
    return [TenantState(f"agent-{a}", f"user-{u}") for a in range(agents) for u in range(users)]


class OpPicker:
    """Draws operation names with the scenario's weights from a seeded generator."""

    def __init__(self, scenario: str, seed: int) -> None:
        if scenario not in SCENARIOS:
            raise KeyError(scenario)
        weights = SCENARIOS[scenario]
        self.ops = list(weights)
        self._cum: list[int] = []
        total = 0
        for op in self.ops:
            total += weights[op]
            self._cum.append(total)
        self._total = total
        self.rng = random.Random(seed)

    def next(self) -> str:
        return self.ops[bisect.bisect_right(self._cum, self.rng.randrange(self._total))]


@dataclass(frozen=True)
class HttpRequest:
    op: str
    method: str
    path: str
    body: dict[str, Any] | None
    tenant: TenantState
    expect: tuple[int, ...]


class HttpOps:
    """Turns operation names into HTTP requests against a tenant's memories."""

    def __init__(self, tenants: list[TenantState], corpus: Corpus, rng: random.Random) -> None:
        self.tenants = tenants
        self.corpus = corpus
        self.rng = rng

    def _pick(self) -> tuple[TenantState, str | None]:
        t = self.rng.choice(self.tenants)
        return t, (self.rng.choice(t.ids) if t.ids else None)

    def request(self, op: str) -> HttpRequest:
        t, mid = self._pick()
        if mid is None and op in ("get", "update", "delete", "traverse", "relate"):
            op = "create"
        if op == "create":
            m = self.corpus.memory()
            return HttpRequest(op, "POST", f"{t.prefix}/memories",
                               {"content": m.content, "importance": m.importance, "metadata": {"topic": m.topic}},
                               t, (201,))
        if op == "batch":
            items = [{"content": m.content, "importance": m.importance} for m in self.corpus.memories(BATCH_SIZE)]
            return HttpRequest(op, "POST", f"{t.prefix}/memories/batch", {"items": items}, t, (201,))
        if op == "get":
            return HttpRequest(op, "GET", f"{t.prefix}/memories/{mid}", None, t, (200, 404))
        if op == "search":
            return HttpRequest(op, "POST", f"{t.prefix}/memories/search", {"query": self.corpus.query(), "k": 10},
                               t, (200,))
        if op == "list":
            sort = "importance" if self.rng.random() < 0.5 else "recent"
            return HttpRequest(op, "GET", f"{t.prefix}/memories?sort={sort}&limit=20", None, t, (200,))
        if op == "update":
            return HttpRequest(op, "PATCH", f"{t.prefix}/memories/{mid}",
                               {"importance": round(self.rng.random(), 3)}, t, (200, 404))
        if op == "delete":
            assert mid is not None
            # Forget it at once so that later reads do not count a deliberate delete as a miss.
            t.ids.remove(mid)
            return HttpRequest(op, "DELETE", f"{t.prefix}/memories/{mid}", None, t, (204, 404))
        if op == "traverse":
            depth = self.rng.randint(1, 3)
            return HttpRequest(op, "GET", f"{t.prefix}/memories/{mid}/graph?depth={depth}&max_nodes=100", None, t,
                               (200, 404))
        if op == "relate":
            other = self.rng.choice(t.ids)
            if other == mid:
                return self.request("get")
            return HttpRequest(op, "POST", f"{t.prefix}/relations",
                               {"source_id": mid, "target_id": other, "type": self.corpus.relation_type()},
                               t, (201, 404))
        raise KeyError(op)
