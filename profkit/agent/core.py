"""The agent: one per process, watching one event loop, answering over HTTP from its own thread.

Start-up has three parts, so that an injected agent never blocks the thread that injects it:
``serve`` binds the HTTP port (any thread), ``bind`` picks the loop and starts aiomonitor's UI
thread (any thread), ``hook`` installs what must be installed on the loop's own thread (the step
sink, the task factory, the unawaited-coroutine counter). Until ``hook`` has run, GET /agent says
``"status": "starting"``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import ipaddress
import json
import os
import platform
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

from .. import loopclock
from ..errors import AgentConfigError as AgentConfigError
from ..errors import TargetError
from ..results import ConsoleSnapshot, TaskDetail
from . import snapshot as snap
from .awaits import coro_name
from .lag import LagProbe
from .recorder import Recorder
from .server import AgentServer, HttpError
from .unawaited import UnawaitedCounter

if TYPE_CHECKING:
    from .aiomon import AgentMonitor

VERSION = 1
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 20104
DEFAULT_MONITOR_PORTS = (20101, 20102, 20103)
MONITOR_START_S = 10.0
CANCEL_WAIT_S = 10.0
HOOK_WAIT_S = 10.0
STOP_WAIT_S = 5.0


@dataclass(frozen=True)
class Config:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    monitor: bool = True
    monitor_ports: tuple[int, int, int] = DEFAULT_MONITOR_PORTS
    allow_remote: bool = False
    history: int = 1000


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> None:
    if is_loopback(host):
        return
    if not allow_remote:
        raise AgentConfigError(
            f"the profkit agent will not listen on {host}: it is not a loopback address, and whoever reaches it "
            "can read the program's tasks, cancel them, and run any Python in it through aiomonitor's console; "
            "use 127.0.0.1 (and an SSH tunnel), or pass allow_remote=True / --allow-remote if you mean it")
    sys.stderr.write(
        f"profkit agent: WARNING: listening on {host}, beyond this machine, without authentication: anyone who "
        "can connect can cancel tasks, and aiomonitor's console runs arbitrary Python in this process\n")
    sys.stderr.flush()


def claim_port(host: str, port: int, what: str) -> int:
    """A port that is free now on ``host`` (``port``, or any when 0); raises when ``port`` is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError as exc:
            raise AgentConfigError(f"the {what} port {port} on {host} is taken ({exc.strerror}): pass another port, "
                                   "or 0 to pick a free one") from None
        return int(s.getsockname()[1])


class Agent:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop: asyncio.AbstractEventLoop | None = None
        self.status = "starting"
        self.recorder: Recorder | None = None
        self.lag: LagProbe | None = None
        self.monitor: AgentMonitor | None = None
        self.gc = loopclock.GcClock()
        self.unawaited = UnawaitedCounter()
        self.server: AgentServer | None = None
        self.ready_file: str | None = None
        self.started_at = time.time()
        self.started_perf = time.perf_counter()
        self.stopped = False
        self._hooked = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._skip: frozenset[CodeType] | None = None

    # -- start-up ------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        """The port the HTTP endpoint listens on (the one picked, when 0 was asked for)."""
        return int(self.server.server_address[1]) if self.server is not None else self.config.port

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def serve(self) -> None:
        """Listen and answer (GET /agent says "starting" until the loop is hooked); any thread."""
        check_host(self.config.host, self.config.allow_remote)
        try:
            self.server = AgentServer((self.config.host.strip("[]"), self.config.port), self,
                                      loopback=is_loopback(self.config.host))
        except OSError as exc:
            raise AgentConfigError(f"the profkit agent cannot listen on {self.config.host}:{self.config.port} "
                                   f"({exc.strerror}): pass another port, or 0 to pick a free one") from None
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="profkit-agent", daemon=True)
        self._thread.start()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch ``loop``; starts aiomonitor's UI thread and waits until it listens. Any thread."""
        self.loop = loop
        self.recorder = Recorder(loop, history=self.config.history)
        self.lag = LagProbe(loop)
        if not self.config.monitor:
            return
        host = self.config.host
        what = ("aiomonitor telnet", "aiomonitor web UI", "aiomonitor console")
        ports = tuple(claim_port(host, p, w) for p, w in zip(self.config.monitor_ports, what, strict=True))
        from .aiomon import AgentMonitor, AgentTask, task_ended

        monitor = AgentMonitor(loop, host=host.strip("[]"), ports=(ports[0], ports[1], ports[2]),
                               history=self.config.history)
        try:
            monitor.start_ui(MONITOR_START_S)
        except RuntimeError as exc:
            monitor.shut(STOP_WAIT_S)
            raise TargetError(f"{exc}; pass monitor=False (--no-monitor) to run the agent without it") from None
        self.monitor = monitor
        if self.recorder.measured:
            monitor.trace_end = False
            self.recorder.recorded_elsewhere = AgentTask
            self.recorder.on_recorded_end = task_ended

    def hook(self) -> None:
        """On the loop's thread (or before the loop runs): install the hooks; the agent is then ready."""
        with self._lock:
            if self.stopped or self._hooked.is_set() or self.recorder is None:
                return
            self.recorder.start()
            if self.monitor is not None:
                self.monitor.hook()
            self.unawaited.install()
            gc.callbacks.append(self.gc.callback)
            self.started_perf = self.recorder.started
            self.status = "ready"
            self._hooked.set()
        self._write_status()

    def wait_hooked(self, timeout: float) -> bool:
        return self._hooked.wait(timeout)

    def fail(self, message: str) -> None:
        self.status = f"failed: {message}"
        self._write_status()

    def _write_status(self) -> None:
        if not self.ready_file:
            return
        write_status(self.ready_file, {"status": self.status, "pid": os.getpid(), "host": self.host,
                                       "port": self.port, "monitor": self.monitor_info()})

    # -- while running -------------------------------------------------------------------------------

    def tick(self) -> None:
        """From the HTTP thread, about every 100 ms."""
        if self.stopped or not self._hooked.is_set():
            return
        if self.lag is not None:
            self.lag.tick()
        if self.monitor is not None:
            self.monitor.drain()

    def loop_thread(self) -> int | None:
        ident = getattr(self.loop, "_thread_id", None)
        if isinstance(ident, int):
            return ident
        return self.lag.loop_thread if self.lag is not None else None

    def skip_codes(self) -> frozenset[CodeType]:
        """Frames that are not the program's: aiomonitor's stock coroutine wrapper (when the program runs its own)."""
        if self._skip is None:
            found: set[CodeType] = set()
            monitor_module = sys.modules.get("aiomonitor.monitor")
            wrapper = getattr(getattr(monitor_module, "Monitor", None), "_coro_wrapper", None)
            code = getattr(wrapper, "__code__", None)
            if isinstance(code, CodeType):
                found.add(code)
            # The step hook and the collector's callback run inside the program's frames: not its code.
            found |= loopclock.own_codes()
            self._skip = frozenset(found)
        return self._skip

    def monitor_info(self) -> dict[str, Any] | None:
        if self.monitor is None:
            return None
        termui, webui, console = self.monitor.ports
        return {"host": self.config.host, "termui_port": termui, "webui_port": webui, "console_port": console}

    def info(self) -> dict[str, Any]:
        return {
            "agent": "profkit",
            "version": VERSION,
            "pid": os.getpid(),
            "python": platform.python_version(),
            "status": self.status,
            "loop": snap.loop_kind(self.loop),
            "steps_measured": bool(self.recorder is not None and self.recorder.measured),
            "task_factory": ("aiomonitor" if self.monitor is not None and self.monitor.factory_installed
                             else "the program's own" if self.loop is not None and self.loop.get_task_factory()
                             else None),
            "host": self.host,
            "port": self.port,
            "started_at": self.started_at,
            "uptime_s": round(time.perf_counter() - self.started_perf, 3),
            "monitor": self.monitor_info(),
        }

    def _require_ready(self) -> None:
        if self.status != "ready" or self.loop is None:
            raise HttpError(503, f"the agent is not ready ({self.status})")

    def snapshot(self) -> ConsoleSnapshot:
        self._require_ready()
        return snap.snapshot(self)

    def task_detail(self, task_id: str) -> TaskDetail:
        self._require_ready()
        assert self.loop is not None
        task = snap.find_task(self.loop, task_id)
        if task is None:
            raise HttpError(404, f"no live task {task_id} (it may have ended)")
        return snap.task_detail(self, task)

    def sample_awaits(self, duration: float, hz: float) -> dict[str, Any]:
        self._require_ready()
        return snap.sample_awaits(self, duration, hz, lambda: self.stopped)

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancel a task from a task of the agent's own on the loop, so the cancellation says who did it."""
        self._require_ready()
        loop = self.loop
        assert loop is not None
        task = snap.find_task(loop, task_id)
        if task is None:
            raise HttpError(404, f"no live task {task_id} (it may have ended)")
        coro = coro_name(task)
        done: concurrent.futures.Future[bool] = concurrent.futures.Future()

        def schedule() -> None:
            try:
                loop.create_task(cancel_from_console(task, done), name="profkit console")
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting HTTP thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(schedule)
        try:
            cancelled = done.result(CANCEL_WAIT_S)
        except concurrent.futures.TimeoutError:
            raise HttpError(504, f"the loop did not run the cancellation within {CANCEL_WAIT_S:g} s (is it "
                                 "blocked?); it will when the loop is free") from None
        return {"cancelled": bool(cancelled), "id": task_id, "name": task.get_name(), "coro": coro}

    # -- the end -------------------------------------------------------------------------------------

    def stop(self, *, keep_autostart: bool = False) -> None:
        """Take every hook out and stop serving; any thread but the HTTP thread. Idempotent."""
        with self._lock:
            if self.stopped:
                return
            self.stopped = True
            self.status = "stopped"
        if self.recorder is not None:
            self.recorder.stop()
        self.unawaited.uninstall()
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self.gc.callback)
        if self.monitor is not None:
            self.monitor.shut(STOP_WAIT_S)
        if not keep_autostart:
            from . import launch

            launch.uninstall()
        server = self.server
        if server is not None:
            if threading.current_thread() is self._thread:
                threading.Thread(target=server.shutdown, name="profkit-agent-stop", daemon=True).start()
            else:
                server.shutdown()
                server.server_close()
        _forget(self)


async def cancel_from_console(task: asyncio.Task[Any], done: concurrent.futures.Future[bool]) -> None:
    # From a task, not a plain callback: the cancellation is then recorded with who asked for it.
    try:
        done.set_result(task.cancel("cancelled from profkit console"))
    except Exception as exc:  # noqa: BLE001 - handed to the waiting HTTP thread
        done.set_exception(exc)


def write_status(path: str, status: dict[str, Any]) -> None:
    """``status`` as JSON at ``path``, whole or not at all (a reader polls for it)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps(status))
        os.replace(tmp, target)


# -- the process's agent -----------------------------------------------------------------------------

_agent: Agent | None = None
_registry = threading.Lock()


def current() -> Agent | None:
    """The agent running in this process, if any."""
    agent = _agent
    return agent if agent is not None and not agent.stopped else None


def _forget(agent: Agent) -> None:
    global _agent
    with _registry:
        if _agent is agent:
            _agent = None


def register(agent: Agent) -> None:
    global _agent
    with _registry:
        if _agent is not None and not _agent.stopped and _agent is not agent:
            raise AgentConfigError(f"a profkit agent already runs in this process, at {_agent.address}; "
                                   "stop it first (profkit.agent.stop())")
        _agent = agent


def start(loop: asyncio.AbstractEventLoop | None = None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          monitor: bool = True, monitor_ports: tuple[int, int, int] = DEFAULT_MONITOR_PORTS,
          allow_remote: bool = False, history: int = 1000) -> Agent:
    """Start the agent for ``loop`` (the running loop when None); call it from the loop's thread.

    Returns the agent already running for this loop if there is one. Port 0 (HTTP or monitor) picks a
    free port; ``Agent.port`` and ``Agent.monitor_info()`` say which.
    """
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise AgentConfigError("profkit.agent.start() needs the event loop: call it from a coroutine, pass "
                                   "loop=, or put `import profkit.agent.auto` at the top of the program") from None
    existing = current()
    if existing is not None and existing.loop is loop:
        return existing
    agent = Agent(Config(host=host, port=port, monitor=monitor, monitor_ports=monitor_ports,
                         allow_remote=allow_remote, history=history))
    try:
        register(agent)
        agent.serve()
        agent.bind(loop)
    except BaseException:
        agent.stop(keep_autostart=True)
        raise
    if asyncio._get_running_loop() is loop or not loop.is_running():
        agent.hook()
    else:
        loop.call_soon_threadsafe(agent.hook)
        agent.wait_hooked(HOOK_WAIT_S)  # a busy loop hooks it later; GET /agent says "starting" till then
    return agent


def stop() -> None:
    """Stop the process's agent (and its autostart), if one runs."""
    agent = current()
    if agent is not None:
        agent.stop()
