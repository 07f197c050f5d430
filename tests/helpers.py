"""Shared helpers for tests that drive the real profkit CLI."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROFKIT = Path(sys.executable).with_name("profkit")
PROGRAMS = Path(__file__).parent / "programs"


def profkit(*args: str, timeout: float = 300, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROFKIT), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          check=False)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under folder with its sha256: 'nothing stored before was harmed' means this is unchanged."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]
