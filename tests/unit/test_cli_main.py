"""The CLI in process: ``profkit.cli.main`` with a given argv, its exit code, its stdout and its stderr.

A usage error exits 2 with exactly one line on stderr before any work; a ProfkitError raised by a
service exits with that error's code; a result that came with the error is printed first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from profkit import cli, errors
from profkit.gitinfo import Commit
from profkit.store import ArtifactStore


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one line on stderr, checked to be exactly one and no traceback."""
        assert "Traceback" not in self.err, self.err
        lines = [ln for ln in self.err.splitlines() if ln.strip()]
        assert len(lines) == 1, self.err
        return lines[0]


@pytest.fixture
def profkit(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``profkit ARGS`` in this process; the working folder is a fresh one."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Ran:
        monkeypatch.setattr(sys, "argv", ["profkit", *args])
        with pytest.raises(SystemExit) as ended:
            cli.main()
        captured = capsys.readouterr()
        code = ended.value.code
        return Ran(code if isinstance(code, int) else 0 if code is None else 1, captured.out, captured.err)

    return run


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# -- usage errors: exit 2, one line, before any work ---------------------------------------------------


@pytest.mark.parametrize(("args", "words"), [
    (["flame", "--rate", "0"], "--rate must be at least 1 (see profkit flame --help)"),
    (["flame", "--rate", "20000"], "--rate must be at most 10000"),
    (["flame", "--duration", "abc"], "--duration must be a number, got 'abc'"),
    (["flame", "--duration", "-1"], "--duration must be a positive number"),
    (["mem", "--duration", "inf"], "--duration must be a positive number"),
    (["gc"], "--keep"),
    (["gc", "--keep", "0"], "--keep must be at least 1"),
    (["runs", "--limit", "-1"], "--limit must be at least 1"),
    (["runs", "--limit", "many"], "--limit"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["flame", "--no-such-option"], "No such option: --no-such-option"),
    (["mem", "--peak-budget", "lots"], "--peak-budget"),
    (["bench", "--mode", "cycles"], "--mode must be time or instructions, got 'cycles'"),
    (["serve", "--port", "70000"], "--port must be at most 65535"),
])
def test_a_bad_option_is_one_line_and_exit_2(profkit, args: list[str], words: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ran = profkit(*args, "--store", str(tmp_path / "store")) if args[0] in ("flame", "mem") else profkit(*args)
    assert ran.code == 2, ran
    line = ran.error_line
    assert line.startswith("profkit: ") and words in line, line
    assert ran.out == ""
    assert not (tmp_path / "store").exists()


def test_a_missing_required_option_says_it_is_missing(profkit) -> None:  # type: ignore[no-untyped-def]
    ran = profkit("dump")
    assert ran.code == 2
    assert "missing" in ran.error_line.lower() and "--pid" in ran.error_line


def test_a_command_after_dash_dash_where_none_is_taken(profkit) -> None:  # type: ignore[no-untyped-def]
    ran = profkit("dump", "--pid", str(os.getpid()), "--", "python", "x.py")
    assert ran.code == 2 and ran.error_line == "profkit: profkit dump takes no command after --"


def test_no_arguments_shows_the_help_and_exits_2(profkit) -> None:  # type: ignore[no-untyped-def]
    ran = profkit()
    assert ran.code == 2
    assert "Usage: profkit" in ran.out + ran.err and "flame" in ran.out + ran.err


def test_help_exits_0(profkit) -> None:  # type: ignore[no-untyped-def]
    ran = profkit("flame", "--help")
    assert ran.code == 0 and "--rate" in ran.out and ran.err == ""


# -- errors raised by services -------------------------------------------------------------------------


CODES = {errors.CheckFailed: 1, errors.UsageError: 2, errors.ToolMissing: 3, errors.TargetError: 4,
         errors.StoreError: 5, errors.PeakBudgetExceeded: 6, errors.BaselineError: 7, errors.RegressError: 8,
         errors.RegressionFound: 10, errors.ProfkitError: 1}


@pytest.mark.parametrize(("error", "code"), CODES.items(), ids=[e.__name__ for e in CODES])
def test_a_service_error_exits_with_its_code_in_one_line(profkit, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                        error: type[errors.ProfkitError], code: int) -> None:
    from profkit.services import runs

    def fail(**_kw: object) -> None:
        raise error("the store [at /x] went away\nsecond line of detail")

    monkeypatch.setattr(runs, "run_runs", fail)
    ran = profkit("runs")
    assert ran.code == code
    assert ran.err.startswith("profkit: the store [at /x] went away")  # rich markup in a message is shown as is
    assert "Traceback" not in ran.err and ran.out == ""


def test_the_result_that_came_with_an_error_is_printed_first(profkit, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from profkit.services import doctor

    result = {"command": "doctor", "ok": False, "python": "3.11", "checks": [], "target": None}

    def fail(**_kw: object) -> None:
        raise errors.CheckFailed("failed: pid 4242 (no process with pid 4242)", result=result)

    monkeypatch.setattr(doctor, "run_doctor", fail)
    ran = profkit("doctor", "--json")
    assert ran.code == 1
    assert json.loads(ran.out) == result
    assert ran.error_line == "profkit: failed: pid 4242 (no process with pid 4242)"


def _interrupt_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from profkit.services import runs

    def interrupted(**_kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "run_runs", interrupted)


def test_ctrl_c_is_exit_130_without_a_traceback(profkit, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    _interrupt_runs(monkeypatch)
    ran = profkit("runs")
    assert ran.code == 130 and "Traceback" not in ran.err and ran.out == ""


def test_ctrl_c_says_interrupted(profkit, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    _interrupt_runs(monkeypatch)
    ran = profkit("runs")
    assert ran.code == 130 and ran.error_line == "profkit: interrupted"


def test_flame_on_a_dead_pid_is_a_target_error(profkit, dead_pid: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ran = profkit("flame", "--pid", str(dead_pid), "--store", str(tmp_path / "store"))
    assert ran.code == 4 and f"no process with pid {dead_pid}" in ran.error_line
    assert not (tmp_path / "store").exists()


def test_async_on_a_pid_is_refused_as_usage(profkit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ran = profkit("async", "--pid", str(os.getpid()), "--store", str(tmp_path / "store"))
    assert ran.code == 2 and "yappi cannot attach" in ran.error_line
    assert not (tmp_path / "store").exists()


# -- success ---------------------------------------------------------------------------------------------


def test_runs_and_gc_as_json(profkit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    for i in range(3):
        with ArtifactStore(store).open_run("flame", commit=Commit("ab" * 20, dirty=False), target={"i": i},
                                           tools={}) as run:
            run.write("a.txt", b"x", "text")
    listed = profkit("runs", "--store", str(store), "--json")
    assert listed.code == 0 and listed.err == ""
    doc = json.loads(listed.out)
    assert doc["command"] == "runs" and len(doc["runs"]) == 3
    gc = profkit("gc", "--keep", "1", "--store", str(store), "--json")
    assert gc.code == 0 and len(json.loads(gc.out)["removed"]) == 2
    assert len(json.loads(profkit("runs", "--store", str(store), "--json").out)["runs"]) == 1


def test_runs_in_the_terminal_says_when_there_are_none(profkit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ran = profkit("runs", "--store", str(tmp_path / "empty"))
    assert ran.code == 0 and ran.out == "" and ran.err.strip() == f"no runs in {tmp_path / 'empty'}"
