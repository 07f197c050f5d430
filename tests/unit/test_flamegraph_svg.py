"""profkit.render.flamegraph_svg: an SVG that parses as XML, has every function, and escapes their names."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

from profkit.render.collapsed import Stacks
from profkit.render.flamegraph_svg import FRAME_H, WIDTH, layout, render_svg

SVG = "{http://www.w3.org/2000/svg}"

STACKS = Stacks({
    ("main (app.py:1)", "hot (app.py:10)"): 60,
    ("main (app.py:1)", "hot (app.py:11)"): 20,
    ("main (app.py:1)", "<lambda> (app.py:20)", "Map[str, list[int]] & co (q.py:3)"): 15,
    ("main (app.py:1)", "warm (b.py:5)"): 5,
})


def _frames(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.attrib["data-name"]: g for g in root.iter(f"{SVG}g") if g.attrib.get("class") == "frame"}


def test_the_svg_is_valid_xml_with_one_box_per_function() -> None:
    svg = render_svg(STACKS, title="profkit flame: python app.py", subtitle="100 samples at 100 Hz")
    frames = _frames(svg)
    assert set(frames) == {"all", "main (app.py)", "hot (app.py)", "<lambda> (app.py)",
                           "Map[str, list[int]] & co (q.py)", "warm (b.py)"}
    # hot's two lines are one box with both lines' samples
    assert frames["hot (app.py)"].find(f"{SVG}title").text == "hot (app.py) (80 samples, 80.0%)"  # type: ignore[union-attr]


def test_names_and_titles_are_escaped() -> None:
    svg = render_svg(STACKS, title="<script>alert(1)</script> & more", subtitle="a < b")
    assert "<lambda>" not in svg and "&lt;lambda&gt;" in svg
    assert "<script>alert" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in svg
    assert "& co" not in svg and "&amp; co" in svg
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<script>alert(1)</script> & more" in texts and "a < b" in texts


def test_boxes_are_as_wide_as_their_samples_and_the_root_sits_at_the_bottom() -> None:
    rects, height = layout(STACKS)
    by_name = {r.name: r for r in rects}
    full = by_name["all"].w
    assert full == WIDTH - 20
    assert by_name["main (app.py)"].w == full
    assert by_name["hot (app.py)"].w == 0.8 * full
    assert by_name["warm (b.py)"].w == 0.05 * full
    # children sit above their parent (smaller y), the root lowest of all
    assert by_name["all"].y > by_name["main (app.py)"].y > by_name["hot (app.py)"].y
    assert by_name["all"].y == max(r.y for r in rects)
    assert by_name["hot (app.py)"].y == by_name["main (app.py)"].y - FRAME_H
    assert height > by_name["all"].y + FRAME_H
    # siblings do not overlap
    siblings = sorted((r for r in rects if r.y == by_name["hot (app.py)"].y), key=lambda r: r.x)
    for left, right in itertools.pairwise(siblings):
        assert left.x + left.w <= right.x + 1e-9


def test_a_function_keeps_its_colour_across_graphs() -> None:
    one = {r.name: r.fill for r in layout(STACKS)[0]}
    other = {r.name: r.fill for r in layout(Stacks({("x (z.py:1)", "hot (app.py:3)"): 1}))[0]}
    assert one["hot (app.py)"] == other["hot (app.py)"]


def test_frames_too_narrow_to_see_are_left_out() -> None:
    stacks = Stacks({("main (a.py:1)", "big (a.py:2)"): 1_000_000, ("main (a.py:1)", "tiny (a.py:3)"): 1})
    names = {r.name for r in layout(stacks)[0]}
    assert "big (a.py)" in names and "tiny (a.py)" not in names


def test_no_samples_still_renders_a_valid_document() -> None:
    svg = render_svg(Stacks({}), title="nothing")
    assert _frames(svg) == {}
    assert "nothing" in svg
