"""Bad input, Ctrl-C and concurrent use, through the real CLI: one line, the documented exit code,
nothing already written lost (issue 12)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import PROFKIT, REPO, profkit, snapshot

pytestmark = pytest.mark.slow


def one_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """GIVEN a command that must fail THEN it fails with ``code`` and exactly one line on stderr."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# -- serve -----------------------------------------------------------------------------------------


def test_serve_refuses_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_text("not a database\n")
    line = one_line(profkit("serve", "--db", str(bad), timeout=60), 2)
    assert "not an SQLite database" in line
    assert bad.read_text() == "not a database\n"


def test_serve_refuses_a_folder_as_db(tmp_path: Path) -> None:
    assert "is a folder" in one_line(profkit("serve", "--db", str(tmp_path), timeout=60), 2)


def test_serve_refuses_an_unknown_embedder(tmp_path: Path) -> None:
    line = one_line(profkit("serve", "--db", str(tmp_path / "a.db"), "--embedder", "bogus", timeout=60), 2)
    assert "'hashing'" in line


def test_serve_refuses_a_model_that_is_not_there(tmp_path: Path) -> None:
    proc = profkit("serve", "--db", str(tmp_path / "a.db"), "--embedder", "st:/nonexistent-model", timeout=60)
    # Without the optional extra that is a missing tool (3); with it, a path with no model (2).
    line = one_line(proc, proc.returncode if proc.returncode in (2, 3) else 2)
    assert "sentence-transformers" in line or "no model at /nonexistent-model" in line


def test_serve_on_a_port_in_use_says_so_before_any_banner(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_line(profkit("serve", "--port", str(port), "--db", str(tmp_path / "a.db"), timeout=60), 2)
    assert "already in use" in line and str(port) in line


# -- options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, option", [
    (("flame", "--duration", "abc", "--", "python", "-c", "pass"), "--duration"),
    (("flame", "--rate", "0", "--", "python", "-c", "pass"), "--rate"),
    (("gc",), "--keep"),
    (("runs", "--limit", "-1"), "--limit"),
    (("load", "--duration", "-1"), "--duration"),
    (("ci", "--duration", "-1"), "--duration"),
    (("mem", "--peak-budget", "lots", "--", "python", "-c", "pass"), "--peak-budget"),
])
def test_a_bad_option_is_one_line_and_exit_2_before_any_work(args: tuple[str, ...], option: str,
                                                              tmp_path: Path) -> None:
    proc = profkit(*args, "--store", str(tmp_path / "store")) if args[0] in ("flame", "mem") else profkit(*args)
    assert option in one_line(proc, 2)
    assert not (tmp_path / "store").exists()


def test_ci_with_a_bad_duration_starts_no_engine() -> None:
    started = time.monotonic()
    one_line(profkit("ci", "--duration", "-1"), 2)
    assert time.monotonic() - started < 30  # no engine start-up (seconds) behind the refusal


def test_doctor_of_a_missing_pid_says_why(tmp_path: Path) -> None:
    proc = profkit("doctor", "--pid", "999999", "--json")
    line = one_line(proc, 1)
    assert "999999" in line
    assert json.loads(proc.stdout)["ok"] is False


@pytest.mark.parametrize("command", [("runs",), ("gc", "--keep", "3")])
def test_a_store_that_is_a_file_is_refused(command: tuple[str, ...], tmp_path: Path) -> None:
    not_a_store = tmp_path / "passwd"
    not_a_store.write_text("root:x:0:0\n")
    assert "is a file" in one_line(profkit(*command, "--store", str(not_a_store)), 2)
    assert not_a_store.read_text() == "root:x:0:0\n"


def test_the_users_rust_backtrace_does_not_choose_the_message(tmp_path: Path) -> None:
    env = dict(os.environ, RUST_BACKTRACE="1")
    proc = subprocess.run([str(PROFKIT), "flame", "--store", str(tmp_path), "--", "/nonexistent/prog"],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env, check=False)
    line = one_line(proc, proc.returncode)
    assert proc.returncode != 0
    assert "main" not in line.rsplit(":", 1)[-1], line  # not the last frame of a Rust backtrace


# -- baselines -------------------------------------------------------------------------------------


def test_a_baseline_with_garbage_samples_is_refused_before_measuring(tmp_path: Path) -> None:
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    damaged = {"baseline_version": 1, "name": "v1", "saved_at": 0, "result": {
        "result_version": 2, "kind": "profkit-bench", "ops": ["get"],
        "samples_ns": {"get": [["fast", "slow"], [1, 2]]}}}
    path = baselines / "v1.json"
    path.write_text(json.dumps(damaged))
    before = path.read_bytes()
    started = time.monotonic()
    line = one_line(profkit("bench", "--quick", "--suite", "memory", "--filter", "get", "--baseline", "v1",
                            "--baselines-dir", str(baselines), "--reports", str(tmp_path / "reports"),
                            "--store", str(tmp_path / "store")), 7)
    assert "damaged" in line and "get" in line
    assert time.monotonic() - started < 60  # refused at start-up, not after the whole bench
    assert path.read_bytes() == before
    assert not (tmp_path / "reports").exists()


# -- Ctrl-C ----------------------------------------------------------------------------------------

def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


SPIN = "import time\ndef spin():\n    while True:\n        sum(range(1000))\nspin()\n"


def test_ctrl_c_on_flame_keeps_the_flamegraph_of_what_was_sampled(tmp_path: Path) -> None:
    store = tmp_path / "store"
    # As from a terminal: SIGINT at its default. A test run started in the background by a shell without
    # job control inherits SIGINT ignored, and Python then installs no KeyboardInterrupt at all.
    proc = subprocess.Popen([str(PROFKIT), "flame", "--store", str(store), "--json", "--", sys.executable, "-c", SPIN],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=_sigint_default)
    # Wait until the run is open (its manifest is written just before py-spy starts; py-spy writes its
    # raw file only at the end), give it a few seconds of samples, then press Ctrl-C.
    deadline = time.monotonic() + 60
    while not list(store.glob("*/flame-*/manifest.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # never leave profkit, its py-spy and the spinning program behind
            proc.kill()
            subprocess.run(["pkill", "-9", "-f", "sum\\(range\\(1000\\)\\)"], check=False)
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    doc = json.loads(out)
    assert doc["status"] == "partial" and doc["findings"]["samples"] > 50
    assert doc["findings"]["top_functions"][0]["function"] == "spin"
    folder = Path(doc["folder"])
    assert (folder / "flamegraph.svg").stat().st_size > 0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "partial" and "Ctrl-C" in manifest["error"]
    spinning = subprocess.run(["pgrep", "-f", "sum\\(range\\(1000\\)\\)"], capture_output=True, text=True,
                              check=False)
    assert spinning.stdout.strip() == "", "the profiled program outlived the recording"


# -- the store under concurrent use ----------------------------------------------------------------


def _fake_run(store: Path, commit: str, name: str, status: str, started: float, pid: int | None = None) -> Path:
    folder = store / commit / name
    folder.mkdir(parents=True)
    manifest = {"manifest_version": 1, "command": name.split("-")[0], "status": status, "started_at": started,
                "pid": pid if pid is not None else os.getpid(), "host": socket.gethostname(), "artifacts": []}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_run_whose_profkit_died_is_shown_as_abandoned(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_run(tmp_path, "abc123", "flame-1-1-aaaa", "running", time.time(), pid=dead.pid)
    _fake_run(tmp_path, "abc123", "flame-2-1-bbbb", "running", time.time(), pid=os.getpid())
    proc = profkit("runs", "--store", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    status = {r["run"]: r["status"] for r in json.loads(proc.stdout)["runs"]}
    assert status == {"abc123/flame-1-1-aaaa": "abandoned", "abc123/flame-2-1-bbbb": "running"}
    # Showing is not writing: the manifest still says what its writer last wrote.
    assert json.loads((tmp_path / "abc123/flame-1-1-aaaa/manifest.json").read_text())["status"] == "running"


def test_gc_runs_and_writers_at_once_never_trace_back_or_lose_a_kept_run(tmp_path: Path) -> None:
    store = tmp_path / "store"
    now = time.time()
    for i in range(60):
        _fake_run(store, f"c{i % 6:02d}", f"flame-{i:03d}-1-{i:04x}", "complete", now - 1000 + i)
    # gc keeps at least the 10 newest runs, three of which may be the flame runs written meanwhile.
    newest = {f"c{i % 6:02d}/flame-{i:03d}-1-{i:04x}" for i in range(53, 60)}
    kept_before = snapshot(store)
    procs: list[subprocess.Popen[str]] = []
    for _ in range(3):
        for args in (("gc", "--keep", "10"), ("gc", "--keep", "12"), ("runs", "--json"), ("runs",)):
            procs.append(subprocess.Popen([str(PROFKIT), *args, "--store", str(store)], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, cwd=tmp_path))
        procs.append(subprocess.Popen([str(PROFKIT), "flame", "--duration", "1", "--store", str(store), "--json",
                                       "--", sys.executable, "-c", "import time; time.sleep(1.5)"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path))
    written: list[str] = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert "Traceback" not in err, err
        assert p.returncode == 0, (p.args, err)
        if "flame" in p.args:
            written.append(json.loads(out)["run"])
    listing = {r["run"]: r for r in json.loads(profkit("runs", "--store", str(store), "--json").stdout)["runs"]}
    # The newest seeded runs and every run written meanwhile survive every gc.
    assert newest <= set(listing), sorted(newest - set(listing))
    assert set(written) <= set(listing)
    for run in written:
        assert listing[run]["status"] == "complete"
    # What is left of the seeded runs is exactly as it was: gc removes runs whole or not at all.
    after = snapshot(store)
    for path, digest in after.items():
        if path in kept_before:
            assert kept_before[path] == digest
