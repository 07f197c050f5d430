"""profkit.render.speedscope: collapsed stacks as a speedscope document, checked against the published schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from profkit.render.collapsed import Stacks
from profkit.render.speedscope import SCHEMA_URL, to_speedscope

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "speedscope-file-format-schema.json").read_text())

STACKS = Stacks({
    ("main (app.py:1)", "hot (app.py:10)"): 30,
    ("main (app.py:1)", "hot (app.py:11)"): 10,
    ("main (app.py:1)", "<lambda> (app.py:20)", "native_thing"): 5,
    ("idle",): 5,
})


@pytest.mark.parametrize("rate_hz", [100, None])
def test_the_document_matches_the_published_schema(rate_hz: int | None) -> None:
    doc = to_speedscope(STACKS, name="python app.py", rate_hz=rate_hz)
    jsonschema.validate(doc, SCHEMA)
    # AND it survives a JSON round trip unchanged (what the store writes is what was validated)
    assert json.loads(json.dumps(doc)) == doc


def test_with_a_rate_the_weights_are_seconds() -> None:
    doc = to_speedscope(STACKS, name="x", rate_hz=100)
    profile = doc["profiles"][0]
    assert doc["$schema"] == SCHEMA_URL and doc["activeProfileIndex"] == 0
    assert profile["type"] == "sampled" and profile["unit"] == "seconds"
    assert sorted(profile["weights"]) == [0.05, 0.05, 0.1, 0.3]
    assert profile["startValue"] == 0 and profile["endValue"] == pytest.approx(0.5)


def test_without_a_rate_the_weights_are_sample_counts() -> None:
    profile = to_speedscope(STACKS, name="x", rate_hz=None)["profiles"][0]
    assert profile["unit"] == "none"
    assert sorted(profile["weights"]) == [5.0, 5.0, 10.0, 30.0] and profile["endValue"] == 50.0


def test_every_sample_is_its_stack_root_first_through_the_shared_frames() -> None:
    doc = to_speedscope(STACKS, name="x", rate_hz=None)
    frames = doc["shared"]["frames"]
    profile = doc["profiles"][0]
    rebuilt = sorted((tuple(frames[i]["name"] for i in sample), weight)
                     for sample, weight in zip(profile["samples"], profile["weights"], strict=True))
    assert rebuilt == [(("idle",), 5.0), (("main", "<lambda>", "native_thing"), 5.0), (("main", "hot"), 10.0),
                       (("main", "hot"), 30.0)]


def test_frames_are_shared_per_line_and_carry_file_and_line_when_known() -> None:
    frames = to_speedscope(STACKS, name="x", rate_hz=None)["shared"]["frames"]
    assert len(frames) == 6  # main, hot:10, hot:11, <lambda>, native_thing, idle
    assert {"name": "hot", "file": "app.py", "line": 10} in frames
    assert {"name": "hot", "file": "app.py", "line": 11} in frames
    assert {"name": "native_thing"} in frames and {"name": "idle"} in frames


def test_no_samples_is_still_a_valid_document() -> None:
    doc = to_speedscope(Stacks({}), name="nothing", rate_hz=100)
    jsonschema.validate(doc, SCHEMA)
    assert doc["profiles"][0]["samples"] == [] and doc["profiles"][0]["endValue"] == 0
