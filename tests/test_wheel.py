"""The wheel works away from the repository (issue 9).

Builds the wheel from a copy of the work tree (with the locked setuptools; the build must print no
deprecation warning), installs it with the locked versions into a fresh venv outside the repo, and
runs the installed ``profkit`` from an empty folder: doctor, flame, mem, bench and serve + load,
each of which must exit 0 and file its artifacts under that folder. A run here takes about a
minute, most of it pip downloading and unpacking numpy, scipy, matplotlib and the profilers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

LOCK = REPO / "constraints.txt"
DATA_SUFFIXES = {".html", ".svg", ".toml", ".json"}
# What the wheel is built from: the project's metadata and its two source roots.
SOURCES = {"pyproject.toml": "pyproject.toml", "README.md": "README.md", "profkit": "profkit",
           "targets/agentmem": "targets/agentmem"}
CPU_LOOP = "import time\nt = time.time()\nwhile time.time() - t < 2:\n    sum(i * i for i in range(1000))\n"
ALLOCATE = "blocks = [bytearray(1 << 20) for _ in range(8)]\nprint(sum(len(b) for b in blocks))\n"


@dataclass
class Installed:
    wheel: Path
    build_log: str
    venv: Path
    cwd: Path  # an empty folder outside the repository: the store and reports land here
    env: dict[str, str]

    @property
    def profkit(self) -> str:
        return str(self.venv / "bin" / "profkit")

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.profkit, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=self.cwd, env=self.env, check=False)


def _copy_sources(dest: Path) -> None:
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.db", "*.db-*", "*.db.vectors")
    for src, dst in SOURCES.items():
        s, d = REPO / src, dest / dst
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d, ignore=junk)
        else:
            shutil.copy2(s, d)


def _pip(python: Path | str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert proc.returncode == 0, f"pip {args[0]} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    assert REPO not in root.parents, "the test folder must lie outside the repository"
    src = root / "src"
    _copy_sources(src)
    # -v: pip shows the build backend's own output only when verbose. The build environment gets the
    # locked setuptools (--build-constraint), as dev.sh's installs do.
    build = _pip(sys.executable, "wheel", "-v", "--no-deps", "--disable-pip-version-check", "--progress-bar", "off",
                 "--build-constraint", str(LOCK), "-w", str(root / "dist"), str(src), timeout=300)
    wheels = list((root / "dist").glob("profkit-*.whl"))
    assert len(wheels) == 1, wheels
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # pip's cache is left on, so a rerun does not download the dependencies again.
    _pip(venv / "bin" / "python", "install", "--disable-pip-version-check", "--progress-bar", "off", "--no-compile",
         "-c", str(LOCK), str(wheels[0]), timeout=600)
    cwd = root / "work"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PROFKIT_STORE", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST_CURRENT_TEST")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # as in an activated venv
    yield Installed(wheels[0], build.stdout + build.stderr, venv, cwd, env)


def _runs(installed: Installed, command: str) -> list[Path]:
    """Run folders of one command in the default store (./flamegraphs/<commit or nogit>/...)."""
    return sorted((installed.cwd / "flamegraphs").glob(f"*/{command}-*"))


def test_build_prints_no_deprecation_warning(installed: Installed) -> None:
    log = installed.build_log.lower()
    assert "building wheel" in log, installed.build_log[-2000:]  # the backend's output is there to read
    assert "deprecat" not in log, installed.build_log
    assert "would be ignored" not in log, installed.build_log


def test_wheel_ships_every_module_and_data_file(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    expected: set[str] = set()
    for root, package in ((REPO / "profkit", "profkit"), (REPO / "targets" / "agentmem", "agentmem")):
        for f in root.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts and (f.suffix == ".py" or f.suffix in DATA_SUFFIXES):
                expected.add(f"{package}/{f.relative_to(root).as_posix()}")
    assert "agentmem/perf-budget.toml" in expected
    assert "profkit/render/templates/flamegraph.svg" in expected
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    assert not {n for n in names if n.startswith(("targets/", "tests/"))}
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(installed.wheel).read(entry_points).decode()
    assert "profkit = profkit.cli:main" in scripts and "agentmem = agentmem.server:main" in scripts


def test_installed_code_is_the_wheel_not_the_repo(installed: Installed) -> None:
    proc = subprocess.run([str(installed.venv / "bin" / "python"), "-c",
                           "import agentmem, profkit; print(profkit.__file__); print(agentmem.__file__)"],
                          capture_output=True, text=True, cwd=installed.cwd, env=installed.env, timeout=60,
                          check=True)
    for line in proc.stdout.splitlines():
        assert Path(line).is_relative_to(installed.venv), line


def test_doctor(installed: Installed) -> None:
    proc = installed.run("doctor", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_flame(installed: Installed) -> None:
    proc = installed.run("flame", "--duration", "3", "--", "python", "-c", CPU_LOOP)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [run] = _runs(installed, "flame")
    assert run.parent.name.startswith("nogit"), run  # the empty folder is no git checkout
    for name in ("flamegraph.svg", "profile.speedscope.json", "profile.collapsed", "manifest.json"):
        assert (run / name).stat().st_size > 0, name
    assert "<svg" in (run / "flamegraph.svg").read_text()  # rendered from the packaged template
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"


def test_mem(installed: Installed) -> None:
    # A script rather than `python -c`: profkit mem runs `python SCRIPT` or `python -m MODULE` only.
    (installed.cwd / "allocate.py").write_text(ALLOCATE)
    proc = installed.run("mem", "--", "python", "allocate.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [run] = _runs(installed, "mem")
    for name in ("flamegraph.html", "stats.json", "memray.bin", "manifest.json"):
        assert (run / name).stat().st_size > 0, name
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"


def test_bench_uses_the_packaged_budget(installed: Installed) -> None:
    # Two workers and few rounds: this checks the installed bench (packaged budget, report templates),
    # not the engine's speed.
    proc = installed.run("bench", "--quick", "--suite", "memory", "--workers", "2", "--samples", "20",
                         timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = sorted((installed.cwd / "reports").glob("benchmark_*"))
    assert {p.suffix for p in reports} == {".md", ".html", ".json"}, reports
    markdown = next(p for p in reports if p.suffix == ".md").read_text()
    create = next(line for line in markdown.splitlines() if "| create |" in line)
    assert all(f"≤{ms}" in create for ms in (5, 8, 15)), create  # agentmem/perf-budget.toml's create budget
    [run] = _runs(installed, "bench")
    assert (run / "manifest.json").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_and_load(installed: Installed) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    (installed.cwd / "tmp").mkdir()
    log = installed.cwd / "serve.log"
    with open(log, "wb") as fh:
        serve = subprocess.Popen([installed.profkit, "serve", "--port", str(port), "--db", "tmp/x.db"],
                                 cwd=installed.cwd, env=installed.env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert serve.poll() is None, f"serve exited early: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"serve did not come up: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        proc = installed.run("load", "--url", url, "--duration", "3", "--concurrency", "4", "--json", timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = json.loads(proc.stdout)
        assert report["requests"] > 0 and report["errors"] == 0, report
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGINT)
        try:
            code = serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
            raise
    assert code == 0, log.read_text()[-2000:]
    assert (installed.cwd / "tmp" / "x.db").is_file()
