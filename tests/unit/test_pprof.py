"""profkit.render.pprof: the protobuf it writes, read back with a decoder of its own written from profile.proto."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from profkit.render.collapsed import Stacks
from profkit.render.pprof import to_pprof, varint

# -- a minimal protobuf reader: enough of the wire format to read a pprof Profile --------------------


def read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, varint or bytes) in order; fails on wire types pprof does not use."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
            out.append((field, value))
        elif wire == 2:
            size, i = read_varint(data, i)
            out.append((field, data[i:i + size]))
            i += size
        else:
            raise AssertionError(f"unexpected wire type {wire} for field {field}")
    return out


def ints(msg: bytes) -> dict[int, int]:
    return {f: v for f, v in fields(msg) if isinstance(v, int)}


def packed(data: bytes) -> list[int]:
    values, i = [], 0
    while i < len(data):
        v, i = read_varint(data, i)
        values.append(v)
    return values


def decode(blob: bytes) -> dict[str, Any]:
    """The Profile as plain data, ids resolved to strings."""
    raw = gzip.decompress(blob)
    top = fields(raw)
    strings = [v.decode() for f, v in top if f == 6 and isinstance(v, bytes)]
    by = {n: [v for f, v in top if f == n and isinstance(v, bytes)] for n in (1, 2, 3, 4, 5, 11)}
    functions: dict[int, dict[str, str]] = {}
    for msg in by[5]:
        fn = ints(msg)
        functions[fn[1]] = {"name": strings[fn.get(2, 0)], "system_name": strings[fn.get(3, 0)],
                            "filename": strings[fn.get(4, 0)]}
    locations: dict[int, dict[str, Any]] = {}
    for msg in by[4]:
        lines = [ints(v) for f, v in fields(msg) if f == 4 and isinstance(v, bytes)]
        locations[ints(msg)[1]] = {
            "mapping": ints(msg).get(2, 0),
            "lines": [(functions[ln[1]]["name"], functions[ln[1]]["filename"], ln.get(2, 0)) for ln in lines]}
    samples = []
    for msg in by[2]:
        parts = {f: v for f, v in fields(msg)}
        ids = packed(parts[1]) if isinstance(parts[1], bytes) else [parts[1]]
        samples.append({"stack": [locations[i]["lines"][0] for i in ids],
                        "values": packed(parts[2]) if isinstance(parts[2], bytes) else [parts[2]]})
    scalars = ints(raw)
    period_type = ints(by[11][0])
    return {
        "strings": strings,
        "sample_type": [(strings[ints(m).get(1, 0)], strings[ints(m).get(2, 0)]) for m in by[1]],
        "samples": samples,
        "locations": locations,
        "functions": functions,
        "mappings": [ints(m) for m in by[3]],
        "time_nanos": scalars.get(9, 0),
        "duration_nanos": scalars.get(10, 0),
        "period_type": (strings[period_type.get(1, 0)], strings[period_type.get(2, 0)]),
        "period": scalars.get(12, 0),
        "comments": [strings[i] for f, v in top if f == 13 for i in (packed(v) if isinstance(v, bytes) else [v])],
    }


# -- the tests ---------------------------------------------------------------------------------------

STACKS = Stacks({
    ("<module> (app.py:30)", "main (app.py:20)", "hot (app.py:10)"): 60,
    ("<module> (app.py:30)", "main (app.py:20)", "hot (app.py:11)"): 20,
    ("<module> (app.py:30)", "main (app.py:21)", "warm (lib/b.py:5)"): 15,
    ("<module> (app.py:30)", "idle"): 5,
})


@pytest.mark.parametrize(("value", "encoded"), [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"),
                                                (300, b"\xac\x02"), (2**63 - 1, b"\xff" * 8 + b"\x7f"),
                                                (-1, b"\xff" * 9 + b"\x01")])
def test_varints_are_protobufs(value: int, encoded: bytes) -> None:
    assert varint(value) == encoded


def test_one_sample_per_stack_leaf_first_with_samples_and_cpu_time() -> None:
    p = decode(to_pprof(STACKS, rate_hz=100, time_nanos=1_700_000_000_000_000_000, duration_nanos=2_500_000_000))
    assert p["strings"][0] == ""
    assert p["sample_type"] == [("samples", "count"), ("cpu", "nanoseconds")]
    assert p["period_type"] == ("cpu", "nanoseconds") and p["period"] == 10_000_000
    assert p["time_nanos"] == 1_700_000_000_000_000_000 and p["duration_nanos"] == 2_500_000_000
    samples = {tuple(s["stack"]): s["values"] for s in p["samples"]}
    assert len(samples) == 4
    assert samples[(("hot", "app.py", 10), ("main", "app.py", 20), ("<module>", "app.py", 30))] == [60, 600_000_000]
    assert samples[(("warm", "lib/b.py", 5), ("main", "app.py", 21), ("<module>", "app.py", 30))] == [15, 150_000_000]
    assert samples[(("idle", "", 0), ("<module>", "app.py", 30))] == [5, 50_000_000]
    assert sum(v[0] for v in samples.values()) == STACKS.total


def test_functions_are_shared_by_their_lines_and_locations_are_per_line() -> None:
    p = decode(to_pprof(STACKS, rate_hz=100))
    names = sorted((f["name"], f["filename"]) for f in p["functions"].values())
    assert names == [("<module>", "app.py"), ("hot", "app.py"), ("idle", ""), ("main", "app.py"),
                     ("warm", "lib/b.py")]
    # No system_name: pprof would "demangle" <module> into nothing (see to_pprof).
    assert all(f["system_name"] == "" for f in p["functions"].values())
    lines = sorted(loc["lines"][0] for loc in p["locations"].values())
    assert ("hot", "app.py", 10) in lines and ("hot", "app.py", 11) in lines and len(lines) == 7
    assert sorted(p["locations"]) == list(range(1, 8)) and sorted(p["functions"]) == list(range(1, 6))
    assert all(loc["mapping"] == 1 for loc in p["locations"].values())
    assert p["mappings"][0][1] == 1 and p["mappings"][0][7] == 1  # id 1, has_functions


def test_wall_clock_samples_say_so_and_comments_are_kept() -> None:
    p = decode(to_pprof(STACKS, rate_hz=250, wall=True, comments=("profkit flame: x", "py-spy --idle")))
    assert p["sample_type"][1] == ("wall", "nanoseconds") and p["period"] == 4_000_000
    assert p["comments"] == ["profkit flame: x", "py-spy --idle"]


def test_the_same_profile_gives_the_same_bytes() -> None:
    assert to_pprof(STACKS, rate_hz=100) == to_pprof(STACKS, rate_hz=100)
