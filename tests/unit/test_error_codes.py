"""profkit.errors is the one table of exit codes: each error its own documented code, assigned nowhere else."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import profkit
from profkit import errors
from profkit.errors import EXIT_INTERRUPTED, ProfkitError

PACKAGE = Path(profkit.__file__).parent
# `exit_code = 3`, `Foo.exit_code=3`, `exit_code: ClassVar[int] = 1`; not `"exit_code": 3`, `exit_code: int`
# (a TypedDict field), `x.exit_code == 3`, nor `exit_code=...` inside a call's keyword arguments.
ASSIGNMENT = re.compile(r"""^[^#"'(]*?\bexit_code\b\s*(?::[^=\n]+)?=(?!=)""", re.MULTILINE)


def _table() -> dict[int, str]:
    """The code -> meaning rows of the table in errors.py's docstring."""
    assert errors.__doc__
    return {int(code): meaning for code, meaning in re.findall(r"^(\d+)\s{2,}(\S.*)$", errors.__doc__, re.MULTILINE)}


def _all_subclasses() -> list[type[ProfkitError]]:
    for module in pkgutil.walk_packages(profkit.__path__, "profkit."):
        if module.name != "profkit.__main__":
            importlib.import_module(module.name)
    found: list[type[ProfkitError]] = []
    todo = list(ProfkitError.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_the_table_documents_success_usage_and_interrupted() -> None:
    table = _table()
    assert {0, 1, 2, EXIT_INTERRUPTED} <= set(table)
    assert "usage" in table[2] and "interrupted" in table[EXIT_INTERRUPTED].lower()


def test_every_error_class_has_its_own_documented_code() -> None:
    subclasses = _all_subclasses()
    assert len(subclasses) >= 9
    codes = {cls.__name__: cls.exit_code for cls in subclasses}
    assert len(set(codes.values())) == len(codes), f"two errors share an exit code: {codes}"
    table = _table()
    undocumented = {name: code for name, code in codes.items() if code not in table}
    assert not undocumented, f"exit codes missing from the table in profkit/errors.py: {undocumented}"
    assert all(0 < code < 256 for code in codes.values())


def test_every_error_class_lives_in_profkit_errors() -> None:
    assert {cls.__module__ for cls in _all_subclasses()} == {"profkit.errors"}


def test_every_documented_failure_code_has_an_error() -> None:
    codes = {cls.exit_code for cls in _all_subclasses()} | {ProfkitError.exit_code}
    assert set(_table()) - {0} <= codes | {EXIT_INTERRUPTED}


@pytest.mark.parametrize(("text", "found"), [
    ("    exit_code = 3", True),
    ("    exit_code: ClassVar[int] = 1", True),
    ("Foo.exit_code=4", True),
    ('program = {"exit_code": status}', False),
    ("    exit_code: int", False),
    ("if exc.exit_code == 3:", False),
    ("sys.exit(exc.exit_code)", False),
    ("    # exit_code = 9 in a comment", False),
])
def test_the_scanner_tells_assignments_from_keys_and_reads(text: str, found: bool) -> None:
    assert bool(ASSIGNMENT.search(text)) is found


def test_exit_codes_are_assigned_only_in_profkit_errors() -> None:
    assigned = {str(path.relative_to(PACKAGE.parent)): ASSIGNMENT.findall(path.read_text())
                for path in sorted(PACKAGE.rglob("*.py"))}
    elsewhere = {name: lines for name, lines in assigned.items() if lines and name != "profkit/errors.py"}
    assert not elsewhere, f"exit codes assigned outside profkit/errors.py: {elsewhere}"
    assert len(assigned["profkit/errors.py"]) >= 9
