"""Which commit the work tree is at: the key of every artifact folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ProfkitError
from .process import run


@dataclass(frozen=True)
class Commit:
    sha: str
    dirty: bool

    @property
    def folder_name(self) -> str:
        """Short sha, with ``-dirty`` when uncommitted changes would make the sha a lie."""
        return self.sha[:12] + ("-dirty" if self.dirty else "")


def current_commit(repo: Path) -> Commit:
    try:
        head = run(["git", "rev-parse", "HEAD"], timeout=30, cwd=repo)
    except ProfkitError:
        return Commit("nogit", dirty=True)
    if head.returncode != 0:
        return Commit("nogit", dirty=True)
    status = run(["git", "status", "--porcelain", "--untracked-files=no"], timeout=60, cwd=repo)
    return Commit(head.stdout.strip(), dirty=bool(status.stdout.strip()))


def resolve(repo: Path, ref: str) -> str | None:
    """The full sha of a ref (branch, tag, sha prefix), or None outside git or for an unknown ref."""
    try:
        proc = run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], timeout=30, cwd=repo)
    except ProfkitError:
        return None
    sha = proc.stdout.strip()
    return sha if proc.returncode == 0 and sha else None
