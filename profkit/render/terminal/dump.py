"""profkit dump in a terminal: every thread's stack as a tree."""

from __future__ import annotations

from rich.markup import escape
from rich.tree import Tree

from ...console import err, out
from ...results import DumpResult
from .artifacts import print_artifacts
from .tables import fit, key_column, name_column, new_table, text_column


def show(doc: DumpResult) -> None:
    f = doc["findings"]
    root = Tree(f"pid {f['pid']} (Python {f['python']})")
    for t in f["threads"]:
        node = root.add(f"thread {t['id']} {t['name'] or ''} {'idle' if t['idle'] else 'active'}"
                        f"{' GIL' if t['owns_gil'] else ''}")
        for frame in t["frames"]:
            node.add(frame)
    out.print(root)
    if f["asyncio_tasks"]:
        tasks = new_table("asyncio tasks")
        key_column(tasks, "task")
        text_column(tasks, "state")
        name_column(tasks, "awaiting")
        for task in f["asyncio_tasks"]:
            name = task["name"] if task["name"] == task["coro"] else f"{task['name']} {task['coro']}"
            tasks.add_row(escape(str(name)), str(task["state"]), escape(str(task["awaiting"] or "-")))
        out.print(fit(tasks))
    err.print(f"asyncio tasks: {f['asyncio_tasks_note']}", highlight=False)
    print_artifacts(doc)
