"""Errors a user can act on.

Every `PeError` is printed by the CLI as one line on stderr with a non-zero exit code,
never as a traceback. Library code raises the most specific subclass.
"""

from __future__ import annotations


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (libraries put multi-line dumps there), or its
    type name when the message is empty: what a one-line error message quotes."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class PeError(Exception):
    """A failure caused by the user's input or environment, with a message that says what to do."""

    exit_code: int = 1


class InputError(PeError):
    """Bad input: missing, corrupt, truncated, empty, wrong kind, out of range."""

    exit_code = 2


class OutputExistsError(PeError):
    """The output exists and --overwrite was not given."""

    exit_code = 3


class UnavailableError(PeError):
    """A needed library, device, weight file or backend is not available on this machine."""

    exit_code = 4


class SystemResourceError(PeError):
    """The system refused a read or write: disk full, quota, no permission, read-only file
    system, or a reader that closed the pipe; or memory ran out."""

    exit_code = 6


class OutOfMemoryError(SystemResourceError):
    """An inference library could not allocate the memory a run needs (host or GPU). Carries
    the input's (H, W) so that a caller can retry it in tiles."""

    def __init__(self, message: str, hw: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.hw = hw


class VerificationError(PeError):
    """An artifact does not match the reference within the named thresholds."""

    exit_code = 5


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, systemd, Kubernetes): handled like Ctrl-C (outputs in progress are
    removed), then exit 143 with one line."""
