"""profkit.inject: the debugger scripts and command lines it builds, the code it runs inside a target (run
here, in process), the import paths it hands over, and how it reads what gdb and lldb printed."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

import profkit
from profkit import inject
from profkit.errors import TargetError, UsageError

BOOT_PATH = "/tmp/profkit-inject-abc/agent.py"


def _c_unescape(literal: str) -> bytes:
    """The bytes a C compiler makes of ``literal`` (only the escapes c_literal writes)."""
    assert literal[0] == literal[-1] == '"'
    body = literal[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        if body[i] == "\\":
            if body[i + 1] in '"\\':
                out.append(ord(body[i + 1]))
                i += 2
            else:
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
        else:
            assert body[i] != '"', "an unescaped quote ends a C string early"
            out.append(ord(body[i]))
            i += 1
    return bytes(out)


# -- the C string literal ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["plain", 'quote " and \\ backslash', "new\nline\ttab", "café ☕", "\\012 literally"])
def test_c_literal_gives_back_the_same_bytes(text: str) -> None:
    literal = inject.c_literal(text)
    assert all(0x20 <= ord(c) < 0x7F for c in literal), "only printable ASCII reaches the debugger's command line"
    assert _c_unescape(literal) == text.encode()


# -- the bootstrap PyRun_SimpleString runs in the target's __main__ ----------------------------------


def test_bootstrap_runs_the_agent_in_a_namespace_of_its_own(tmp_path: Path) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text("import sys\nsys.modules[__name__ + '_ran'] = __file__\n")
    main: dict[str, object] = {"__builtins__": __builtins__}
    try:
        exec(inject.bootstrap(str(agent)), main)
        assert sys.modules["__profkit_agent___ran"] == str(agent)  # type: ignore[comparison-overlap]
    finally:
        sys.modules.pop("__profkit_agent___ran", None)
    assert set(main) == {"__builtins__"}, "the bootstrap left names in the target's __main__"


def test_bootstrap_uses_builtins_even_when_main_shadows_them(tmp_path: Path) -> None:
    agent = tmp_path / "agent.py"
    marker = tmp_path / "ran"
    agent.write_text(f"open({str(marker)!r}, 'w').close()\n")
    main: dict[str, object] = {"__builtins__": __builtins__, "exec": None, "open": None, "compile": None}
    exec(inject.bootstrap(str(agent)), main)
    assert marker.exists()


def test_bootstrap_is_silent_when_the_agent_is_gone(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    exec(inject.bootstrap(str(tmp_path / "removed.py")), {"__builtins__": __builtins__})
    assert capfd.readouterr() == ("", "")


# -- the agent: status file, traceback, import finder -----------------------------------------------


@pytest.fixture
def clean_import_state() -> Iterator[None]:
    meta_path = list(sys.meta_path)
    modules = set(sys.modules)
    yield
    sys.meta_path[:] = meta_path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def _run_agent(tmp_path: Path, code: str, roots: list[str]) -> str:
    code_file = tmp_path / "code.py"
    code_file.write_text(code)
    status = tmp_path / "status"
    source = inject.agent_source(status=str(status), code=str(code_file), roots=roots)
    exec(compile(source, str(tmp_path / "agent.py"), "exec"), {"__name__": "__profkit_agent__"})
    assert not (tmp_path / "status.tmp").exists()
    return status.read_text()


@pytest.mark.usefixtures("clean_import_state")
def test_agent_reports_ok_after_running_the_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    assert _run_agent(tmp_path, f"open({str(marker)!r}, 'w').write(__name__)\n", []) == "ok\n"
    assert marker.read_text() == "__profkit_injected__"


@pytest.mark.usefixtures("clean_import_state")
@pytest.mark.parametrize(("code", "last"), [
    ("def f():\n    raise ValueError('boom')\nf()\n", "ValueError: boom"),
    ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ("def broken(:\n", "SyntaxError: invalid syntax"),
])
def test_agent_reports_the_traceback_of_any_exception(tmp_path: Path, code: str, last: str) -> None:
    status = _run_agent(tmp_path, code, [])
    first, _, traceback = status.partition("\n")
    assert first == "error"
    assert traceback.strip().splitlines()[-1] == last


@pytest.mark.usefixtures("clean_import_state")
def test_agent_finder_serves_profkits_imports_and_not_the_targets(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    (lib / "pk_agentpkg").mkdir(parents=True)
    (lib / "pk_agentpkg" / "__init__.py").write_text(
        "import pk_dep_now\n\ndef later():\n    import pk_dep_later\n    return pk_dep_later.VALUE\n")
    (lib / "pk_dep_now.py").write_text("VALUE = 'now'\n")
    (lib / "pk_dep_later.py").write_text("VALUE = 'later'\n")
    (lib / "pk_not_for_target.py").write_text("")
    work = tmp_path / "work"
    work.mkdir()
    assert _run_agent(work, "import pk_agentpkg\n", [str(lib)]) == "ok\n"
    # After the injection: profkit's code still imports lazily from its folders...
    assert sys.modules["pk_agentpkg"].later() == "later"
    # ...while the target's own code (this test) does not see them.
    with pytest.raises(ModuleNotFoundError):
        import pk_not_for_target  # type: ignore[import-not-found]  # noqa: F401


@pytest.mark.usefixtures("clean_import_state")
def test_a_second_injection_updates_the_finder_instead_of_adding_one(tmp_path: Path) -> None:
    for n in (1, 2):
        work = tmp_path / str(n)
        work.mkdir()
        assert _run_agent(work, "", [str(tmp_path / f"lib{n}")]) == "ok\n"
    finders = [f for f in sys.meta_path if type(f).__name__ == "ProfkitFinder"]
    assert len(finders) == 1
    assert finders[0].roots == [str(tmp_path / "lib2")]  # type: ignore[attr-defined]


# -- the folders handed to the target --------------------------------------------------------------


def test_import_roots_start_with_profkits_own_folder_then_site_packages() -> None:
    roots = inject.import_roots()
    assert roots[0] == str(Path(profkit.__file__).resolve().parent.parent)
    assert os.path.realpath(sysconfig.get_paths()["purelib"]) in roots
    assert len(roots) == len(set(roots))
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    assert stdlib not in roots, "the target has its own standard library"


# -- debugger scripts and command lines -------------------------------------------------------------


def _literal_in(script: str) -> bytes:
    match = re.search(r'"(?:[^"\\]|\\.)*"', script)
    assert match is not None
    return _c_unescape(match.group(0))


def test_gdb_script_calls_in_order_and_queues_otherwise() -> None:
    boot = inject.bootstrap(BOOT_PATH)
    script = inject.gdb_script(boot, "x86_64")
    lines = script.splitlines()
    assert lines.index("thread 1") < next(i for i, ln in enumerate(lines) if "PyGILState_Check" in ln)
    direct = [ln.strip() for ln in lines[lines.index("if $profkit_gil == 0 && *(unsigned short *)($pc - 2) == 0x050f")
                                            + 1:lines.index("else")]]
    assert [re.search(r"Py\w+", ln).group(0) for ln in direct[1:]] == [  # type: ignore[union-attr]
        "PyGILState_Ensure", "PyRun_SimpleString", "PyGILState_Release"]
    assert _literal_in(script) == boot.encode()
    size = len(boot.encode()) + 1
    assert f"set {{char[{size}]}}$profkit_buf = " in script
    assert "Py_AddPendingCall((int (*)(void *))PyRun_SimpleString, (void *)$profkit_buf)" in script
    assert 'printf "profkit_mode = %d\\n", $profkit_mode' in script


def test_lldb_script_is_one_expression_with_the_same_decision() -> None:
    boot = inject.bootstrap(BOOT_PATH)
    script = inject.lldb_script(boot, "aarch64")
    commands = script.splitlines()
    assert commands[0] == "thread select 1"
    assert commands[1].startswith("expr -- void *$profkit_run = (void *)(int (*)(const char *))PyRun_SimpleString")
    assert commands[2].startswith("expr -- ") and "*(unsigned int *)($pc - 4) == 0xd4000001" in commands[2]
    assert commands[3:] == ["p $profkit_mode", "p $profkit_rc"]
    assert _literal_in(commands[2]) == boot.encode()
    assert f"i < {len(boot.encode()) + 1}" in commands[2]


def test_an_unknown_machine_decides_by_the_gil_alone() -> None:
    assert inject.in_syscall_check("riscv64") == "1"


def test_debugger_command_lines() -> None:
    script = Path("/tmp/x/inject.gdb")
    assert inject.debugger_argv("gdb", "/usr/bin/gdb", 42, script) == [
        "/usr/bin/gdb", "-batch", "-nx", "-nw", "-iex", "set auto-load off", "-iex", "set auto-solib-add off",
        "-p", "42", "-x", "/tmp/x/inject.gdb"]
    assert inject.debugger_argv("lldb", "/usr/bin/lldb", 42, Path("/tmp/x/inject.lldb")) == [
        "/usr/bin/lldb", "--batch", "--no-lldbinit", "-p", "42", "-s", "/tmp/x/inject.lldb"]


# -- what gdb and lldb printed (recorded on Debian 12: gdb 13.1, lldb 14) ----------------------------


GDB_RAN = """\
[Thread debugging using libthread_db enabled]
0x00007f9614d26ef3 in epoll_wait (epfd=3, events=0x7f9614a6c890, maxevents=1, timeout=100) at epoll_wait.c:30
[Switching to thread 1 (Thread 0x7f96153d5b80 (LWP 22500))]
profkit_mode = 1
profkit_rc = 0
[Inferior 1 (process 22500) detached]
"""
LLDB_QUEUED = """\
(lldb) thread select 1
(lldb) expr -- void *$profkit_run = (void *)&PyRun_SimpleString; $profkit_run
(void *) $0 = 0x00007f15bde9aec0
(lldb) expr -- int $profkit_mode = 0; int $profkit_rc = -100; const char *text = "try:"; if (x) { $profkit_mode = 1; \
} else { $profkit_mode = 2; } $profkit_rc
(int) $1 = 0
(lldb) p $profkit_mode
(int) $profkit_mode = 2
(lldb) p $profkit_rc
(int) $profkit_rc = 0
"""
GDB_NOT_PYTHON = """\
0x00007fbd7772cbd3 in __GI___wait4 (pid=-1, stat_loc=0x7fff2a287800, options=0, usage=0x0) at wait4.c:30
30\t../sysdeps/unix/sysv/linux/wait4.c: No such file or directory.
[Inferior 1 (process 25500) detached]
/tmp/inj/n.gdb:8: Error in sourced command file:
No symbol "PyGILState_Check" in current context.
"""
LLDB_NOT_PYTHON = """\
(lldb) expr -- void *$profkit_run = (void *)&PyRun_SimpleString; $profkit_run
Traceback (most recent call last):
  File "<string>", line 1, in <module>
ModuleNotFoundError: No module named 'lldb.embedded_interpreter'
error: expression failed to parse:
error: <user expression 0>:1:31: use of undeclared identifier 'PyRun_SimpleString'
"""
GDB_DEAD = "ptrace: No such process.\n/tmp/inj/n.gdb:7: Error in sourced command file:\nUnknown thread 1.\n"
LLDB_DEAD = "(lldb) process attach --pid 999999\nerror: attach failed: Cannot get process architecture\n"
GDB_DENIED = "ptrace: Operation not permitted.\n/tmp/inj/n.gdb:7: Error in sourced command file:\nUnknown thread 1.\n"
LLDB_DENIED = "(lldb) process attach --pid 25500\nerror: attach failed: Operation not permitted\n"
LLDB_UNKNOWN_TYPE = """\
error: expression failed to parse:
error: <user expression 0>:1:31: function 'PyRun_SimpleString' with unknown type must be given a function type
void *$profkit_run = (void *)&PyRun_SimpleString; $profkit_run
                              ^~~~~~~~~~~~~~~~~~
"""
GDB_AMX = "Couldn't write extended state status: Bad address.\n"


def test_parse_outcome_reads_what_the_debugger_did_not_what_it_echoed() -> None:
    assert inject.parse_outcome(GDB_RAN) == inject.Outcome(queued=False, rc=0)
    assert inject.parse_outcome(LLDB_QUEUED) == inject.Outcome(queued=True, rc=0)
    echo_only = LLDB_QUEUED.split("(int) $1")[0]
    assert inject.parse_outcome(echo_only) is None
    for failed in (GDB_NOT_PYTHON, LLDB_NOT_PYTHON, GDB_DEAD, LLDB_DENIED, ""):
        assert inject.parse_outcome(failed) is None


@pytest.mark.parametrize(("debugger", "output", "alive", "expected"), [
    ("gdb", GDB_NOT_PYTHON, True, "gdb found no Python C API in pid 7"),
    ("lldb", LLDB_NOT_PYTHON, True, "lldb found no Python C API in pid 7"),
    ("gdb", GDB_DEAD, True, "pid 7 exited while gdb was injecting code into it"),
    ("lldb", LLDB_DEAD, False, "pid 7 exited while lldb was injecting code into it"),
    ("gdb", GDB_DENIED, True, "gdb may not trace pid 7: run as root with CAP_SYS_PTRACE"),
    ("lldb", LLDB_DENIED, True, "lldb may not trace pid 7: run as root with CAP_SYS_PTRACE"),
    ("gdb", GDB_AMX, True, "gdb failed halfway through a call into pid 7 (Couldn't write extended state status"),
    ("gdb", "something new\n[Inferior 1 (process 7) detached]\n", True, "gdb could not inject code into pid 7: "
                                                                          "something new"),
    ("lldb", LLDB_UNKNOWN_TYPE, True, "lldb could not inject code into pid 7: error: <user expression 0>:1:31: "
                                      "function 'PyRun_SimpleString' with unknown type"),
])
def test_explain_failure_gives_one_line(debugger: str, output: str, alive: bool, expected: str) -> None:
    message = inject.explain_failure(debugger, 7, output, alive=alive)
    assert message.startswith(expected)
    assert "\n" not in message


def test_permission_hint_names_root_capability_and_ptrace_scope() -> None:
    assert "root" in inject.PERMISSION_HINT and "CAP_SYS_PTRACE" in inject.PERMISSION_HINT
    assert "ptrace_scope" in inject.PERMISSION_HINT


# -- preconditions ----------------------------------------------------------------------------------


def test_a_dead_pid_is_refused_before_any_debugger_runs() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    with pytest.raises(TargetError, match=f"no process with pid {proc.pid}"):
        inject.inject(proc.pid, "pass")


def test_an_unknown_method_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown injection method 'ptrace'"):
        inject.inject(os.getpid(), "pass", debugger="ptrace")


def test_the_agent_template_is_valid_python() -> None:
    ast.parse(inject.agent_source(status="/s", code="/c", roots=["/r"]))


@pytest.mark.skipif(hasattr(sys, "remote_exec"), reason="this Python has sys.remote_exec")
def test_remote_exec_asked_for_where_python_has_none_is_one_line() -> None:
    with pytest.raises(TargetError) as caught:
        inject.inject(os.getpid(), "pass", debugger="remote_exec")
    assert str(caught.value) == (f"sys.remote_exec could not run code in pid {os.getpid()}: this Python "
                                 f"({sys.version.split()[0]}) has no sys.remote_exec")
