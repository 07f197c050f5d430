"""profkit regress: two refs, each in its own git worktree and environment, benchmarked A B B A ...

Each side gets a ``git worktree`` (or, for the work tree with its uncommitted changes, a copy of it
taken when the run starts) and a virtual environment whose dependencies come from the
running profkit's environment (a ``.pth`` line) while the code under test — profkit's bench worker
and the engine — is installed from that side's folder. Worker processes of the two sides then
alternate (A B, then B A, ...), worker *i* of both sides with the same seed, so slow drift of a
shared machine lands on both sides equally and the paired comparison cancels it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ProfkitError, RegressError, UsageError
from ..gitinfo import Commit, current_commit
from ..process import run
from .compare import REGRESSION, SUITE_WIDE, Change, compare
from .runner import BenchConfig, assemble, build_store, measure_once

WORKTREE = "WORKTREE"  # --head value meaning "the work tree as it is, uncommitted changes included"


@dataclass(frozen=True)
class Side:
    label: str
    ref: str
    commit: Commit
    source: Path  # the checkout whose code is measured
    python: str


def resolve_ref(repo: Path, ref: str) -> str:
    if run(["git", "rev-parse", "--git-dir"], timeout=30, cwd=repo).returncode != 0:
        raise UsageError(f"{repo} is not inside a git repository: run profkit regress from the project's checkout")
    proc = run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], timeout=30, cwd=repo)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise UsageError(f"{ref!r} is not a commit, branch or tag of {repo}")
    return proc.stdout.strip()


def _venv_for(source: Path, folder: Path) -> str:
    """A fresh venv that sees this environment's packages and has ``source`` installed in it."""
    proc = run([sys.executable, "-m", "venv", "--without-pip", str(folder)], timeout=300)
    if proc.returncode != 0:
        raise RegressError(f"cannot create a virtual environment in {folder}: {proc.stderr.strip()[-200:]}")
    python = str(folder / "bin" / "python")
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=60)
    purelib = Path(site.stdout.strip())
    # Dependencies (numpy, usearch, ...) are shared with the running profkit; the code under test is not.
    (purelib / "_profkit_shared_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = run([python, "-m", "pip", "install", "--quiet", "--no-deps",
                   "--disable-pip-version-check", "-e", str(source)], timeout=900)
    if install.returncode != 0:
        raise RegressError(f"the code at {source} does not install: {install.last_error_line() or 'pip failed'}")
    check = run([python, "-c", "import profkit.bench.worker, agentmem.engine"], timeout=120, cwd=folder)
    if check.returncode != 0:
        raise RegressError(f"the code at {source} has no usable bench worker: {check.last_error_line() or '?'}")
    return python


def snapshot_worktree(repo: Path, dest: Path) -> None:
    """Copy the work tree as git sees it now: tracked files as edited, and untracked files not ignored.

    Measuring a copy rather than the checkout means edits made during a run of several minutes do
    not leak into half of it, and the head's code lives at a path shaped like the base's worktree
    (address-space randomisation is off in the workers, so path lengths are part of the layout).
    """
    proc = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], timeout=120, cwd=repo)
    if proc.returncode != 0:
        raise RegressError(f"cannot list the work tree's files: {proc.stderr.strip()[-200:]}")
    try:
        for rel in sorted({f for f in proc.stdout.split("\0") if f}):
            src, target = repo / rel, dest / rel
            if src.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(os.readlink(src))
            elif src.is_file():  # a file deleted in the work tree is listed but gone; a submodule is a folder
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    except OSError as exc:
        raise RegressError(f"cannot copy the work tree into {dest}: {exc}") from exc


@contextlib.contextmanager
def prepared(repo: Path, base: str, head: str, tmp: Path, say: Callable[[str], None]) -> Iterator[tuple[Side, Side]]:
    added: list[Path] = []
    try:
        sides = []
        for label, ref in (("base", base), ("head", head)):
            if ref == WORKTREE:
                commit = current_commit(repo)
                source = tmp / f"{label}-{commit.sha[:12]}"
                say(f"copying the work tree into {source.name}")
                snapshot_worktree(repo, source)
            else:
                sha = resolve_ref(repo, ref)
                source = tmp / f"{label}-{sha[:12]}"
                say(f"checking out {ref} ({sha[:12]}) into a worktree")
                proc = run(["git", "worktree", "add", "--detach", str(source), sha], timeout=300, cwd=repo)
                if proc.returncode != 0:
                    raise RegressError(f"git worktree add failed for {ref}: {proc.stderr.strip()[-200:]}")
                added.append(source)
                commit = Commit(sha, dirty=False)
            say(f"installing {label} ({ref}) into its own environment")
            sides.append(Side(label, ref, commit, source, _venv_for(source, tmp / f"env-{label}")))
        yield sides[0], sides[1]
    finally:
        for wt in added:
            run(["git", "worktree", "remove", "--force", str(wt)], timeout=120, cwd=repo)
        run(["git", "worktree", "prune"], timeout=60, cwd=repo)


def run_regress(repo: Path, base: str, head: str, cfg: BenchConfig, say: Callable[[str], None],
                explain_into: Path | None = None, count_instructions: bool = True) -> Regress:
    """Both sides measured interleaved; with ``explain_into``, each regression is attributed (see
    :mod:`profkit.bench.attribution`) while both sides' code is still checked out."""
    if base == head:
        raise UsageError("--base and --head are the same ref: nothing to compare")
    with tempfile.TemporaryDirectory(prefix="profkit-regress-") as tmp_s:
        tmp = Path(tmp_s)
        with prepared(repo, base, head, tmp, say) as (a, b):
            started = time.time()
            per: dict[str, list[dict[str, Any]]] = {"base": [], "head": []}
            templates: dict[str, Path] = {}
            build_s: dict[str, float] = {}
            for side in (a, b):
                side_cfg = _for(cfg, side)
                say(f"building the {side.label} store")
                templates[side.label] = tmp / f"store-{side.label}"
                build_s[side.label] = build_store(side_cfg, templates[side.label])
            for i in range(cfg.workers):
                order = (a, b) if i % 2 == 0 else (b, a)
                for side in order:
                    say(f"round {i + 1}/{cfg.workers}: {side.label}")
                    per[side.label].append(measure_once(_for(cfg, side), templates[side.label], i, tmp))
            res_a = assemble(_for(cfg, a), a.commit, per["base"], started=started, build_s=build_s["base"])
            res_b = assemble(_for(cfg, b), b.commit, per["head"], started=started, build_s=build_s["head"])
            changes = compare(res_a, res_b)
            explained: list[dict[str, Any]] = []
            if explain_into is not None:
                for c in changes:
                    if c.verdict == REGRESSION and c.op != SUITE_WIDE:
                        say(f"explaining {c.op}: profiling both sides"
                            + (", counting instructions" if count_instructions else ""))
                        explained.append(_explain(c.op, a, b, cfg, templates, c.current_p50_ms, explain_into,
                                                  count_instructions))
    return Regress(a, b, res_a, res_b, changes, explained)


def _explain(op: str, a: Side, b: Side, cfg: BenchConfig, templates: dict[str, Path], p50_ms: float,
             folder: Path, count_instructions: bool) -> dict[str, Any]:
    """The attribution of one regression; a failure to explain never hides the regression itself."""
    from .attribution import SideCode, explain

    base, head = SideCode(a.label, a.python, a.source), SideCode(b.label, b.python, b.source)
    try:
        return explain(op, base, head, cfg, templates, p50_ms, folder, instructions=count_instructions)
    except ProfkitError as exc:
        return {"op": op, "error": str(exc), "functions": []}


@dataclass(frozen=True)
class Regress:
    a: Side
    b: Side
    res_a: dict[str, Any]
    res_b: dict[str, Any]
    changes: list[Change]
    explained: list[dict[str, Any]]


def _for(cfg: BenchConfig, side: Side) -> BenchConfig:
    return replace(cfg, python=side.python, cwd=side.source)
