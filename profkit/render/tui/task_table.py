"""The live tasks table, drawn a line at a time: only the rows on screen are formatted and painted.

Textual's DataTable measures every cell it is given and renumbers its rows on each removal; at two
thousand tasks whose times all change each second (and per-request tasks that come and go) it spent
a quarter to half a second of every refresh doing so, during which keys waited. Here a refresh is a
sort of the snapshot's rows (kept as they are), and painting formats the forty or so lines in view.
The selected task is followed by id: it stays on the same screen line while the sort moves it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...results import TaskRow
from .tasks import COLUMNS, NAME_WIDTH, Cell, Column, Sort, cells

# More rows than a person scrolls through; the rest are counted in a note, and the sort decides which show.
MAX_ROWS = 2000
_GAP = 2
# The longest a number column's text gets ("1.50 min", "12,345,678" steps take their own width).
_NUMBER_WIDTH = 8


class TaskTable(ScrollView, can_focus=True):
    """Line 0 is the header (it stays while the rows scroll under it); line 1 on shows ``rows``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "open", show=False),
        Binding("up", "move(-1)", show=False),
        Binding("down", "move(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "move_to(0)", show=False),
        Binding("end", "move_to(-1)", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"task-table--header", "task-table--cursor", "task-table--even"}
    DEFAULT_CSS = """
    TaskTable { background: $surface; padding: 0 1; }
    TaskTable > .task-table--header { text-style: bold; background: $panel; }
    TaskTable > .task-table--cursor { background: $block-cursor-background; color: $block-cursor-foreground;
                                      text-style: bold; }
    TaskTable > .task-table--even { background: $surface-lighten-1; }
    """

    class Selected(Message):
        """Enter (or a click on the selected row) on a task."""

        def __init__(self, task_id: str) -> None:
            super().__init__()
            self.task_id = task_id

    class HeaderClicked(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[TaskRow] = []
        self.sort = Sort()
        self.cursor = 0
        self._styles: Mapping[str, str] = {}
        self._widths: list[int] = [len(self.sort.label(c)) for c in COLUMNS]
        self._cells: dict[int, tuple[Cell, ...]] = {}  # by row index, for the rows painted since the last show()

    # -- data ------------------------------------------------------------------------------------------

    def show(self, tasks: Sequence[TaskRow], sort: Sort, name_styles: Mapping[str, str]) -> int:
        """Show the first MAX_ROWS of ``tasks`` in ``sort`` order; returns how many it shows."""
        selected = self.selected_id()
        line = self.cursor - int(self.scroll_y)  # where the selected row is on screen, to keep it there
        self.rows = sort.order(tasks)[:MAX_ROWS]
        self.sort = sort
        self._styles = name_styles
        self._cells.clear()
        if selected is not None:
            self.cursor = next((i for i, t in enumerate(self.rows) if t["id"] == selected), self.cursor)
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        self._widths = self._measure()
        self.virtual_size = Size(sum(self._widths) + _GAP * (len(self._widths) - 1), len(self.rows) + 1)
        self.scroll_to(y=self.cursor - line, animate=False, immediate=True)
        self._keep_cursor_visible()
        self.refresh()
        return len(self.rows)

    def selected_id(self) -> str | None:
        return self.rows[self.cursor]["id"] if self.rows else None

    def _measure(self) -> list[int]:
        widths = []
        for column in COLUMNS:
            label = len(self.sort.label(column))
            if column.key == "name":
                longest = max((cell_len(t["name"]) for t in self.rows), default=0)
                widths.append(max(label, min(longest, NAME_WIDTH)))
            elif column.key == "steps":
                most = max((t["steps"] or 0 for t in self.rows), default=0)
                widths.append(max(label, len(f"{most:,}")))
            elif column.key == "awaiting":
                widths.append(max(label, 20))  # the last column: longer ones run on to the right
            elif column.key == "state":
                widths.append(max(label, len("scheduled")))
            else:
                widths.append(max(label, _NUMBER_WIDTH))
        return widths

    # -- painting --------------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            style = self.get_component_rich_style("task-table--header")
            texts = [(self.sort.label(c), "") for c in COLUMNS]
            return self._strip(texts, style, scroll_x, width)
        index = scroll_y + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        row = self._cells.get(index)
        if row is None:
            task = self.rows[index]
            row = self._cells[index] = cells(task, self._styles.get(task["id"], ""))
        if index == self.cursor and self.has_focus:
            style = self.get_component_rich_style("task-table--cursor")
        elif index == self.cursor:
            style = self.get_component_rich_style("task-table--cursor") + Style(dim=True)
        elif index % 2:
            style = self.get_component_rich_style("task-table--even")
        else:
            style = self.rich_style
        return self._strip(row, style, scroll_x, width)

    def _strip(self, row: Sequence[Cell], base: Style, scroll_x: int, width: int) -> Strip:
        segments: list[Segment] = []
        gap = Segment(" " * _GAP, base)
        for i, (column, (text, style), w) in enumerate(zip(COLUMNS, row, self._widths, strict=True)):
            if i:
                segments.append(gap)
            last = i == len(COLUMNS) - 1
            segments.append(Segment(_fit(text, w, column, last=last), base + Style.parse(style) if style else base))
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, base)

    # -- moving ----------------------------------------------------------------------------------------

    def _keep_cursor_visible(self) -> None:
        shown = max(self.scrollable_content_region.height - 1, 1)  # less the header
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + shown:
            self.scroll_to(y=self.cursor - shown + 1, animate=False, immediate=True)

    def _move_to(self, index: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(index, len(self.rows) - 1))
        self._keep_cursor_visible()
        self.refresh()

    def action_move(self, delta: int) -> None:
        self._move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor + direction * max(self.scrollable_content_region.height - 2, 1))

    def action_move_to(self, index: int) -> None:
        self._move_to(index if index >= 0 else len(self.rows) - 1)

    def action_select(self) -> None:
        task_id = self.selected_id()
        if task_id is not None:
            self.post_message(self.Selected(task_id))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self._column_at(offset.x + int(self.scroll_x))
            if column is not None:
                self.post_message(self.HeaderClicked(column.key))
            return
        index = int(self.scroll_y) + offset.y - 1
        if index >= len(self.rows):
            return
        if index == self.cursor:
            self.action_select()
        else:
            self._move_to(index)

    def _column_at(self, x: int) -> Column | None:
        left = 0
        for column, width in zip(COLUMNS, self._widths, strict=True):
            if left <= x < left + width + _GAP:
                return column
            left += width + _GAP
        return None

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()


def _fit(text: str, width: int, column: Column, *, last: bool) -> str:
    size = cell_len(text)
    if last:
        return text
    if size > width:
        return set_cell_size(text, width - 1) + "…"
    return " " * (width - size) + text if column.numeric else text + " " * (width - size)
