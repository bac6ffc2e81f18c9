"""Shared CLI plumbing: every command is declared with `pe_command` so that a `PeError`
becomes one line on stderr and its exit code, whether `pe` runs from the console script or
under Typer's CliRunner in the tests."""

from __future__ import annotations

import errno
import functools
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from perceptual_edge.errors import InputError, PeError, SystemResourceError, Terminated

# OS errors that are the machine's state, not a bug: one line naming the path, exit 6.
SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EPIPE}

F = TypeVar("F", bound=Callable[..., Any])


def error_line(message: str) -> None:
    typer.echo(f"pe: error: {message}", err=True)


def guarded(func: F) -> F:
    """Turn PeError / Ctrl-C / unexpected exceptions into one stderr line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = os.environ.get("PE_DEBUG") == "1"
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except PeError as e:
            if debug:
                raise
            error_line(str(e))
            raise typer.Exit(e.exit_code) from None
        except Terminated:
            typer.echo("pe: terminated by SIGTERM", err=True)
            raise typer.Exit(143) from None
        except KeyboardInterrupt:
            typer.echo("pe: interrupted", err=True)
            raise typer.Exit(130) from None
        except MemoryError:
            error_line("out of memory; run huge images with --tile N (e.g. --tile 512)")
            raise typer.Exit(SystemResourceError.exit_code) from None
        except OSError as e:
            if debug or e.errno not in SYSTEM_ERRNOS:
                raise_internal(e, debug)
            if e.errno == errno.EPIPE:
                _quiet_stdout()
                error_line("stdout was closed before all of the output was written")
            else:
                where = e.filename or "output"
                error_line(f"{where}: {e.strerror or e}")
            raise typer.Exit(SystemResourceError.exit_code) from None
        except Exception as e:
            raise_internal(e, debug)

    return wrapper  # type: ignore[return-value]


def raise_internal(e: BaseException, debug: bool) -> None:
    """An unexpected exception: one line and exit 70 (the traceback with PE_DEBUG=1)."""
    if debug:
        raise e
    typer.echo(
        f"pe: internal error: {type(e).__name__}: {e} (set PE_DEBUG=1 for a traceback)", err=True
    )
    raise typer.Exit(70) from None


def _quiet_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
    except OSError:
        pass


def pe_command(app: typer.Typer, *args: Any, **kwargs: Any) -> Callable[[F], F]:
    """`@pe_command(app, "name", help=...)` = `@app.command(...)` plus `guarded`."""

    def deco(func: F) -> F:
        app.command(*args, **kwargs)(guarded(func))
        return func

    return deco


def comma_list(text: str) -> tuple[str, ...]:
    """`"relu1_2, relu2_2,"` -> ("relu1_2", "relu2_2"): options that take comma-separated names."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'256,512x384,1920x1080' -> [(256, 256), (384, 512), (1080, 1920)] as (height, width);
    WxH is width first, as screen sizes are written."""
    sizes = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:x(\d+))?", part)
        if not m:
            raise InputError(f"--sizes: bad size {part!r}: use N or WxH, e.g. 512 or 1920x1080")
        w = int(m.group(1))
        h = int(m.group(2)) if m.group(2) else w
        if not (1 <= h <= 16384 and 1 <= w <= 16384):
            raise InputError(f"--sizes: size {part!r} out of range 1..16384")
        sizes.append((h, w))
    if not sizes:
        raise InputError("--sizes: no sizes given")
    return sizes


def square_sizes(text: str) -> list[int]:
    """'256,512,1024' -> [256, 512, 1024] (duplicates dropped, order kept); WxH is refused."""
    sizes = parse_sizes(text)
    if any(h != w for h, w in sizes):
        raise InputError(f"--sizes {text!r}: square sizes only (e.g. 256,512,1024)")
    return list(dict.fromkeys(h for h, _ in sizes))
