"""Coroutines created and never awaited, counted as they are destroyed.

CPython reports each one through ``warnings._warn_unawaited_coroutine`` (looked up anew every time),
before any warning filter: wrapping ``warnings.showwarning`` instead would see only what the
filters let through, which by default is the first one per source line, and nothing under
``-W ignore``. The replacement counts, then warns exactly as CPython's does (same message, same
``stacklevel`` from the same frame), so the program's warnings do not change.
"""

from __future__ import annotations

import linecache
import os
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from ..results import Unawaited
from .awaits import short_name


def _where(coro: Any) -> str | None:
    origin = getattr(coro, "cr_origin", None)  # only with sys.set_coroutine_origin_tracking_depth()
    if origin:
        filename, line, _ = origin[0]
        return f"{os.path.basename(filename)}:{line}"
    code = getattr(coro, "cr_code", None)
    if code is None:
        return None
    return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"


def _message(coro: Any) -> str:
    # CPython 3.11's warnings._warn_unawaited_coroutine, word for word.
    msg_lines = [f"coroutine '{coro.__qualname__}' was never awaited\n"]
    if coro.cr_origin is not None:
        def extract() -> Iterator[tuple[str, int, str, str]]:
            for filename, lineno, funcname in reversed(coro.cr_origin):
                line = linecache.getline(filename, lineno)
                yield (filename, lineno, funcname, line)

        msg_lines.append("Coroutine created at (most recent call last)\n")
        msg_lines += traceback.format_list(list(extract()))
    return "".join(msg_lines).rstrip("\n")


class UnawaitedCounter:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str | None], int] = {}
        self.active = False
        self._original: Callable[[Any], None] | None = None
        self._hook: Callable[[Any], None] | None = None

    def install(self) -> None:
        original = getattr(warnings, "_warn_unawaited_coroutine", None)
        if original is None or self._hook is not None:
            return
        counter = self

        def _warn_unawaited_coroutine(coro: Any) -> None:
            if not counter.active:
                original(coro)
                return
            try:
                counter.count(coro)
            except Exception:  # noqa: BLE001,S110 - counting must never change what the program sees
                pass
            # stacklevel=2 from here is the frame CPython's own function would name.
            warnings.warn(_message(coro), category=RuntimeWarning, stacklevel=2, source=coro)

        self._original, self._hook = original, _warn_unawaited_coroutine
        self.active = True
        warnings._warn_unawaited_coroutine = _warn_unawaited_coroutine  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        self.active = False
        if self._hook is not None and getattr(warnings, "_warn_unawaited_coroutine", None) is self._hook:
            warnings._warn_unawaited_coroutine = self._original  # type: ignore[attr-defined]
        # Wrapped again by someone since: the wrapper stays in their chain, passing everything through.
        self._hook = None

    def count(self, coro: Any) -> None:
        name = getattr(coro, "__qualname__", None) or type(coro).__qualname__
        key = (short_name(str(name)), _where(coro))
        # No lock: this runs wherever a coroutine is finalized, garbage collection included, which
        # can be inside rows() on the same thread. A count lost to a race is the price.
        self.counts[key] = self.counts.get(key, 0) + 1

    def rows(self) -> list[Unawaited]:
        items = list(dict(self.counts).items())
        items.sort(key=lambda kv: -kv[1])
        return [{"coro": coro, "count": count, "where": where} for (coro, where), count in items]
