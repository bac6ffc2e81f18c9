"""A small progress bar on stderr: step, it/s, ETA and the loss terms; silent when not a TTY."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or unknown
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_losses(losses: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in losses.items())


class Progress:
    """`update(step, losses)` redraws one line; `close()` ends it.

    The rate is measured from the first update of this run (a resumed run does not count the
    steps it skipped), so the ETA is honest from the second update on.
    """

    def __init__(
        self,
        total: int,
        start: int = 0,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 24,
    ) -> None:
        self.total, self.start = total, start
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.width = width
        self._t0: float | None = None
        self._step0 = start
        self._last_len = 0

    def rate(self, step: int, now: float | None = None) -> float:
        if self._t0 is None:
            return 0.0
        dt = (now if now is not None else time.perf_counter()) - self._t0
        return (step - self._step0) / dt if dt > 0 else 0.0

    def line(self, step: int, losses: Mapping[str, float], now: float | None = None) -> str:
        frac = min(1.0, step / self.total) if self.total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        r = self.rate(step, now)
        eta = (self.total - step) / r if r > 0 else float("nan")
        return (
            f"[{bar}] {step}/{self.total} {r:.2f} it/s ETA {format_duration(eta)} "
            f"{format_losses(losses)}"
        )

    def update(self, step: int, losses: Mapping[str, float]) -> None:
        now = time.perf_counter()
        if self._t0 is None:
            self._t0, self._step0 = now, step
        if not self.enabled:
            return
        text = self.line(step, losses, now)
        pad = " " * max(0, self._last_len - len(text))
        self.stream.write("\r" + text + pad)
        self.stream.flush()
        self._last_len = len(text)

    def close(self) -> None:
        if self.enabled and self._last_len:
            self.stream.write("\n")
            self.stream.flush()
            self._last_len = 0
