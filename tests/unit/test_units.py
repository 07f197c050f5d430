"""profkit.units: sizes as people write them ('512MB') and read them ('1.5 KiB')."""

from __future__ import annotations

import pytest

from profkit.errors import UsageError
from profkit.units import human, parse_size


@pytest.mark.parametrize(("text", "expected"), [
    ("2000000", 2_000_000),
    ("1", 1),
    ("512MB", 512_000_000),
    ("512mb", 512_000_000),
    ("800k", 800_000),
    ("1kb", 1_000),
    ("1.5GiB", round(1.5 * 1024**3)),
    ("2Ki", 2048),
    ("64 MiB", 64 * 1024**2),
    ("  64mib  ", 64 * 1024**2),
    (".5k", 500),
    ("1.", 1),
    ("3T", 3 * 1000**4),
    ("1PiB", 1024**5),
    ("0.5KB", 500),
])
def test_parse_size_reads_decimal_and_binary_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "", "   ", "-1MB", "1.5.5", "12XB", "MB", "1e6", "1 0k", "1KiBB", "0x10"])
def test_parse_size_refuses_what_is_not_a_size_in_one_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--peak-budget: cannot read .* as a size; use e\.g\. 512MB"):
        parse_size(text)


@pytest.mark.parametrize("text", ["0", "0MB", "0.4"])
def test_parse_size_refuses_less_than_one_byte(text: str) -> None:
    with pytest.raises(UsageError, match="at least 1 byte"):
        parse_size(text)


def test_parse_size_names_the_option_it_reads() -> None:
    with pytest.raises(UsageError, match=r"^--limit: cannot read 'x'"):
        parse_size("x", option="--limit")


def test_usage_error_from_parse_size_exits_2() -> None:
    with pytest.raises(UsageError) as caught:
        parse_size("lots")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("n", "expected"), [
    (0, "0 B"),
    (1, "1 B"),
    (1023, "1023 B"),
    (1024, "1.0 KiB"),
    (1536, "1.5 KiB"),
    (1024**2, "1.0 MiB"),
    (int(2.25 * 1024**3), "2.2 GiB"),
    (5 * 1024**4, "5.0 TiB"),
    (1024**5, "1024.0 TiB"),
    (-2048, "-2.0 KiB"),
    (512.4, "512 B"),
])
def test_human_uses_binary_units_with_one_decimal(n: float, expected: str) -> None:
    assert human(n) == expected


@pytest.mark.parametrize("text", ["512MiB", "1.5GiB", "800KiB", "3TiB"])
def test_human_reads_back_a_binary_size(text: str) -> None:
    assert human(parse_size(text)).replace(".0 ", " ").replace(" ", "") == text
