"""Collapsed stacks → a speedscope document (https://www.speedscope.app/file-format-schema.json)."""

from __future__ import annotations

from typing import Any

from .collapsed import Stacks, parse_frame

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"


def to_speedscope(stacks: Stacks, *, name: str, rate_hz: int | None) -> dict[str, Any]:
    frames: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    samples: list[list[int]] = []
    weights: list[float] = []
    for stack, count in sorted(stacks.counts.items()):
        ids = []
        for text in stack:
            i = index.get(text)
            if i is None:
                f = parse_frame(text)
                entry: dict[str, Any] = {"name": f.function}
                if f.file:
                    entry["file"] = f.file
                if f.line is not None:
                    entry["line"] = f.line
                i = index[text] = len(frames)
                frames.append(entry)
            ids.append(i)
        samples.append(ids)
        # With a known rate, weights are seconds; otherwise plain sample counts.
        weights.append(count / rate_hz if rate_hz else float(count))
    total = sum(weights)
    return {
        "$schema": SCHEMA_URL,
        "name": name,
        "exporter": "profkit",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [{
            "type": "sampled",
            "name": name,
            "unit": "seconds" if rate_hz else "none",
            "startValue": 0,
            "endValue": total,
            "samples": samples,
            "weights": weights,
        }],
    }
