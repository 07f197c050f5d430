"""Error cases that need a particular machine state: no ptrace permission, an unsupported Python,
a profiler that is not installed. Each must be one line, a non-zero exit, and an untouched store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.helpers import PROFKIT, PROGRAMS, REPO, one_line_error, snapshot

pytestmark = pytest.mark.slow


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to start a process as another user (setpriv)")
def test_no_ptrace_permission_says_what_to_grant(tmp_path: Path) -> None:
    target = subprocess.Popen([sys.executable, str(PROGRAMS / "cpu_hot.py"), "30"])
    store = tmp_path / "store"
    store.mkdir()
    tmp_path.chmod(0o777)
    store.chmod(0o777)
    try:
        time.sleep(0.3)
        before = snapshot(store)
        proc = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
             str(PROFKIT), "flame", "--pid", str(target.pid), "--duration", "1", "--store", str(store)],
            capture_output=True, text=True, timeout=120, check=False, cwd="/tmp",
        )
        line = one_line_error(proc)
        assert "not allowed" in line and "root" in line, line
        assert snapshot(store) == before
        assert target.poll() is None
    finally:
        target.kill()
        target.wait()


def test_unsupported_python_version(tmp_path: Path) -> None:
    # A real process whose executable is named like an old interpreter: the version gate must refuse
    # it before any profiler touches it.
    fake = tmp_path / "python3.2"
    shutil.copy("/bin/sleep", fake)
    proc_target = subprocess.Popen([str(fake), "30"])
    try:
        time.sleep(0.2)
        before = snapshot(tmp_path / "store")
        line = one_line_error(subprocess.run(
            [str(PROFKIT), "flame", "--pid", str(proc_target.pid), "--store", str(tmp_path / "store")],
            capture_output=True, text=True, timeout=120, check=False))
        assert "Python 3.2" in line and "not support" in line
        assert snapshot(tmp_path / "store") == before
    finally:
        proc_target.kill()
        proc_target.wait()


def test_profiler_not_installed(tmp_path: Path) -> None:
    """An environment with profkit and its libraries but no py-spy program on it or on PATH."""
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "_shared.pth").write_text(sysconfig.get_paths()["purelib"] + "\n" + str(REPO) + "\n"
                                            + str(REPO / "targets") + "\n")
    store = tmp_path / "store"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([str(python), "-m", "profkit", "flame", "--store", str(store), "--", str(python),
                           str(PROGRAMS / "cpu_hot.py"), "1"],
                          capture_output=True, text=True, timeout=120, check=False, env=env, cwd=REPO)
    line = one_line_error(proc)
    assert proc.returncode == 3 and "py-spy is not installed" in line
    assert not store.exists()
