"""Short numbers for a console that refreshes every second: durations in ms / s / min, cut names, text bars."""

from __future__ import annotations

import re

from ...results import StepHistogram
from ..terminal.tables import compact

_LOCATION = re.compile(r"^(?P<what>.*) \((?P<file>.+):(?P<line>\d+)\)$")


def seconds(value: float | None) -> str:
    """12.3 s, 4.50 min, 2.00 h, 3.10 d; '-' when unknown."""
    if value is None:
        return "-"
    for limit, scale, unit in ((60.0, 1.0, "s"), (3600.0, 60.0, "min"), (86400.0, 3600.0, "h")):
        if abs(value) < limit:
            return f"{compact(value / scale)} {unit}"
    return f"{compact(value / 86400.0)} d"


def ms(value: float | None) -> str:
    """400 µs, 12.3 ms, 999 ms, then as seconds: 1.25 s; '-' when unknown."""
    if value is None:
        return "-"
    if value == 0:
        return "0 ms"
    if abs(value) < 0.9995:
        return f"{compact(value * 1000.0)} µs"
    if abs(value) < 999.5:
        return f"{compact(value)} ms"
    return seconds(value / 1000.0)


def cut(text: str, width: int) -> str:
    """At most ``width`` characters, the end replaced with '…' when longer (the detail view has it whole)."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def short_location(awaiting: str | None) -> str:
    """'handler (/srv/app/api/views.py:88)' → 'handler (views.py:88)': a table row has no room for the path."""
    if not awaiting:
        return "-"
    m = _LOCATION.match(awaiting)
    if not m:
        return awaiting
    return f"{m['what']} ({m['file'].rsplit('/', 1)[-1]}:{m['line']})"


def percentiles(h: StepHistogram) -> str:
    return (f"p50 {ms(h['p50_ms'])}  p90 {ms(h['p90_ms'])}  p99 {ms(h['p99_ms'])}  max {ms(h['max_ms'])}"
            f"  ({h['count']:,} in all)")


def histogram_lines(h: StepHistogram, *, width: int = 40) -> list[str]:
    """One line per non-empty bucket: '≤ 2.00 ms  ██████▍  37', bars scaled to the fullest bucket."""
    if not h["buckets"]:
        return ["(none measured)"]
    most = max(count for _, count in h["buckets"]) or 1
    labels = [f"≤ {ms(upper)}" for upper, _ in h["buckets"]]
    pad = max(len(label) for label in labels)
    return [f"{label:>{pad}}  {_bar(count / most, width):<{width}}  {compact(int(count))}"
            for label, (_, count) in zip(labels, h["buckets"], strict=True)]


_EIGHTHS = " ▏▎▍▌▋▊▉"


def _bar(fraction: float, width: int) -> str:
    eighths = round(max(0.0, min(fraction, 1.0)) * width * 8)
    full, rest = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[rest] if rest else "")
    if not bar and fraction > 0:
        return "▏"  # a non-empty bucket always shows, however small next to the fullest
    return bar
