"""profkit dump — what every thread of a live process is doing right now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..backends.pyspy import dump as pyspy_dump
from ..errors import ProfkitError
from ..results import DumpFindings, DumpResult
from ..session import repo_commit, summary
from ..store import ArtifactStore
from ..targets import Target, require_python_pid
from ..tools import require, versions


def asyncio_tasks(pid: int, *, inject: bool) -> tuple[list[dict[str, Any]] | None, str]:
    """The process's asyncio tasks from the profkit agent inside it (injected for the moment when
    missing and allowed), and a sentence saying where they came from or why there are none."""
    from ..console_lints import Thresholds
    from .console import connect, take_snapshot

    try:
        with connect(agent=None, pid=pid, inject=inject) as conn:
            snap = take_snapshot(conn, Thresholds())
            how = (f"the profkit agent, injected with {conn.injected} and removed again" if conn.injected
                   else f"the profkit agent at {conn.address}")
    except ProfkitError as exc:
        return None, f"no asyncio tasks listed: {exc}"
    tasks = [{"id": t["id"], "name": t["name"], "coro": t["coro"], "state": t["state"], "awaiting": t["awaiting"]}
             for t in snap["tasks"]]
    return tasks, f"{len(tasks)} asyncio task(s) listed by {how}; watch them live with `profkit console --pid {pid}`"


def _format(threads: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for t in threads:
        state = "idle" if t.get("idle") else "active"
        gil = ", holds GIL" if t.get("owns_gil") else ""
        lines.append(f"Thread {t.get('thread_id')} ({t.get('thread_name') or 'unnamed'}, {state}{gil})")
        for f in t.get("frames", []):
            lines.append(f"    {f.get('name')} ({f.get('filename')}:{f.get('line')})")
    return "\n".join(lines) + "\n"


def run_dump(*, pid: int, native: bool, store: Path, tasks: bool = True, inject: bool = True) -> DumpResult:
    require("py-spy")
    info = require_python_pid(pid)
    threads = pyspy_dump(pid, native=native)
    # After the threads: an injection stops the process for a moment, which must not be in the stacks.
    listed, note = asyncio_tasks(pid, inject=inject) if tasks else (None, "asyncio tasks not asked for (--no-tasks)")
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
            "asyncio_tasks": listed,
            "asyncio_tasks_note": note,
        }
        run.finish("complete", findings=dict(findings))
    return {"command": "dump", **summary(run), "findings": findings}
