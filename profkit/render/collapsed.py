"""Collapsed stacks (the flamegraph.pl / inferno format): ``frame;frame;frame COUNT`` per line.

This is the one stack-sample model profkit keeps; the SVG and speedscope renderers and the top
function tables are all computed from it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..results import FunctionSamples

# py-spy frames look like "handle (agentmem/api.py:245)"; idle/native frames may lack the file.
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str
    line: int | None

    @property
    def key(self) -> str:
        """Function identity without the line, so one function's lines add up."""
        return f"{self.function} ({self.file})" if self.file else self.function


def parse_frame(text: str) -> Frame:
    m = _FRAME.match(text)
    if m is None:
        return Frame(text, "", None)
    line = m.group("line")
    return Frame(m.group("func"), m.group("file"), int(line) if line else None)


@dataclass
class Stacks:
    """Sample counts per distinct stack (root first)."""

    counts: dict[tuple[str, ...], int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def top_functions(self, n: int) -> list[FunctionSamples]:
        """Hottest functions by own samples (leaf) and by total samples (anywhere on the stack)."""
        own: Counter[str] = Counter()
        total: Counter[str] = Counter()
        frames: dict[str, Frame] = {}
        for stack, count in self.counts.items():
            if not stack:
                continue
            leaf = parse_frame(stack[-1])
            frames.setdefault(leaf.key, leaf)
            own[leaf.key] += count
            for key in {parse_frame(f).key for f in stack}:
                total[key] += count
                if key not in frames:
                    frames[key] = parse_frame(next(f for f in stack if parse_frame(f).key == key))
        grand = self.total or 1
        keys = sorted(total, key=lambda k: (-own[k], -total[k], k))[:n]
        return [
            {"function": frames[k].function, "file": frames[k].file, "own_samples": own[k],
             "total_samples": total[k], "own_pct": round(100 * own[k] / grand, 2),
             "total_pct": round(100 * total[k] / grand, 2)}
            for k in keys
        ]

    def by_total(self, n: int) -> list[FunctionSamples]:
        rows = self.top_functions(10**9)
        rows.sort(key=lambda r: (-r["total_samples"], r["function"]))
        return rows[:n]


def read_collapsed(path: Path) -> Stacks:
    counts: dict[tuple[str, ...], int] = {}
    for line in path.read_text(errors="replace").splitlines():
        line = line.rstrip()
        if not line:
            continue
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue  # not a stack line; collapsed files carry nothing else worth keeping
        stack = tuple(stack_text.split(";"))
        counts[stack] = counts.get(stack, 0) + int(count_text)
    return Stacks(counts)
