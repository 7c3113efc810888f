"""A progress line on stderr for long runs: a redrawn bar on a terminal, a line every 10% otherwise (logs)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str = "findings", stream: TextIO | None = None, min_interval: float = 0.1):
        self.total = max(0, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.done = 0
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self._last_decile = -1
        self._min_interval = min_interval
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._started = time.monotonic()

    def advance(self, step: int = 1) -> None:
        with self._lock:
            self.done += step
            self._draw(final=self.done >= self.total)

    def close(self) -> None:
        with self._lock:
            self._draw(final=True)
            if self._tty:
                self.stream.write("\n")
                self.stream.flush()

    def _draw(self, final: bool) -> None:
        now = time.monotonic()
        rate = self.done / max(now - self._started, 1e-6)
        if self._tty:
            if not final and now - self._last_draw < self._min_interval:
                return
            width = 30
            filled = int(width * self.done / self.total) if self.total else width
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {self.label} ({rate:.0f}/s)"
            )
            self.stream.flush()
            self._last_draw = now
            return
        decile = int(10 * self.done / self.total) if self.total else 10
        if decile > self._last_decile:
            self._last_decile = decile
            self.stream.write(f"progress: {self.done}/{self.total} {self.label} ({rate:.0f}/s)\n")
            self.stream.flush()
