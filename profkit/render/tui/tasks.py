"""The tasks table's columns: what each shows, how it sorts, and the sort the user picked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ...results import TaskRow
from .format import cut, ms, seconds, short_location

Cell = tuple[str, str]  # (text, style): compared between refreshes, so only changed cells are redrawn
SortValue = float | str | None

_STATE_ORDER = {"running": 0, "scheduled": 1, "idle": 2, "done": 3}
STATE_STYLE = {"running": "bold green", "scheduled": "yellow", "idle": "", "done": "dim"}
# Longer names are cut in the table; the task view shows them whole.
NAME_WIDTH = 40
AWAIT_WIDTH = 60


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    numeric: bool  # right-aligned, and sorted biggest first by default
    value: Callable[[TaskRow], SortValue]
    text: Callable[[TaskRow], str]


COLUMNS: tuple[Column, ...] = (
    Column("name", "name", False, lambda t: t["name"].lower(), lambda t: cut(t["name"], NAME_WIDTH)),
    Column("state", "state", False, lambda t: _STATE_ORDER.get(t["state"], 9), lambda t: t["state"]),
    Column("age", "age", True, lambda t: t["age_s"], lambda t: seconds(t["age_s"])),
    Column("steps", "steps", True, lambda t: t["steps"], lambda t: "-" if t["steps"] is None else f"{t['steps']:,}"),
    Column("busy", "busy", True, lambda t: t["busy_ms"], lambda t: ms(t["busy_ms"])),
    Column("idle", "idle", True, lambda t: t["idle_ms"], lambda t: ms(t["idle_ms"])),
    Column("scheduled", "scheduled", True, lambda t: t["scheduled_ms"], lambda t: ms(t["scheduled_ms"])),
    Column("longest", "longest step", True, lambda t: t["longest_step_ms"], lambda t: ms(t["longest_step_ms"])),
    Column("awaiting", "await location", False, lambda t: t["awaiting"] or "",
           lambda t: cut(short_location(t["awaiting"]), AWAIT_WIDTH)),
)
BY_KEY = {c.key: c for c in COLUMNS}


@dataclass(frozen=True)
class Sort:
    column: str = "busy"
    descending: bool = True

    def next(self) -> Sort:
        """The next column, in its natural direction (numbers biggest first, names A to Z)."""
        keys = [c.key for c in COLUMNS]
        return Sort.by(keys[(keys.index(self.column) + 1) % len(keys)])

    def reversed(self) -> Sort:
        return replace(self, descending=not self.descending)

    def clicked(self, column: str) -> Sort:
        """A click on a column's header: sort by it, or reverse it when it is the sort already."""
        return self.reversed() if column == self.column else Sort.by(column)

    @staticmethod
    def by(column: str) -> Sort:
        return Sort(column, BY_KEY[column].numeric)

    def label(self, column: Column) -> str:
        # Every header keeps room for the arrow, so moving the sort never changes a column's width; it
        # goes on the side away from the column's alignment, so the label lines up with the values.
        arrow = ("▼" if self.descending else "▲") if column.key == self.column else " "
        return f"{arrow} {column.label}" if column.numeric else f"{column.label} {arrow}"

    def order(self, tasks: Sequence[TaskRow]) -> list[TaskRow]:
        """Sorted by the column; ties by name then id, so equal rows do not swap between refreshes;
        unknown values (None) last in either direction."""
        value = BY_KEY[self.column].value
        stable = sorted(tasks, key=lambda t: (t["name"], t["id"]))
        known = [t for t in stable if value(t) is not None]
        unknown = [t for t in stable if value(t) is None]
        # Python's sort keeps equal elements in their order even with reverse=True.
        known.sort(key=lambda t: value(t), reverse=self.descending)  # type: ignore[arg-type, return-value]
        return known + unknown


def cells(task: TaskRow, name_style: str = "") -> tuple[Cell, ...]:
    """The row of one task: each column's text and style."""
    found: list[Cell] = []
    for column in COLUMNS:
        style = name_style if column.key == "name" else STATE_STYLE.get(task["state"], "") \
            if column.key == "state" else ""
        found.append((column.text(task), style))
    return tuple(found)
