"""A one-line progress bar on stderr: count, frames/s and ETA. Silent when stderr is not a
terminal (logs, pipes, CI), so machine-read output stays clean."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


def format_seconds(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """`with Progress(total, "frames") as p: ... p.update()`; thread-safe enough for one writer."""

    def __init__(
        self,
        total: int | None,
        unit: str = "frames",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        min_interval: float = 0.1,
        width: int = 24,
    ) -> None:
        self.total = total if total and total > 0 else None
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.min_interval = min_interval
        self.width = width
        self.count = 0
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._drawn = False

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.count / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate
        if self.total:
            frac = min(self.count / self.total, 1.0)
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            left = (self.total - self.count) / rate if rate > 0 else float("nan")
            eta = format_seconds(left) if left == left else "--:--"
            return f"[{bar}] {self.count}/{self.total} {self.unit} {rate:.1f}/s ETA {eta}"
        return f"{self.count} {self.unit} {rate:.1f}/s"

    def update(self, n: int = 1) -> None:
        self.count += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw >= self.min_interval or (self.total and self.count >= self.total):
            self._last_draw = now
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()
            self._drawn = True

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
