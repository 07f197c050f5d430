"""profkit console — watch a running asyncio process's tasks through the profkit agent inside it.

The agent (:mod:`profkit.agent`) is there already (``profkit serve --monitor``, ``python -m profkit.agent``,
``import profkit.agent.auto``) or is injected into a pid with a debugger (:mod:`profkit.inject`); an
injected agent is detached again when the console ends, so the target is left as it was found.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..agent_client import DEFAULT_AGENT, AgentClient, find_agent
from ..console_lints import Thresholds, with_warnings
from ..errors import AgentUnreachable, Interrupted, StoreError, TargetError, UsageError
from ..progress import SILENT, Reporter
from ..render.collapsed import read_collapsed
from ..render.flamegraph_svg import render_svg
from ..results import ConsoleResult, ConsoleSnapshot
from ..session import repo_commit
from ..store import STATUS_PARTIAL, ArtifactStore
from ..targets import Target, require_python_pid

RECORDING_FORMAT = "profkit-console-recording"
RECORDING_VERSION = 1
RECORDING = "recording.jsonl"
AWAITS_COLLAPSED = "awaits.collapsed"
AWAITS_SVG = "awaits.svg"
# An injected agent starts on the loop's next turn; a loop busy with a long step delays that.
READY_TIMEOUT = 20.0


@dataclass
class Connection:
    client: AgentClient
    pid: int | None
    injected: str | None  # how the agent got in, when profkit put it there

    @property
    def address(self) -> str:
        return self.client.address

    def close(self) -> None:
        if self.injected is not None:
            # What profkit injected, profkit takes out: the target goes on as it was.
            self.client.detach()
        self.client.close()


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _attach_code(config: dict[str, Any]) -> str:
    return f"import profkit.agent as _pk; _pk.attach({json.dumps(config)!r})"


def _wait_ready(client: AgentClient, pid: int) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    problem = "it did not answer"
    while time.monotonic() < deadline:
        try:
            info = client.info()
        except AgentUnreachable:
            time.sleep(0.1)
            continue
        status = str(info.get("status", "ready"))
        if status == "ready":
            return info
        if status.startswith("failed"):
            raise TargetError(f"the agent injected into pid {pid} could not start: {status.removeprefix('failed: ')}")
        problem = f"it still says {status!r}"
        time.sleep(0.1)
    raise TargetError(f"the agent injected into pid {pid} was not ready after {READY_TIMEOUT:.0f} s ({problem}): "
                      "its event loop may be blocked; try again when it is responsive")


@contextmanager
def connect(*, agent: str | None, pid: int | None, inject: bool = True, debugger: str | None = None,
            reporter: Reporter = SILENT) -> Iterator[Connection]:
    """The agent to talk to: at ``agent``, inside ``pid`` (injected when missing), or at the default address."""
    if pid is not None and agent is not None:
        raise UsageError("give --pid or --agent, not both")
    if pid is None:
        client = AgentClient(agent or DEFAULT_AGENT)
        try:
            client.info()
        except BaseException:
            client.close()
            raise
        conn = Connection(client, None, None)
    else:
        require_python_pid(pid)
        found = find_agent(pid)
        if found is not None:
            conn = Connection(AgentClient(found), pid, None)
        elif not inject:
            raise TargetError(f"pid {pid} runs no profkit agent; leave out --no-inject to inject one with a debugger, "
                              "or start the program with `python -m profkit.agent`")
        else:
            conn = _inject(pid, debugger, reporter)
    try:
        yield conn
    finally:
        conn.close()


def _inject(pid: int, debugger: str | None, reporter: Reporter) -> Connection:
    from ..inject import inject

    port = _free_port()
    config = {"host": "127.0.0.1", "port": port,
              "monitor_ports": [_free_port(), _free_port(), _free_port()]}
    with reporter.stage(f"injecting the profkit agent into pid {pid}"):
        method = inject(pid, _attach_code(config), debugger=debugger)
        client = AgentClient(f"127.0.0.1:{port}")
        try:
            _wait_ready(client, pid)
        except BaseException:
            client.detach()
            client.close()
            raise
    return Connection(client, pid, method)


def _result(conn: Connection, mode: str) -> ConsoleResult:
    return {"command": "console", "mode": mode, "pid": conn.pid, "agent": conn.address, "injected": conn.injected}


def take_snapshot(conn: Connection, thresholds: Thresholds) -> ConsoleSnapshot:
    return with_warnings(conn.client.snapshot(), thresholds)


def run_snapshot(conn: Connection, thresholds: Thresholds, *, settle: float = 1.0) -> ConsoleResult:
    """One snapshot, linted. An agent injected a moment ago has seen no step yet: it watches for
    ``settle`` seconds first, so the figures (and a task blocking the loop) mean something."""
    if conn.injected is not None:
        time.sleep(settle)
    return {**_result(conn, "snapshot"), "snapshot": take_snapshot(conn, thresholds)}


def _target(conn: Connection) -> Target:
    return Target("pid", pid=conn.pid) if conn.pid is not None else Target("command", argv=(f"agent {conn.address}",))


def run_record(conn: Connection, *, out: Path | None, duration: float, interval: float, store: Path,
               thresholds: Thresholds, reporter: Reporter = SILENT) -> ConsoleResult:
    """Snapshots every ``interval`` s for ``duration`` s, one JSON line each, filed in the store (and at ``out``)."""
    if out is not None and out.is_dir():
        raise UsageError(f"--record {out} is a folder; give a file name")
    header = {"format": RECORDING_FORMAT, "version": RECORDING_VERSION, "pid": conn.pid, "agent": conn.address,
              "interval_s": interval, "started_at": time.time()}
    count = 0
    kinds: dict[str, int] = {}
    interrupted = False
    lost: str | None = None
    with ArtifactStore(store).open_run("console", commit=repo_commit(), target=_target(conn).describe(),
                                       tools={"profkit-agent": str(RECORDING_VERSION)}) as run:
        path = run.path(RECORDING)
        with path.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps(header) + "\n")
            deadline = time.monotonic() + duration
            with reporter.stage(f"recording {conn.address} every {interval:g} s for {duration:g} s"):
                try:
                    while True:
                        started = time.monotonic()
                        snap = take_snapshot(conn, thresholds)
                        # Each line is flushed: a recording cut short (Ctrl-C, the target exiting) keeps
                        # every snapshot taken so far.
                        fh.write(json.dumps(snap, separators=(",", ":")) + "\n")
                        fh.flush()
                        count += 1
                        for w in snap["warnings"]:
                            kinds[w["kind"]] = kinds.get(w["kind"], 0) + 1
                        if started + interval > deadline:
                            break
                        time.sleep(max(0.0, started + interval - time.monotonic()))
                except KeyboardInterrupt:
                    interrupted = True
                except AgentUnreachable as exc:
                    lost = str(exc)
        if count == 0:
            raise TargetError(lost or "no snapshot was recorded")
        run.add(RECORDING, "console-recording")
        findings = {"snapshots": count, "interval_s": interval, "warnings_by_kind": kinds}
        problem = "stopped by the user (Ctrl-C) before the end" if interrupted else lost
        run.conclude(findings, problem)
        if out is not None:
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, out)
            except OSError as exc:
                raise StoreError(f"recorded into {run.folder}, but could not copy it to {out}: {exc.strerror}") \
                    from exc
    doc: ConsoleResult = {**_result(conn, "record"), **run.summary(), "snapshots": count}  # type: ignore[typeddict-item]
    if interrupted:
        raise Interrupted(f"interrupted: {count} snapshot(s) recorded in {run.folder} (marked {STATUS_PARTIAL})",
                          result=doc)
    return doc


@dataclass(frozen=True)
class Recording:
    header: dict[str, Any]
    snapshots: list[ConsoleSnapshot]


def load_recording(path: Path) -> Recording:
    """A recording written by :func:`run_record`; one line per problem otherwise."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"no such recording: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"--replay {path} is a folder; give the recording file (recording.jsonl)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the recording {path}: {exc}") from None
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != RECORDING_FORMAT:
        raise UsageError(f"{path} is not a profkit console recording (make one with `profkit console --record FILE`)")
    if int(header.get("version", 0)) > RECORDING_VERSION:
        raise UsageError(f"{path} was recorded by a newer profkit (format version {header['version']})")
    snapshots: list[ConsoleSnapshot] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            snap = json.loads(line)
        except ValueError:
            if number == len(lines):
                break  # the last line of a recording cut off mid-write: keep the rest
            raise UsageError(f"{path}: line {number} is not JSON; the recording is damaged") from None
        if not isinstance(snap, dict) or "tasks" not in snap:
            raise UsageError(f"{path}: line {number} is not a snapshot")
        snapshots.append(cast(ConsoleSnapshot, snap))
    if not snapshots:
        raise UsageError(f"{path} holds no snapshot")
    return Recording(header, snapshots)


def run_awaits(conn: Connection, *, duration: float, hz: float, store: Path,
               reporter: Reporter = SILENT) -> ConsoleResult:
    """Where every task waits: each task's await chain sampled for ``duration`` s, as a flamegraph."""
    with ArtifactStore(store).open_run("console", commit=repo_commit(), target=_target(conn).describe(),
                                       tools={"profkit-agent": str(RECORDING_VERSION)}) as run:
        with reporter.stage(f"sampling every task's await chain at {hz:g} Hz for {duration:g} s"):
            body = conn.client.awaits(duration, hz)
        folded: dict[str, int] = {str(k): int(v) for k, v in dict(body.get("folded") or {}).items()}
        if not folded:
            raise TargetError(f"no task was waiting anywhere during {duration:g} s at {conn.address}")
        text = "".join(f"{stack} {count}\n" for stack, count in sorted(folded.items()))
        run.write(AWAITS_COLLAPSED, text.encode(), "collapsed")
        stacks = read_collapsed(run.path(AWAITS_COLLAPSED))
        samples = int(body.get("samples") or 0)
        svg = render_svg(stacks, title=f"profkit console: where tasks await ({conn.pid or conn.address})",
                         subtitle=f"{samples} samples at {hz:g} Hz")
        run.write(AWAITS_SVG, svg.encode(), "flamegraph-svg")
        run.conclude({"samples": samples, "stacks": len(folded), "hz": hz,
                      "top_awaits": [{"stack": s, "count": c} for s, c in
                                     sorted(folded.items(), key=lambda kv: -kv[1])[:10]]}, None)
    return {**_result(conn, "awaits"), **run.summary()}  # type: ignore[typeddict-item]
