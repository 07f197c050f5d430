"""Collapsed stacks → an interactive flamegraph SVG (hover for numbers, click to zoom, root at the bottom)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from .collapsed import Stacks, parse_frame
from .jinja import template

WIDTH = 1200
FRAME_H = 17
PAD_TOP = 40
PAD_BOTTOM = 24
MIN_WIDTH_PX = 0.3  # narrower frames are invisible anyway; dropping them keeps the file small


@dataclass
class _Node:
    name: str
    value: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    name: str
    samples: int
    pct: float
    fill: str


def _colour(name: str) -> str:
    # Warm palette keyed by name, as flamegraph.pl does, so a function keeps its colour across graphs.
    h = zlib.crc32(name.encode())
    r = 205 + (h & 0x31)
    g = 80 + ((h >> 8) % 130)
    b = 30 + ((h >> 16) % 50)
    return f"rgb({min(r, 255)},{g},{b})"


def layout(stacks: Stacks) -> tuple[list[Rect], int]:
    root = _Node("all")
    for stack, count in stacks.counts.items():
        node = root
        node.value += count
        for frame in stack:
            # One box per function, not per line: the collapsed file keeps the lines.
            name = parse_frame(frame).key
            node = node.children.setdefault(name, _Node(name))
            node.value += count
    total = root.value or 1
    scale = (WIDTH - 20) / total
    rects: list[Rect] = []
    depth_max = 0

    def walk(node: _Node, x: float, depth: int) -> None:
        nonlocal depth_max
        w = node.value * scale
        if w < MIN_WIDTH_PX:
            return
        depth_max = max(depth_max, depth)
        rects.append(Rect(x, depth, w, node.name, node.value, round(100 * node.value / total, 2),
                          _colour(node.name)))
        cx = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            walk(child, cx, depth + 1)
            cx += child.value * scale

    walk(root, 10.0, 0)
    height = PAD_TOP + (depth_max + 1) * FRAME_H + PAD_BOTTOM
    # Flip so the root sits at the bottom.
    flipped = [Rect(r.x, height - PAD_BOTTOM - (r.y + 1) * FRAME_H, r.w, r.name, r.samples, r.pct, r.fill)
               for r in rects]
    return flipped, height


def render_svg(stacks: Stacks, *, title: str, subtitle: str = "") -> str:
    rects, height = layout(stacks)
    return template("flamegraph.svg").render(
        rects=rects, width=WIDTH, height=height, frame_h=FRAME_H, title=title, subtitle=subtitle,
        total=stacks.total,
    )
