"""`pe export`, `pe verify`, `pe import pytorch-examples`: parse, call the library, print."""

from __future__ import annotations

from pathlib import Path

import typer

from perceptual_edge.cli.common import pe_command
from perceptual_edge.errors import UnavailableError, VerificationError

import_app = typer.Typer(
    help="Convert checkpoints from other projects into perceptual-edge checkpoints.",
    no_args_is_help=True,
)


def _say(line: str) -> None:
    typer.echo(line, err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")

    @pe_command(app, "export")
    def export(
        checkpoint: Path = typer.Argument(..., help="Checkpoint (.pth) to export."),
        out_dir: Path | None = typer.Option(
            None, "-o", "--output-dir", help="Folder for the artifacts (default: beside CKPT)."
        ),
        fp16: bool = typer.Option(False, "--fp16", help="Also write NAME.fp16.onnx."),
        fp16_io: bool = typer.Option(False, "--fp16-io", help="FP16 inputs/outputs too."),
        engine: bool | None = typer.Option(
            None,
            "--engine/--no-engine",
            help="Build a TensorRT engine (default: when TensorRT and a GPU are present).",
        ),
        triton: Path | None = typer.Option(None, "--triton", help="Triton model repository."),
        min_shape: str | None = typer.Option(None, "--min", help="Profile min NxCxHxW."),
        opt_shape: str | None = typer.Option(None, "--opt", help="Profile opt NxCxHxW."),
        max_shape: str | None = typer.Option(None, "--max", help="Profile max NxCxHxW."),
        workspace: int | None = typer.Option(None, "--workspace", help="Workspace MiB."),
        timing_cache: Path | None = typer.Option(None, "--timing-cache", help="Cache file."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    ) -> None:
        """Export CKPT to ONNX (FP32, optionally FP16), a golden file, a TensorRT engine and a
        Triton repository, and verify what was built."""
        from perceptual_edge.export.pipeline import export_checkpoint

        result = export_checkpoint(
            checkpoint,
            out_dir,
            fp16=fp16,
            fp16_io=fp16_io,
            engine=engine,
            triton=triton,
            min_shape=min_shape,
            opt_shape=opt_shape,
            max_shape=max_shape,
            workspace_mib=workspace,
            timing_cache=timing_cache,
            overwrite=overwrite,
            progress=_say,
        )
        for path in (result.onnx, result.fp16_onnx, result.golden, result.engine):
            if path is not None:
                typer.echo(f"wrote {path}")
        for folder in result.triton:
            typer.echo(f"wrote Triton model {folder}")
        for report in result.reports:
            typer.echo(report.table())
        if result.engine is None:
            typer.echo(f"no TensorRT engine built: {result.engine_skipped}")
            typer.echo(f"on a GPU machine with TensorRT 10+: {result.trtexec}")
        if not result.passed:
            raise VerificationError("verification failed (see the table above)")
        if engine and result.engine is None:
            raise UnavailableError(f"--engine was requested but {result.engine_skipped}")

    @pe_command(app, "verify")
    def verify_cmd(
        ref: Path = typer.Argument(..., help="Golden file (.golden.npz) or checkpoint (.pth)."),
        artifact: Path = typer.Argument(..., help="Artifact to check (.onnx or .engine)."),
        backend: str = typer.Option("auto", "--backend", help="auto, onnxruntime or tensorrt."),
        device: str | None = typer.Option(None, "--device", help="cpu, cuda or tensorrt."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Compare ARTIFACT with the PyTorch reference per resolution; exit 5 on failure."""
        from perceptual_edge.export.verify import verify

        report = verify(ref, artifact, backend=backend, device=device)
        typer.echo(report.to_json() if json_out else report.table())
        if not report.passed:
            raise typer.Exit(VerificationError.exit_code)

    @pe_command(import_app, "pytorch-examples")
    def import_pytorch_examples(
        source: Path = typer.Argument(..., help="A fast_neural_style state dict (.pth/.model)."),
        output: Path = typer.Option(..., "-o", "--output", help="Checkpoint to write (.pth)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    ) -> None:
        """Import a pytorch/examples fast_neural_style model (candy, mosaic, udnie, ...)."""
        from perceptual_edge.export.import_pytorch_examples import (
            checkpoint_from_pytorch_examples,
        )

        out = checkpoint_from_pytorch_examples(source, output, overwrite=overwrite)
        typer.echo(f"wrote {out}")
