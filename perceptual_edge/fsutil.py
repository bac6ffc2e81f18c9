"""Atomic output files: write to a temporary file in the target folder, then rename.

A crash or Ctrl-C never leaves a half-written output, and nothing is overwritten unless asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from perceptual_edge.errors import InputError, OutputExistsError


def check_input(path: str | os.PathLike[str], what: str = "file") -> Path:
    """One clear line if `path` is missing, a folder or empty; `what` names the expected kind."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, expected {what}")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: empty file")
    return p


def check_output(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Fail early (before any work) if `path` cannot be written or exists without `overwrite`."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputExistsError(f"{p} exists; pass --overwrite to replace it")
    if p.exists() and p.is_dir():
        raise InputError(f"{p} is a directory, expected a file path")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"output folder {parent} is not writable")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    The temporary name keeps the suffix so that writers that look at it (PIL, PyAV) pick the
    right format. On any exception the temporary file is removed and `path` is untouched.
    """
    p = check_output(path, overwrite)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".tmp{p.suffix}", dir=p.parent)
    except OSError as e:
        raise InputError(f"cannot write into {p.parent}: {e.strerror or e}") from None
    os.close(fd)
    # mkstemp makes 0600 files; outputs (ONNX, engines, images) must be readable like any file
    # the user writes (a Triton server often runs as another user): apply the umask instead.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, overwrite: bool = True) -> Path:
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, overwrite: bool = True) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (weights and engines can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
