"""Tables for an 80-column terminal: what a user reads or copies is never cut, numbers stay short.

Rich shrinks columns when a table is wider than the terminal, and by default it cuts text with an
ellipsis (``corouti…``) or wraps numbers onto two lines. Here names and ids *fold* (every character
stays, a long one continues on the next line) and numeric columns never wrap, so the space a
table lacks is taken from nothing a user needs whole.
"""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def new_table(title: str | None = None) -> Table:
    # A header rule, no vertical borders, and one space of padding: columns two characters apart
    # instead of the default box's seven, which is most of what an 80-column table lacks.
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                 title_justify="left", title_style="bold")


def key_column(table: Table, header: str) -> None:
    """The column a row is about (a function, a run id, an operation): whole, on one line where the
    table fits, folded onto the next (every character kept) where it cannot.

    Rich takes the room a table lacks from the columns that may wrap; numbers may not, so a table
    too wide for the terminal folds its names and never cuts a number. Each renderer keeps its
    tables narrow enough that the usual names fit on one line at 80 columns.
    """
    table.add_column(header, overflow="fold")
    _keys(table).add(len(table.columns) - 1)


# Key columns stay whole down to this width; a longer name folds rather than squeezing every number.
MAX_KEY = 48


def _keys(table: Table) -> set[int]:
    keys: set[int] | None = getattr(table, "_profkit_keys", None)
    if keys is None:
        keys = set()
        table._profkit_keys = keys  # type: ignore[attr-defined]
    return keys


def fit(table: Table) -> Table:
    """Keep each key column's names on one line when its longest line fits in MAX_KEY: such a column is
    taken out of what rich may wrap, so the room a too-wide table lacks comes from the other text
    columns (a file, a detail), which fold. A longer name folds too, rather than squeezing numbers."""
    for i in _keys(table):
        column = table.columns[i]
        widths = [line.cell_len for cell in column.cells
                  for line in (Text.from_markup(cell) if isinstance(cell, str) else Text(str(cell))).split()]
        longest = max([Text.from_markup(str(column.header)).cell_len, *widths])
        if longest <= MAX_KEY:
            column.no_wrap = True
            column.min_width = longest
    return table


def name_column(table: Table, header: str) -> None:
    """A secondary name or path (a file, a detail): whole, folded onto more lines when room is short."""
    table.add_column(header, overflow="fold")


def text_column(table: Table, header: str) -> None:
    """Short words (a status, a verdict): kept on one line."""
    table.add_column(header, no_wrap=True)


def number_column(table: Table, header: str) -> None:
    table.add_column(header, justify="right", no_wrap=True)


def compact(value: float | None, *, digits: int = 3) -> str:
    """A short number: about ``digits`` significant figures, k / M / G from 10,000 on (151456 → 151k)."""
    if value is None:
        return "-"
    if isinstance(value, int) and abs(value) < 10_000:
        return str(value)
    v = float(value)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= max(scale, 10_000):
            return f"{v / scale:.{_decimals(v / scale, digits)}f}{suffix}"
    return f"{v:.{_decimals(v, digits)}f}"


def _decimals(v: float, digits: int) -> int:
    whole = len(str(int(abs(v))))
    return max(0, digits - whole)


def located(name: str, where: str) -> str:
    """A name with where it lives on a dim second line: both whole, neither competing for width."""
    return f"{escape(name)}\n[dim]{escape(where)}[/]" if where else escape(name)
