"""profkit.render.terminal.tables: short numbers, and columns that keep names whole in 80 columns."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from profkit.render.terminal.tables import compact, fit, key_column, name_column, new_table, number_column, text_column
from tests.helpers import folded_cell


@pytest.mark.parametrize(("value", "expected"), [
    (None, "-"),
    (0, "0"),
    (7, "7"),
    (9999, "9999"),
    (-9999, "-9999"),
    (10_000, "10.0k"),
    (12_345, "12.3k"),
    (151_456, "151k"),
    (-15_000, "-15.0k"),
    (1_234_567, "1.23M"),
    (2_500_000_000, "2.50G"),
    (12.3456, "12.3"),
    (0.123456, "0.12"),
    (1234.7, "1235"),
    (0.0, "0.00"),
    (10_000.0, "10.0k"),
])
def test_compact_keeps_about_three_significant_figures(value: float | None, expected: str) -> None:
    assert compact(value) == expected


def test_compact_takes_the_number_of_digits() -> None:
    assert compact(0.123456, digits=2) == "0.1"
    assert compact(123_456_789, digits=5) == "123.46M"


@pytest.mark.parametrize("value", [0.001, 3.14159, 42, 999.99, 12_345, 987_654_321, 5e12])
def test_compact_is_never_longer_than_six_characters(value: float) -> None:
    assert len(compact(value)) <= 6


def _render(table: object, width: int = 80) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, soft_wrap=True).print(table)
    return buf.getvalue()


def test_a_key_that_fits_stays_whole_on_one_line_while_a_path_folds() -> None:
    # GIVEN a table whose file column cannot fit at 80 columns
    name = "MemoryEngine.search_with_filters_and_rerank"
    path = "/very/long/path/to/site-packages/agentmem/engine/vector_index_module.py"
    table = new_table("t")
    key_column(table, "function")
    name_column(table, "file")
    number_column(table, "own %")
    number_column(table, "total %")
    table.add_row(name, path, "81.0", "97.2")
    text = _render(fit(table))
    # THEN the function is on one line, the path is folded but complete, numbers are whole, nothing is cut
    assert any(name in line for line in text.splitlines()), text
    assert folded_cell(text, path[:8]) == path, text
    assert "81.0" in text and "97.2" in text
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_status_column_keeps_its_words() -> None:
    table = new_table()
    key_column(table, "run")
    text_column(table, "status")
    table.add_row("0123456789ab-dirty/flame-20250101T120000Z-123456-abcd", "complete")
    text = _render(table)
    assert "0123456789ab-dirty/flame-20250101T120000Z-123456-abcd" in text and "complete" in text


def test_a_key_longer_than_the_room_left_is_folded_not_cut() -> None:
    # GIVEN a key that cannot fit on one line next to the numbers
    name = "a_function_name_so_long_that_it_cannot_fit_next_to_the_numbers_" + "x" * 20
    table = new_table()
    key_column(table, "function")
    number_column(table, "own %")
    number_column(table, "total %")
    table.add_row(name, "81.0", "97.2")
    text = _render(table)
    # THEN no character of it is lost: it continues on the next line (what key_column's docstring promises)
    assert folded_cell(text, name[:8]) == name, text
