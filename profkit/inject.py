"""Run Python code inside a live Python process that was started with nothing of profkit's.

How, in order of preference:

- ``sys.remote_exec`` (CPython 3.14+, PEP 768) when both interpreters have it: the target runs a
  script file at its next safe point in its main thread. No debugger.
- a debugger (gdb or lldb) that attaches and, in the target's main thread, either

  * calls ``PyGILState_Ensure()``, ``PyRun_SimpleString(bootstrap)``, ``PyGILState_Release()``
    right where it stopped, when that thread is blocked in a system call without the GIL (an
    asyncio loop waiting in epoll: the usual state of a service). That is the C API's own way for
    a foreign thread to run Python, and a thread parked in a syscall holds no lock of libc's or
    of the interpreter's; or
  * when the thread is in the middle of running Python (it holds the GIL, and may be inside
    pymalloc or halfway through updating an object), queues ``PyRun_SimpleString(bootstrap)``
    with ``Py_AddPendingCall``: the interpreter runs it at its next safe point, microseconds
    later, which is also what ``sys.remote_exec`` does. The bootstrap's text is copied into a
    page of its own (``mmap``, no malloc, whose lock that thread might hold).

  Either way the debugger only calls lock-free functions at the point where it stopped, and it
  is detached before the code runs (queued) or right after (direct). gdb and lldb are first tried
  on a throwaway process (:func:`choose_debugger`): a debugger that fails halfway through a call
  (Debian 12's gdb 13 on CPUs with AMX registers) corrupts the process it was calling into.

What runs in the target is a one-line bootstrap, which reads the agent file this module writes to
a private temporary folder (in the target's view of the file system, owned by the target's user).
The agent makes profkit and its dependencies importable (see :func:`import_roots`), runs the
code, and writes ``ok`` or the traceback to a status file there, which :func:`inject` reads and
turns into the result or a :class:`TargetError`. The folder is removed afterwards. Nothing is
printed in the target: its stdout and stderr stay its own.

The code runs in the target's main thread, with the GIL, while the event loop is paused (inside
its ``select`` call, or between two steps): it must return quickly. Anything long-lived goes in a
thread it starts; to touch the loop, use ``loop.call_soon_threadsafe`` (plain ``call_soon`` would
not wake a loop that is waiting in epoll). A debugger that is still in a direct call when
``timeout`` ends is killed, which leaves the call to return into nothing: code that blocks can
crash the target.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import site
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InjectedCodeFailed, TargetError, ToolMissing, UsageError
from .process import Background, last_line, pid_alive, run
from .targets import check_pid, python_of
from .tools import TOOLS

METHODS = ("remote_exec", "gdb", "lldb")
PROBE_TIMEOUT = 30.0
DEBUGGERS = ("gdb", "lldb", "lldb-server")  # what may be a target's tracer after one of ours hung
INSTALL_HINT = "apt-get install gdb (or lldb)"
# What a debugger prints for the outcome: which way the code went (1 ran where the thread stopped,
# 2 queued for the interpreter's next safe point) and the C call's return value.
_DIRECT, _QUEUED = 1, 2
_OUTCOME = re.compile(r"^(?:\(int\) \$)?profkit_(mode|rc) = (-?\d+)\s*$", re.MULTILINE)


# -- which debugger can call into a process here --------------------------------------------------


_PROBE_CHILD = "import time; print('ready', flush=True); time.sleep(120)"


def probe_argv(debugger: str, path: str, pid: int) -> list[str]:
    if debugger == "gdb":
        return [path, "-batch", "-nx", "-p", str(pid), "-ex", "call (int)getpid()"]
    return [path, "--batch", "--no-lldbinit", "-p", str(pid), "-o", "expr (int)getpid()"]


def choose_debugger(purpose: str, *, what: str = "code", install_hint: str = INSTALL_HINT) -> str:
    """The first of gdb, lldb that can call a function inside a process on this machine.

    ``purpose`` names who needs it in the error ("memray attach"), ``what`` what it would inject.
    When the debugger cannot call (gdb before 14 fails with "Couldn't write extended state status"
    on CPUs with AMX registers), the half-done call corrupts the target: a sleeping Python process
    dies with "OSError: [Errno 514]". So the debugger is first tried on a throwaway process of our
    own, and the real target is only touched by one that works.
    """
    present = [name for name in ("gdb", "lldb") if TOOLS[name].available()]
    if not present:
        raise ToolMissing(f"{purpose} needs gdb or lldb and neither is installed: {install_hint}")
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="profkit-probe-") as tmp:
        for name in present:
            path = TOOLS[name].path()
            assert path is not None
            problem = probe(name, path, Path(tmp) / f"{name}.log")
            if problem is None:
                return name
            failures.append(f"{name}: {problem}")
    hint = "install lldb (apt-get install lldb) or a newer gdb" if "lldb" not in present else "install gdb 14 or newer"
    raise ToolMissing(f"no debugger here can inject {what} into a process (" + "; ".join(failures) + f"); {hint}")


def probe(name: str, path: str, log: Path) -> str | None:
    """None when ``name`` can call getpid() in a throwaway Python process, else why not."""
    with Background([sys.executable, "-c", _PROBE_CHILD], log_path=log) as child:
        deadline = time.monotonic() + 20
        while b"ready" not in log.read_bytes():
            if time.monotonic() > deadline or (child.proc is not None and child.proc.poll() is not None):
                return "the throwaway test process did not start"
            time.sleep(0.02)
        try:
            proc = run(probe_argv(name, path, child.pid), timeout=PROBE_TIMEOUT)
        except TargetError:
            release_target(child.pid, markers=("(int)getpid()",))
            return f"it hung for {PROBE_TIMEOUT:.0f} s"
        finally:
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGCONT)  # lldb may leave its inferior stopped
            # The throwaway process is killed outright: Background's polite SIGINT is ignored by a process
            # started with SIGINT ignored (a job run from a script without job control), and then waited
            # for 20 s each time.
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGKILL)
        if re.search(rf"=\s*{child.pid}\b", proc.stdout):
            return None
        text = proc.stdout + "\n" + proc.stderr
        if "Couldn't write extended state status" in text:
            return "Couldn't write extended state status (gdb before 14 fails like this on CPUs with AMX registers)"
        for known in ("ptrace: Operation not permitted", "attach failed", "Operation not permitted"):
            if known in text:
                return known
        return last_line(text) or f"exit code {proc.returncode}"


def release_target(pid: int, *, markers: Sequence[str]) -> None:
    """End the debuggers started against ``pid`` (command line holds ``-p PID`` and a marker) and
    whichever debugger is its ptrace tracer (lldb's tracer is lldb-server, which outlives lldb);
    then resume ``pid``. Only called once our own debugger has hung: a debugger someone else had
    on the target would have made ours fail at once instead."""
    ours: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue
        if str(pid) in words and any(m in w for w in words for m in markers):
            ours.add(int(entry.name))
    traced = tracer_of(pid)
    if traced is not None:
        tracer, comm = traced
        if tracer in ours or status_field(tracer, "PPid") in ours or comm in DEBUGGERS:
            ours.add(tracer)
    for p in ours:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
    time.sleep(0.2)  # the kernel detaches a dead tracer's tracees
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGCONT)


def tracer_of(pid: int) -> tuple[int, str] | None:
    """The pid tracing ``pid`` and its command name ("" when unreadable), or None when it is not traced."""
    tracer = status_field(pid, "TracerPid")
    if not tracer:
        return None
    try:
        return tracer, Path(f"/proc/{tracer}/comm").read_text().strip()
    except OSError:
        return tracer, ""


def status_field(pid: int, name: str) -> int | None:
    """A numeric field of /proc/PID/status (TracerPid, PPid, Uid's real id...)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


# -- what runs inside the target -------------------------------------------------------------------


def import_roots() -> list[str]:
    """The folders the injected code imports profkit and its dependencies from: the one holding
    the ``profkit`` package (the repository root for an editable install, site-packages otherwise)
    and this interpreter's site-packages. Not the standard library: the target has its own, of the
    same version."""
    import profkit

    roots = [str(Path(profkit.__file__).resolve().parent.parent)]
    candidates = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    if site.ENABLE_USER_SITE:
        candidates.append(site.getusersitepackages())
    for path in candidates:
        resolved = os.path.realpath(path)
        if resolved not in roots and os.path.isdir(resolved):
            roots.append(resolved)
    return roots


# The agent runs in a fresh namespace. Its finder is appended to sys.meta_path, so it is asked only
# after every finder of the target failed, and it answers only top-level imports made by code that
# itself came from profkit's folders (or the injected code): the target's own imports resolve as
# before (an optional dependency it lacks stays missing for it), while profkit's imports keep
# working after the injection, when the agent's threads import lazily. Prepending to sys.path
# instead would hand the target our copies of packages it imports later; removing the paths
# again would break those lazy imports. A package the target has already imported (or has
# itself) is the target's copy for profkit too: one process, one sys.modules.
_AGENT = '''\
import os
import sys

STATUS = {status!r}
CODE = {code!r}
ROOTS = {roots!r}


def install_finder():
    import importlib
    from importlib.machinery import PathFinder

    importlib_dir = os.path.dirname(importlib.__file__) + os.sep

    class ProfkitFinder:
        roots = ROOTS

        def find_spec(self, name, path=None, target=None):
            if path is not None:
                return None  # a submodule: found through its package's __path__
            frame = sys._getframe(1)
            while frame is not None:
                filename = frame.f_code.co_filename
                if not (filename.startswith("<frozen ") or filename.startswith(importlib_dir)):
                    break
                frame = frame.f_back
            else:
                return None
            if filename != CODE and not any(filename.startswith(root + os.sep) for root in self.roots):
                return None
            return PathFinder.find_spec(name, self.roots)

    for finder in sys.meta_path:
        if type(finder).__name__ == "ProfkitFinder" and hasattr(finder, "roots"):
            finder.roots = ROOTS
            return
    sys.meta_path.append(ProfkitFinder())


def main():
    try:
        install_finder()
        with open(CODE, "rb") as f:
            source = f.read()
        exec(compile(source, CODE, "exec"), {{"__name__": "__profkit_injected__", "__file__": CODE}})
    except BaseException:
        import traceback

        report = "error\\n" + traceback.format_exc()
    else:
        report = "ok\\n"
    with open(STATUS + ".tmp", "w") as f:
        f.write(report)
    os.replace(STATUS + ".tmp", STATUS)


main()
'''


def agent_source(*, status: str, code: str, roots: Sequence[str]) -> str:
    return _AGENT.format(status=status, code=code, roots=list(roots))


def bootstrap(agent: str) -> str:
    """What the debugger hands to PyRun_SimpleString (and remote_exec runs as a file).

    PyRun_SimpleString runs in the namespace of the target's ``__main__``: the bootstrap binds no
    name there (the agent gets a namespace of its own), reaches builtins through ``__import__``
    in case the target's script defines its own ``open`` or ``exec``, and swallows every error,
    so nothing is ever printed in the target (a missing status file reports the failure).
    """
    inner = (f"with open({agent!r}, 'rb') as f:\n    s = f.read()\n"
             f"exec(compile(s, {agent!r}, 'exec'), {{'__name__': '__profkit_agent__', '__file__': {agent!r}}})\n")
    return f"try:\n    __import__('builtins').exec({inner!r}, {{}})\nexcept BaseException:\n    pass\n"


def c_literal(text: str) -> str:
    """``text`` as a C string literal that gdb and lldb both parse: printable ASCII as is, every
    other byte as a three-digit octal escape."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def in_syscall_check(machine: str) -> str:
    """A C expression, true when the stopped thread's next instruction follows a system call
    instruction: the thread is parked in (or just back from) a syscall in a libc wrapper."""
    if machine in ("x86_64", "AMD64", "amd64"):
        return "*(unsigned short *)($pc - 2) == 0x050f"  # syscall
    if machine in ("aarch64", "arm64"):
        return "*(unsigned int *)($pc - 4) == 0xd4000001"  # svc #0
    return "1"  # unknown machine: the GIL alone decides


_MMAP = "((void *(*)(void *, unsigned long, int, int, int, long))mmap)"
# PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS (the same values on every Linux machine)
_MMAP_ARGS = "0, {size}, 3, 0x22, -1, 0"


def gdb_script(boot: str, machine: str) -> str:
    literal = c_literal(boot)
    size = len(boot.encode()) + 1
    return f"""\
set confirm off
set pagination off
set unwindonsignal on
sharedlibrary libc
sharedlibrary musl
sharedlibrary libpython
thread 1
set $profkit_gil = (int)PyGILState_Check()
if $profkit_gil == 0 && {in_syscall_check(machine)}
  set $profkit_mode = {_DIRECT}
  set $profkit_state = (int)PyGILState_Ensure()
  set $profkit_rc = (int)PyRun_SimpleString({literal})
  call (void)PyGILState_Release($profkit_state)
else
  set $profkit_mode = {_QUEUED}
  set $profkit_buf = (char *){_MMAP}({_MMAP_ARGS.format(size=size)})
  set {{char[{size}]}}$profkit_buf = {literal}
  set $profkit_rc = (int)Py_AddPendingCall((int (*)(void *))PyRun_SimpleString, (void *)$profkit_buf)
end
printf "profkit_mode = %d\\n", $profkit_mode
printf "profkit_rc = %d\\n", $profkit_rc
"""


def lldb_script(boot: str, machine: str) -> str:
    literal = c_literal(boot)
    size = len(boot.encode()) + 1
    # lldb's command language has no "if": the decision is one C++ expression, which lldb compiles
    # and runs in the target. lldb cannot pass a function's address straight as an argument, so it
    # is read into a variable first (through a cast: without debug info its type is unknown).
    expr = (
        f"int $profkit_mode = 0; int $profkit_rc = -100; const char *text = {literal}; "
        f"if (((int (*)(void))PyGILState_Check)() == 0 && {in_syscall_check(machine)}) {{ "
        f"$profkit_mode = {_DIRECT}; int state = ((int (*)(void))PyGILState_Ensure)(); "
        f"$profkit_rc = ((int (*)(const char *))$profkit_run)(text); "
        f"((void (*)(int))PyGILState_Release)(state); "
        f"}} else {{ "
        f"$profkit_mode = {_QUEUED}; char *buf = (char *){_MMAP}({_MMAP_ARGS.format(size=size)}); "
        f"for (int i = 0; i < {size}; i++) buf[i] = text[i]; "
        f"$profkit_rc = ((int (*)(int (*)(void *), void *))Py_AddPendingCall)((int (*)(void *))$profkit_run, buf); "
        f"}} $profkit_rc"
    )
    return ("thread select 1\n"
            "expr -- void *$profkit_run = (void *)(int (*)(const char *))PyRun_SimpleString; $profkit_run\n"
            f"expr -- {expr}\np $profkit_mode\np $profkit_rc\n")


def debugger_argv(debugger: str, path: str, pid: int, script: Path) -> list[str]:
    if debugger == "gdb":
        # Only libc's and libpython's symbols are read (sharedlibrary in the script): reading every
        # library of a big service takes seconds. No auto-loaded python-gdb.py either.
        return [path, "-batch", "-nx", "-nw", "-iex", "set auto-load off", "-iex", "set auto-solib-add off",
                "-p", str(pid), "-x", str(script)]
    return [path, "--batch", "--no-lldbinit", "-p", str(pid), "-s", str(script)]


# -- reading what the debugger said ----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    queued: bool  # the code was queued for the interpreter's next safe point rather than run at once
    rc: int  # PyRun_SimpleString's return value (ran), or Py_AddPendingCall's (queued)


def parse_outcome(output: str) -> Outcome | None:
    """The debugger's report of what it did, or None when it did not get that far."""
    found = {key: int(value) for key, value in _OUTCOME.findall(output)}
    if found.get("mode") not in (_DIRECT, _QUEUED) or "rc" not in found:
        return None
    return Outcome(queued=found["mode"] == _QUEUED, rc=found["rc"])


PERMISSION_HINT = ("run as root with CAP_SYS_PTRACE (docker run --cap-add SYS_PTRACE), or set "
                   "/proc/sys/kernel/yama/ptrace_scope to 0")


def explain_failure(debugger: str, pid: int, output: str, *, alive: bool) -> str:
    """One line: why ``debugger`` could not run the code in ``pid``, from what it printed."""
    lowered = output.lower()
    if not alive or "ptrace: no such process" in lowered:
        return f"pid {pid} exited while {debugger} was injecting code into it"
    if "operation not permitted" in lowered or "permission denied" in lowered:
        return f"{debugger} may not trace pid {pid}: {PERMISSION_HINT}"
    if "couldn't write extended state status" in lowered:
        return (f"{debugger} failed halfway through a call into pid {pid} (Couldn't write extended state status: "
                "gdb before 14 on a CPU with AMX registers); check the target, and install lldb or gdb 14+")
    if re.search(r"no symbol \"?(PyGILState|PyRun|Py_AddPending)|undeclared identifier '(PyGILState|PyRun|Py_Add)",
                 output, re.IGNORECASE):
        return (f"{debugger} found no Python C API in pid {pid} (PyGILState_Ensure, PyRun_SimpleString): "
                "is its interpreter stripped of its symbols?")
    detail = _last_meaningful_line(output)
    return f"{debugger} could not inject code into pid {pid}: {detail or 'it printed nothing'}"


_NOISE = (
    "warning:", "Executing commands in", "(lldb)", "Process ", "* thread", "frame #", "[Inferior", "[Switching",
    "Traceback (most recent", "ModuleNotFoundError: No module named 'lldb", "File \"<string>\"",
)


def _last_meaningful_line(output: str) -> str:
    errors = [line.strip() for line in output.splitlines() if line.strip().startswith("error: ")]
    if errors:  # lldb follows its error with the expression and a ^~~~ marker under the culprit
        return errors[-1][:300]
    for line in reversed(output.splitlines()):
        text = line.strip()
        if text and not text.startswith(_NOISE):
            return text[:300]
    return ""


# -- preconditions ---------------------------------------------------------------------------------


def require_injectable(pid: int) -> None:
    """A live CPython of our own major.minor that we may trace; one clear TargetError otherwise."""
    check_pid(pid)
    info = python_of(pid)
    if info.version is None:
        raise TargetError(f"pid {pid} ({info.executable or 'unknown program'}) is not a Python process")
    ours = sys.version_info[:2]
    if info.version != ours:
        raise TargetError(
            f"pid {pid} runs Python {info.version[0]}.{info.version[1]} and profkit runs on {ours[0]}.{ours[1]}: the "
            f"injected code imports profkit from this environment, so run profkit from a Python "
            f"{info.version[0]}.{info.version[1]} environment")
    owner = status_field(pid, "Uid")
    if os.geteuid() != 0 and owner is not None and owner != os.geteuid():
        raise TargetError(f"not allowed to trace pid {pid} (it belongs to uid {owner}): {PERMISSION_HINT}")
    if _ptrace_scope() == 3:
        raise TargetError(f"ptrace is disabled on this machine (/proc/sys/kernel/yama/ptrace_scope is 3), so no "
                          f"debugger can attach to pid {pid}; it can only be lowered by rebooting")
    traced = tracer_of(pid)
    if traced is not None:
        tracer, comm = traced
        raise TargetError(f"pid {pid} is already being traced by pid {tracer} ({comm or 'unknown'}); only one "
                          "debugger or profiler can attach at a time: detach it and retry")


def _ptrace_scope() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip())
    except (OSError, ValueError):
        return None


# -- injecting -------------------------------------------------------------------------------------


class _Workdir:
    """The private folder of one injection, as seen from here (``host``) and by the target
    (``inside``): made through /proc/PID/root, so a target in another mount namespace (a
    container, a service with PrivateTmp) sees it too; owned by the target's user (0700)."""

    def __init__(self, pid: int) -> None:
        root = f"/proc/{pid}/root"
        tmp = tempfile.gettempdir()
        try:
            self.host = Path(tempfile.mkdtemp(prefix="profkit-inject-", dir=root + tmp))
        except OSError as exc:
            raise TargetError(f"cannot create a temporary folder that pid {pid} can read ({root}{tmp}): "
                              f"{exc.strerror or exc}") from exc
        self.inside = Path(tmp) / self.host.name
        owner = (status_field(pid, "Uid"), status_field(pid, "Gid"))
        if os.geteuid() == 0 and owner[0] is not None and owner[1] is not None and owner[0] != os.geteuid():
            with contextlib.suppress(OSError):
                os.chown(self.host, owner[0], owner[1])

    def remove(self) -> None:
        shutil.rmtree(self.host, ignore_errors=True)


def _visible_roots(pid: int) -> list[str]:
    """import_roots() that the target sees as the same folders; an error if it cannot see profkit."""
    roots = import_roots()
    seen = []
    for root in roots:
        with contextlib.suppress(OSError):
            if os.path.samefile(root, f"/proc/{pid}/root{root}"):
                seen.append(root)
    if not seen or seen[0] != roots[0]:
        raise TargetError(f"pid {pid} cannot see profkit's files at {roots[0]} (it runs in a container or another "
                          "mount namespace): run profkit inside the target's container")
    return seen


def inject(pid: int, code: str, *, debugger: str | None = None, timeout: float = 60.0) -> str:
    """Run ``code`` (Python source) inside process ``pid``; the method used: "remote_exec", "gdb" or "lldb".

    ``debugger`` forces one method; by default sys.remote_exec where both Pythons have it, else
    the first of gdb, lldb that works here. Raises TargetError when the target cannot be injected
    or the code raised (with the traceback's last line), ToolMissing when no method exists here.
    """
    if debugger is not None and debugger not in METHODS:
        raise UsageError(f"unknown injection method {debugger!r}; choose one of: {', '.join(METHODS)}")
    require_injectable(pid)
    roots = _visible_roots(pid)
    work = _Workdir(pid)
    keep_boot = False
    try:
        status = work.host / "status"
        (work.host / "code.py").write_text(code)
        (work.host / "agent.py").write_text(agent_source(status=str(work.inside / "status"),
                                                         code=str(work.inside / "code.py"), roots=roots))
        boot = bootstrap(str(work.inside / "agent.py"))
        deadline = time.monotonic() + timeout
        method = debugger
        remote_problem = ""
        if method in (None, "remote_exec"):
            remote_problem = _try_remote_exec(pid, work, boot)
            if not remote_problem:
                # The file is read when the target gets to it: if that is after our deadline,
                # it must still be there then (the agent it names will not be, and it stays quiet).
                keep_boot = True
                _wait_for_status(pid, status, deadline, "remote_exec")
                keep_boot = False
                _read_status(pid, status, "remote_exec")
                return "remote_exec"
            if method == "remote_exec":
                raise TargetError(f"sys.remote_exec could not run code in pid {pid}: {remote_problem}")
        if method is None:
            purpose = "injecting code into a live process"
            method = choose_debugger(purpose, what="code")
        else:
            tool = TOOLS[method]
            if not tool.available():
                raise ToolMissing(f"{method} is not installed: apt-get install {method}")
            problem = probe(method, str(tool.path()), work.host / f"probe-{method}.log")
            if problem is not None:
                raise ToolMissing(f"{method} cannot inject code into a process here ({problem}); "
                                  "try the other debugger (gdb or lldb)")
        outcome = _run_debugger(method, pid, boot, work.host / f"inject.{method}", deadline)
        if outcome.queued:
            _wait_for_status(pid, status, deadline, method)
        _read_status(pid, status, method, rc=outcome.rc)
        return method
    finally:
        if keep_boot:
            for name in ("agent.py", "code.py"):
                with contextlib.suppress(OSError):
                    (work.host / name).unlink()
        else:
            work.remove()


def _try_remote_exec(pid: int, work: _Workdir, boot: str) -> str:
    """"" once sys.remote_exec accepted the script, else why not (then a debugger is tried)."""
    remote_exec = getattr(sys, "remote_exec", None)
    if remote_exec is None:
        return f"this Python ({platform.python_version()}) has no sys.remote_exec"
    (work.host / "boot.py").write_text(boot)
    try:
        remote_exec(pid, str(work.inside / "boot.py"))
    except PermissionError:
        raise TargetError(f"not allowed to run code in pid {pid} with sys.remote_exec: {PERMISSION_HINT}") from None
    except ProcessLookupError:
        raise TargetError(f"pid {pid} exited before code could be injected into it") from None
    except Exception as exc:  # noqa: BLE001 - e.g. remote debugging disabled in the target: a debugger may still do
        return f"{type(exc).__name__}: {exc}"
    return ""


def _run_debugger(debugger: str, pid: int, boot: str, script: Path, deadline: float) -> Outcome:
    path = TOOLS[debugger].path()
    assert path is not None
    machine = platform.machine()
    script.write_text(gdb_script(boot, machine) if debugger == "gdb" else lldb_script(boot, machine))
    budget = max(1.0, deadline - time.monotonic())
    try:
        proc = run(debugger_argv(debugger, path, pid, script), timeout=budget)
    except TargetError:
        release_target(pid, markers=(str(script),))
        raise TargetError(f"{debugger} did not finish injecting code into pid {pid} within {budget:.0f} s; it was "
                          f"stopped and pid {pid} resumed (the injected code must return quickly)") from None
    finally:
        if debugger == "lldb":
            # lldb sometimes leaves its inferior stopped when it exits; a running process ignores this.
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)
    output = proc.stdout + "\n" + proc.stderr
    outcome = parse_outcome(output)
    if outcome is None:
        raise TargetError(explain_failure(debugger, pid, output, alive=pid_alive(pid)))
    if outcome.queued and outcome.rc != 0:
        raise TargetError(f"pid {pid} refused to queue the injected code (Py_AddPendingCall returned {outcome.rc}: "
                          "its queue of pending calls is full); retry in a moment")
    return outcome


def _wait_for_status(pid: int, status: Path, deadline: float, method: str) -> None:
    while not status.exists():
        if not pid_alive(pid):
            raise TargetError(f"pid {pid} exited before it ran the injected code")
        if time.monotonic() > deadline:
            raise TargetError(f"pid {pid} did not run the code queued by {method} in time: its main thread has not "
                              "run Python since (blocked in a C call?); the code was withdrawn and will not run later")
        time.sleep(0.01)


def _read_status(pid: int, status: Path, method: str, *, rc: int = 0) -> None:
    try:
        text = status.read_text()
    except OSError:
        if rc != 0:
            raise TargetError(f"PyRun_SimpleString failed in pid {pid} ({method}); the injected code did "
                              "not start") from None
        raise TargetError(f"the injected code did not start in pid {pid} ({method}): it could not read "
                          f"{status.parent} (the target's user must be able to read profkit's files)") from None
    if text.startswith("ok"):
        return
    traceback = text.partition("\n")[2]
    raise InjectedCodeFailed(f"the code injected into pid {pid} raised {last_line(traceback) or 'an error'}",
                             traceback=traceback)
