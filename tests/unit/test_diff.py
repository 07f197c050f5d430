"""profkit diff on constructed profiles: shares, the significance floor, vanished stacks, ranking, refusals,
the SVG, the readers of each file kind, and finding a side in the store."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from profkit.errors import TargetError, UsageError
from profkit.gitinfo import Commit
from profkit.profiles import (
    CPU,
    MEMORY,
    SAMPLES,
    Profile,
    Significance,
    diff,
    load_collapsed,
    load_file,
    load_speedscope,
)
from profkit.render.collapsed import Stacks
from profkit.render.diff_svg import HATCH, NEUTRAL, colour, layout, render_diff_svg
from profkit.render.speedscope import to_speedscope
from profkit.services.diff import run_diff
from profkit.store import ArtifactStore
from tests.helpers import snapshot

SVG = "{http://www.w3.org/2000/svg}"


def cpu(counts: dict[tuple[str, ...], int], *, mode: str | None = None) -> Profile:
    return Profile(Stacks(counts), CPU, SAMPLES, Path("x.collapsed"), "collapsed", counted=True, mode=mode)


def mem(counts: dict[tuple[str, ...], int]) -> Profile:
    return Profile(Stacks(counts), MEMORY, "bytes allocated", Path("x.bin"), "memray", counted=False)


MAIN = "main (app.py:1)"


def stacks(**functions: int) -> dict[tuple[str, ...], int]:
    """main → each function, with so many samples."""
    return {(MAIN, f"{name} (app.py:{10 + i})"): n for i, (name, n) in enumerate(functions.items())}


# -- the model -----------------------------------------------------------------------------------


def test_shares_are_of_each_profiles_own_total_so_a_longer_run_changes_nothing() -> None:
    d = diff(cpu(stacks(f=300, g=100)), cpu(stacks(f=3000, g=1000)))
    assert d.functions(top=10) == []  # no share moved
    f = d.tree.children["main (app.py)"].children["f (app.py)"]
    change = d.judge(f.before, f.after)
    assert change.share_before == change.share_after == 0.75 and change.delta == 0
    assert not change.significant


def test_a_change_of_a_few_samples_is_not_significant_however_large_its_share() -> None:
    # 3 of 5 samples → 5 of 5: forty points, on five samples: z ≈ 1.6, below the floor.
    d = diff(cpu(stacks(f=3, g=2)), cpu(stacks(f=5)))
    change = d.judge(3, 5)
    assert change.delta == pytest.approx(0.4) and change.z is not None and abs(change.z) < 3
    assert not change.significant
    assert colour(change, 0.4) == NEUTRAL
    rows = {r["function"]: r for r in d.functions(top=10)}
    assert not rows["f"]["significant"]


def test_the_same_change_on_many_samples_is_significant_and_red() -> None:
    d = diff(cpu(stacks(f=300, g=200)), cpu(stacks(f=500, g=0, h=1)))
    change = d.judge(300, 500)
    assert change.significant and change.z is not None and change.z > 3
    assert colour(change, change.delta).startswith("rgb(255,")  # red: more of B
    less = d.judge(200, 0)
    assert less.significant and colour(less, 0.4).endswith(",255)")  # blue: less of B


def test_the_share_floor_holds_however_many_samples() -> None:
    # 0.3 points on a million samples is a real change (z ≈ 4), and still below a 0.5-point floor.
    a = cpu(stacks(f=500_000, g=500_000))
    b = cpu(stacks(f=503_000, g=497_000))
    strict = diff(a, b).judge(500_000, 503_000)
    assert strict.z is not None and strict.z > 3 and not strict.significant
    assert diff(a, b, Significance(min_share=0.001)).judge(500_000, 503_000).significant
    assert diff(a, b).functions(top=10) == []


def test_bytes_use_the_share_floor_and_a_floor_in_bytes_not_a_z_test() -> None:
    a = mem({("main (m.py:1)", "grow (m.py:2)"): 1_000, ("main (m.py:1)", "keep (m.py:3)"): 1_000})
    b = mem({("main (m.py:1)", "grow (m.py:2)"): 3_000, ("main (m.py:1)", "keep (m.py:3)"): 1_000})
    small = diff(a, b)
    assert not small.counted and small.judge(1_000, 3_000).z is None
    assert not small.judge(1_000, 3_000).significant  # 25 points, but 1 KiB: not worth a colour
    big = diff(mem({k: v << 20 for k, v in a.stacks.counts.items()}),
               mem({k: v << 20 for k, v in b.stacks.counts.items()}))
    assert big.judge(1_000 << 20, 3_000 << 20).significant


def test_the_function_doing_the_work_ranks_first_and_above_its_callers() -> None:
    wrapper = "wrapper (app.py:5)"
    a = cpu({(MAIN, wrapper, "work (app.py:6)"): 200, (MAIN, "other (app.py:7)"): 400, (MAIN, "third (app.py:8)"): 400})
    b = cpu({(MAIN, wrapper, "work (app.py:6)"): 600, (MAIN, "other (app.py:7)"): 400, (MAIN, "third (app.py:8)"): 400})
    rows = diff(a, b).functions(top=10)
    # The function doing the work first; the ones that lost share by its growth (self), then its
    # caller (whose total grew by as much, but which did nothing more itself).
    assert [r["function"] for r in rows] == ["work", "other", "third", "wrapper"]
    top = rows[0]
    assert top["significant"] and top["self_delta_pct"] > 0 and top["total_delta_pct"] == top["self_delta_pct"]
    assert top["self_before_pct"] == 20.0 and top["self_after_pct"] == pytest.approx(42.857)
    assert top["self_before"] == 200 and top["self_after"] == 600 and top["status"] == "changed"
    assert all(r["total_delta_pct"] < 0 for r in rows[1:3]) and rows[3]["total_delta_pct"] > 0
    assert "main" not in {r["function"] for r in rows}  # 100 % of both
    assert len(diff(a, b).functions(top=1)) == 1


def test_significant_changes_rank_above_larger_noise() -> None:
    # Of 1000 samples each: g 1 % → 3.5 % is real (z ≈ 3.8); k 49 % → 42.5 % and h 50 % → 54 % are
    # larger moves but within what chance does to a share near one half (|z| < 3).
    a = cpu({(MAIN, "g (a.py:1)"): 10, (MAIN, "h (a.py:2)"): 500, (MAIN, "k (a.py:3)"): 490})
    b = cpu({(MAIN, "g (a.py:1)"): 35, (MAIN, "h (a.py:2)"): 540, (MAIN, "k (a.py:3)"): 425})
    rows = diff(a, b).functions(top=10)
    assert [(r["function"], r["significant"]) for r in rows] == [("g", True), ("k", False), ("h", False)]
    assert rows[0]["z"] is not None and rows[0]["z"] > 3


def test_stacks_gone_in_b_are_kept_with_their_path_and_share_of_a() -> None:
    a = cpu({(MAIN, "f (a.py:1)"): 600, (MAIN, "old (a.py:9)", "leaf (a.py:10)"): 300, (MAIN, "old (a.py:11)"): 100})
    b = cpu({(MAIN, "f (a.py:1)"): 900, (MAIN, "new (a.py:12)"): 100})
    d = diff(a, b)
    assert d.removed_rows() == [{"stack": ["main (app.py)", "old (a.py)"], "before": 400, "before_pct": 40.0}]
    assert d.added_share() == pytest.approx(0.1)
    rows = {r["function"]: r for r in d.functions(top=10)}
    assert rows["old"]["status"] == "removed" and rows["old"]["total_after_pct"] == 0
    assert rows["leaf"]["status"] == "removed"
    assert rows["new"]["status"] == "new"


def test_profiles_that_measure_different_things_are_refused() -> None:
    with pytest.raises(UsageError, match="CPU samples and memory bytes"):
        diff(cpu(stacks(f=1)), mem(stacks(f=1)))
    with pytest.raises(UsageError, match="GIL"):
        diff(cpu(stacks(f=1), mode="cpu"), cpu(stacks(f=1), mode="gil"))
    with pytest.raises(UsageError, match="idle"):
        diff(cpu(stacks(f=1), mode="idle"), cpu(stacks(f=1), mode="cpu"))
    leaked = Profile(Stacks(stacks(f=1)), MEMORY, "bytes leaked", Path("l.bin"), "memray", counted=False)
    with pytest.raises(UsageError, match="bytes allocated"):
        diff(mem(stacks(f=1)), leaked)
    diff(cpu(stacks(f=1), mode="cpu"), cpu(stacks(f=1)))  # a bare file's mode is unknown: not refused


# -- the SVG ---------------------------------------------------------------------------------------


def _svg_frames(svg: str) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(svg)
    return {(g.attrib["data-section"], g.attrib["data-name"]): g for g in root.iter(f"{SVG}g")
            if g.attrib.get("class") == "frame"}


def test_the_svg_is_xml_with_a_legend_b_widths_and_the_removed_section() -> None:
    a = cpu({(MAIN, "f (a.py:1)"): 600, (MAIN, "old<T> & co (a.py:9)"): 400})
    b = cpu({(MAIN, "f (a.py:1)"): 900, (MAIN, "g (a.py:2)"): 100})
    svg = render_diff_svg(diff(a, b), title="A <1> → B", subtitle="samples")
    root = ET.fromstring(svg)
    legend = root.find(f".//{SVG}g[@id='legend']")
    assert legend is not None
    words = " ".join(t.text or "" for t in legend.iter(f"{SVG}text"))
    assert "larger share" in words and "smaller share" in words and "significance floor" in words
    assert "removed in B" in words and "z-test" in words
    assert "A <1> → B" in [t.text for t in root.iter(f"{SVG}text")]
    frames = _svg_frames(svg)
    old = frames[("removed", "old<T> & co (a.py)")]
    assert old.find(f"{SVG}rect").attrib["fill"] == HATCH  # type: ignore[union-attr]
    assert "A 40.00 %" in (old.findtext(f"{SVG}title") or "") and "removed in B" in (old.findtext(f"{SVG}title") or "")
    assert ("removed", "main (app.py)") in frames  # the caller that led to it, for context
    assert ("main", "old<T> & co (a.py)") not in frames  # B never ran it: no width in B's tree
    f = frames[("main", "f (a.py)")]
    assert float(f.attrib["data-w"]) == pytest.approx(0.9 * float(frames[("main", "all")].attrib["data-w"]))
    hover = f.findtext(f"{SVG}title") or ""
    assert "A 60.00 % (600 samples) → B 90.00 % (900 samples), Δ +30.00 pp" in hover
    assert f.find(f"{SVG}rect").attrib["fill"].startswith("rgb(255,")  # type: ignore[union-attr]


def test_the_removed_section_sits_under_b_and_each_section_has_its_root_lowest() -> None:
    a = cpu({(MAIN, "f (a.py:1)"): 50, (MAIN, "old (a.py:9)", "deep (a.py:3)"): 50})
    b = cpu({(MAIN, "f (a.py:1)"): 100})
    rects, height, header_y, header = layout(diff(a, b))
    main = [r for r in rects if r.section == "main"]
    gone = [r for r in rects if r.section == "removed"]
    assert header is not None and header_y is not None and "Removed in B" in header
    assert max(r.y for r in main) < header_y < min(r.y for r in gone)
    assert max(r.y for r in gone) < height
    by = {r.name: r for r in gone}
    assert by["removed in B"].y > by["main (app.py)"].y > by["old (a.py)"].y > by["deep (a.py)"].y
    assert by["old (a.py)"].w == by["removed in B"].w  # scaled to what vanished


def test_no_removed_section_when_nothing_vanished() -> None:
    svg = render_diff_svg(diff(cpu(stacks(f=1)), cpu(stacks(f=2))), title="t", subtitle="s")
    assert 'data-section="removed"' not in svg and "Removed in B" not in svg


def test_a_side_with_nothing_in_it_still_renders() -> None:
    # B leaked nothing: everything A leaked is removed in B.
    gone = diff(mem({("main (m.py:1)", "leak (m.py:2)"): 5 << 20}), mem({}))
    svg = render_diff_svg(gone, title="t", subtitle="s")
    assert 'data-section="removed" data-name="leak (m.py)"' in svg
    assert gone.removed_rows()[0]["before_pct"] == 100.0
    new = diff(mem({}), mem({("main (m.py:1)", "leak (m.py:2)"): 5 << 20}))
    assert new.functions(top=5)[0]["status"] == "new"
    ET.fromstring(render_diff_svg(new, title="t", subtitle="s"))


# -- reading files ---------------------------------------------------------------------------------


def test_speedscope_written_by_profkit_reads_back_with_its_counts_and_rate(tmp_path: Path) -> None:
    st = Stacks({(MAIN, "f (a.py:3)"): 7, (MAIN, "g (b.py)"): 1, ("solo",): 2})
    path = tmp_path / "p.speedscope.json"
    path.write_text(json.dumps(to_speedscope(st, name="x", rate_hz=250)))
    p = load_speedscope(path)
    assert p.stacks.counts == st.counts and p.counted and p.rate_hz == 250 and p.kind == CPU


def test_speedscope_of_py_spy_one_entry_per_sample_reads_as_counts(tmp_path: Path) -> None:
    # py-spy writes each sample on its own, weighing 1/rate; no stack is seen only once here.
    frames = [{"name": "f", "file": "/srv/app/a.py", "line": 1}, {"name": "g", "file": "/srv/app/a.py", "line": 2}]
    samples = [[0]] * 6 + [[1]] * 4
    doc = {"shared": {"frames": frames}, "profiles": [{"type": "sampled", "unit": "seconds", "samples": samples,
                                                       "weights": [0.01] * 10}]}
    path = tmp_path / "py-spy.speedscope.json"
    path.write_text(json.dumps(doc))
    p = load_speedscope(path)
    assert p.counted and p.rate_hz == 100
    assert p.stacks.counts == {("f (/srv/app/a.py:1)",): 6, ("g (/srv/app/a.py:2)",): 4}


def test_one_file_spelt_two_ways_is_one_function() -> None:
    # py-spy's collapsed stacks shorten paths, its speedscope and memray do not.
    a = cpu({("main (/srv/app/pkg/a.py:1)", "f (/srv/app/pkg/a.py:2)"): 50,
             ("main (/srv/app/pkg/a.py:1)", "g (/srv/x/__init__.py:3)"): 50})
    b = cpu({("main (pkg/a.py:1)", "f (pkg/a.py:2)"): 80, ("main (pkg/a.py:1)", "g (__init__.py:3)"): 10,
             ("main (pkg/a.py:1)", "h (/srv/y/__init__.py:3)"): 10})
    d = diff(a, b)
    rows = {(r["function"], r["file"]): r for r in d.functions(top=10)}
    assert rows[("f", "pkg/a.py")]["self_before_pct"] == 50 and rows[("f", "pkg/a.py")]["self_after_pct"] == 80
    assert ("main", "pkg/a.py") not in rows  # 100 % of both once the paths agree
    # __init__.py could be either package's: left alone rather than guessed
    assert d.tree.children["main (pkg/a.py)"].children["g (/srv/x/__init__.py)"].after == 0


def test_speedscope_weights_that_are_no_sample_counts_compare_by_share_only(tmp_path: Path) -> None:
    doc = to_speedscope(Stacks({("f (a.py:1)",): 1, ("g (a.py:2)",): 2}), name="x", rate_hz=100)
    doc["profiles"][0]["weights"] = [0.0314159, 0.0271828]  # durations, not multiples of a sample
    path = tmp_path / "p.speedscope.json"
    path.write_text(json.dumps(doc))
    p = load_speedscope(path)
    assert not p.counted and p.stacks.total > 0


def test_files_of_each_kind_and_their_failures(tmp_path: Path) -> None:
    good = tmp_path / "a.collapsed"
    good.write_text("main (a.py:1);f (a.py:2) 5\nmain (a.py:1) 1\n")
    assert load_file(good).stacks.total == 6
    empty = tmp_path / "empty.collapsed"
    empty.write_text("nothing here\n")
    with pytest.raises(TargetError, match="no stacks"):
        load_collapsed(empty)
    broken = tmp_path / "b.speedscope.json"
    broken.write_text("{not json")
    with pytest.raises(TargetError, match="not a speedscope"):
        load_file(broken)
    evented = tmp_path / "e.speedscope.json"
    evented.write_text(json.dumps({"shared": {"frames": []}, "profiles": [{"type": "evented"}]}))
    with pytest.raises(UsageError, match="evented"):
        load_file(evented)
    junk = tmp_path / "c.bin"
    junk.write_bytes(b"not a capture")
    with pytest.raises(TargetError, match="memray"):
        load_file(junk)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(UsageError, match="not a profile"):
        load_file(text)


# -- finding each side in the store ----------------------------------------------------------------

SHA_A = "aaaa1111bbbb2222cccc3333dddd4444eeee5555"
SHA_B = "bbbb1111bbbb2222cccc3333dddd4444eeee5555"


def _flame_run(store: Path, sha: str, counts: str, *, dirty: bool = False, started: float = 0.0,
               sampling: dict[str, object] | None = None, status: str = "complete") -> Path:
    with ArtifactStore(store).open_run("flame", commit=Commit(sha, dirty), target={}, tools={}) as run:
        run.write("profile.collapsed", counts.encode(), "collapsed")
        if sampling is not None:
            run.manifest["sampling"] = sampling
        run.finish(status)
    manifest = json.loads((run.folder / "manifest.json").read_text())
    manifest["started_at"] = started or time.time()
    (run.folder / "manifest.json").write_text(json.dumps(manifest))
    return run.folder


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    _flame_run(root, SHA_A, "main (a.py:1);f (a.py:2) 500\nmain (a.py:1);g (a.py:3) 500\n", started=1000)
    # The newest flame run of commit A, with a stack of its own: this is the one a diff of A reads.
    _flame_run(root, SHA_A, "main (a.py:1);f (a.py:2) 300\nmain (a.py:1);g (a.py:3) 700\n", started=2000)
    _flame_run(root, SHA_A, "main (a.py:1);f (a.py:2) 1\n", started=3000, status="failed")
    _flame_run(root, SHA_B, "main (a.py:1);f (a.py:2) 900\nmain (a.py:1);g (a.py:3) 100\n", started=1500)
    return root


def test_commits_by_sha_prefix_take_their_newest_complete_flame_run(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy.svg"
    doc = run_diff(a="aaaa1111", b=SHA_B, store=store, top=5, min_share_pct=0.5, out=out)
    f = doc["findings"]
    assert f["a"]["source"] == "commit" and f["a"]["run"] is not None and f["a"]["run"].startswith("aaaa1111bbbb/")
    assert f["a"]["total"] == 1000 and f["b"]["total"] == 1000
    first = f["functions"][0]
    assert first["function"] in {"f", "g"} and first["significant"]
    assert {r["function"]: r["self_delta_pct"] for r in f["functions"]} == {"f": 60.0, "g": -60.0}
    assert doc["command"] == "diff" and doc["status"] == "complete"
    kinds = {a["kind"]: Path(a["path"]) for a in doc["artifacts"]}
    assert set(kinds) == {"diff-svg", "diff-json"}
    assert json.loads(kinds["diff-json"].read_text())["functions"] == f["functions"]
    ET.fromstring(kinds["diff-svg"].read_text())
    assert out.read_bytes() == kinds["diff-svg"].read_bytes() and f["out"] == str(out)
    manifest = json.loads((Path(doc["folder"]) / "manifest.json").read_text())
    assert manifest["command"] == "diff" and manifest["target"]["a"]["spec"] == "aaaa1111"


def test_a_run_folder_and_a_file_are_sides_too(store: Path, tmp_path: Path) -> None:
    folder = sorted((store / "bbbb1111bbbb").iterdir())[0]
    doc = run_diff(a=str(folder / "profile.collapsed"), b=str(folder), store=store, top=5, min_share_pct=0.5)
    assert doc["findings"]["a"]["source"] == "file" and doc["findings"]["b"]["source"] == "run"
    assert doc["findings"]["functions"] == []


def test_missing_and_ambiguous_sides_are_refused_naming_what_exists(store: Path, tmp_path: Path) -> None:
    before = snapshot(store)
    with pytest.raises(UsageError, match=r"'cafe' is not a file, a run folder or a commit .*aaaa1111bbbb, bbbb1111"):
        run_diff(a="cafe", b=SHA_B, store=store, top=5, min_share_pct=0.5)
    with pytest.raises(UsageError, match=r"no such file or run folder .*holds: store"):
        run_diff(a=str(tmp_path / "gone.collapsed"), b=SHA_B, store=store, top=5, min_share_pct=0.5)
    with pytest.raises(UsageError, match=r"has no complete mem run .*3 flame"):
        run_diff(a=SHA_A, b=SHA_B, store=store, top=5, min_share_pct=0.5, mem=True)
    _flame_run(store, "aaaa9999" + "0" * 32, "main (a.py:1) 1\n")
    with pytest.raises(UsageError, match="matches several commits"):
        run_diff(a="aaaa", b=SHA_B, store=store, top=5, min_share_pct=0.5)
    unreadable = tmp_path / "x.speedscope.json"
    unreadable.write_text("[]")
    with pytest.raises(TargetError):
        run_diff(a=str(unreadable), b=SHA_B, store=store, top=5, min_share_pct=0.5)
    assert {k for k in snapshot(store) if not k.startswith("aaaa9999")} == set(before)  # no diff run was filed


def test_clean_runs_are_preferred_and_the_dirty_folder_can_be_named(store: Path) -> None:
    _flame_run(store, SHA_B, "main (a.py:1);h (a.py:4) 10\n", dirty=True)
    clean = run_diff(a=SHA_A, b="bbbb1111", store=store, top=5, min_share_pct=0.5)
    assert clean["findings"]["b"]["run"].startswith("bbbb1111bbbb/")  # type: ignore[union-attr]
    dirty = run_diff(a=SHA_A, b="bbbb1111bbbb-dirty", store=store, top=5, min_share_pct=0.5)
    assert dirty["findings"]["b"]["run"].startswith("bbbb1111bbbb-dirty/")  # type: ignore[union-attr]


def test_runs_sampled_differently_are_refused(store: Path) -> None:
    _flame_run(store, "cccc" + "1" * 36, "main (a.py:1) 5\n", sampling={"idle": False, "gil": True, "rate_hz": 100})
    _flame_run(store, "dddd" + "1" * 36, "main (a.py:1) 5\n", sampling={"idle": False, "gil": False, "rate_hz": 100})
    with pytest.raises(UsageError, match="--gil"):
        run_diff(a="cccc1111", b="dddd1111", store=store, top=5, min_share_pct=0.5)


def test_leaks_apply_to_memory_only(store: Path) -> None:
    with pytest.raises(UsageError, match="has no complete mem run"):
        run_diff(a=SHA_A, b=SHA_B, store=store, top=5, min_share_pct=0.5, leaks=True)
    folder = sorted((store / "bbbb1111bbbb").iterdir())[0]
    with pytest.raises(UsageError, match="--leaks"):
        run_diff(a=str(folder), b=str(folder), store=store, top=5, min_share_pct=0.5, leaks=True)


def test_the_terminal_table_fits_80_columns(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from profkit.render.terminal import artifacts
    from profkit.render.terminal import diff as terminal

    doc = run_diff(a=SHA_A, b=SHA_B, store=store, top=5, min_share_pct=0.5)
    buf, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(terminal, "out", Console(file=buf, width=80, soft_wrap=True))
    monkeypatch.setattr(artifacts, "err", Console(file=err, width=80, soft_wrap=True))
    terminal.show(doc)
    text = buf.getvalue()
    table = text.split("changed most", 1)[1].split("significant:", 1)[0]
    assert all(len(line) <= 80 for line in table.splitlines()), text
    assert text.startswith("A aaaa1111bbbb/flame-") and "\nB bbbb1111bbbb/flame-" in text
    assert "30.0→90.0" in text and "+60.0" in text and "70.0→10.0" in text and "-60.0" in text
    assert "z-test" in text and "diff.svg" in err.getvalue()
