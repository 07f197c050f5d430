"""Where a task is suspended: its await chain, read from another thread without stopping the loop.

A suspended coroutine's ``cr_await`` leads to the coroutine it awaits, down to the innermost one,
whose ``cr_await`` is whatever it waits on (a Future's iterator): that is the chain, outermost
first. A running task's coroutines show nothing there (``cr_await`` is empty while they run), so
its chain is read from the loop thread's current Python stack instead, down to whatever the step
is doing right now. What it waits on becomes a leaf: ``<sleep>``, ``<task NAME>``, ``<gather>``,
``<Future>``, ``<scheduled>`` (ready, waiting for the loop) or ``<running>``.
"""

from __future__ import annotations

import asyncio
import asyncio.tasks
import linecache
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from types import CodeType, CoroutineType, FrameType, GeneratorType
from typing import Any

from ..results import AwaitFrame

MAX_DEPTH = 128
# asyncio.sleep, and the bare yield it makes for sleep(0): shown as the leaf "<sleep>".
_SLEEP_NAMES = {"sleep", "__sleep0"}
_DEFAULT_NAME = re.compile(r"Task-\d+")
_FOLD_UNSAFE = str.maketrans({";": ":", "\n": " ", "\r": " "})

Task = asyncio.Task[Any]


def short_name(qualname: str) -> str:
    """A qualified name without the functions it is nested in: ``main.<locals>.worker`` reads ``worker``."""
    return qualname.rpartition(".<locals>.")[2]


@dataclass(frozen=True, slots=True)
class Frame:
    code: CodeType
    line: int

    @property
    def function(self) -> str:
        return short_name(self.code.co_qualname)

    def label(self) -> str:
        return f"{self.function} ({os.path.basename(self.code.co_filename)}:{self.line})"

    def as_dict(self) -> AwaitFrame:
        return {"function": self.function, "file": self.code.co_filename, "line": self.line}

    def formatted(self) -> str:
        source = linecache.getline(self.code.co_filename, self.line).strip()
        where = f"{self.function} ({self.code.co_filename}:{self.line})"
        return f"{where}: {source}" if source else where


@dataclass(frozen=True, slots=True)
class Chain:
    frames: list[Frame]  # outermost first
    leaf: str | None

    def awaiting(self) -> str | None:
        return self.frames[-1].label() if self.frames else self.leaf


def coro_of(task: Task) -> Any:
    # aiomonitor's traced tasks keep the program's coroutine apart from the one they run.
    orig = getattr(task, "_orig_coro", None)
    return orig if orig is not None else task.get_coro()


def coro_name(task: Task) -> str:
    coro = coro_of(task)
    name = getattr(coro, "__qualname__", None)
    return short_name(name if isinstance(name, str) else type(coro).__qualname__)


def root_name(task: Task) -> str:
    """The task's name for a flamegraph root: default names ("Task-123") are all alike, so they say the coroutine."""
    name = task.get_name()
    if _DEFAULT_NAME.fullmatch(name):
        name = f"Task-* {coro_name(task)}"
    return name.translate(_FOLD_UNSAFE)


def _suspended(task: Task, skip: Collection[CodeType]) -> list[Frame]:
    frames: list[Frame] = []
    obj: Any = task.get_coro()
    for _ in range(MAX_DEPTH):
        kind = type(obj)
        if kind is CoroutineType:
            frame, nxt = obj.cr_frame, obj.cr_await
        elif kind is GeneratorType:
            frame, nxt = obj.gi_frame, obj.gi_yieldfrom
        else:
            break
        if frame is None:
            break
        if frame.f_code not in skip:
            frames.append(Frame(frame.f_code, frame.f_lineno))
        obj = nxt
    return frames


def _running(task: Task, top: FrameType, skip: Collection[CodeType]) -> list[Frame] | None:
    outer = getattr(task.get_coro(), "cr_frame", None)
    stack: list[FrameType] = []
    frame: FrameType | None = top
    while frame is not None and len(stack) < 4 * MAX_DEPTH:
        stack.append(frame)
        if frame is outer:
            break
        frame = frame.f_back
    if frame is None or outer is None:
        return None  # the step ended while we looked
    return [Frame(f.f_code, f.f_lineno) for f in reversed(stack) if f.f_code not in skip]


def _is_sleep(code: CodeType) -> bool:
    return code.co_name in _SLEEP_NAMES and code.co_filename == asyncio.tasks.__file__


def _leaf(task: Task, frames: list[Frame]) -> str | None:
    if task.done():
        return None
    if frames and _is_sleep(frames[-1].code):
        while frames and _is_sleep(frames[-1].code):
            frames.pop()
        return "<sleep>"
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is None or waiter.done():
        return "<scheduled>"
    if isinstance(waiter, asyncio.Task):
        return f"<task {waiter.get_name()}>"
    if type(waiter).__name__ == "_GatheringFuture":
        return "<gather>"
    return "<Future>"


def chain(task: Task, *, skip: Collection[CodeType] = (), running_top: FrameType | None = None) -> Chain:
    """The task's await chain; ``running_top`` is the loop thread's current frame when this task is in a step."""
    if running_top is not None:
        frames = _running(task, running_top, skip)
        if frames is not None:
            return Chain(frames, "<running>")
    frames = _suspended(task, skip)
    leaf = _leaf(task, frames)
    return Chain(frames, leaf)


def folded_key(task: Task, found: Chain) -> str:
    parts = [root_name(task), *(f.label().translate(_FOLD_UNSAFE) for f in found.frames)]
    if found.leaf is not None:
        parts.append(found.leaf.translate(_FOLD_UNSAFE))
    return ";".join(parts)
