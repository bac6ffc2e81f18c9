"""Where exact tiling (runtime/exact_tiles.py) keeps the activations of the whole image between
its steps: in memory while they fit a budget, else in a temporary file, read and written by
rows with positioned I/O (never mapped, so the data sits in the page cache and not in the
process's resident memory)."""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError

TMPDIR_ENV = "PE_TILE_TMPDIR"


class ArrayBuffer:
    """A (C, H, W) float32 activation in memory (or a view of the caller's input/output)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.shape = data.shape

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        return np.asarray(self.data[:, y0:y1], dtype=np.float32)

    def write_rows(self, y0: int, rows: np.ndarray) -> None:
        self.data[:, y0 : y0 + rows.shape[1]] = rows

    def close(self) -> None:
        self.data = np.empty((0, 0, 0), np.float32)


class FileBuffer:
    """A (C, H, W) float32 activation in a temporary file, rows contiguous ((H, C, W) on disk):
    positioned reads and writes, never mapped, so it does not count in the process's memory."""

    def __init__(self, shape: tuple[int, int, int], folder: str | None) -> None:
        self.shape = shape
        c, h, w = shape
        self.row_bytes = c * w * 4
        try:
            self.file = tempfile.TemporaryFile(prefix="pe-tiles-", dir=folder)
            self.file.truncate(self.row_bytes * h)
        except OSError as e:
            raise InputError(
                f"exact tiling: cannot make a {self.row_bytes * h / 2**30:.1f} GiB temporary "
                f"file in {folder or tempfile.gettempdir()} ({e.strerror or e}); set "
                f"${TMPDIR_ENV} to a folder with room"
            ) from None

    def read_rows(self, y0: int, y1: int) -> np.ndarray:
        c, _, w = self.shape
        out = np.empty((y1 - y0, c, w), np.float32)
        view = memoryview(out).cast("B")
        done, offset = 0, y0 * self.row_bytes
        while done < len(view):
            n = os.preadv(self.file.fileno(), [view[done:]], offset + done)
            if n <= 0:
                raise OSError("short read from the tiling store")
            done += n
        return out.transpose(1, 0, 2)

    def write_rows(self, y0: int, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(rows.transpose(1, 0, 2), dtype=np.float32)
        view = memoryview(data).cast("B")
        done, offset = 0, y0 * self.row_bytes
        while done < len(view):
            done += os.pwrite(self.file.fileno(), view[done:], offset + done)

    def close(self) -> None:
        self.file.close()


class Store:
    def __init__(self, memory_bytes: int, folder: str | None) -> None:
        self.buffers: dict[str, Any] = {}
        self.memory_left = memory_bytes
        self.folder = folder

    def new(self, name: str, shape: tuple[int, int, int]) -> Any:
        nbytes = 4 * math.prod(shape)
        if nbytes <= self.memory_left:
            self.memory_left -= nbytes
            buf: Any = ArrayBuffer(np.empty(shape, np.float32))
        else:
            buf = FileBuffer(shape, self.folder)
        self.buffers[name] = buf
        return buf

    def free(self, name: str) -> None:
        buf = self.buffers.pop(name, None)
        if isinstance(buf, ArrayBuffer) and buf.data.size:
            self.memory_left += buf.data.nbytes
        if buf is not None:
            buf.close()

    def close(self) -> None:
        for name in list(self.buffers):
            self.free(name)
