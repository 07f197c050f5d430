"""What every profiling service shares: its options, its target, its run folder, its result."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .gitinfo import Commit, current_commit
from .results import RunSummary
from .store import ArtifactStore, Run
from .targets import Target, resolve

# What a run interrupted by Ctrl-C says in its manifest (it is marked partial).
STOPPED_BY_USER = "stopped by the user (Ctrl-C) before the end"


@dataclass(frozen=True)
class Options:
    """The options every profiling command takes."""

    scenario: str | None
    command: tuple[str, ...]
    pid: int | None
    duration: float
    store: Path
    as_json: bool = False

    def target(self, *, asyncio_loop: bool = False) -> Target:
        return resolve(self.scenario, list(self.command), self.pid, duration=self.duration,
                       asyncio_loop=asyncio_loop)


def repo_commit() -> Commit:
    return current_commit(Path.cwd())


@contextlib.contextmanager
def open_run(command: str, opts: Options, target: Target, tools: dict[str, str | None]) -> Iterator[Run]:
    store = ArtifactStore(opts.store)
    with store.open_run(command, commit=repo_commit(), target=target.describe(), tools=tools) as run:
        yield run


def summary(run: Run) -> RunSummary:
    """The part of every profiling command's result that says where its run was filed."""
    return run.summary()
