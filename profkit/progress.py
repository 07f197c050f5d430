"""How long work reports its progress without knowing where, or whether, it is shown.

Services take a :class:`Reporter`; the CLI passes one that draws on the terminal
(:mod:`profkit.render.terminal.progress`), tests and ``--json`` runs the silent default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Tick(Protocol):
    def __call__(self, text: str | None = None, /) -> None:
        """Say the work moved on; ``text`` replaces the stage's description when given."""


class Reporter(Protocol):
    def stage(self, description: str) -> contextlib.AbstractContextManager[Tick]:
        """A stage of the work; the block ticks it as it goes."""

    def note(self, text: str) -> None:
        """Something the user should know while the work goes on (where a live server listens)."""


def _ignore(text: str | None = None, /) -> None:
    return None


class Silent:
    """Reports nothing: for ``--json``, for tests, for services called by other services."""

    @contextlib.contextmanager
    def stage(self, description: str) -> Iterator[Tick]:
        yield _ignore

    def note(self, text: str) -> None:
        return None


SILENT: Reporter = Silent()
