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


def new_table(title: str | None = None) -> Table:
    # A header rule and no vertical borders: four characters a column cheaper than the default box.
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_justify="left",
                 title_style="bold")


def key_column(table: Table, header: str) -> None:
    """The column a row is about (a function, a run id, an operation): kept on one line, whole.

    Rich takes the room a table lacks from wrapping columns first, so this one gives way only when
    the others cannot, and then it folds rather than cutting.
    """
    table.add_column(header, no_wrap=True, overflow="fold")


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
