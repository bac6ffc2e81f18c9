"""One progress bar for every long command (training, optimisation, folders, video).

A single line on stderr: count/total, rate, ETA and optional named values (the loss terms).
Silent when the stream is not a terminal (logs, pipes, CI), so machine-read output stays clean.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TextIO


def format_duration(seconds: float) -> str:
    """H:MM:SS or MM:SS; "?" when unknown (NaN or infinite)."""
    if math.isnan(seconds) or math.isinf(seconds):
        return "?"
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_values(values: Mapping[str, float]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )


class Progress:
    """`with Progress(total, "frames") as p: p.update()`, or `p.set(step, losses)`.

    `start` is where a resumed run begins: the rate counts only the work done in this run, so
    the ETA is honest. One writer thread at a time.
    """

    def __init__(
        self,
        total: int | None,
        unit: str = "it",
        start: int = 0,
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
        self.count = self._count0 = start
        self.values: Mapping[str, float] = {}
        self._t0 = time.perf_counter()
        self._last_draw = -math.inf
        self._drawn = False

    def rate(self, now: float | None = None) -> float:
        elapsed = (now if now is not None else time.perf_counter()) - self._t0
        return (self.count - self._count0) / elapsed if elapsed > 0 else 0.0

    def line(self, now: float | None = None) -> str:
        r = self.rate(now)
        tail = f" {format_values(self.values)}" if self.values else ""
        if self.total is None:
            return f"{self.count} {self.unit} {r:.2f} {self.unit}/s{tail}"
        filled = int(min(self.count / self.total, 1.0) * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        eta = (self.total - self.count) / r if r > 0 else math.nan
        return (
            f"[{bar}] {self.count}/{self.total} {self.unit} {r:.2f} {self.unit}/s "
            f"ETA {format_duration(eta)}{tail}"
        )

    def set(self, count: int, values: Mapping[str, float] | None = None) -> None:
        self.count = count
        if values is not None:
            self.values = values
        if not self.enabled:
            return
        now = time.perf_counter()
        finished = self.total is not None and self.count >= self.total
        if now - self._last_draw >= self.min_interval or finished:
            self._last_draw = now
            self.stream.write("\r" + self.line(now) + "\x1b[K")
            self.stream.flush()
            self._drawn = True

    def update(self, n: int = 1, values: Mapping[str, float] | None = None) -> None:
        self.set(self.count + n, values)

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
