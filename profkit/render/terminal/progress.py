"""The terminal's side of :mod:`profkit.progress`: a rich spinner on stderr, silent off a TTY."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ...progress import Tick


class TerminalReporter:
    def __init__(self, console: Console, *, show: bool = True) -> None:
        self.console = console
        self.show = show and console.is_terminal

    @contextlib.contextmanager
    def stage(self, description: str) -> Iterator[Tick]:
        with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                      console=self.console, transient=True, disable=not self.show) as p:
            task = p.add_task(description, total=None)
            start = time.monotonic()

            def tick(text: str | None = None, /) -> None:
                p.update(task, completed=time.monotonic() - start, description=text or description)

            yield tick

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)
