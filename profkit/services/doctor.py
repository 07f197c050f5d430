"""profkit doctor — what will and won't work on this machine, and why."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import CheckFailed, ProfkitError
from ..results import Check, DoctorResult, DoctorTarget
from ..targets import check_pid, python_of
from ..tools import TOOLS

CAP_SYS_PTRACE = 19
# What each attaching tool supports, from their documentation (py-spy 0.4: CPython 3.3-3.13+;
# memray 1.x: CPython 3.7-3.13+). Checked against the target's version for --pid.
SUPPORTED = {"py-spy": ((3, 3), (3, 14)), "memray": ((3, 7), (3, 14))}


def _capabilities() -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except OSError:
        pass
    return False


def _ptrace_scope() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip())
    except (OSError, ValueError):
        return None


def _container() -> str | None:
    if Path("/.dockerenv").exists():
        return "docker"
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        return None
    for name in ("kubepods", "docker", "containerd", "lxc", "podman"):
        if name in cgroup:
            return name
    return None


def run_doctor(*, pid: int | None) -> DoctorResult:
    """Every check's outcome; raises CheckFailed (with the result) when a required one failed."""
    checks: list[Check] = []

    def check(name: str, ok: bool, detail: str, *, required: bool = True) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail, "required": required})

    for key in ("py-spy", "memray", "yappi", "scalene"):
        tool = TOOLS[key]
        version = tool.version() if tool.available() else None
        check(f"{key} installed", version is not None,
              f"version {version}" if version else f"missing: {tool.hint}")
    try:
        from ..backends.memray import choose_debugger

        # Trying the debugger on a throwaway process is the only honest answer: some gdb builds
        # are installed yet cannot inject into a process on this CPU.
        debugger = choose_debugger()
        check("debugger for memray attach", True, f"{debugger} can inject into a process here", required=False)
    except ProfkitError as exc:
        check("debugger for memray attach", False, str(exc), required=False)
    root = os.geteuid() == 0
    cap = _capabilities()
    scope = _ptrace_scope()
    container = _container()
    can_trace_others = (root and cap) or (scope == 0)
    scope_text = {None: "no Yama LSM", 0: "0 (any process of the same user)", 1: "1 (only descendants)",
                  2: "2 (only with CAP_SYS_PTRACE)", 3: "3 (ptrace disabled)"}.get(scope, str(scope))
    detail = (f"{'root' if root else 'not root'}, CAP_SYS_PTRACE {'present' if cap else 'absent'}, "
              f"yama ptrace_scope {scope_text}")
    if not can_trace_others:
        detail += ("; attaching to a process that is not your child will fail: run as root with "
                   "CAP_SYS_PTRACE" + (f" (in {container}: --cap-add SYS_PTRACE)" if container else "")
                   + " or set ptrace_scope to 0")
    check("ptrace of unrelated processes (--pid)", bool(can_trace_others), detail, required=False)
    check("running in a container", True, container or "no container detected", required=False)
    target: DoctorTarget | None = None
    if pid is not None:
        try:
            check_pid(pid)
        except ProfkitError as exc:
            check(f"pid {pid}", False, str(exc))
        else:
            info = python_of(pid)
            if info.version is None:
                check(f"pid {pid} is Python", False, f"{info.executable or 'unknown program'} is not CPython")
            else:
                v = info.version
                check(f"pid {pid} is Python", True, f"Python {v[0]}.{v[1]} ({info.executable})")
                for attacher, (lo, hi) in SUPPORTED.items():
                    ok = lo <= v <= hi
                    check(f"{attacher} supports pid {pid}", ok,
                          f"Python {v[0]}.{v[1]} {'within' if ok else 'outside'} {lo[0]}.{lo[1]}-{hi[0]}.{hi[1]}")
            target = {"pid": pid, "executable": info.executable,
                      "python": ".".join(map(str, info.version)) if info.version else None}
    failed = [c for c in checks if c["required"] and not c["ok"]]
    result: DoctorResult = {"command": "doctor", "ok": not failed, "python": sys.version.split()[0], "checks": checks,
                            "target": target}
    if failed:
        raise CheckFailed("failed: " + "; ".join(f"{c['check']} ({c['detail']})" for c in failed), result=result)
    return result
