"""profkit dump in a terminal: every thread's stack as a tree."""

from __future__ import annotations

from rich.tree import Tree

from ...console import err, out
from ...results import DumpResult
from .artifacts import print_artifacts


def show(doc: DumpResult) -> None:
    f = doc["findings"]
    root = Tree(f"pid {f['pid']} (Python {f['python']})")
    for t in f["threads"]:
        node = root.add(f"thread {t['id']} {t['name'] or ''} {'idle' if t['idle'] else 'active'}"
                        f"{' GIL' if t['owns_gil'] else ''}")
        for frame in t["frames"]:
            node.add(frame)
    out.print(root)
    err.print(f"asyncio tasks: {f['asyncio_tasks_note']}")
    print_artifacts(doc)
