"""profkit.inject on real processes: code injected with gdb and with lldb into a plain asyncio program that
has nothing of profkit's, which keeps running, prints only its own lines and exits 0."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from profkit import inject
from profkit.errors import TargetError, ToolMissing
from profkit.tools import TOOLS
from tests.helpers import PROGRAMS

pytestmark = pytest.mark.slow

PLAIN = PROGRAMS / "plain_asyncio.py"


def _interpreter_without_profkit() -> list[str]:
    """This Python, but not this venv: the target must get profkit from the injection, not its own path."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if base.is_file() and Path(sys.base_prefix) != Path(sys.prefix):
        return [str(base)]
    return [sys.executable, "-S"]  # no site-packages: profkit is not importable


@dataclass
class Plain:
    proc: subprocess.Popen[bytes]
    stop_file: Path
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for_ticks(self, n: int) -> None:
        deadline = time.monotonic() + 30
        while self.stdout.read_text().count("\n") < n:
            assert self.proc.poll() is None, self.stderr.read_text()
            assert time.monotonic() < deadline, "the program never started ticking"
            time.sleep(0.05)

    def finish(self) -> tuple[int, list[str], str]:
        """Ask it to stop; its exit code, stdout lines and stderr."""
        self.stop_file.touch()
        code = self.proc.wait(60)
        return code, self.stdout.read_text().splitlines(), self.stderr.read_text()


@pytest.fixture(params=["idle", "busy"])
def plain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Plain]:
    """The plain asyncio program: "idle" waits in epoll between ticks (the debugger calls in where it
    stopped), "busy" computes in Python most of the time (the call is queued for a safe point)."""
    extra = ["--busy"] if request.param == "busy" else []
    stop = tmp_path / "stop"
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen([*_interpreter_without_profkit(), str(PLAIN), "--seconds", "60", "--stop-file",
                                 str(stop), *extra], stdout=fo, stderr=fe, cwd=tmp_path)
    target = Plain(proc, stop, out, err)
    try:
        target.wait_for_ticks(3)
        yield target
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _debugger_or_skip(name: str, tmp_path: Path) -> None:
    path = TOOLS[name].path()
    if path is None:
        pytest.skip(f"{name} is not installed")
    problem = inject.probe(name, path, tmp_path / f"probe-{name}.log")
    if problem is not None:
        pytest.skip(f"{name} cannot inject into a process here: {problem}")


FIND_LOOP = """
import gc, asyncio, json, os, sys, threading
from importlib.machinery import PathFinder
own = PathFinder.find_spec("profkit", sys.path) is not None
import profkit.inject
loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]
with open({marker!r}, "w") as f:
    json.dump({{"loop": type(loops[0]).__name__ if loops else None, "thread": threading.current_thread().name,
               "profkit": profkit.inject.__file__, "folder": os.path.dirname(__file__),
               "target_has_profkit": own, "our_paths_in_sys_path": [p for p in {roots!r} if p in sys.path]}}, f)
"""


def _assert_untouched(target: Plain) -> None:
    code, lines, err = target.finish()
    assert code == 0, err
    assert err == ""
    assert lines and all(re.fullmatch(r"tick \d+", line) for line in lines), lines
    assert [int(line.split()[1]) for line in lines] == list(range(len(lines))), "ticks missing or out of order"


@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_injected_code_runs_in_the_loops_thread_and_the_program_runs_on(plain: Plain, debugger: str,
                                                                        tmp_path: Path) -> None:
    _debugger_or_skip(debugger, tmp_path)
    marker = tmp_path / "marker.json"
    code = FIND_LOOP.format(marker=str(marker), roots=inject.import_roots())
    assert inject.inject(plain.pid, code, debugger=debugger) == debugger
    found = json.loads(marker.read_text())
    assert found["loop"] == "_UnixSelectorEventLoop"
    assert found["thread"] == "MainThread"
    assert Path(found["profkit"]) == Path(inject.__file__)
    assert found["target_has_profkit"] is False, "the test needs a target that cannot import profkit by itself"
    assert found["our_paths_in_sys_path"] == [], "profkit's folders were left on the target's sys.path"
    assert not Path(found["folder"]).exists(), "the injection's temporary folder was left behind"
    # It keeps running: more ticks come after the injection.
    ticks = plain.stdout.read_text().count("\n")
    plain.wait_for_ticks(ticks + 3)
    _assert_untouched(plain)


@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_an_exception_in_the_code_comes_back_and_the_target_stays_quiet(plain: Plain, debugger: str,
                                                                        tmp_path: Path) -> None:
    _debugger_or_skip(debugger, tmp_path)
    with pytest.raises(inject.InjectedCodeFailed) as caught:
        inject.inject(plain.pid, "def fail():\n    raise LookupError('no such key in here')\nfail()\n",
                      debugger=debugger)
    assert str(caught.value) == f"the code injected into pid {plain.pid} raised LookupError: no such key in here"
    assert "in fail" in caught.value.traceback
    assert plain.proc.poll() is None
    _assert_untouched(plain)


def test_default_method_is_a_working_debugger(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with subprocess.Popen([*_interpreter_without_profkit(), str(PLAIN), "--seconds", "60", "--stop-file",
                           str(tmp_path / "stop")], stdout=subprocess.DEVNULL, cwd=tmp_path) as proc:
        try:
            time.sleep(0.5)
            try:
                method = inject.inject(proc.pid, f"open({str(marker)!r}, 'w').write('here')")
            except ToolMissing as exc:
                pytest.skip(str(exc))
            assert method in ("gdb", "lldb")  # no sys.remote_exec before Python 3.14
            assert marker.read_text() == "here"
        finally:
            (tmp_path / "stop").touch()
            assert proc.wait(60) == 0


def test_a_dead_pid_is_one_line() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with pytest.raises(TargetError) as caught:
        inject.inject(proc.pid, "pass")
    assert str(caught.value) == f"no process with pid {proc.pid} (has it exited?)"


def test_a_process_that_is_not_python_is_one_line() -> None:
    with subprocess.Popen(["sleep", "30"]) as sleeper:
        try:
            with pytest.raises(TargetError) as caught:
                inject.inject(sleeper.pid, "pass")
            message = str(caught.value)
            assert re.fullmatch(rf"pid {sleeper.pid} \(\S*/sleep\) is not a Python process", message), message
            assert sleeper.poll() is None
        finally:
            sleeper.kill()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_a_target_of_another_user_reads_the_injection_and_reports_back(debugger: str, tmp_path: Path) -> None:
    _debugger_or_skip(debugger, tmp_path)
    nobody = pwd.getpwnam("nobody")
    # Not under tmp_path: pytest's base folder is private to root, and the target must write here.
    with tempfile.TemporaryDirectory(prefix="profkit-test-nobody-") as folder:
        out = Path(folder)
        os.chown(out, nobody.pw_uid, nobody.pw_gid)
        _inject_as(nobody, out, debugger)


def _inject_as(user: pwd.struct_passwd, out: Path, debugger: str) -> None:
    argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            *_interpreter_without_profkit(), str(PLAIN), "--seconds", "60", "--stop-file", str(out / "stop")]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=out) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith(b"tick")
            inject.inject(proc.pid, f"import os\nopen({str(out / 'uid')!r}, 'w').write(str(os.getuid()))\n",
                          debugger=debugger)
            assert (out / "uid").read_text() == str(user.pw_uid)
            with pytest.raises(inject.InjectedCodeFailed, match="raised KeyError: 'x'"):
                inject.inject(proc.pid, "{}['x']", debugger=debugger)
        finally:
            (out / "stop").touch()
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and err == b""
