"""diff — what changed between two profiles: a differential flamegraph and the functions that moved most.

Each side is a commit in the store (its newest ``flame`` run, or ``mem`` run for memory), a run
folder, or a profile file (collapsed stacks, speedscope, a memray capture). Everything that can be
refused — a side that does not exist, an unreadable file, two profiles that measure different
things — is refused before a run folder is made, so a bad invocation leaves the store as it was.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError, TargetError, UsageError
from ..profiles import (
    BYTES_LEAKED,
    MEMORY,
    Profile,
    Significance,
    check_comparable,
    diff,
    file_format,
    load_collapsed,
    load_file,
    load_memray,
    sampling_mode,
)
from ..render.diff_svg import render_diff_svg
from ..results import DiffFindings, DiffResult, DiffSide
from ..session import repo_commit, summary
from ..store import MANIFEST, STATUS_COMPLETE, STATUS_PARTIAL, ArtifactStore
from ..tools import versions
from ..units import human

SVG = "diff.svg"
JSON = "diff.json"
# What each command a diff can read left in its run folder: (artifact kind, its usual file name).
RUN_PROFILES = {"flame": ("collapsed", "profile.collapsed"), "mem": ("memray-bin", "memray.bin")}
MIN_PREFIX = 4  # a shorter sha prefix matches too much to mean anything
LISTED = 8  # how many names a "no such ..." message lists
MANIFEST_REMOVED = 20


@dataclass(frozen=True)
class Side:
    spec: str
    source: str  # "commit", "run" or "file"
    profile: Profile
    run: str | None = None

    def doc(self) -> DiffSide:
        p = self.profile
        return {"spec": self.spec, "source": self.source, "path": str(p.path), "run": self.run, "format": p.format,
                "measure": p.measure, "mode": p.mode, "total": p.total}

    def label(self) -> str:
        return self.run or self.spec


def run_diff(*, a: str, b: str, store: Path, top: int, min_share_pct: float, leaks: bool = False,
             mem: bool = False, out: Path | None = None) -> DiffResult:
    """Compare profile ``a`` (before) with ``b`` (after); file ``diff.svg`` and ``diff.json`` as a ``diff`` run."""
    if not 0 <= min_share_pct < 100:
        raise UsageError(f"--min-share must be between 0 and 100 percentage points, got {min_share_pct:g}")
    if out is not None and not out.parent.is_dir():
        raise UsageError(f"--out {out}: no folder {out.parent}")
    specs = {"A": a, "B": b}
    paths = {name: _load_path(spec, leaks=leaks) for name, spec in specs.items() if Path(spec).exists()}
    runs = ArtifactStore(store).runs() if len(paths) < 2 else []
    commits = {name: _commit_folders(spec, store, runs) for name, spec in specs.items() if name not in paths}
    memory = mem or leaks or any(side.profile.kind == MEMORY for side in paths.values())
    command = "mem" if memory else "flame"
    # Two commits that have only memory profiles compare those, without --mem.
    if not memory and len(commits) == 2 and not all(_newest(f, runs, "flame") for f in commits.values()) \
            and all(_newest(f, runs, "mem") for f in commits.values()):
        command = "mem"
    for name, folders in commits.items():
        run_dir = _newest(folders, runs, command)
        if run_dir is None:
            raise _no_run(folders, runs, command, store)
        profile, run_id = _load_run(run_dir, leaks=leaks)
        paths[name] = Side(specs[name], "commit", profile, run_id)
    side_a, side_b = paths["A"], paths["B"]
    if leaks:
        for name, side in (("A", side_a), ("B", side_b)):
            if side.profile.kind != MEMORY:
                raise UsageError(f"--leaks compares memory never freed; {name} ({side.label()}) is "
                                 f"{side.profile.describe()}")
    check_comparable(side_a.profile, side_b.profile, what_a=f"A {side_a.label()}", what_b=f"B {side_b.label()}")
    rule = Significance(min_share=min_share_pct / 100)
    d = diff(side_a.profile, side_b.profile, rule)

    notes = [*side_a.profile.notes, *side_b.profile.notes]
    if side_a.profile.mode is None or side_b.profile.mode is None:
        if side_a.profile.kind != MEMORY:
            notes.append("the sampling mode (py-spy --idle/--gil) of a side is not recorded; make sure both were "
                         "sampled the same way")
    findings: DiffFindings = {
        "a": side_a.doc(),
        "b": side_b.doc(),
        "kind": side_a.profile.kind,
        "measure": side_b.profile.measure,
        "significance": {"rule": rule.describe(d.counted), "min_share_pct": min_share_pct,
                         "z": rule.z if d.counted else None, "min_bytes": None if d.counted else rule.min_bytes},
        "functions": d.functions(top=top),
        "removed": d.removed_rows(),
        "removed_pct": round(100 * sum(n.before for _, n in d.removed()) / (side_a.profile.total or 1), 3),
        "added_pct": round(100 * d.added_share(), 3),
        "notes": notes,
        "svg": "",
    }
    what = "bytes never freed" if side_b.profile.measure == BYTES_LEAKED else side_b.profile.measure
    title = f"profkit diff: {side_a.label()} → {side_b.label()}"
    subtitle = f"{what} — A: {_amount(side_a.profile)}, B: {_amount(side_b.profile)}"
    svg = render_diff_svg(d, title=title, subtitle=subtitle).encode()
    target: dict[str, Any] = {"kind": "diff", "a": _describe(side_a), "b": _describe(side_b)}
    tools = versions("memray") if any(s.profile.format == "memray" for s in (side_a, side_b)) else {}
    with ArtifactStore(store).open_run("diff", commit=repo_commit(), target=target, tools=tools) as run:
        findings["svg"] = str(run.write(SVG, svg, "diff-svg"))
        if out is not None:
            _write_out(out, svg)
            findings["out"] = str(out)
        run.write_json(JSON, findings, "diff-json")
        # diff.json has every removed frame; the manifest, read whole by `profkit runs`, the largest.
        run.conclude({**findings, "removed": findings["removed"][:MANIFEST_REMOVED],
                      "removed_frames": len(findings["removed"])}, None)
    filed = summary(run)
    return {"command": "diff", "run": filed["run"], "folder": filed["folder"], "status": filed["status"],
            "artifacts": filed["artifacts"], "findings": findings}


def _amount(p: Profile) -> str:
    return human(p.total) if p.kind == MEMORY else f"{p.total:,} samples"


def _describe(side: Side) -> dict[str, Any]:
    return {"spec": side.spec, "source": side.source, "path": str(side.profile.path), "run": side.run}


def _write_out(out: Path, data: bytes) -> None:
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write --out {out}: {exc.strerror or exc}") from exc


# -- finding each side ---------------------------------------------------------------------------


def _load_path(spec: str, *, leaks: bool) -> Side:
    path = Path(spec)
    if path.is_dir():
        profile, run = _load_run(path, leaks=leaks)
        return Side(spec, "run", profile, run)
    return Side(spec, "file", load_file(path, leaks=leaks))


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise TargetError(f"cannot read the manifest of run {folder}: {exc}") from exc
    return manifest if isinstance(manifest, dict) else {}


def _load_run(folder: Path, *, leaks: bool) -> tuple[Profile, str]:
    """The profile a flame or mem run folder holds, with the sampling mode its manifest records."""
    manifest = _read_manifest(folder)
    command = str(manifest.get("command") or folder.name.split("-")[0])
    run_id = f"{folder.resolve().parent.name}/{folder.name}"
    if command not in RUN_PROFILES:
        held = _listing(folder)
        if not manifest and any(file_format(folder / n) for n in held if (folder / n).is_file()):
            raise UsageError(f"{folder} is a folder, not a profkit run (no manifest.json); name a profile file in it "
                             f"({', '.join(held[:LISTED])})")
        raise UsageError(f"{folder} is a {command!r} run; profkit diff reads flame and mem runs, or profile files")
    path = _profile_path(folder, manifest, command)
    if not path.is_file():
        raise UsageError(f"run {run_id} ({manifest.get('status', 'no manifest')}) holds no {path.name}; it holds: "
                         f"{', '.join(_listing(folder)[:LISTED]) or 'nothing'}")
    if command == "mem":
        # Whether the run was recorded for leaks (PYTHONMALLOC=malloc) is in the capture itself;
        # load_memray notes a pymalloc capture read for leaks.
        return load_memray(path, leaks=leaks), run_id
    sampling = manifest.get("sampling")
    rate = sampling.get("rate_hz") if isinstance(sampling, dict) else None
    if rate is None and isinstance(manifest.get("findings"), dict):
        rate = manifest["findings"].get("rate_hz")
    return load_collapsed(path, mode=sampling_mode(sampling), rate_hz=rate if isinstance(rate, int) else None), run_id


def _profile_path(folder: Path, manifest: dict[str, Any], command: str) -> Path:
    kind, default = RUN_PROFILES[command]
    artifacts = manifest.get("artifacts")
    names = [a.get("path") for a in artifacts if isinstance(a, dict) and a.get("kind") == kind] \
        if isinstance(artifacts, list) else []
    return folder / str(names[0] if names else default)


def _listing(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    except OSError:
        return []


def _looks_like_path(spec: str) -> bool:
    """A spec no commit folder could be named: it is a path that does not exist."""
    return "/" in spec or spec.startswith(".") or spec.lower().endswith(
        (".collapsed", ".folded", ".json", ".bin", ".gz", ".svg", ".txt"))


def _missing_path(spec: str) -> UsageError:
    parent = Path(spec).parent
    if not parent.is_dir():
        return UsageError(f"{spec}: no such file or run folder (no folder {parent})")
    held = _listing(parent)
    listed = ", ".join(held[:LISTED]) + (f" and {len(held) - LISTED} more" if len(held) > LISTED else "")
    return UsageError(f"{spec}: no such file or run folder ({parent} holds: {listed or 'nothing'})")


def _commit_folders(spec: str, store: Path, runs: list[dict[str, Any]]) -> list[str]:
    """The commit folders (clean and -dirty of one sha) ``spec`` names; refused naming what the store holds."""
    if _looks_like_path(spec):
        raise _missing_path(spec)
    commits = sorted({str(m["run"]).split("/")[0] for m in runs})
    folders = _matching(spec, commits)
    if not folders:
        known = ", ".join(commits[:LISTED]) + (f" and {len(commits) - LISTED} more" if len(commits) > LISTED else "")
        raise UsageError(f"{spec!r} is not a file, a run folder or a commit in the store {store} "
                         f"({'it holds commits: ' + known if commits else 'the store has no runs'})")
    if len({f.removesuffix("-dirty") for f in folders}) > 1:
        raise UsageError(f"{spec!r} matches several commits in {store}: {', '.join(sorted(folders))}; give more of "
                         "the sha")
    return folders


def _newest(folders: list[str], runs: list[dict[str, Any]], command: str) -> Path | None:
    """The newest complete (or partial) ``command`` run of these folders that holds its profile.

    A clean folder first: "-dirty" runs were made with uncommitted changes (name the folder to pick one).
    """
    for folder in sorted(folders, key=lambda f: f.endswith("-dirty")):
        for m in runs:  # newest first
            if str(m["run"]).startswith(folder + "/") and m.get("command") == command \
                    and m.get("status") in (STATUS_COMPLETE, STATUS_PARTIAL):
                run_dir = Path(str(m["folder"]))
                if _profile_path(run_dir, m, command).is_file():
                    return run_dir
    return None


def _no_run(folders: list[str], runs: list[dict[str, Any]], command: str, store: Path) -> UsageError:
    held = Counter(str(m.get("command")) for m in runs if str(m["run"]).split("/")[0] in folders)
    has = ", ".join(f"{n} {c}" for c, n in sorted(held.items())) or "no runs"
    hint = "; add --mem to compare memory" if command == "flame" and "mem" in held else ""
    return UsageError(f"commit {' / '.join(sorted(folders))} has no complete {command} run in {store} "
                      f"(it has: {has}){hint}")


def _matching(spec: str, commits: list[str]) -> list[str]:
    """Commit folders that ``spec`` names: the folder itself, or a sha prefix (or a full sha) of it."""
    s = spec.strip().lower()
    if s in commits:
        return [s]
    if len(s) < MIN_PREFIX:
        return []
    out = []
    for folder in commits:
        sha = folder.removesuffix("-dirty")
        if sha.startswith(s) or (len(s) > len(sha) >= MIN_PREFIX and s.startswith(sha)):
            out.append(folder)
    return out
