"""Where a run's artifacts went, said on stderr after every profiling command."""

from __future__ import annotations

from rich.markup import escape

from ...console import err
from ...results import RunSummary


def print_artifacts(doc: RunSummary) -> None:
    status = doc["status"]
    colour = "green" if status == "complete" else "yellow"
    err.print(f"[{colour}]{status}[/]: artifacts in [bold]{escape(doc['folder'])}[/]")
    for a in doc["artifacts"]:
        err.print(f"  {a['kind']:<18} {escape(a['path'])}", highlight=False)
