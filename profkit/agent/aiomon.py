"""aiomonitor inside the agent: its telnet/web/console UIs, and its record of how tasks ended and who cancelled them.

aiomonitor 0.7.1's task factory is what records termination and cancellation, but as shipped it costs
about 100 us per task (a 20x slowdown of a loop making many short tasks, measured): every task
creation extracts the whole Python stack through ``traceback`` (an ``os.stat`` per file per task),
and every task end and every cancel crosses to aiomonitor's UI thread through a janus queue (a
self-pipe write and a thread wake-up each). So this subclass keeps aiomonitor's data structures and
UIs but records differently:

* creation stacks are kept raw (code object, line) and become ``FrameSummary`` lists only when read;
* ends and cancels go into a deque that the agent's thread drains every 100 ms (and before each
  snapshot) into the dicts aiomonitor's UIs read (``_terminated_tasks``, ``_canceller_chain``, ...);
* the program's coroutine runs unwrapped (aiomonitor wraps it to catch the stack of a failure; the
  traceback of the task's exception is the same stack), so ``task.get_coro()`` stays the program's;
* a failed task's exception is read without ``exception()``, which would silence asyncio's
  "Task exception was never retrieved" for the program;
* the factory is installed only on a loop without one (aiomonitor would replace the program's own).

The UI thread is started from any thread and the factory installed on the loop's thread, apart
(aiomonitor's ``start()`` does both on the loop's thread and waits forever if a port is taken).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import struct
import sys
import threading
import time
import traceback
import weakref
from asyncio.coroutines import _format_coroutine  # type: ignore[attr-defined]
from collections import deque
from collections.abc import Coroutine, Iterator
from types import CodeType, FrameType
from typing import Any

from aiomonitor.monitor import Monitor  # type: ignore[import-untyped]
from aiomonitor.task import TracedTask, persistent_coro  # type: ignore[import-untyped]
from aiomonitor.types import TerminatedTaskInfo  # type: ignore[import-untyped]
from prompt_toolkit.contrib.telnet import server as telnet_server

from .awaits import Frame, chain, coro_name, short_name
from .recorder import Ended

RawStack = tuple[tuple[CodeType, int], ...]  # innermost first

_EVENTS_FILE = asyncio.events.__file__
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_STACK_LIMIT = 48
_QUIET_LOGGERS = ("aiomonitor", "aiomonitor.monitor", "prompt_toolkit.contrib.telnet.server")


def capture(frame: FrameType | None) -> RawStack:
    """The stack from ``frame`` out to the loop's callback runner, cheaply (no source lines, no stat)."""
    out: list[tuple[CodeType, int]] = []
    while frame is not None and len(out) < _STACK_LIMIT:
        code = frame.f_code
        out.append((code, frame.f_lineno))
        if code.co_name == "_run" and code.co_filename == _EVENTS_FILE:
            break  # where aiomonitor's _filter_stack cuts: the loop's own frames are noise
        frame = frame.f_back
    return tuple(out)


def summaries(raw: RawStack) -> list[traceback.FrameSummary]:
    return [traceback.FrameSummary(code.co_filename, line, code.co_name, lookup_line=False)
            for code, line in reversed(raw)]


def created_where(raw: RawStack) -> str | None:
    """The program's line that created the task: the innermost frame outside asyncio."""
    for code, line in raw:
        if not code.co_filename.startswith(_ASYNCIO_DIR) and code.co_filename != __file__:
            return f"{os.path.basename(code.co_filename)}:{line}"
    return None


def trace_id(task_id: int, name: str) -> str:
    """aiomonitor's id of a task (``TracedTask.get_trace_id``), from what it is computed from."""
    return base64.b32encode(struct.pack("P", hash((task_id, name)))).rstrip(b"=").decode()


def _label(name: str, coro: str) -> str:
    return name if coro in ("", name) else f"{name} ({coro})"


class _CreationStacks(weakref.WeakKeyDictionary):  # type: ignore[type-arg]
    """aiomonitor's ``_created_tracebacks``, holding raw stacks that become FrameSummary lists when read."""

    def get(self, key: Any, default: Any = None) -> Any:
        raw = super().get(key)
        return default if raw is None else summaries(raw)

    def __getitem__(self, key: Any) -> Any:
        return summaries(super().__getitem__(key))

    def raw(self, key: Any) -> RawStack | None:
        return super().get(key)


class AgentTask(TracedTask):  # type: ignore[misc]
    """aiomonitor's traced task, recording into the monitor's deque instead of its janus queues."""

    def __init__(self, coro: Coroutine[Any, Any, Any], *, records: deque[tuple[Any, ...]], persistent: bool,
                 loop: asyncio.AbstractEventLoop, name: str | None, context: Any, trace_end: bool) -> None:
        asyncio.Task.__init__(self, coro, loop=loop, name=name, context=context)
        self._records = records
        self._orig_coro = coro
        self._started_at = time.perf_counter()
        self._termination_stack = None
        self._persistent = persistent
        if trace_end:
            # Only where the agent's step sink cannot see the task's last step (uvloop): a done
            # callback is one more loop callback per task.
            self.add_done_callback(self._trace_termination)

    def _trace_termination(self, _: asyncio.Task[Any] | None = None) -> None:
        cancelled = self.cancelled()
        exc = None if cancelled else getattr(self, "_exception", None)
        self._records.append(("ended", id(self), self.get_name(), self._orig_coro, self._started_at,
                              time.perf_counter(), cancelled, exc, self._persistent))

    def cancel(self, msg: Any = None) -> bool:
        try:
            canceller = asyncio.current_task()
        except RuntimeError:
            canceller = None
        if canceller is not None and not self.done():
            where = chain(self).frames if canceller is not self else []
            self._records.append(("cancel", id(self), self.get_name(), id(canceller), canceller.get_name(),
                                  coro_name(canceller), capture(sys._getframe(1)), where))
        return bool(asyncio.Task.cancel(self, msg))  # not TracedTask.cancel: it records into janus


def task_ended(task: asyncio.Task[Any]) -> None:
    """The agent's step sink saw a traced task's last step: record its end as its done callback would."""
    if isinstance(task, AgentTask):
        task._trace_termination()


class _QuietTelnet:
    """prompt_toolkit's telnet server prints ``Got BrokenPipeError`` (or ``CancelledError``) on the program's
    stdout, and a traceback on its stderr, when a connection ends any other way than EOF: a client that
    drops, a port probe that never negotiates and is still there when the monitor stops. While the
    monitor runs, such endings become the EOFError the server handles quietly."""

    undo: list[tuple[Any, str, Any]] = []

    @staticmethod
    def _as_eof(exc: BaseException) -> EOFError:
        error = EOFError(f"telnet connection ended: {type(exc).__name__}")
        error.__cause__ = exc
        return error

    @classmethod
    def install(cls) -> None:
        if cls.undo:
            return
        connection = telnet_server.TelnetConnection
        original_run, original_init = connection.run_application, telnet_server._initialize_telnet

        async def run_application(self: Any) -> None:
            try:
                await original_run(self)
            except (EOFError, KeyboardInterrupt):
                raise
            except BaseException as exc:
                raise cls._as_eof(exc) from exc

        def _initialize_telnet(connection: socket.socket) -> None:
            try:
                original_init(connection)
            except OSError as exc:
                raise cls._as_eof(exc) from exc

        cls.undo = [(connection, "run_application", original_run),
                    (telnet_server, "_initialize_telnet", original_init)]
        connection.run_application = run_application  # type: ignore[method-assign]
        telnet_server._initialize_telnet = _initialize_telnet

    @classmethod
    def uninstall(cls) -> None:
        for owner, name, original in cls.undo:
            setattr(owner, name, original)
        cls.undo = []


# In the program's logs ("Task exception was never retrieved", reprs) a task reads as it would without the agent.
AgentTask.__name__ = AgentTask.__qualname__ = "Task"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """aiomonitor and prompt_toolkit log their start at INFO: not into the program's logs (or stdout)."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        yield
    finally:
        for lg, was in zip(loggers, before, strict=True):
            lg.disabled = was


class AgentMonitor(Monitor):  # type: ignore[misc]
    def __init__(self, loop: asyncio.AbstractEventLoop, *, host: str, ports: tuple[int, int, int],
                 history: int) -> None:
        with _quiet():
            super().__init__(loop, host=host, termui_port=ports[0], webui_port=ports[1], console_port=ports[2],
                             console_enabled=True, hook_task_factory=True, max_termination_history=history)
        self._created_tracebacks = _CreationStacks()
        self._ui_thread.name = "profkit-agent-aiomonitor"
        self.records: deque[tuple[Any, ...]] = deque()
        self.ended: deque[Ended] = deque(maxlen=history)
        self.factory_installed = False
        # Whether traced tasks report their end themselves; where the agent's step sink sees every
        # task's last step, it reports it (AgentTask.ended) instead.
        self.trace_end = True
        self.ui_error: BaseException | None = None
        self.ui_loop_errors = 0
        self._cancelled_by: dict[str, str] = {}
        self._cancelled_where: dict[str, list[Frame]] = {}
        self._drain_lock = threading.Lock()

    @property
    def ports(self) -> tuple[int, int, int]:
        return int(self._termui_port), int(self._webui_port), int(self._console_port)

    def _ui_main(self) -> None:
        try:
            super()._ui_main()
        except BaseException as exc:  # noqa: BLE001 - reported by start_ui, which waits for this thread
            self.ui_error = exc

    async def _ui_main_async(self) -> None:
        # A telnet or web client that drops makes callbacks of the UI's loop fail; asyncio would log
        # each into the program's logging. The UI's loop is the agent's: its errors stay here.
        asyncio.get_running_loop().set_exception_handler(self._ui_loop_error)
        await super()._ui_main_async()

    def _ui_loop_error(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.ui_loop_errors += 1

    def start_ui(self, timeout: float) -> None:
        """Start aiomonitor's UI thread (telnet, web UI) and wait until it listens; from any thread."""
        self._started = True
        self._original_task_factory = None
        _QuietTelnet.install()
        with _quiet():
            self._ui_thread.start()
            deadline = time.monotonic() + timeout
            while not self._ui_started.wait(0.05):
                if not self._ui_thread.is_alive():
                    raise RuntimeError(f"aiomonitor did not start: {self.ui_error or 'its thread ended'}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"aiomonitor did not start within {timeout:g} s")

    def hook(self) -> None:
        """On the loop's thread: trace the tasks made from now on, unless the program has its own factory."""
        loop = self._monitored_loop
        self._event_loop_thread_id = threading.get_ident()
        if loop.get_task_factory() is None:
            loop.set_task_factory(self._create_task)
            self.factory_installed = True

    def shut(self, timeout: float) -> None:
        """Put the loop's task factory back and stop the UI thread (any thread; never waits past ``timeout``)."""
        loop = self._monitored_loop
        if self.factory_installed and loop.get_task_factory() == self._create_task:
            loop.set_task_factory(None)
        self.factory_installed = False
        if self._started and not self.closed:
            ui_loop = getattr(self, "_ui_loop", None)
            forever = getattr(self, "_ui_forever_future", None)
            if ui_loop is not None and forever is not None:
                with contextlib.suppress(RuntimeError):
                    ui_loop.call_soon_threadsafe(forever.cancel)
            self._ui_thread.join(timeout)
            self._closed = True
        if not self._ui_thread.is_alive():
            _QuietTelnet.uninstall()

    def _create_task(self, loop: asyncio.AbstractEventLoop, coro: Any, *, name: str | None = None,
                     context: Any = None) -> asyncio.Task[Any]:
        parent = asyncio.current_task(loop)
        task = AgentTask(coro, records=self.records, persistent=bool(persistent_coro.data) and coro in persistent_coro,
                         loop=loop, name=name, context=context, trace_end=self.trace_end)
        self._created_tracebacks[task] = capture(sys._getframe(1))
        if parent is not None:
            self._created_traceback_chains[task] = weakref.ref(parent)
        return task

    def created(self, task: asyncio.Task[Any]) -> str | None:
        raw = self._created_tracebacks.raw(task)
        return None if raw is None else created_where(raw)

    def drain(self) -> None:
        """Move what the loop recorded into aiomonitor's history (what its UIs read) and ours."""
        with self._drain_lock:
            batch: list[tuple[Any, ...]] = []
            while True:
                try:
                    batch.append(self.records.popleft())
                except IndexError:
                    break
            # Ends beyond what the history keeps would be dropped again at once: skip their cost.
            ends = sum(1 for record in batch if record[0] == "ended")
            skip = max(0, ends - self._max_termination_history)
            for record in batch:
                if record[0] == "cancel":
                    self._cancel(*record[1:])
                elif skip:
                    skip -= 1
                    tid = trace_id(record[1], record[2])
                    self._cancelled_by.pop(tid, None)
                    self._cancelled_where.pop(tid, None)
                    self._canceller_stacks.pop(tid, None)
                    self._canceller_chain.pop(tid, None)
                else:
                    self._end(*record[1:])

    def _cancel(self, task_id: int, name: str, canceller_id: int, canceller_name: str, canceller_coro: str,
                stack: RawStack, where: list[Frame]) -> None:
        target = trace_id(task_id, name)
        self._canceller_chain[target] = trace_id(canceller_id, canceller_name)
        self._canceller_stacks[target] = summaries(stack)
        self._cancelled_by[target] = _label(canceller_name, canceller_coro)
        self._cancelled_where[target] = where

    def _end(self, task_id: int, name: str, coro: Any, started: float, ended: float, cancelled: bool,
             exc: BaseException | None, persistent: bool) -> None:
        tid = trace_id(task_id, name)
        where = self._cancelled_where.pop(tid, None)
        if exc is not None:
            stack: list[traceback.FrameSummary] | None = list(traceback.extract_tb(exc.__traceback__))
        else:
            stack = [traceback.FrameSummary(f.code.co_filename, f.line, f.code.co_name, lookup_line=False)
                     for f in where] if where else None
        info = TerminatedTaskInfo(tid, name=name, coro=_format_coroutine(coro).partition(" ")[0],
                                  started_at=started, terminated_at=ended, cancelled=cancelled,
                                  termination_stack=stack, canceller_stack=None,
                                  exc_repr=repr(exc) if exc is not None else None, persistent=persistent)
        self._terminated_tasks[tid] = info
        if not persistent:
            self._terminated_history.append(tid)
        canceller_stack = self._canceller_stacks.pop(tid, None)
        if canceller_stack:
            info.canceller_stack = canceller_stack
        while len(self._terminated_history) > self._max_termination_history:
            removed = self._terminated_history.pop(0)
            self._terminated_tasks.pop(removed, None)
            self._canceller_chain.pop(removed, None)
            self._canceller_stacks.pop(removed, None)
        qualname = short_name(getattr(coro, "__qualname__", None) or type(coro).__qualname__)
        outcome = "cancelled" if cancelled else "failed" if exc is not None else "finished"
        cancelled_by = self._cancelled_by.pop(tid, None)
        self.ended.append(Ended(tid, name, str(qualname), started, ended, outcome, info.exc_repr,
                                cancelled_by if cancelled else None))

