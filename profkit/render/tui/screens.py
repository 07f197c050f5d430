"""The console's other screens: one task in detail, the cancel confirmation, the keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from ...errors import ProfkitError
from ...results import TaskDetail, TerminatedTask
from .format import seconds
from .panes import OUTCOME_STYLE, detail
from .retry import MIN_INTERVAL_S, Backoff, countdown
from .source import Source, SourceError


class TaskScreen(Screen[None]):
    """One task: its await chain and stack, step and scheduled time histograms, its latest steps;
    refreshed at the source's interval until the user goes back."""

    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "back"),
        Binding("c", "cancel_task", "cancel task"),
    ]

    def __init__(self, source: Source, task_id: str, *, title: str,
                 cancel: Callable[[str], None], ended: Callable[[str], TerminatedTask | None]) -> None:
        super().__init__()
        self.source = source
        self.task_id = task_id
        self.task_title = title
        self._cancel = cancel
        self._ended = ended
        self._lock = asyncio.Lock()
        self.interval = max(source.interval, MIN_INTERVAL_S)
        self._backoff = Backoff(self.interval)
        self.detail: TaskDetail | None = None

    def compose(self) -> ComposeResult:
        # Kept as attributes: a reply can arrive after the screen has been closed.
        self.body = Static(Text("loading…", style="dim"), id="task-detail")
        self.status = Static("", id="task-status")
        yield Static(Text(f"task {self.task_title}", style="bold"), id="task-title")
        with VerticalScroll(id="task-scroll"):
            yield self.body
        yield self.status
        yield Footer()

    def on_mount(self) -> None:
        self.run_worker(self.reload(), group="task")
        self.set_interval(self.interval, self._tick)

    async def _tick(self) -> None:
        if not self._lock.locked() and not self._backoff.wait(time.monotonic()):
            await self.reload()

    async def reload(self) -> None:
        async with self._lock:
            try:
                found = await self.source.task(self.task_id)
            except (SourceError, ProfkitError) as e:
                wait = self._backoff.failed(time.monotonic())
                self._status(Text(f"connection lost, {countdown(wait)} ({e})", style="bold red"))
                return
            back = self._backoff.succeeded()
            if found is None:
                self._gone()
                return
            self.detail = found
            self.body.update(detail(found))
            self._status(Text("reconnected", style="green") if back else Text(""))

    def _gone(self) -> None:
        ended = self._ended(self.task_id)
        if ended is None:
            self._status(Text("the task is gone (finished, or not in this snapshot); showing what was last seen",
                              style="yellow"))
            return
        note = Text("the task ended: ", style="bold")
        note.append(ended["outcome"], style=OUTCOME_STYLE.get(ended["outcome"], ""))
        note.append(f" {seconds(ended['ended_s_ago'])} ago after {seconds(ended['lived_s'])}")
        if ended["cancelled_by"]:
            note.append(f", cancelled by {ended['cancelled_by']}")
        if ended["exception"]:
            note.append(f": {ended['exception']}", style="red")
        self._status(note)

    def _status(self, text: Text) -> None:
        self.status.update(text)

    def action_cancel_task(self) -> None:
        self._cancel(self.task_id)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; y answers yes, n or escape no."""

    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.question, style="bold"), id="question")
            yield Static(Text.from_markup("[b]y[/] yes   [b]n[/] no"), id="answers")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        width = max(len(key) for key, _ in self.keys)
        lines = "\n".join(f"[b]{escape(key):>{width}}[/]  {escape(what)}" for key, what in self.keys)
        with Vertical(id="dialog"):
            yield Static(Text.from_markup(f"[b]keys[/]\n\n{lines}\n\n[dim]escape closes[/]"))
