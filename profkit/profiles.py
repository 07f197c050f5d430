"""Profiles of several kinds in one model, and the difference between two of them.

A :class:`Profile` is a :class:`~profkit.render.collapsed.Stacks` (a value per distinct stack, root
first) plus what the values measure: CPU samples (py-spy's collapsed stacks, a sampled speedscope
file) or bytes (a memray capture: bytes allocated, or bytes never freed). :func:`diff` lines two
profiles up frame by frame (:class:`DiffNode`) and says which changes are real
(:class:`Significance`); the diff service, its SVG and its table all read that one answer.

Every share is normalised to its own profile's total, so a run that lasted twice as long, or
sampled at another rate, compares on what fraction of its time (or bytes) each frame took.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import TargetError, UsageError
from .render.collapsed import Stacks, parse_frame, read_collapsed
from .results import DiffFunction, DiffRemoved

CPU = "cpu"
MEMORY = "memory"
SAMPLES = "samples"
BYTES = "bytes"  # bytes of an unknown measure (a speedscope file in bytes)
BYTES_ALLOCATED = "bytes allocated"
BYTES_LEAKED = "bytes leaked"

# What a file is, by the end of its name; anything else is sniffed by its first bytes.
COLLAPSED_SUFFIXES = (".collapsed", ".folded")
SPEEDSCOPE_SUFFIXES = (".speedscope.json",)
MEMRAY_SUFFIXES = (".bin",)
# memray writes "memray" first, or an lz4 frame (its default compression) around it.
_MEMRAY_MAGIC = (b"memray", b"\x04\x22\x4d\x18")

# speedscope's time units, in seconds.
_SECONDS = {"seconds": 1.0, "milliseconds": 1e-3, "microseconds": 1e-6, "nanoseconds": 1e-9}


@dataclass(frozen=True)
class Profile:
    """Stacks and what their values measure."""

    stacks: Stacks
    kind: str  # CPU or MEMORY
    measure: str  # SAMPLES, BYTES, BYTES_ALLOCATED or BYTES_LEAKED
    path: Path
    format: str  # collapsed, speedscope, memray
    # The values count independent-ish events (samples), so a binomial test applies to them;
    # bytes are not events (one allocation of 1 MiB is not a million observations).
    counted: bool
    # py-spy's sampling mode when the run's manifest says it: "cpu", "idle" (wall clock, waiting
    # threads too), "gil" or "idle+gil"; None when unknown (a bare file).
    mode: str | None = None
    rate_hz: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.stacks.total

    def describe(self) -> str:
        mode = f", {MODE_WORDS[self.mode]}" if self.mode in MODE_WORDS else ""
        return f"{self.measure}{mode}"


MODE_WORDS = {"cpu": "py-spy samples of running threads", "idle": "py-spy --idle (wall clock, idle threads too)",
              "gil": "py-spy --gil (only while holding the GIL)", "idle+gil": "py-spy --idle --gil"}


def sampling_mode(sampling: dict[str, Any] | None) -> str | None:
    """The mode a flame run's manifest records (``sampling``), or None when it records none."""
    if not isinstance(sampling, dict):
        return None
    idle, gil = bool(sampling.get("idle")), bool(sampling.get("gil"))
    return "idle+gil" if idle and gil else "idle" if idle else "gil" if gil else "cpu"


# -- reading -------------------------------------------------------------------------------------


def file_format(path: Path) -> str | None:
    """collapsed, speedscope or memray, by the file's name, else by its first bytes; None if neither."""
    name = path.name.lower()
    if name.endswith(COLLAPSED_SUFFIXES):
        return "collapsed"
    if name.endswith(SPEEDSCOPE_SUFFIXES):
        return "speedscope"
    if name.endswith(MEMRAY_SUFFIXES):
        return "memray"
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head.startswith(_MEMRAY_MAGIC):
        return "memray"
    if b"speedscope" in head or head.lstrip().startswith(b"{"):
        return "speedscope"
    return None


def load_file(path: Path, *, leaks: bool = False, mode: str | None = None, rate_hz: int | None = None) -> Profile:
    """A profile file: collapsed stacks, a sampled speedscope document, or a memray capture."""
    fmt = file_format(path)
    if fmt == "collapsed":
        return load_collapsed(path, mode=mode, rate_hz=rate_hz)
    if fmt == "speedscope":
        return load_speedscope(path)
    if fmt == "memray":
        return load_memray(path, leaks=leaks)
    raise UsageError(f"{path}: not a profile profkit diff reads (collapsed stacks *.collapsed, speedscope "
                     "*.speedscope.json, a memray capture *.bin)")


def load_collapsed(path: Path, *, mode: str | None = None, rate_hz: int | None = None) -> Profile:
    try:
        stacks = read_collapsed(path)
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if stacks.total == 0:
        raise TargetError(f"{path} holds no stacks (lines of 'frame;frame COUNT')")
    return Profile(stacks, CPU, SAMPLES, path, "collapsed", counted=True, mode=mode, rate_hz=rate_hz)


def _frame_text(frame: Any) -> str:
    """A speedscope frame as a collapsed frame, 'name (file:line)', which parse_frame reads back."""
    if not isinstance(frame, dict):
        return str(frame)
    name = str(frame.get("name") or "?")
    file = frame.get("file")
    if not file:
        return name
    line = frame.get("line")
    return f"{name} ({file}:{line})" if isinstance(line, int) else f"{name} ({file})"


def load_speedscope(path: Path) -> Profile:
    """Every sampled profile of a speedscope document (py-spy writes one per thread), added up."""
    try:
        doc = json.loads(path.read_text())
        frames = [_frame_text(f) for f in doc["shared"]["frames"]]
        profiles = doc["profiles"]
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise TargetError(f"{path} is not a speedscope document ({type(exc).__name__}: {exc})") from exc
    sampled = [p for p in profiles if isinstance(p, dict) and p.get("type") == "sampled"]
    if not sampled:
        kinds = sorted({str(p.get("type")) for p in profiles if isinstance(p, dict)})
        raise UsageError(f"{path} has no sampled profile (it has: {', '.join(kinds) or 'none'}); profkit diff "
                         "reads sampled speedscope profiles")
    units = {str(p.get("unit", "none")) for p in sampled}
    if len(units) > 1:
        raise TargetError(f"{path} mixes units ({', '.join(sorted(units))}) across its profiles")
    unit = units.pop()
    weights: dict[tuple[str, ...], float] = {}
    raw: list[float] = []
    try:
        for p in sampled:
            for sample, weight in zip(p["samples"], p["weights"], strict=True):
                stack = tuple(frames[i] for i in sample)
                weights[stack] = weights.get(stack, 0.0) + float(weight)
                raw.append(float(weight))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise TargetError(f"{path}: a sample does not fit the document's frames ({type(exc).__name__})") from exc
    if unit == "bytes":
        return Profile(Stacks({k: round(v) for k, v in weights.items() if v > 0}), MEMORY, BYTES, path,
                       "speedscope", counted=False)
    counts, rate = _sample_counts(weights, raw, _SECONDS.get(unit))
    stacks = Stacks(counts if counts is not None else {k: round(v * 1e9) for k, v in weights.items() if v > 0})
    if stacks.total == 0:
        raise TargetError(f"{path} holds no samples")
    return Profile(stacks, CPU, SAMPLES, path, "speedscope", counted=counts is not None, rate_hz=rate)


def _sample_counts(weights: dict[tuple[str, ...], float], raw: list[float],
                   seconds: float | None) -> tuple[dict[tuple[str, ...], int] | None, int | None]:
    """Sample counts behind speedscope weights, and the rate, when they can be told.

    A sampled profile in seconds weighs each entry count/rate: py-spy writes one entry per sample
    (1/rate each), profkit one per distinct stack (count/rate). Either way every weight is a whole
    multiple of one sample, found as the weights' greatest common divisor. Weights without one
    (their divisor collapses towards zero) were measured some other way: their counts are unknown
    and the diff falls back to shares only.
    """
    positive = [w for w in raw if w > 0]
    if not positive:
        return {}, None
    if seconds is None:  # unit "none": the weights are counts
        if all(abs(w - round(w)) < 1e-6 for w in positive):
            return {k: round(w) for k, w in weights.items() if w > 0}, None
        return None, None
    quantum = _float_gcd(positive)
    if quantum < min(positive) * 1e-4:
        return None, None
    rate = 1.0 / (quantum * seconds)
    return {k: round(w / quantum) for k, w in weights.items() if w > 0}, round(rate) if rate >= 1 else None


def _float_gcd(values: list[float]) -> float:
    """Euclid's algorithm on floats, a remainder within rounding error of 0 or of the divisor counting as 0."""
    tol = min(values) * 1e-6
    g = values[0]
    for v in values[1:]:
        a, b = (g, v) if g >= v else (v, g)
        while b > tol:
            r = math.fmod(a, b)
            if b - r <= tol:
                r = 0.0
            a, b = b, r
        g = a
    return g


def load_memray(path: Path, *, leaks: bool) -> Profile:
    """Bytes per call stack of a memray capture: every allocation, or (``leaks``) those never freed."""
    import memray

    try:
        reader_cm = memray.FileReader(str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        raise TargetError(f"cannot read the memray capture {path}: {exc}") from exc
    notes: list[str] = []
    with reader_cm as reader:
        md = reader.metadata
        if leaks:
            records: Iterator[Any] = reader.get_leaked_allocation_records(merge_threads=True)
            if md.python_allocator == "pymalloc" and not md.trace_python_allocators:
                notes.append(f"{path.name} was recorded with pymalloc: small objects freed into its arenas may read "
                             "as leaked (profkit mem --leaks records with PYTHONMALLOC=malloc)")
        else:
            frees = frozenset(int(memray.AllocatorType[n]) for n in ("FREE", "MUNMAP", "PYMALLOC_FREE"))
            records = (r for r in reader.get_allocation_records() if r.allocator not in frees)
        per_stack: dict[int, list[Any]] = {}
        for rec in records:
            entry = per_stack.get(rec.stack_id)
            if entry is None:
                per_stack[rec.stack_id] = [rec.size, rec]
            else:
                entry[0] += rec.size
        counts: dict[tuple[str, ...], int] = {}
        for size, rec in per_stack.values():
            # memray gives the leaf first; collapsed stacks are root first.
            frames = rec.stack_trace()
            stack = tuple(f"{fn} ({file}:{line})" for fn, file, line in reversed(frames)) or ("<no Python frame>",)
            counts[stack] = counts.get(stack, 0) + int(size)
    measure = BYTES_LEAKED if leaks else BYTES_ALLOCATED
    if not counts and not leaks:
        raise TargetError(f"the memray capture {path} holds no allocations")
    return Profile(Stacks(counts), MEMORY, measure, path, "memray", counted=False, notes=tuple(notes))


# -- comparing -----------------------------------------------------------------------------------


def check_comparable(a: Profile, b: Profile, *, what_a: str = "A", what_b: str = "B") -> None:
    """Refuse, in one line, two profiles whose numbers mean different things."""
    if a.kind != b.kind:
        raise UsageError(f"cannot diff {what_a} ({a.describe()}) with {what_b} ({b.describe()}): CPU samples "
                         "and memory bytes measure different things")
    generic = {a.measure, b.measure} & {BYTES}
    if a.measure != b.measure and not generic:
        raise UsageError(f"cannot diff {what_a} ({a.measure}) with {what_b} ({b.measure})")
    if a.mode is not None and b.mode is not None and a.mode != b.mode:
        raise UsageError(f"cannot diff {what_a} ({MODE_WORDS.get(a.mode, a.mode)}) with {what_b} "
                         f"({MODE_WORDS.get(b.mode, b.mode)}): they sampled different things; profile both the "
                         "same way")


@dataclass(frozen=True)
class Change:
    """One frame's or function's share in A and B, and whether the difference counts."""

    before: int
    after: int
    share_before: float  # fraction of A's total
    share_after: float  # fraction of B's total
    z: float | None  # two-proportion z statistic (counted profiles only)
    significant: bool

    @property
    def delta(self) -> float:
        return self.share_after - self.share_before


@dataclass(frozen=True)
class Significance:
    """When a change of share is painted and ranked as real.

    A change counts only when it moves the frame's share by at least ``min_share`` (a fraction of
    each profile's total) AND, for sample counts, a two-proportion z-test gives ``|z| >= z``
    (3.0: p < 0.003 two-sided; three sigma rather than two because samples of a sampling
    profiler are not fully independent, and a flamegraph tests hundreds of frames at once). For
    bytes, which are not independent events, the share floor applies with a floor in bytes:
    B's bytes must differ from A's, scaled to B's total, by at least ``min_bytes``.
    """

    min_share: float = 0.005
    z: float = 3.0
    min_bytes: int = 64 * 1024

    def describe(self, counted: bool) -> str:
        floor = f"|Δ share| ≥ {100 * self.min_share:g} pp"
        if counted:
            return f"{floor} and a two-proportion z-test |z| ≥ {self.z:g} (p < {_p_two_sided(self.z):.2g})"
        return f"{floor} and ≥ {self.min_bytes // 1024} KiB of change after scaling A to B's total"

    def judge(self, before: int, total_before: int, after: int, total_after: int, *, counted: bool) -> Change:
        sa = before / total_before if total_before else 0.0
        sb = after / total_after if total_after else 0.0
        delta = sb - sa
        z: float | None = None
        if counted:
            pooled = (before + after) / (total_before + total_after) if total_before + total_after else 0.0
            se = math.sqrt(pooled * (1 - pooled) * (1 / max(total_before, 1) + 1 / max(total_after, 1)))
            z = delta / se if se > 0 else (math.copysign(math.inf, delta) if delta else 0.0)
            real = abs(z) >= self.z
        else:
            scaled = before * (total_after / total_before) if total_before else 0.0
            real = abs(after - scaled) >= self.min_bytes
        # Rounding: a delta that prints as the floor counts as at the floor.
        significant = real and abs(delta) >= self.min_share - 1e-12
        return Change(before, after, sa, sb, z, significant)


def _p_two_sided(z: float) -> float:
    return math.erfc(z / math.sqrt(2))


@dataclass
class DiffNode:
    """One frame (function and file, its lines added up) at one place in the call tree of A and B."""

    name: str
    before: int = 0
    after: int = 0
    children: dict[str, DiffNode] = field(default_factory=dict)

    def child(self, name: str) -> DiffNode:
        node = self.children.get(name)
        if node is None:
            node = self.children[name] = DiffNode(name)
        return node

    def ordered(self) -> list[DiffNode]:
        return sorted(self.children.values(), key=lambda c: c.name)


ROOT = "all"


def _tree(a: Stacks, b: Stacks) -> DiffNode:
    root = DiffNode(ROOT)
    for stacks, side in ((a, "before"), (b, "after")):
        for stack, value in stacks.counts.items():
            node = root
            setattr(node, side, getattr(node, side) + value)
            for frame in stack:
                # One box per function, as the flamegraph draws it: a function's lines add up.
                node = node.child(parse_frame(frame).key)
                setattr(node, side, getattr(node, side) + value)
    return root


@dataclass
class ProfileDiff:
    a: Profile
    b: Profile
    rule: Significance
    tree: DiffNode

    @property
    def counted(self) -> bool:
        return self.a.counted and self.b.counted

    def judge(self, before: int, after: int) -> Change:
        return self.rule.judge(before, self.a.total, after, self.b.total, counted=self.counted)

    def removed(self) -> list[tuple[list[str], DiffNode]]:
        """The frames A had and B has not at all, each the top of what vanished (with its path), largest first."""
        out: list[tuple[list[str], DiffNode]] = []

        def walk(node: DiffNode, path: list[str]) -> None:
            for child in node.ordered():
                if child.after == 0 and child.before > 0:
                    out.append(([*path, child.name], child))
                elif child.after > 0:
                    walk(child, [*path, child.name])

        walk(self.tree, [])
        out.sort(key=lambda pn: (-pn[1].before, pn[0]))
        return out

    def removed_rows(self) -> list[DiffRemoved]:
        total = self.a.total or 1
        return [{"stack": path, "before": node.before, "before_pct": round(100 * node.before / total, 3)}
                for path, node in self.removed()]

    def added_share(self) -> float:
        """The share of B spent in frames A never reached."""
        added = 0

        def walk(node: DiffNode) -> None:
            nonlocal added
            for child in node.children.values():
                if child.before == 0 and child.after > 0:
                    added += child.after
                elif child.before > 0:
                    walk(child)

        walk(self.tree)
        return added / self.b.total if self.b.total else 0.0

    def functions(self, *, top: int) -> list[DiffFunction]:
        """Functions whose share changed most: significant ones first, then by the change of their
        self share (the function doing more or less work itself), then of their total share. Ranked
        by total first, the root of every stack (the event loop, say) would head the list whenever
        the mix of threads moved. Changes under the share floor are left out."""
        self_a, total_a, names = _function_values(self.a.stacks)
        self_b, total_b, names_b = _function_values(self.b.stacks)
        for key, value in names_b.items():
            names.setdefault(key, value)
        rows: list[tuple[tuple[bool, float, float, str], DiffFunction]] = []
        for key in names:
            own = self.judge(self_a[key], self_b[key])
            total = self.judge(total_a[key], total_b[key])
            biggest = max(abs(own.delta), abs(total.delta))
            if biggest < self.rule.min_share - 1e-12:
                continue
            function, file = names[key]
            significant = own.significant or total.significant
            status = "new" if total_a[key] == 0 else "removed" if total_b[key] == 0 else "changed"
            row: DiffFunction = {
                "function": function, "file": file, "status": status, "significant": significant,
                "self_before_pct": _pct(own.share_before), "self_after_pct": _pct(own.share_after),
                "self_delta_pct": _pct(own.delta), "total_before_pct": _pct(total.share_before),
                "total_after_pct": _pct(total.share_after), "total_delta_pct": _pct(total.delta),
                "self_before": own.before, "self_after": own.after,
                "total_before": total.before, "total_after": total.after,
                "z": _z(total.z if abs(total.delta) >= abs(own.delta) else own.z),
            }
            rows.append(((not significant, -abs(own.delta), -biggest, key), row))
        rows.sort(key=lambda r: r[0])
        return [row for _, row in rows[:top]]


def _pct(fraction: float) -> float:
    return round(100 * fraction, 3)


def _z(z: float | None) -> float | None:
    if z is None:
        return None
    return z if math.isfinite(z) else math.copysign(1e9, z)  # JSON has no infinity


def _function_values(stacks: Stacks) -> tuple[Counter[str], Counter[str], dict[str, tuple[str, str]]]:
    """Self (leaf) and total (anywhere on the stack, once per stack) values per function key."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    names: dict[str, tuple[str, str]] = {}
    for stack, value in stacks.counts.items():
        if not stack:
            continue
        frames = [parse_frame(f) for f in stack]
        own[frames[-1].key] += value
        for frame in frames:
            names.setdefault(frame.key, (frame.function, frame.file))
        for key in {f.key for f in frames}:
            total[key] += value
    return own, total, names


def _files(stacks: Stacks) -> set[str]:
    return {parse_frame(f).file for stack in stacks.counts for f in stack}


def file_aliases(a: Stacks, b: Stacks) -> dict[str, str]:
    """One name for a file the two profiles spell differently: py-spy's collapsed stacks say
    ``agentmem/api.py``, its speedscope and memray say ``/srv/app/agentmem/api.py``. A path is
    renamed to the other side's shorter spelling when that is a whole-component suffix of it and
    the only one: two ``__init__.py`` of different packages are never merged by a guess."""
    files_a, files_b = _files(a), _files(b)
    every = files_a | files_b
    aliases: dict[str, str] = {}
    for mine, theirs in ((files_a - files_b, files_b), (files_b - files_a, files_a)):
        for path in mine:
            if not path or path.startswith("<"):
                continue
            shorter = [t for t in theirs if t and path.endswith("/" + t)]
            if len(shorter) != 1:
                continue
            # ...and the short name must not fit another long one: it could be that one's.
            if [f for f in every if f.endswith("/" + shorter[0])] == [path]:
                aliases[path] = shorter[0]
    return aliases


def _renamed(stacks: Stacks, aliases: dict[str, str]) -> Stacks:
    if not aliases:
        return stacks
    counts: dict[tuple[str, ...], int] = {}
    for stack, value in stacks.counts.items():
        frames = []
        for text in stack:
            f = parse_frame(text)
            if f.file in aliases:
                where = aliases[f.file] + (f":{f.line}" if f.line is not None else "")
                text = f"{f.function} ({where})"
            frames.append(text)
        key = tuple(frames)
        counts[key] = counts.get(key, 0) + value
    return Stacks(counts)


def diff(a: Profile, b: Profile, rule: Significance | None = None) -> ProfileDiff:
    """A and B frame by frame; refused when they measure different things."""
    check_comparable(a, b)
    aliases = file_aliases(a.stacks, b.stacks)
    if aliases:
        a = replace(a, stacks=_renamed(a.stacks, aliases))
        b = replace(b, stacks=_renamed(b.stacks, aliases))
    return ProfileDiff(a, b, rule or Significance(), _tree(a.stacks, b.stacks))
