"""profkit.render.collapsed: py-spy's collapsed stacks, read and ranked."""

from __future__ import annotations

from pathlib import Path

import pytest

from profkit.render.collapsed import Frame, Stacks, parse_frame, read_collapsed


@pytest.mark.parametrize(("text", "expected"), [
    ("handle (agentmem/api.py:245)", Frame("handle", "agentmem/api.py", 245)),
    ("<module> (app.py:1)", Frame("<module>", "app.py", 1)),
    ("Runner.run (/usr/lib/python3.11/asyncio/runners.py:118)",
     Frame("Runner.run", "/usr/lib/python3.11/asyncio/runners.py", 118)),
    ("native_frame (libc.so.6)", Frame("native_frame", "libc.so.6", None)),
    ("process 4242:\"python app.py\"", Frame("process 4242:\"python app.py\"", "", None)),
    ("idle", Frame("idle", "", None)),
    ("<lambda> (a b/c.py:7)", Frame("<lambda>", "a b/c.py", 7)),
])
def test_parse_frame(text: str, expected: Frame) -> None:
    assert parse_frame(text) == expected


def test_frame_key_leaves_the_line_out_so_a_functions_lines_add_up() -> None:
    assert parse_frame("f (a.py:1)").key == parse_frame("f (a.py:99)").key == "f (a.py)"
    assert parse_frame("f (b.py:1)").key != parse_frame("f (a.py:1)").key
    assert parse_frame("idle").key == "idle"


def test_read_collapsed_sums_repeated_stacks_and_skips_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "profile.collapsed"
    path.write_text("main (a.py:1);hot (a.py:10) 5\n"
                    "\n"
                    "# a comment line\n"
                    "main (a.py:1);hot (a.py:10) 2   \n"
                    "main (a.py:1);warm (b.py:5) 3\n"
                    "not a stack line\n"
                    "main (a.py:1) x12\n"
                    "main (a.py:1);odd name (c.py:2) 4\n")
    stacks = read_collapsed(path)
    assert stacks.counts == {
        ("main (a.py:1)", "hot (a.py:10)"): 7,
        ("main (a.py:1)", "warm (b.py:5)"): 3,
        ("main (a.py:1)", "odd name (c.py:2)"): 4,
    }
    assert stacks.total == 14


def test_read_collapsed_of_an_empty_file_has_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "empty.collapsed"
    path.write_text("")
    assert read_collapsed(path).total == 0
    assert read_collapsed(path).top_functions(5) == []


def test_read_collapsed_survives_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.collapsed"
    path.write_bytes(b"main (a.py:1);caf\xe9 (b.py:2) 3\n")
    (stack,) = read_collapsed(path).counts
    assert stack[0] == "main (a.py:1)" and stack[1].startswith("caf")


# main -> hot (two lines of it) 8 samples, main -> warm 2 samples
STACKS = Stacks({
    ("main (a.py:1)", "hot (a.py:10)"): 6,
    ("main (a.py:1)", "hot (a.py:11)"): 2,
    ("main (a.py:1)", "warm (b.py:5)"): 2,
})


def test_top_functions_rank_by_own_samples_then_total() -> None:
    rows = STACKS.top_functions(10)
    assert [(r["function"], r["own_samples"], r["total_samples"]) for r in rows] == [
        ("hot", 8, 8), ("warm", 2, 2), ("main", 0, 10)]
    hot = rows[0]
    assert hot["file"] == "a.py" and hot["own_pct"] == 80.0 and hot["total_pct"] == 80.0
    assert rows[2]["own_pct"] == 0.0 and rows[2]["total_pct"] == 100.0


def test_top_functions_takes_only_n() -> None:
    assert [r["function"] for r in STACKS.top_functions(1)] == ["hot"]
    assert STACKS.top_functions(0) == []


def test_by_total_puts_the_caller_of_everything_first() -> None:
    assert [(r["function"], r["total_samples"]) for r in STACKS.by_total(3)] == [("main", 10), ("hot", 8), ("warm", 2)]
    assert [r["function"] for r in STACKS.by_total(1)] == ["main"]


def test_a_recursive_function_counts_once_per_sample() -> None:
    stacks = Stacks({("f (r.py:1)", "f (r.py:2)", "f (r.py:2)"): 3, ("g (r.py:9)",): 1})
    f = next(r for r in stacks.top_functions(5) if r["function"] == "f")
    assert (f["own_samples"], f["total_samples"], f["total_pct"]) == (3, 3, 75.0)


def test_ties_are_broken_by_name_so_the_order_is_stable() -> None:
    stacks = Stacks({("b (x.py:1)",): 2, ("a (x.py:1)",): 2, ("c (x.py:1)",): 2})
    assert [r["function"] for r in stacks.top_functions(3)] == ["a", "b", "c"]
    assert [r["function"] for r in stacks.by_total(3)] == ["a", "b", "c"]


def test_an_empty_stack_counts_in_the_total_but_names_no_function() -> None:
    stacks = Stacks({(): 5, ("f (a.py:1)",): 5})
    assert stacks.total == 10
    assert [(r["function"], r["own_pct"]) for r in stacks.top_functions(5)] == [("f", 50.0)]


def test_no_samples_at_all() -> None:
    assert Stacks({}).total == 0
    assert Stacks({}).top_functions(3) == [] and Stacks({}).by_total(3) == []
