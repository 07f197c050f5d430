"""Two profiles → a differential flamegraph SVG.

The call tree is B's: a frame is as wide as its share of B. Its colour is the change of its share
from A to B — red where B spends a larger share, blue a smaller one, deeper for larger changes —
and only where the change passes the significance floor (:class:`profkit.profiles.Significance`);
below it a frame is pale grey, so a wobble of a few samples never looks alarming. Frames A had
and B never reached cannot be drawn in B's tree (they have no width there), so they get a section
of their own under it, hatched, with the path that led to them and their share of A: what
vanished is shown, never dropped without a word. Hover for numbers, click to zoom (within a
section), click the background to reset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..profiles import Change, DiffNode, ProfileDiff
from ..units import human
from .jinja import template

WIDTH = 1200
FRAME_H = 17
LEGEND_Y = 48
MAIN_TOP = 84
SECTION_GAP = 34
PAD_BOTTOM = 24
MIN_WIDTH_PX = 0.3  # narrower frames are invisible (the removed section's root says how many it drew)

NEUTRAL = "rgb(226,226,220)"  # a change below the significance floor
CONTEXT = "rgb(205,205,205)"  # the callers of a removed frame, drawn only to say where it was
HATCH = "url(#removed)"
REMOVED_ROOT = "removed in B"


@dataclass(frozen=True)
class DiffRect:
    x: float
    y: float
    w: float
    name: str
    title: str  # the hover text
    fill: str
    section: str  # "main" or "removed"


@dataclass
class _Removed:
    """A node of the removed section: the callers (context) and the frames that vanished."""

    name: str
    value: int = 0
    removed: bool = False
    source: DiffNode | None = None
    children: dict[str, _Removed] = field(default_factory=dict)


def colour(change: Change, max_delta: float) -> str:
    """Red for a larger share in B, blue for a smaller one, deeper the larger; grey below the floor."""
    if not change.significant or max_delta <= 0:
        return NEUTRAL
    # Even the smallest significant change gets a clearly visible tint (0.3).
    strength = 0.3 + 0.7 * min(1.0, abs(change.delta) / max_delta)
    pale = round(225 * (1 - strength))
    return f"rgb(255,{pale},{pale})" if change.delta > 0 else f"rgb({pale},{pale},255)"


def _amount(value: int, counted_unit: str | None) -> str:
    return f"{value:,} {counted_unit}" if counted_unit else human(value)


def _hover(d: ProfileDiff, name: str, change: Change) -> str:
    unit = "samples" if d.a.measure == "samples" else None
    verdict = (f"significant (z = {change.z:+.1f})" if change.significant and change.z is not None
               else "significant" if change.significant else "below the significance floor")
    return (f"{name} — A {100 * change.share_before:.2f} % ({_amount(change.before, unit)}) → "
            f"B {100 * change.share_after:.2f} % ({_amount(change.after, unit)}), "
            f"Δ {100 * change.delta:+.2f} pp, {verdict}")


def _significant_deltas(d: ProfileDiff, node: DiffNode) -> list[float]:
    out: list[float] = []
    for child in node.children.values():
        if child.after > 0:
            change = d.judge(child.before, child.after)
            if change.significant:
                out.append(abs(change.delta))
            out.extend(_significant_deltas(d, child))
    return out


def _main(d: ProfileDiff, top: float) -> tuple[list[DiffRect], float]:
    """B's tree; (rects, bottom y)."""
    usable = WIDTH - 20
    scale = usable / d.b.total if d.b.total else 0.0
    max_delta = max(_significant_deltas(d, d.tree), default=0.0)
    placed: list[tuple[float, int, float, DiffNode]] = []

    def walk(node: DiffNode, x: float, depth: int) -> None:
        w = usable if node is d.tree else node.after * scale
        if w < MIN_WIDTH_PX:
            return
        placed.append((x, depth, w, node))
        cx = x
        for child in node.ordered():
            if child.after > 0:
                walk(child, cx, depth + 1)
                cx += child.after * scale

    walk(d.tree, 10.0, 0)
    depth_max = max(depth for _, depth, _, _ in placed)
    rects = []
    for x, depth, w, node in placed:
        change = d.judge(node.before, node.after)
        if node is d.tree:
            title = (f"all — A {_amount(d.a.total, _unit(d))}, B {_amount(d.b.total, _unit(d))}; shares are of "
                     "each profile's own total")
            fill = NEUTRAL
        else:
            title, fill = _hover(d, node.name, change), colour(change, max_delta)
        rects.append(DiffRect(x, top + (depth_max - depth) * FRAME_H, w, node.name, title, fill, "main"))
    return rects, top + (depth_max + 1) * FRAME_H


def _unit(d: ProfileDiff) -> str | None:
    return "samples" if d.a.measure == "samples" else None


def _removed_tree(d: ProfileDiff) -> _Removed | None:
    removed = d.removed()
    if not removed:
        return None
    root = _Removed(REMOVED_ROOT)
    for path, node in removed:
        root.value += node.before
        here = root
        for name in path[:-1]:
            here = here.children.setdefault(name, _Removed(name))
            here.value += node.before
        here.children[node.name] = _copy(node)
    return root


def _copy(node: DiffNode) -> _Removed:
    out = _Removed(node.name, node.before, removed=True, source=node)
    for child in node.ordered():
        if child.before > 0:
            out.children[child.name] = _copy(child)
    return out


def _removed(d: ProfileDiff, top: float) -> tuple[list[DiffRect], float, str] | None:
    """The section of frames B never reached, scaled to what vanished; (rects, bottom y, header)."""
    root = _removed_tree(d)
    if root is None:
        return None
    usable = WIDTH - 20
    scale = usable / root.value
    placed: list[tuple[float, int, float, _Removed]] = []
    drawn_tops = 0
    tops = len(d.removed())

    def walk(node: _Removed, x: float, depth: int, under_removed: bool) -> None:
        nonlocal drawn_tops
        w = node.value * scale
        if w < MIN_WIDTH_PX:
            return
        if node.removed and not under_removed:
            drawn_tops += 1
        placed.append((x, depth, w, node))
        cx = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            walk(child, cx, depth + 1, under_removed or node.removed)
            cx += child.value * scale

    walk(root, 10.0, 0, False)
    depth_max = max(depth for _, depth, _, _ in placed)
    share = 100 * root.value / d.a.total if d.a.total else 0.0
    unit = _unit(d)
    rects = []
    for x, depth, w, node in placed:
        if node is root:
            title = (f"{REMOVED_ROOT} — {tops} frame(s) A reached and B never did, {share:.2f} % of A "
                     f"({_amount(root.value, unit)}); {drawn_tops} wide enough to draw, all listed in diff.json")
            fill = CONTEXT
        elif node.removed:
            assert node.source is not None
            title = _hover(d, node.name, d.judge(node.source.before, 0)) + " — removed in B"
            fill = HATCH
        else:
            title = f"{node.name} — caller of frames removed in B ({_amount(node.value, unit)} of A under it)"
            fill = CONTEXT
        rects.append(DiffRect(x, top + (depth_max - depth) * FRAME_H, w, node.name, title, fill, "removed"))
    header = (f"Removed in B: frames A reached and B never did ({share:.2f} % of A), hatched, under the callers "
              "that led to them; widths relative to each other")
    return rects, top + (depth_max + 1) * FRAME_H, header


def layout(d: ProfileDiff) -> tuple[list[DiffRect], int, float | None, str | None]:
    """(rects, height, y of the removed section's header or None, its text)."""
    rects, bottom = _main(d, MAIN_TOP)
    header_y: float | None = None
    header: str | None = None
    removed = _removed(d, bottom + SECTION_GAP)
    if removed is not None:
        more, bottom, header = removed
        header_y = min(r.y for r in more) - 8
        rects = rects + more
    return rects, int(bottom + PAD_BOTTOM), header_y, header


def render_diff_svg(d: ProfileDiff, *, title: str, subtitle: str) -> str:
    rects, height, header_y, header = layout(d)
    return template("diff.svg").render(
        rects=rects, width=WIDTH, height=height, frame_h=FRAME_H, title=title, subtitle=subtitle,
        legend_y=LEGEND_Y, neutral=NEUTRAL, context=CONTEXT, floor=d.rule.describe(d.counted),
        header=header, header_y=header_y,
    )
