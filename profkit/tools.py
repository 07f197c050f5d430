"""The external profilers profkit drives: where each is, whether it is there, which version."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolMissing


@dataclass(frozen=True)
class Tool:
    name: str
    executable: str | None = None  # a program on PATH (or next to this interpreter)
    module: str | None = None  # a Python module run with this interpreter
    distribution: str | None = None  # the PyPI distribution, for its version
    hint: str = ""

    def path(self) -> str | None:
        if self.executable is not None:
            beside = Path(sys.executable).with_name(self.executable)
            if beside.is_file():
                return str(beside)
            return shutil.which(self.executable)
        if self.module is not None and importlib.util.find_spec(self.module.split(".")[0]) is not None:
            return sys.executable
        return None

    def available(self) -> bool:
        return self.path() is not None

    def argv(self) -> list[str]:
        path = self.path()
        if path is None:
            raise ToolMissing(f"{self.name} is not installed: {self.hint}")
        if self.executable is not None:
            return [path]
        assert self.module is not None
        return [sys.executable, "-m", self.module]

    def version(self) -> str | None:
        if self.distribution is not None:
            try:
                return importlib.metadata.version(self.distribution)
            except importlib.metadata.PackageNotFoundError:
                return None
        path = self.path()
        if path is None:
            return None
        from .process import run

        try:
            out = run([path, "--version"], timeout=20)
        except Exception:  # noqa: BLE001 - a version is nice to have, never required
            return None
        first = (out.stdout or out.stderr).strip().splitlines()
        return first[0] if first else None


PIP = "pip install -e . (it is a profkit dependency)"
TOOLS: dict[str, Tool] = {
    "py-spy": Tool("py-spy", executable="py-spy", distribution="py-spy", hint=PIP),
    "memray": Tool("memray", module="memray", distribution="memray", hint=PIP),
    "yappi": Tool("yappi", module="yappi", distribution="yappi", hint=PIP),
    "scalene": Tool("scalene", module="scalene", distribution="scalene", hint=PIP),
    "gdb": Tool("gdb", executable="gdb", hint="apt-get install gdb (memray attach needs gdb or lldb)"),
    "lldb": Tool("lldb", executable="lldb", hint="apt-get install lldb"),
}


def require(name: str) -> Tool:
    tool = TOOLS[name]
    if not tool.available():
        raise ToolMissing(f"{tool.name} is not installed: {tool.hint}")
    return tool


def versions(*names: str) -> dict[str, str | None]:
    return {n: TOOLS[n].version() for n in names}
