"""``profkit console``'s terminal UI: an asyncio program's tasks as tokio-console shows a tokio runtime's.

The app polls its :class:`~.source.Source` every ``source.interval`` seconds and redraws from each
snapshot; a source that fails is retried with backoff while the last snapshot stays on screen.
"""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from ...errors import ProfkitError
from ...results import ConsoleSnapshot, TaskRow, TerminatedTask
from . import panes
from .retry import MIN_INTERVAL_S, Backoff, countdown
from .screens import ConfirmScreen, HelpScreen, TaskScreen
from .source import Seekable, Source, SourceError
from .task_table import TaskTable
from .tasks import BY_KEY, Sort

_SEEK_ACTIONS = frozenset({"pause", "step", "seek_start", "seek_end"})
# How long a passing message ("reconnected", a cancel's outcome) stays in the status bar.
_NOTE_S = 8.0


class ConsoleApp(App[None]):
    CSS = """
    #header { height: auto; padding: 0 1; background: $panel; }
    #tabs { height: 1fr; }
    #tabs ContentSwitcher { height: 1fr; }
    #tabs TabPane { height: 1fr; padding: 0; }
    #tasks, #terminated { height: 1fr; }
    #tasks-note { height: auto; padding: 0 1; color: $text-muted; }
    #warnings { height: auto; max-height: 10; border: round $warning; padding: 0 1; }
    #status { height: auto; max-height: 3; padding: 0 1; background: $boost; }
    #task-title { height: auto; padding: 0 1; background: $panel; }
    #task-scroll { height: 1fr; padding: 0 1; }
    #task-status { height: auto; padding: 0 1; background: $boost; }
    ConfirmScreen, HelpScreen { align: center middle; }
    #dialog { width: auto; max-width: 90%; height: auto; padding: 1 2; border: thick $warning; background: $surface; }
    #dialog > Static { width: auto; }
    #answers { margin-top: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        Binding("s", "sort_next", "sort"),
        Binding("r", "sort_reverse", "reverse"),
        Binding("c", "cancel_task", "cancel task"),
        Binding("t", "toggle_tab", "tasks/terminated"),
        # Priority, so the table's own arrows and home/end give way to them in a replay; in a live
        # view check_action turns them off and the keys reach the table again.
        Binding("space", "pause", "pause", priority=True),
        Binding("left", "step(-1)", "back", priority=True),
        Binding("right", "step(1)", "forward", priority=True),
        Binding("home", "seek_start", "first", priority=True, show=False),
        Binding("end", "seek_end", "last", priority=True, show=False),
    ]

    def __init__(self, source: Source, *, title: str) -> None:
        super().__init__()
        self.source = source
        self.title = title
        self.sort = Sort()
        self.snapshot: ConsoleSnapshot | None = None
        self.lost: str | None = None  # why the source last failed, while it is failing
        self._lock = asyncio.Lock()
        self.interval = max(source.interval, MIN_INTERVAL_S)
        self._backoff = Backoff(self.interval)
        self._note_serial = 0
        self._terminated_ids: list[str] = []  # the terminated table's rows, to keep its cursor on a task

    # -- layout ----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Kept as attributes: the app draws into these while a task or a dialog is the screen on top,
        # where a query from the app would look for them (and not find them).
        self.header = Static(id="header")
        self.tabs = TabbedContent(id="tabs", initial="tasks-pane")
        self.tasks = TaskTable(id="tasks")
        self.tasks_note = Static(id="tasks-note")
        self.terminated: DataTable[Text] = DataTable(id="terminated", cursor_type="row", zebra_stripes=True)
        self.warnings = VerticalScroll(id="warnings")
        self.warnings_text = Static(id="warnings-text")
        self.status = Static(id="status")
        yield self.header
        with self.tabs:
            with TabPane("tasks", id="tasks-pane"):
                yield self.tasks
                yield self.tasks_note
            with TabPane("terminated", id="terminated-pane"):
                yield self.terminated
        with self.warnings:
            yield self.warnings_text
        yield self.status
        yield Footer()

    def on_mount(self) -> None:
        self.terminated.add_columns("name", "coroutine", "outcome", "cancelled by", "exception", "lived", "ended")
        self.tasks_note.display = False
        self.warnings.border_title = "warnings"
        self._show_header()
        self.tasks.focus()
        self.run_worker(self.refresh_snapshot(), group="refresh")
        self.set_interval(self.interval, self._tick)

    # -- polling ---------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        if self._lock.locked():
            return  # the last request is still out: a slow agent gets no pile of them
        wait = self._backoff.wait(time.monotonic())
        if wait:
            self._show_lost(wait)
            return
        await self.refresh_snapshot()

    async def refresh_snapshot(self) -> None:
        """Ask the source for a snapshot now and show it (or that the source failed)."""
        async with self._lock:
            try:
                snap = await self.source.snapshot()
            except (SourceError, ProfkitError) as e:
                # A ProfkitError is one line for the user too (an agent that answered with an error):
                # a console watching a process that is going away shows it and goes on trying.
                self.lost = str(e) or type(e).__name__
                self._show_lost(self._backoff.failed(time.monotonic()))
                self._show_header()
                return
            if self._backoff.succeeded():
                self.lost = None
                self.note("reconnected", "bold green")
            self.snapshot = snap
            self._show(snap)

    def _show_lost(self, wait: float) -> None:
        self._status(Text(f"connection lost, {countdown(wait)} ({self.lost})", style="bold red"))

    # -- drawing ---------------------------------------------------------------------------------------

    def _show(self, snap: ConsoleSnapshot) -> None:
        self._show_header()
        self._show_tasks()
        if self.tabs.active == "terminated-pane":  # rebuilt when shown, not each second behind the tasks
            self._show_terminated(snap["terminated"])
        found = snap["warnings"]
        self.warnings_text.update(panes.warnings(found))
        self.warnings.border_title = f"warnings ({len(found)})"
        self.tabs.get_tab("tasks-pane").label = f"tasks ({len(snap['tasks']):,})"
        self.tabs.get_tab("terminated-pane").label = f"terminated ({len(snap['terminated']):,})"

    def _show_header(self) -> None:
        state, style = self._state()
        label = f"{self.title} · {self.source.label}" if self.title else self.source.label
        self.header.update(
            panes.header(self.snapshot, label=label, state=state, state_style=style))

    def _state(self) -> tuple[str, str]:
        if self.lost is not None:
            return "disconnected", "bold white on red"
        seekable = self._seekable()
        if seekable is not None:
            i, n = seekable.position()
            return f"replay {i + 1}/{n}{' paused' if seekable.paused else ''}", "bold black on yellow"
        if not self.source.live:
            return "replay", "bold black on yellow"
        return "live", "bold black on green"

    def _show_tasks(self) -> None:
        if self.snapshot is None:
            return
        tasks = self.snapshot["tasks"]
        styles: dict[str, str] = {}
        for w in self.snapshot["warnings"]:  # the most urgent first: a task takes its worst warning's colour
            if w["task_id"] is not None:
                styles.setdefault(w["task_id"], panes.WARNING_STYLE.get(w["kind"], ""))
        shown = self.tasks.show(tasks, self.sort, styles)
        note = self.tasks_note
        note.display = shown < len(tasks)
        if shown < len(tasks):
            column = BY_KEY[self.sort.column]
            note.update(f"showing the first {shown:,} of {len(tasks):,} tasks, by {self.sort.label(column)} "
                        "(s and r change the sort)")

    def _show_terminated(self, ended: list[TerminatedTask]) -> None:
        table = self.terminated
        selected = self._terminated_ids[table.cursor_row] if 0 <= table.cursor_row < len(self._terminated_ids) \
            else None
        # A bounded list whose "ended ... ago" changes every time: rebuilt whole.
        table.clear()
        table.add_rows(panes.terminated_row(t) for t in ended)
        self._terminated_ids = [t["id"] for t in ended]
        if selected in self._terminated_ids:
            table.move_cursor(row=self._terminated_ids.index(selected))

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "terminated-pane" and self.snapshot is not None:
            self._show_terminated(self.snapshot["terminated"])

    def _status(self, text: Text) -> None:
        self.status.update(text)

    def note(self, message: str, style: str = "") -> None:
        """A message in the status bar for a few seconds (unless the connection is lost meanwhile)."""
        self._note_serial += 1
        serial = self._note_serial
        self._status(Text(message, style=style))

        def clear() -> None:
            if self._note_serial == serial and self.lost is None:
                self._status(Text(""))
        self.set_timer(_NOTE_S, clear)

    # -- tasks -----------------------------------------------------------------------------------------

    def task_row(self, task_id: str) -> TaskRow | None:
        if self.snapshot is None:
            return None
        return next((t for t in self.snapshot["tasks"] if t["id"] == task_id), None)

    def ended_task(self, task_id: str) -> TerminatedTask | None:
        if self.snapshot is None:
            return None
        return next((t for t in self.snapshot["terminated"] if t["id"] == task_id), None)

    def on_task_table_selected(self, event: TaskTable.Selected) -> None:
        self.open_task(event.task_id)

    def on_task_table_header_clicked(self, event: TaskTable.HeaderClicked) -> None:
        self._sort(self.sort.clicked(event.column))

    def open_task(self, task_id: str) -> None:
        row = self.task_row(task_id)
        title = f"{row['name']} ({row['coro']})" if row else task_id
        self.push_screen(TaskScreen(self.source, task_id, title=title, cancel=self.confirm_cancel,
                                    ended=self.ended_task))

    def confirm_cancel(self, task_id: str) -> None:
        """Ask, then cancel the task in the target; the outcome goes to the status bar."""
        if not self.source.live:
            self.note("this is a replay: cancel works on a live process", "yellow")
            return
        row = self.task_row(task_id)
        name, coro = (row["name"], row["coro"]) if row else (task_id, "?")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._cancel(task_id, name), group="cancel")
            else:
                self.note(f"{name} left running")
        self.push_screen(ConfirmScreen(f"Cancel task {name} ({coro})? y/n"), answered)

    async def _cancel(self, task_id: str, name: str) -> None:
        self._status(Text(f"cancelling {name}…"))
        try:
            outcome = await self.source.cancel(task_id)
        except (SourceError, ProfkitError) as e:
            self.note(f"could not cancel {name}: {e}", "bold red")
            return
        self.note(outcome, "bold")
        await self.refresh_snapshot()

    # -- actions ---------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _SEEK_ACTIONS:
            return self._seekable() is not None
        return True

    def _seekable(self) -> Seekable | None:
        return self.source if isinstance(self.source, Seekable) else None

    def _sort(self, sort: Sort) -> None:
        self.sort = sort
        self._show_tasks()

    def action_sort_next(self) -> None:
        self._sort(self.sort.next())

    def action_sort_reverse(self) -> None:
        self._sort(self.sort.reversed())

    def action_cancel_task(self) -> None:
        if self.tabs.active != "tasks-pane":
            self.note("select a running task in the tasks tab to cancel it", "yellow")
            return
        task_id = self.tasks.selected_id()
        if task_id is None:
            self.note("no task selected", "yellow")
            return
        self.confirm_cancel(task_id)

    def action_toggle_tab(self) -> None:
        self.tabs.active = "terminated-pane" if self.tabs.active == "tasks-pane" else "tasks-pane"
        (self.tasks if self.tabs.active == "tasks-pane" else self.terminated).focus()

    def action_help(self) -> None:
        keys = [("↑ ↓", "select a task"), ("enter", "open the task: await chain, histograms, recent steps"),
                ("c", "cancel the selected task (asks first)"), ("s", "sort by the next column"),
                ("r", "reverse the sort"), ("click", "a column's header sorts by it"),
                ("t", "switch between live and terminated tasks"), ("escape", "back from a task"),
                ("?", "this help"), ("q", "quit")]
        if self._seekable() is not None:
            keys[-2:-2] = [("space", "pause / resume the replay"), ("← →", "step one snapshot (pauses)"),
                           ("home end", "first / last snapshot")]
        self.push_screen(HelpScreen(keys))

    def action_pause(self) -> None:
        seekable = self._seekable()
        if seekable is not None:
            seekable.paused = not seekable.paused
            self._show_header()

    def action_step(self, delta: int) -> None:
        seekable = self._seekable()
        if seekable is not None:
            seekable.paused = True
            self._seek(seekable, seekable.position()[0] + delta)

    def action_seek_start(self) -> None:
        seekable = self._seekable()
        if seekable is not None:
            self._seek(seekable, 0)

    def action_seek_end(self) -> None:
        seekable = self._seekable()
        if seekable is not None:
            self._seek(seekable, seekable.position()[1] - 1)

    def _seek(self, seekable: Seekable, index: int) -> None:
        seekable.seek(index)
        self._show_header()
        self.run_worker(self.refresh_snapshot(), group="refresh")
