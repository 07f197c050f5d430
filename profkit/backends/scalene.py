"""scalene: line-level CPU (Python / native / system) and memory profiles of a Python program it starts.

scalene 2.x has subcommands: ``scalene run -o OUT.json PROGRAM --- ARGS`` profiles, ``scalene view``
renders. profkit reads the JSON itself and renders its own HTML (see profkit.render.lines_html).
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import TargetError
from ..process import Completed, child_env, last_line, run
from ..results import LineView
from ..targets import PythonProgram
from ..tools import require

# scalene's own words when it collected nothing worth reporting (scalene_profiler.py, 2.4):
# "Scalene: The specified code did not run for long enough to profile."
TOO_SHORT = "did not run for long enough to profile"
# Lines scalene prints about itself, never the program's last words.
_SCALENE_CHATTER = ("Scalene:", "By default, Scalene", "To track the time", "To view in", "The patterns used",
                    "Scalene can only profile")


@dataclass(frozen=True)
class LineStats:
    file: str
    line: int
    source: str
    cpu_python_pct: float
    cpu_native_pct: float
    cpu_system_pct: float
    peak_mb: float
    avg_mb: float
    alloc_mb: float
    alloc_pct: float  # share of all the memory the program allocated
    copy_mb_s: float

    @property
    def cpu_pct(self) -> float:
        return self.cpu_python_pct + self.cpu_native_pct + self.cpu_system_pct

    @property
    def active(self) -> bool:
        return self.cpu_pct > 0 or self.alloc_mb > 0 or self.peak_mb > 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_pct": round(self.cpu_pct, 3)}


@dataclass(frozen=True)
class FileStats:
    file: str
    cpu_pct: float
    lines: list[LineStats]


def program_path(program: PythonProgram, cwd: Path) -> Path | None:
    """The folder scalene should profile: a module's whole top-level package, not just its own folder.

    scalene profiles only code under the program's folder; for ``-m pkg.sub.mod`` that is
    ``pkg/sub``, which would leave out the rest of the package the module exists to drive.
    """
    if program.module is None:
        return None
    top = program.module.split(".")[0]
    # The child runs with cwd first on sys.path (python -m does that), so look there first too.
    spec = importlib.machinery.PathFinder.find_spec(top, [str(cwd), *sys.path])
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def record_argv(out_json: Path, program: PythonProgram, *, cwd: Path) -> list[str]:
    """``scalene run`` of the program, profiling into ``out_json``."""
    cmd = [*require("scalene").argv(), "run", "--outfile", str(out_json)]
    folder = program_path(program, cwd)
    if folder is not None:
        cmd += ["--program-path", str(folder)]
    cmd += ["-m", program.module] if program.module is not None else [str(program.script)]
    if program.args:
        cmd += ["---", *program.args]
    return cmd


def record_env(tmpdir: Path) -> dict[str, str]:
    """scalene 2.4 leaves a ``scalene*`` folder of python aliases behind in the temp dir on every run;
    ``tmpdir`` (a folder the caller removes afterwards) becomes the child's TMPDIR so none pile up."""
    return child_env(TMPDIR=str(tmpdir))


def record(out_json: Path, program: PythonProgram, *, cwd: Path, tmpdir: Path, timeout: float) -> Completed:
    """Run the program under ``scalene run``, profile into ``out_json``; see :func:`record_env` for ``tmpdir``."""
    return run(record_argv(out_json, program, cwd=cwd), timeout=timeout, cwd=cwd, env=record_env(tmpdir),
               interruptible=True)


def too_short(proc: Completed) -> bool:
    return TOO_SHORT in proc.stderr or TOO_SHORT in proc.stdout


def program_failure(proc: Completed) -> str:
    """The program's last words on stderr (its exception, usually), without scalene's own lines."""
    return last_line("\n".join(ln for ln in proc.stderr.splitlines() if not ln.strip().startswith(_SCALENE_CHATTER)))


def load(path: Path) -> dict[str, Any] | None:
    """scalene's JSON, or None when it wrote nothing usable (it writes ``{}`` for a too-short run)."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TargetError(f"scalene wrote an unreadable profile {path}: {exc}") from exc
    if not isinstance(doc, dict) or not doc.get("files"):
        return None
    return doc


def _source(text: str) -> str:
    # scalene escapes &, < and > in source lines for its web page (scalene_json.py); undo it in the
    # reverse order, so the text is the line as written.
    return text.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&").rstrip("\n")


def _f(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def files(doc: dict[str, Any]) -> list[FileStats]:
    """Every profiled file with every line's numbers, hottest file first."""
    result: list[FileStats] = []
    for name, data in doc["files"].items():
        lines = [LineStats(
            file=name, line=int(row["lineno"]), source=_source(str(row.get("line", ""))),
            cpu_python_pct=_f(row, "n_cpu_percent_python"), cpu_native_pct=_f(row, "n_cpu_percent_c"),
            cpu_system_pct=_f(row, "n_sys_percent"), peak_mb=_f(row, "n_peak_mb"), avg_mb=_f(row, "n_avg_mb"),
            alloc_mb=_f(row, "n_malloc_mb"), alloc_pct=100.0 * _f(row, "n_usage_fraction"),
            copy_mb_s=_f(row, "n_copy_mb_s"),
        ) for row in data.get("lines", [])]
        result.append(FileStats(name, float(data.get("percent_cpu_time") or 0.0), lines))
    result.sort(key=lambda f: -f.cpu_pct)
    return result


def common_folder(paths: list[str]) -> str | None:
    """The folder the profiled files share, to name them by their path below it."""
    absolute = [p for p in paths if os.path.isabs(p)]
    if not absolute:
        return None
    common = os.path.commonpath(absolute)
    return os.path.dirname(common) if len(set(absolute)) == 1 else common


def short(path: str, root: str | None) -> str:
    if root and os.path.isabs(path) and path.startswith(root + os.sep):
        # Keep the folder the files share in the name: "agentmem/engine.py" says more than "engine.py".
        return os.path.relpath(path, os.path.dirname(root))
    return path


def line_view(line: LineStats, root: str | None) -> LineView:
    d = line.to_dict()
    return {"file": d["file"], "line": d["line"], "source": d["source"], "cpu_python_pct": d["cpu_python_pct"],
            "cpu_native_pct": d["cpu_native_pct"], "cpu_system_pct": d["cpu_system_pct"], "peak_mb": d["peak_mb"],
            "avg_mb": d["avg_mb"], "alloc_mb": d["alloc_mb"], "alloc_pct": d["alloc_pct"],
            "copy_mb_s": d["copy_mb_s"], "cpu_pct": d["cpu_pct"], "short": short(line.file, root),
            "key": f"{line.file}:{line.line}"}
