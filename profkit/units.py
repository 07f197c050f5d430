"""Sizes as people write and read them: '512MB' in an option, '1.5 GiB' in a table."""

from __future__ import annotations

import re

from .errors import UsageError

_SIZE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgtp])(i)?)?b?$", re.IGNORECASE)
_POWER = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str, *, option: str = "--peak-budget") -> int:
    """'512MB', '1.5GiB', '800k', '2000000' → bytes. k/M/G are powers of 1000, Ki/Mi/Gi of 1024."""
    m = _SIZE.match(text.strip())
    if not m:
        raise UsageError(f"{option}: cannot read {text!r} as a size; use e.g. 512MB, 1.5GiB or 800k "
                         "(k, M, G = 1000; Ki, Mi, Gi = 1024)")
    number, prefix, binary = m.groups()
    unit: int = (1024 if binary else 1000) ** _POWER[prefix.lower()] if prefix else 1
    value = round(float(number) * unit)
    if value < 1:
        raise UsageError(f"{option} must be at least 1 byte, got {text!r}")
    return value


def human(n: float) -> str:
    """Bytes in binary units with one decimal: 1536 → '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
