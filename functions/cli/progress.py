"""A progress bar on stderr for long commands, drawn only on a terminal (a pipe or a log file gets nothing).

It cooperates with logging: the CLI's log handler wraps each record in `clear_for_log()`, which wipes the bar's
line, lets the record print on a clean line, and redraws the bar below it. No dependency: this is the one
terminal feature the CLI needs, and it stays out of the Lambda package either way.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

_ACTIVE: list[Progress] = []  # the bar being drawn, if any (one at a time)
_ACTIVE_LOCK = threading.RLock()


@contextlib.contextmanager
def clear_for_log() -> Iterator[None]:
    """Around a write to stderr: clear the bar's line first and redraw it after."""
    with _ACTIVE_LOCK:
        bar = _ACTIVE[-1] if _ACTIVE else None
        if bar is not None:
            bar._erase()
        try:
            yield
        finally:
            if bar is not None:
                bar._redraw()


class Progress:
    def __init__(self, total: int | None, label: str = "findings", stream: TextIO | None = None,
                 min_interval: float = 0.1):
        self.total = None if total is None else max(0, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.done = 0
        self._last_draw = 0.0
        self._min_interval = min_interval
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._started = time.monotonic()
        self._shown = False
        if self._tty:
            with _ACTIVE_LOCK:
                _ACTIVE.append(self)

    @property
    def enabled(self) -> bool:
        return self._tty

    def advance(self, step: int = 1) -> None:
        with _ACTIVE_LOCK:
            self.done += step
            if not self._tty:
                return
            now = time.monotonic()
            if now - self._last_draw >= self._min_interval or self.done == self.total:
                self._redraw()

    def close(self) -> None:
        with _ACTIVE_LOCK:
            if not self._tty:
                return
            self._redraw()
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False
            if self in _ACTIVE:
                _ACTIVE.remove(self)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = f"{self.done / elapsed:.0f}/s"
        if self.total is None:  # a pull: the total is not known in advance
            return f"{self.done} {self.label} ({rate})"
        width = max(10, min(30, shutil.get_terminal_size((80, 24)).columns - 40))
        filled = int(width * self.done / self.total) if self.total else width
        return f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {self.label} ({rate})"

    def _redraw(self) -> None:
        if not self._tty:
            return
        self.stream.write("\r" + self.line() + "\x1b[K")
        self.stream.flush()
        self._shown = True
        self._last_draw = time.monotonic()

    def _erase(self) -> None:
        if self._tty and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False
