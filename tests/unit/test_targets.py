"""profkit.targets: the three ways of naming a target, and which Python program a tool runs in process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from profkit.errors import TargetError, UsageError
from profkit.targets import (
    DEFAULT_SCENARIO,
    PythonProgram,
    Target,
    python_of,
    python_program,
    require_python_pid,
    resolve,
    scenario_argv,
)

PROGRAMS = Path(__file__).parents[1] / "programs"
SCRIPT = str(PROGRAMS / "cpu_hot.py")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not Python."""
    proc = subprocess.Popen(["sleep", "30"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# -- resolve -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scenario", "command", "pid"), [
    ("mixed", ["python", "x.py"], None),
    ("mixed", [], 1),
    (None, ["python", "x.py"], 1),
    ("mixed", ["python", "x.py"], 1),
])
def test_resolve_refuses_two_targets_at_once(scenario: str | None, command: list[str], pid: int | None) -> None:
    with pytest.raises(UsageError, match="give one target: a scenario name, a command after --, or --pid PID"):
        resolve(scenario, command, pid, duration=1.0)


def test_resolve_a_command_runs_it_as_given() -> None:
    target = resolve(None, ["python", "app.py", "--fast"], None, duration=5.0)
    assert target == Target("command", argv=("python", "app.py", "--fast"))
    assert target.label == "python app.py --fast"
    assert target.describe() == {"kind": "command", "argv": ["python", "app.py", "--fast"], "pid": None,
                                 "scenario": None}


def test_resolve_a_live_pid() -> None:
    target = resolve(None, [], os.getpid(), duration=5.0)
    assert target == Target("pid", pid=os.getpid()) and target.label == f"pid {os.getpid()}"


def test_resolve_a_pid_that_has_exited(dead_pid: int) -> None:
    with pytest.raises(TargetError, match=f"no process with pid {dead_pid}"):
        resolve(None, [], dead_pid, duration=5.0)


@pytest.mark.parametrize("pid", [0, -5])
def test_resolve_a_pid_that_is_not_a_process_id(pid: int) -> None:
    with pytest.raises(UsageError, match="--pid must be a positive process id"):
        resolve(None, [], pid, duration=5.0)


def test_resolve_nothing_is_the_default_scenario_for_the_duration() -> None:
    target = resolve(None, [], None, duration=2.5)
    assert target.kind == "scenario" and target.scenario == DEFAULT_SCENARIO == "mixed"
    assert target.argv == (sys.executable, "-m", "agentmem.workload.run", "mixed", "--duration", "2.5")
    assert target.label == "scenario mixed"


def test_resolve_a_scenario_on_the_plain_asyncio_loop() -> None:
    target = resolve("graph", [], None, duration=10, asyncio_loop=True)
    assert target.argv == tuple(scenario_argv("graph", 10, asyncio_loop=True))
    assert target.argv[-2:] == ("--loop", "asyncio") and "10" in target.argv


def test_resolve_an_unknown_scenario_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown scenario 'nope'; choose one of: mixed, .* \(or give -- COMMAND\)"):
        resolve("nope", [], None, duration=1.0)


# -- python_program ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "expected"), [
    (["python", SCRIPT, "3"], PythonProgram(SCRIPT, None, ("3",))),
    ([sys.executable, SCRIPT], PythonProgram(SCRIPT, None, ())),
    (["/usr/bin/python3", "-u", SCRIPT, "--flag"], PythonProgram(SCRIPT, None, ("--flag",))),
    (["python3.11", "-m", "pkg.mod", "a", "-m"], PythonProgram(None, "pkg.mod", ("a", "-m"))),
    (["python", "-O", "-m", "json.tool", "f.json"], PythonProgram(None, "json.tool", ("f.json",))),
    (["python", "-Xdev", SCRIPT], PythonProgram(SCRIPT, None, ())),
])
def test_python_program_reads_script_or_module_and_arguments(argv: list[str], expected: PythonProgram) -> None:
    assert python_program(Target("command", argv=tuple(argv)), "scalene") == expected


def test_python_program_runs_code_only_for_a_tool_that_can() -> None:
    target = Target("command", argv=("python", "-u", "-c", "print(1)", "a"))
    assert python_program(target, "memray", code_ok=True) == PythonProgram(None, None, ("a",), code="print(1)")
    with pytest.raises(UsageError, match="scalene runs a script or a module, not -c CODE"):
        python_program(target, "scalene")
    with pytest.raises(UsageError, match="-c needs the code to run"):
        python_program(Target("command", argv=("python", "-c")), "memray", code_ok=True)


def test_python_program_of_a_scenario_is_the_workload_module() -> None:
    program = python_program(resolve("ingest", [], None, duration=3), "yappi")
    assert program == PythonProgram(None, "agentmem.workload.run", ("ingest", "--duration", "3"))


@pytest.mark.parametrize(("argv", "message"), [
    (["sleep", "1"], r"scalene runs Python programs in process: give -- python SCRIPT ARGS .*\(got sleep 1\)"),
    ([], r"\(got nothing\)"),
    (["python"], "give the script to run after python"),
    (["python", "-u"], "give the script to run after python"),
    (["python", "-m"], "-m needs a module name"),
    (["python", "-u", "-m"], "-m needs a module name"),
    (["python", "no/such/script.py"], "no such script: no/such/script.py"),
    (["python", str(PROGRAMS)], "no such script"),  # a folder is not a script
])
def test_python_program_refuses_what_it_cannot_run(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        python_program(Target("command", argv=tuple(argv)), "scalene")


def test_python_program_cannot_attach_to_a_pid() -> None:
    with pytest.raises(UsageError, match="yappi cannot attach to a running process"):
        python_program(Target("pid", pid=os.getpid()), "yappi")


def test_python_program_skips_an_interpreter_option_with_its_argument() -> None:
    program = python_program(Target("command", argv=("python", "-X", "dev", SCRIPT)), "scalene")
    assert program == PythonProgram(SCRIPT, None, ())


# -- which Python a pid runs ---------------------------------------------------------------------------


def test_this_process_is_the_python_it_is() -> None:
    info = require_python_pid(os.getpid())
    assert info.version == sys.version_info[:2]
    assert info.executable is not None and Path(info.executable).resolve() == Path(sys.executable).resolve()


def test_a_process_that_is_not_python(sleeper: subprocess.Popen[bytes]) -> None:
    assert python_of(sleeper.pid).version is None
    with pytest.raises(TargetError, match=rf"pid {sleeper.pid} \(.*sleep\) is not a Python process"):
        require_python_pid(sleeper.pid)


def test_a_python_the_tool_does_not_support() -> None:
    with pytest.raises(TargetError, match=r"runs Python 3\.\d+, which the profiler does not support "
                                          r"\(supported: 2\.6-2\.7\)"):
        require_python_pid(os.getpid(), supported=((2, 6), (2, 7)))


def test_a_pid_that_has_exited_is_refused_before_anything_reads_it(dead_pid: int) -> None:
    with pytest.raises(TargetError, match="no process"):
        require_python_pid(dead_pid)


@pytest.mark.parametrize("agent, user", [("agentA\n", "u"), ("agentA", "u\n"), ("", "u"), ("a" * 129, "u")])
def test_the_engine_refuses_a_tenant_id_that_is_not_exactly_the_pattern(agent: str, user: str) -> None:
    # "$" matched before a final newline: "agentA\n" was a tenant of its own, beside "agentA".
    from agentmem.engine import MemoryEngine
    from agentmem.errors import InvalidInput

    with pytest.raises(InvalidInput):
        MemoryEngine.tenant(agent, user)
    assert MemoryEngine.tenant("agentA", "u").agent_id == "agentA"
