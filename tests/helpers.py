"""Shared helpers of the test suite: the real profkit CLI as a subprocess, the engine as a process, and
readers of what they leave behind. Fixtures live in conftest.py; these are plain functions and classes."""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from profkit.process import free_port

REPO = Path(__file__).resolve().parents[1]
PROFKIT = Path(sys.executable).with_name("profkit")
PROGRAMS = Path(__file__).parent / "programs"


# -- the CLI as a subprocess ---------------------------------------------------------------------------


def profkit(*args: str, timeout: float = 300, cwd: Path = REPO,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``profkit ARGS`` as the user runs it (the venv's console script); ``env`` replaces the environment."""
    return subprocess.run([str(PROFKIT), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=dict(env) if env is not None else None, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one line on stderr and no traceback; that line."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def artifacts(doc: Mapping[str, Any]) -> dict[str, Path]:
    """A profiling command's result document: its artifacts by kind."""
    return {a["kind"]: Path(a["path"]) for a in doc["artifacts"]}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under folder with its sha256: 'nothing stored before was harmed' means this is unchanged."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- terminal output -----------------------------------------------------------------------------------


def folded_cell(text: str, start: str) -> str:
    """A table cell that rich folded over several lines, read down its column and joined again.

    ``start`` is how the cell begins on its first line; the cell's width is that first line's run of
    non-blank characters from there.
    """
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if start in line)
    left = lines[first].index(start)
    width = len(lines[first][left:].split(" ")[0])
    return "".join(line[left:left + width].strip() for line in lines[first:])


# -- the bundled engine as a process -------------------------------------------------------------------


@dataclass
class EngineProcess:
    url: str
    db: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def start_engine(db: Path, log: Path, *extra: str) -> EngineProcess:
    """``python -m agentmem`` on a free port, once its /health answers."""
    port = free_port()
    fh = open(log, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentmem", "--port", str(port), "--db", str(db), *extra],
        stdout=fh, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"engine exited early: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return EngineProcess(url, db, proc, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("engine did not come up")


def repo_copy(dest: Path) -> None:
    """A fresh repository holding the current work tree as one commit."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                 ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base"]):
        subprocess.run(argv, cwd=dest, check=True)


def commit_all(repo: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", message],
                   cwd=repo, check=True)
