"""Atomic output files: write to a temporary file in the target folder, then rename.

A crash or Ctrl-C never leaves a half-written output, and nothing is overwritten unless asked.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from perceptual_edge.errors import InputError, OutputExistsError, SystemResourceError

log = logging.getLogger(__name__)

# A temporary file or folder left by a process that was killed (kill -9, power loss) is removed
# by the next write of the same output once nothing has modified it for this long: every writer
# here writes its temporary file from start to end without pausing (a video's encoder adds
# frames continuously), so one untouched for an hour belongs to no live process.
STALE_TEMP_SECONDS = 3600.0
# What tempfile.mkstemp/mkdtemp put between our prefix and suffix: 8 characters from this set.
_TEMP_RANDOM = "[a-z0-9_]{8}"


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
    remove_stale_temps(p)
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


def temp_pattern(path: Path, folder: bool = False) -> re.Pattern[str]:
    """The exact names of the temporary files (atomic_path) or folders (temp_folder_for) made
    for `path`: .STEM.XXXXXXXX.tmp.SUFFIX and .NAME.XXXXXXXX.tmp."""
    if folder:
        return re.compile(rf"\.{re.escape(path.name)}\.{_TEMP_RANDOM}\.tmp")
    return re.compile(rf"\.{re.escape(path.stem)}\.{_TEMP_RANDOM}\.tmp{re.escape(path.suffix)}")


def temp_folder_for(path: Path) -> Path:
    """A new temporary folder beside `path` (to be renamed onto it), named by temp_pattern."""
    remove_stale_temps(path, folder=True)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))


def remove_stale_temps(path: Path, folder: bool = False, now: float | None = None) -> list[Path]:
    """Remove the temporary files (or folders) of `path` that a killed process left: only names
    that match temp_pattern exactly, only those unmodified for STALE_TEMP_SECONDS. Returns what
    was removed (each also logged); a folder that cannot be listed is left alone."""
    pattern = temp_pattern(path, folder)
    limit = (time.time() if now is None else now) - STALE_TEMP_SECONDS
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if entry.is_symlink() or entry.stat().st_mtime > limit:
                continue
            if folder and entry.is_dir():
                shutil.rmtree(entry.path)
            elif not folder and entry.is_file():
                os.unlink(entry.path)
            else:
                continue
        except OSError:
            continue
        removed.append(Path(entry.path))
        log.info("removed %s, left by an interrupted run", entry.path)
    return removed


class FolderMaker:
    """Makes output folders on demand and, when the run ends (however it ends), removes again
    the ones it made that stayed empty: a failed run leaves no empty folders behind."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def make(self, folder: str | os.PathLike[str]) -> Path:
        folder = Path(folder)
        missing = []
        d = folder
        while not d.exists() and d != d.parent:
            missing.append(d)
            d = d.parent
        folder.mkdir(parents=True, exist_ok=True)
        self.made.extend(reversed(missing))  # parents first
        return folder

    def remove_empty(self) -> None:
        for d in reversed(self.made):  # children first
            with contextlib.suppress(OSError):
                d.rmdir()  # only succeeds on an empty folder
        self.made.clear()

    def __enter__(self) -> FolderMaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove_empty()


def check_room(path: str | os.PathLike[str], nbytes: int, what: str) -> None:
    """Make sure `nbytes` more fit beside `path` now, by reserving them (posix_fallocate on a
    temporary file of atomic_path's naming, removed at once): a full disk or an exhausted quota
    is found before hours of work, not at the first write of their result. File systems that
    cannot reserve space (EOPNOTSUPP, EINVAL) are not checked."""
    p = Path(path)
    if not hasattr(os, "posix_fallocate") or nbytes <= 0:
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".tmp{p.suffix}", dir=p.parent)
    except OSError:
        return  # an unwritable folder is reported by the write itself, with its own words
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return
        raise SystemResourceError(
            f"{p.parent}: no room for {what} ({nbytes / 2**20:.0f} MiB): {e.strerror or e}"
        ) from None
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
