"""The `pe` command line. Each command only parses, calls the library, prints, and exits.

Commands live in one module per area and register themselves on the app; heavy imports (torch,
onnx, tensorrt, av) happen inside the commands, so `pe --help` is instant and torch-free.
Errors the user can act on (`PeError`) print one line on stderr; set PE_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import os
import sys

import typer

from perceptual_edge.errors import PeError

app = typer.Typer(
    name="pe",
    help="Perceptual-loss style transfer and super-resolution: train, export, run, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # One module per area; each owns its commands.
    from perceptual_edge.cli import bench_cmds, export_cmds, paper_cmds, run_cmds, train_cmds

    for module in (train_cmds, export_cmds, run_cmds, bench_cmds, paper_cmds):
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


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning known failures into one line on stderr."""
    debug = os.environ.get("PE_DEBUG") == "1"
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit:
        raise
    except PeError as e:
        if debug:
            raise
        print(f"pe: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        print("pe: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # an internal error: still one line unless debugging
        if debug:
            raise
        print(
            f"pe: internal error: {type(e).__name__}: {e} (set PE_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        sys.exit(70)
