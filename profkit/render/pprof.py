"""Collapsed stacks → a pprof profile (``profile.pb.gz``): what ``go tool pprof`` and Grafana Pyroscope read.

The file is the gzipped protobuf ``perftools.profiles.Profile`` of github.com/google/pprof
(proto/profile.proto). Only a handful of its messages are needed, so they are written here with a
small varint encoder instead of adding a protobuf runtime and generated code as dependencies:

- ``Profile``: sample_type=1, sample=2, mapping=3, location=4, function=5, string_table=6,
  time_nanos=9, duration_nanos=10, period_type=11, period=12, comment=13
- ``ValueType``: type=1, unit=2 (indexes into the string table)
- ``Sample``: location_id=1 (packed, leaf first), value=2 (packed, one per sample type)
- ``Mapping``: id=1, filename=5, has_functions=7, has_filenames=8, has_line_numbers=9
- ``Location``: id=1, mapping_id=2, line=4; ``Line``: function_id=1, line=2
- ``Function``: id=1, name=2, system_name=3 (left unset, see below), filename=4

Every distinct collapsed line becomes one Sample; every distinct frame (function, file, line) one
Location; every distinct (function, file) one Function, so pprof adds a function's lines up.
"""

from __future__ import annotations

import gzip

from .collapsed import Stacks, parse_frame

NANOS = 1_000_000_000
MAPPING_ID = 1

# Protobuf wire types.
_VARINT = 0
_LEN = 2


def varint(value: int) -> bytes:
    """Base-128 varint; a negative int64 is written as its 64-bit two's complement (10 bytes), as protobuf does."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def _int(field: int, value: int) -> bytes:
    # proto3 leaves a field at its default (0) out of the message; readers treat absent as 0.
    return _key(field, _VARINT) + varint(value) if value else b""


def _bytes(field: int, data: bytes) -> bytes:
    return _key(field, _LEN) + varint(len(data)) + data


def _packed(field: int, values: list[int]) -> bytes:
    return _bytes(field, b"".join(varint(v) for v in values)) if values else b""


class _Strings:
    """The profile's string table; index 0 must be the empty string."""

    def __init__(self) -> None:
        self.table: list[str] = [""]
        self.index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.table)
            self.table.append(text)
        return i


def to_pprof(stacks: Stacks, *, rate_hz: int, wall: bool = False, time_nanos: int = 0, duration_nanos: int = 0,
             comments: tuple[str, ...] = ()) -> bytes:
    """The gzipped pprof profile of ``stacks`` sampled at ``rate_hz``.

    Two sample types, as Go's own CPU profiles have: ``samples/count`` (index 0: the event count,
    by pprof's convention) and ``cpu/nanoseconds`` (samples times the sampling period), or
    ``wall/nanoseconds`` when idle threads were sampled too (py-spy --idle), which is wall time.
    """
    strings = _Strings()
    period = NANOS // max(1, rate_hz)
    clock = "wall" if wall else "cpu"
    functions: dict[tuple[str, str], int] = {}
    locations: dict[tuple[int, int], int] = {}
    function_msgs: list[bytes] = []
    location_msgs: list[bytes] = []
    sample_msgs: list[bytes] = []

    def location(text: str) -> int:
        frame = parse_frame(text)
        fkey = (frame.function, frame.file)
        fid = functions.get(fkey)
        if fid is None:
            fid = functions[fkey] = len(functions) + 1
            # No system_name: pprof "demangles" a function whose system_name equals its name, and
            # takes Python's "<module>" and "<lambda>" for C++ template arguments, leaving "".
            function_msgs.append(_int(1, fid) + _int(2, strings(frame.function)) + _int(4, strings(frame.file)))
        lkey = (fid, frame.line or 0)
        lid = locations.get(lkey)
        if lid is None:
            lid = locations[lkey] = len(locations) + 1
            line = _int(1, fid) + _int(2, frame.line or 0)
            location_msgs.append(_int(1, lid) + _int(2, MAPPING_ID) + _bytes(4, line))
        return lid

    for stack, count in sorted(stacks.counts.items()):
        if not stack or count <= 0:
            continue
        # Collapsed stacks are root first; pprof wants the leaf at location_id[0].
        ids = [location(text) for text in reversed(stack)]
        sample_msgs.append(_packed(1, ids) + _packed(2, [count, count * period]))

    sample_types = [(strings("samples"), strings("count")), (strings(clock), strings("nanoseconds"))]
    period_type = (strings(clock), strings("nanoseconds"))
    comment_ids = [strings(c) for c in comments]

    # One mapping that says every location is already symbolized (functions, files, lines), so
    # pprof neither looks for a binary to symbolize against nor warns that it has none.
    mapping = _int(1, MAPPING_ID) + _int(5, strings("python")) + _int(7, 1) + _int(8, 1) + _int(9, 1)

    out = bytearray()
    for type_, unit in sample_types:
        out += _bytes(1, _int(1, type_) + _int(2, unit))
    for msg in sample_msgs:
        out += _bytes(2, msg)
    out += _bytes(3, mapping)
    for msg in location_msgs:
        out += _bytes(4, msg)
    for msg in function_msgs:
        out += _bytes(5, msg)
    for text in strings.table:
        out += _bytes(6, text.encode())
    out += _int(9, time_nanos) + _int(10, duration_nanos)
    out += _bytes(11, _int(1, period_type[0]) + _int(2, period_type[1]))
    out += _int(12, period)
    out += _packed(13, comment_ids)
    # mtime=0: the same profile gives the same bytes (and sha256 in the manifest) every time.
    return gzip.compress(bytes(out), mtime=0)
