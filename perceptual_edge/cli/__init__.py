"""The `pe` command line. Each command only parses, calls the library, prints, and exits.

Commands live in one module per area and register themselves on the app; heavy imports (torch,
onnx, tensorrt, av) happen inside the commands, so `pe --help` is instant and torch-free.
Errors the user can act on (`PeError`) print one line on stderr; set PE_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup

from perceptual_edge.errors import PeError


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown option or command, missing or out-of-range argument) as one
    `pe: error:` line on stderr with a pointer to --help, exit 2, instead of Click's box."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click_exceptions.NoArgsIsHelpError as e:
            e.show()  # `pe` or `pe CMD` alone: the help text, as before
            sys.exit(e.exit_code)
        except click_exceptions.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "pe"
            message = " ".join(e.format_message().split())
            print(f"pe: error: {message} (see '{where} --help')", file=sys.stderr)
            sys.exit(2)
        except click_exceptions.ClickException as e:
            print(f"pe: error: {' '.join(e.format_message().split())}", file=sys.stderr)
            sys.exit(e.exit_code)
        except typer.Abort:
            print("pe: aborted", file=sys.stderr)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="pe",
    cls=_OneLineErrors,
    help="Perceptual-loss style transfer and super-resolution: train, export, run, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # One module per area; each owns its commands.
    from perceptual_edge.cli import (
        bench_cmds,
        data_cmds,
        export_cmds,
        paper_cmds,
        run_cmds,
        train_cmds,
    )

    for module in (train_cmds, data_cmds, export_cmds, run_cmds, bench_cmds, paper_cmds):
        module.register(app)


@app.callback()
def _root() -> None:
    """Perceptual-loss style transfer and super-resolution: train, export, run, evaluate."""


@app.command("version")
def version() -> None:
    """Print the perceptual-edge version."""
    from perceptual_edge import __version__

    typer.echo(__version__)


_register()


def _terminate_like_interrupt() -> None:
    """SIGTERM raises `Terminated` (a KeyboardInterrupt) in the main thread, so every cleanup
    that Ctrl-C runs (temporary outputs removed, threads stopped) runs for it too; `pe train`
    installs its own handler while it trains (it saves a checkpoint first)."""
    import signal

    from perceptual_edge.errors import Terminated

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding application): leave it alone
        pass


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning known failures into one line on stderr."""
    debug = os.environ.get("PE_DEBUG") == "1"
    _terminate_like_interrupt()
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit:
        raise
    except PeError as e:
        if debug:
            raise
        print(f"pe: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:
        from perceptual_edge.errors import Terminated

        terminated = isinstance(e, Terminated)
        print("pe: terminated by SIGTERM" if terminated else "pe: interrupted", file=sys.stderr)
        sys.exit(143 if terminated else 130)
    except Exception as e:  # an internal error: still one line unless debugging
        if debug:
            raise
        print(
            f"pe: internal error: {type(e).__name__}: {e} (set PE_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        sys.exit(70)
