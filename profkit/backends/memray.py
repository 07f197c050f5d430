"""memray: record a child or attach to a live pid, render flamegraphs, and read capture files.

Everything that starts a program goes through :mod:`profkit.process`; capture files are read with
memray's own Python API (``memray.FileReader``) rather than by scraping ``memray stats`` text.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import site
import sys
import sysconfig
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from .. import inject
from ..errors import ProfkitError, StoreError, TargetError
from ..process import Completed, Spawned, child_env, pid_alive, python_module, run
from ..results import AllocationSite
from ..targets import PythonProgram
from ..tools import TOOLS, require

# A site is reported as a leak only when it keeps at least this much memory AND this share of all
# leaked bytes. Every Python process ends with some memory that is never freed and is not a bug:
# interned strings, code objects of imported modules, caches filled at import time. In a small
# program those are a few KiB per site, far below 64 KiB; in a large capture the 1 % floor keeps
# the report to the handful of sites that explain where the memory went.
LEAK_MIN_BYTES = 64 * 1024
LEAK_MIN_SHARE = 0.01

# How long a debugger may take to inject memray into a live process. A healthy gdb or lldb does it
# in 1-3 s; past this it is hung (e.g. on a process in uninterruptible sleep) and is stopped.
ATTACH_TIMEOUT = 60.0
# After --duration, the target's own timer thread stops memray and closes the capture file; it
# needs the GIL for that, which a busy target may hold for a while.
FINALIZE_GRACE = 30.0
STOP_SLACK = 0.5


@dataclass(frozen=True)
class Flags:
    native: bool = False
    leaks: bool = False


# -- recording a child ---------------------------------------------------------------------------


def run_argv(capture: Path, program: PythonProgram, flags: Flags) -> list[str]:
    """``python -m memray run ... -o FILE (SCRIPT | -m MODULE | -c CODE) ARGS``."""
    cmd = [*require("memray").argv(), "run", "--quiet", "--output", str(capture)]
    if flags.native:
        cmd.append("--native")
    if program.module is not None:
        return [*cmd, "-m", program.module, *program.args]
    if program.code is not None:
        return [*cmd, "-c", program.code, *program.args]
    assert program.script is not None
    return [*cmd, program.script, *program.args]


def run_env(flags: Flags) -> dict[str, str] | None:
    # pymalloc keeps freed small objects in its own arenas and hands whole arenas to the system
    # allocator, so with it a function that frees everything can still look like it "leaked" the
    # arena it happened to open. memray's documentation asks for PYTHONMALLOC=malloc when hunting
    # leaks, so every object's allocation and free is seen.
    return child_env(PYTHONMALLOC="malloc") if flags.leaks else None


def record(capture: Path, program: PythonProgram, flags: Flags, *, timeout: float) -> Completed:
    return run(run_argv(capture, program, flags), timeout=timeout, env=run_env(flags), interruptible=True)


# -- attaching to a live process -----------------------------------------------------------------


def choose_debugger() -> str:
    """gdb or lldb, whichever can call into a process here (tried on a throwaway process first)."""
    return inject.choose_debugger("memray attach", what="memray", install_hint=TOOLS["gdb"].hint)


def attach_argv(capture: Path, pid: int, flags: Flags, *, debugger: str, seconds: int) -> list[str]:
    # --no-compress: memray's compression runs inside the target after tracking stops and
    # replaces the file by rename; uncompressed, "the target closed the file" is the exact moment
    # the capture is complete, which is what wait_for_capture watches for.
    cmd = [*require("memray").argv(), "attach", "--method", debugger, "--no-compress", "--duration", str(seconds),
           "--output", str(capture)]
    if flags.native:
        cmd.append("--native")
    if flags.leaks:
        # A running interpreter's allocator cannot be switched to malloc any more; memray can
        # still see pymalloc's allocations and frees directly.
        cmd.append("--trace-python-allocators")
    return [*cmd, str(pid)]


def attach_seconds(duration: float) -> int:
    return max(1, math.ceil(duration))  # memray attach takes whole seconds


def attach(capture: Path, pid: int, flags: Flags, *, debugger: str, seconds: int) -> Completed:
    argv = attach_argv(capture, pid, flags, debugger=debugger, seconds=seconds)
    try:
        return run(argv, timeout=ATTACH_TIMEOUT)
    except TargetError:
        # process.run stops memray itself, but the debugger it started is a grandchild that keeps
        # the target stopped under ptrace; end it and wake the target.
        release_target(pid)
        raise TargetError(f"{debugger} did not finish attaching memray to pid {pid} within {ATTACH_TIMEOUT:.0f} s; "
                          f"it was stopped and pid {pid} left running") from None


def explain_attach_failure(proc: Completed, pid: int, debugger: str) -> str:
    text = " ".join(ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines()
                    if ln.strip() and not ln.startswith("memray: tracking"))
    if not pid_alive(pid):
        return f"pid {pid} exited while memray was attaching to it"
    if "permission" in text.lower():
        return (f"memray attach ({debugger}) may not trace pid {pid}: run as root with CAP_SYS_PTRACE "
                "(docker run --cap-add SYS_PTRACE) or set /proc/sys/kernel/yama/ptrace_scope to 0")
    return f"memray attach ({debugger}) failed on pid {pid}: {text[:300] or f'exit code {proc.returncode}'}"


_ATTACH_SCRIPTS = ("_attach.gdb", "_attach.lldb")  # memray's debugger scripts, on its debugger's command line


def release_target(pid: int) -> None:
    """End the debugger memray attach started against ``pid`` and resume ``pid`` (see inject.release_target)."""
    inject.release_target(pid, markers=_ATTACH_SCRIPTS)


def holds_file(pid: int, path: Path) -> bool:
    target = str(path.resolve())
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) == target:
                return True
        except OSError:
            continue
    return False


def wait_for_capture(capture: Path, pid: int, *, seconds: int, started: float,
                     tick: Callable[[str], None]) -> str:
    """"complete" once memray stopped and closed the file, "exited" if the target ended first,
    "stuck" if memray is still recording long after it should have stopped."""
    stop_at = started + seconds
    while True:
        now = time.monotonic()
        if not pid_alive(pid):
            # memray's stop timer starts inside the target a moment before attach returns, and it
            # is not a daemon thread: a target whose work is done lingers until it fires, then
            # exits. Ending within that moment of the stop is a full recording, not a cut one.
            return "complete" if now >= stop_at - STOP_SLACK else "exited"
        if now >= stop_at:
            if not holds_file(pid, capture):
                return "complete"
            if now > stop_at + FINALIZE_GRACE:
                return "stuck"
            tick(f"memray: waiting for pid {pid} to close its capture")
        else:
            tick(f"memray: recording pid {pid}, {stop_at - now:.0f} s left")
        time.sleep(0.1)


def uid_gid(pid: int) -> tuple[int, int] | None:
    try:
        st = os.stat(f"/proc/{pid}")
    except OSError:
        return None
    return st.st_uid, st.st_gid


# -- flamegraphs -----------------------------------------------------------------------------------


def flamegraph_argv(capture: Path, out: Path, *, leaks: bool) -> list[str]:
    # The default HTML loads its scripts from a CDN; --no-web would embed them, at ~4.5 MB per file
    # in every run folder of the store.
    cmd = [*require("memray").argv(), "flamegraph", "--force", "--output", str(out)]
    if leaks:
        cmd.append("--leaks")
    return [*cmd, str(capture)]


# -- reading a capture -----------------------------------------------------------------------------


Frame = tuple[str, str, int]


class CodeFilter:
    """Which source files are the user's code, as opposed to the interpreter's, memray's or a library's."""

    _LIB_DIR = re.compile(r"/lib(?:64)?/(?:pypy|python)\d(?:\.\d+)?t?/")

    def __init__(self, user_roots: Sequence[Path] = ()) -> None:
        self.user_roots = tuple(str(p.resolve()) for p in user_roots)
        roots: set[str] = set()
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            with contextlib.suppress(KeyError):
                roots.add(sysconfig.get_paths()[key])
        with contextlib.suppress(AttributeError):
            roots.update(site.getsitepackages())
        self._library_roots = tuple(sorted(os.path.realpath(r) for r in roots if r))
        self._cache: dict[str, bool] = {}

    def is_user(self, filename: str) -> bool:
        known = self._cache.get(filename)
        if known is None:
            known = self._cache[filename] = self._classify(filename)
        return known

    def _classify(self, filename: str) -> bool:
        # "<frozen importlib._bootstrap>", "<string>" (code that dataclasses, namedtuple and the like
        # generate), "<unknown>": never something the user can open and fix.
        if not filename or filename.startswith("<"):
            return False
        if os.path.basename(filename).startswith("_memray"):
            return False  # the hook memray attach runs inside the target (_memray_attach_hook.py)
        path = os.path.realpath(filename)
        if any(_under(path, r) for r in self.user_roots):
            return True
        if "/site-packages/" in path or "/dist-packages/" in path or self._LIB_DIR.search(path):
            return False
        return not any(_under(path, r) for r in self._library_roots)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def attribute(frames: Sequence[Frame], code: CodeFilter) -> tuple[Frame, bool]:
    """The innermost frame that is user code (and True), else the innermost frame (and False)."""
    for frame in frames:
        if code.is_user(frame[1]):
            return frame, True
    if frames:
        return frames[0], False
    return ("<no Python frame>", "<native>", 0), False


@dataclass
class _Site:
    function: str
    file: str
    user_code: bool
    bytes: int = 0
    count: int = 0
    by_line: dict[int, int] = field(default_factory=dict)

    def add(self, line: int, size: int, count: int) -> None:
        self.bytes += size
        self.count += count
        self.by_line[line] = self.by_line.get(line, 0) + size

    def row(self) -> AllocationSite:
        line = max(self.by_line.items(), key=lambda kv: kv[1])[0] if self.by_line else 0
        return {"function": self.function, "file": self.file, "line": line, "bytes": self.bytes,
                "count": self.count, "user_code": self.user_code}


class _Sites:
    """Allocations grouped by the function they are attributed to (user code where there is some)."""

    def __init__(self, code: CodeFilter) -> None:
        self.code = code
        self.sites: dict[tuple[str, str], _Site] = {}

    def add(self, frames: Sequence[Frame], size: int, count: int) -> None:
        (function, file, line), user = attribute(frames, self.code)
        key = (function, file)
        site_ = self.sites.get(key)
        if site_ is None:
            site_ = self.sites[key] = _Site(function, file, user)
        site_.add(line, size, count)

    def ranked(self) -> list[AllocationSite]:
        return [s.row() for s in sorted(self.sites.values(), key=lambda s: (-s.bytes, s.function))]


def _stack(record: Any, code: CodeFilter) -> list[Frame]:
    # Most stacks reach user code within a few frames; the full stack is fetched only when not.
    frames: list[Frame] = record.stack_trace(max_stacks=16)
    if len(frames) == 16 and not any(code.is_user(f[1]) for f in frames):
        frames = record.stack_trace()
    return frames


def _gather(records: Sequence[Any], code: CodeFilter) -> tuple[_Sites, int]:
    """Attribute allocation records to code sites; also their total size."""
    sites = _Sites(code)
    total = 0
    for rec in records:
        total += rec.size
        sites.add(_stack(rec, code), rec.size, rec.n_allocations)
    return sites, total


@dataclass
class CaptureReport:
    peak_memory_bytes: int
    total_allocated_bytes: int
    total_allocations: int
    top_functions: list[AllocationSite]
    peak_functions: list[AllocationSite]
    leaks: list[AllocationSite] | None
    leaked_bytes_total: int | None
    metadata: dict[str, Any]


def _open(capture: Path) -> Any:
    import memray

    try:
        return memray.FileReader(str(capture))
    except (OSError, ValueError, RuntimeError) as exc:
        raise TargetError(f"memray wrote an unreadable capture {capture.name}: {exc}") from exc


class Totals(TypedDict):
    total_allocated_bytes: int
    total_allocations: int
    top_functions: list[AllocationSite]


def count_totals(capture: Path, *, top: int, code: CodeFilter) -> Totals:
    """Every allocation in the capture, by the function it is attributed to: one pass over all records.

    This is the one pass that runs Python code per record (memray aggregates the peak and the
    leaks in C++ and hands over one record per call stack), so it is kept to the least per record:
    sizes summed per stack id, stacks attributed once per stack.
    """
    import memray

    frees = frozenset(int(memray.AllocatorType[name]) for name in ("FREE", "MUNMAP", "PYMALLOC_FREE"))
    per_stack: dict[int, list[Any]] = {}
    get = per_stack.get
    with _open(capture) as reader:
        for rec in reader.get_allocation_records():
            if rec.allocator in frees:
                continue
            entry = get(rec.stack_id)
            if entry is None:
                per_stack[rec.stack_id] = [rec.size, rec.n_allocations, rec]
            else:
                entry[0] += rec.size
                entry[1] += rec.n_allocations
        allocated = _Sites(code)
        for size, count, rec in per_stack.values():
            allocated.add(_stack(rec, code), size, count)
    # metadata.total_allocations counts frees too, so the totals come from the records.
    return {"total_allocated_bytes": sum(e[0] for e in per_stack.values()),
            "total_allocations": sum(e[1] for e in per_stack.values()),
            "top_functions": allocated.ranked()[:top]}


def totals_argv(capture: Path, *, top: int, code: CodeFilter) -> list[str]:
    roots = [arg for root in code.user_roots for arg in ("--user-root", root)]
    return python_module("profkit.backends.memray", "totals", "--top", str(top), *roots, str(capture))


def _finish_totals(job: Spawned, capture: Path, *, timeout: float) -> Totals:
    proc = job.finish(timeout)
    if proc.returncode != 0:
        raise ProfkitError(f"counting the allocations in {capture.name} failed: "
                           f"{proc.last_error_line() or f'exit code {proc.returncode}'}")
    totals: Totals = json.loads(proc.stdout)
    return totals


def _flamegraph(reader: Any, records: Sequence[Any], out: Path, *, leaks: bool) -> None:
    """memray's own HTML flamegraph of records already read, as ``memray flamegraph [--leaks]`` writes it.

    The same reporter and arguments as memray's command, so the page is byte for byte memray's
    (the dashboard recognises memray pages by their CDN script tags). The default page loads its
    scripts from a CDN; memray's --no-web would embed them, at ~4.5 MB per file in every run folder.
    """
    from memray.reporters.flamegraph import FlameGraphReporter

    reporter = FlameGraphReporter.from_snapshot(records, memory_records=tuple(reader.get_memory_snapshots()),
                                                native_traces=reader.metadata.has_native_traces,
                                                merge_threads=True, inverted=False)
    try:
        with open(out, "w") as fh:
            reporter.render(outfile=fh, metadata=reader.metadata, show_memory_leaks=leaks, merge_threads=True,
                            inverted=False)
    except OSError as exc:
        raise StoreError(f"cannot write {out}: {exc.strerror}") from exc


def _metadata(md: Any) -> dict[str, Any]:
    return {
        "command_line": md.command_line,
        "pid": md.pid,
        "start_time": md.start_time.isoformat(),
        "end_time": md.end_time.isoformat(),
        "python_allocator": md.python_allocator,
        "native_traces": md.has_native_traces,
        "trace_python_allocators": md.trace_python_allocators,
        "header_peak_memory": md.peak_memory,
    }


def _leak_rows(leaked: _Sites, leaked_total: int, top: int) -> list[AllocationSite]:
    floor = max(LEAK_MIN_BYTES, LEAK_MIN_SHARE * leaked_total)
    rows: list[AllocationSite] = []
    for row in leaked.ranked():
        if row["bytes"] < floor:
            break
        row["share"] = round(row["bytes"] / leaked_total, 4) if leaked_total else 0.0
        rows.append(row)
    return rows[:top]


def report(capture: Path, flamegraph_out: Path, leaks_out: Path | None, *, top: int, code: CodeFilter,
           tick: Callable[[str], None], timeout: float) -> CaptureReport:
    """Peak, totals, the top allocating functions, what was held at the peak, leaks, and memray's flamegraphs.

    The passes memray's own reporters make, no more, on both cores: a second process counts every
    allocation (:func:`count_totals`, the pass ``memray stats`` makes) while this one has memray
    aggregate what was held at the peak and what was never freed, and renders each flamegraph
    from the same records its table is made of (the passes ``memray flamegraph [--leaks]`` make).
    """
    job = Spawned(totals_argv(capture, top=top, code=code))
    try:
        tick(f"memray: reading {capture.name} (every allocation counted in a second process meanwhile)")
        with _open(capture) as reader:
            md = reader.metadata
            tick("memray: what was held at the peak")
            held = list(reader.get_high_watermark_allocation_records(merge_threads=True))
            at_peak, peak = _gather(held, code)
            _flamegraph(reader, held, flamegraph_out, leaks=False)
            leak_rows: list[AllocationSite] | None = None
            leaked_total: int | None = None
            if leaks_out is not None:
                tick("memray: finding memory that was never freed")
                never_freed = list(reader.get_leaked_allocation_records(merge_threads=True))
                leaked, leaked_total = _gather(never_freed, code)
                leak_rows = _leak_rows(leaked, leaked_total, top)
                _flamegraph(reader, never_freed, leaks_out, leaks=True)
        tick("memray: waiting for the allocation totals")
        totals = _finish_totals(job, capture, timeout=timeout)
    except BaseException:
        job.kill()
        raise
    return CaptureReport(
        peak_memory_bytes=peak or int(md.peak_memory),
        total_allocated_bytes=totals["total_allocated_bytes"],
        total_allocations=totals["total_allocations"],
        top_functions=totals["top_functions"],
        peak_functions=at_peak.ranked()[:top],
        leaks=leak_rows,
        leaked_bytes_total=leaked_total,
        metadata=_metadata(md),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m profkit.backends.memray totals [--top N] [--user-root DIR]... CAPTURE``.

    Prints :func:`count_totals` as JSON: the second process of :func:`report`.
    """
    parser = argparse.ArgumentParser(prog="python -m profkit.backends.memray")
    sub = parser.add_subparsers(dest="command", required=True)
    totals = sub.add_parser("totals", help="count every allocation of a capture, by function")
    totals.add_argument("--top", type=int, default=15)
    totals.add_argument("--user-root", action="append", default=[], type=Path)
    totals.add_argument("capture", type=Path)
    args = parser.parse_args(argv)
    try:
        doc = count_totals(args.capture, top=args.top, code=CodeFilter(args.user_root))
    except ProfkitError as exc:
        print(exc, file=sys.stderr)
        return 1
    json.dump(doc, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
