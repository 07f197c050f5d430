"""What every profiling command shares: its target, its run folder, its progress display."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .console import err
from .gitinfo import Commit, current_commit
from .store import ArtifactStore, Run
from .targets import Target, resolve


@dataclass(frozen=True)
class Options:
    """The options every profiling command takes."""

    scenario: str | None
    command: tuple[str, ...]
    pid: int | None
    duration: float
    store: Path
    as_json: bool

    def target(self, *, asyncio_loop: bool = False) -> Target:
        return resolve(self.scenario, list(self.command), self.pid, duration=self.duration,
                       asyncio_loop=asyncio_loop)


def repo_commit() -> Commit:
    return current_commit(Path.cwd())


@contextlib.contextmanager
def progress(description: str, total: float | None = None, *, show: bool = True) -> Iterator[Any]:
    """A spinner (or a bar when the duration is known) on stderr; silent when stderr is not a TTY."""
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True, disable=not (show and err.is_terminal)) as p:
        task = p.add_task(description, total=total)
        start = time.monotonic()

        def tick(text: str | None = None) -> None:
            p.update(task, completed=time.monotonic() - start, description=text or description)

        yield tick


@contextlib.contextmanager
def open_run(command: str, opts: Options, target: Target, tools: dict[str, str | None]) -> Iterator[Run]:
    store = ArtifactStore(opts.store)
    with store.open_run(command, commit=repo_commit(), target=target.describe(), tools=tools) as run:
        yield run


def result(command: str, run: Run, findings: dict[str, Any]) -> dict[str, Any]:
    """The JSON document every profiling command prints with --json."""
    return {"command": command, **run.summary(), "findings": findings}


def emit_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, default=str) + "\n")


def print_artifacts(doc: dict[str, Any]) -> None:
    """Where a run's artifacts went (from its --json document), on stderr."""
    status = doc.get("status")
    colour = "green" if status == "complete" else "yellow"
    err.print(f"[{colour}]{status}[/]: artifacts in [bold]{doc['folder']}[/]")
    for a in doc.get("artifacts", []):
        err.print(f"  {a['kind']:<18} {a['path']}", highlight=False)
