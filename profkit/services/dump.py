"""profkit dump — what every thread of a live process is doing right now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..backends.pyspy import dump as pyspy_dump
from ..results import DumpFindings, DumpResult
from ..session import repo_commit, summary
from ..store import ArtifactStore
from ..targets import Target, require_python_pid
from ..tools import require, versions

# Python 3.14 adds `python -m asyncio ps PID`; before that a process's tasks are only visible
# from inside it (aiomonitor), so say so instead of guessing.
ASYNCIO_TASKS_NOTE = ("asyncio task listing of another process needs Python 3.14's `python -m asyncio ps`; "
                      "for this target use `profkit console` against its aiomonitor when it runs one")


def _format(threads: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for t in threads:
        state = "idle" if t.get("idle") else "active"
        gil = ", holds GIL" if t.get("owns_gil") else ""
        lines.append(f"Thread {t.get('thread_id')} ({t.get('thread_name') or 'unnamed'}, {state}{gil})")
        for f in t.get("frames", []):
            lines.append(f"    {f.get('name')} ({f.get('filename')}:{f.get('line')})")
    return "\n".join(lines) + "\n"


def run_dump(*, pid: int, native: bool, store: Path) -> DumpResult:
    require("py-spy")
    info = require_python_pid(pid)
    threads = pyspy_dump(pid, native=native)
    target = Target("pid", pid=pid)
    st = ArtifactStore(store)
    with st.open_run("dump", commit=repo_commit(), target=target.describe(), tools=versions("py-spy")) as run:
        run.write_json("stacks.json", threads, "stacks-json")
        run.write("stacks.txt", _format(threads).encode(), "stacks-text")
        findings: DumpFindings = {
            "pid": pid,
            "python": ".".join(map(str, info.version)) if info.version else None,
            "threads": [{"id": t.get("thread_id"), "name": t.get("thread_name"), "idle": t.get("idle"),
                         "owns_gil": t.get("owns_gil"),
                         "frames": [f"{f.get('name')} ({f.get('filename')}:{f.get('line')})"
                                    for f in t.get("frames", [])]} for t in threads],
            "asyncio_tasks": None,
            "asyncio_tasks_note": ASYNCIO_TASKS_NOTE,
        }
        run.finish("complete", findings=dict(findings))
    return {"command": "dump", **summary(run), "findings": findings}
