"""`pe export`, `pe verify`, `pe import pytorch-examples`: parse, call the library, print."""

from __future__ import annotations

from pathlib import Path

import typer

from perceptual_edge.cli.common import comma_list, pe_command
from perceptual_edge.errors import InputError, UnavailableError, VerificationError

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
        int8: bool = typer.Option(
            False, "--int8", help="Also write NAME.int8.onnx (QDQ; needs --calibration)."
        ),
        calibration: Path | None = typer.Option(
            None, "--calibration", help="--int8: folder of real photos to calibrate on."
        ),
        calibration_images: int = typer.Option(
            32, "--calibration-images", min=1, help="--int8: photos to calibrate on."
        ),
        calibration_method: str = typer.Option(
            "percentile", "--calibration-method", help="--int8: percentile, minmax or entropy."
        ),
        int8_float: str | None = typer.Option(
            None,
            "--int8-float",
            help="--int8: convolutions to keep float, comma-separated (default: measured).",
        ),
        int8_target: float | None = typer.Option(
            None, "--int8-target-db", help="--int8: PSNR the layer choice aims at (default 38)."
        ),
        int8_report: bool = typer.Option(
            False, "--int8-report", help="--int8: print the per-layer sensitivity report."
        ),
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
        """Export CKPT to ONNX (FP32, optionally FP16 and INT8), a golden file, a TensorRT engine
        and a Triton repository, and verify what was built."""
        from perceptual_edge.export.int8 import Int8Options
        from perceptual_edge.export.pipeline import export_checkpoint

        int8_options = None
        if int8 or calibration is not None:
            if not (int8 and calibration is not None):
                raise InputError("--int8 and --calibration DIR go together")
            int8_options = Int8Options(
                calibration,
                calibration_images,
                calibration_method,
                list(comma_list(int8_float)) if int8_float else None,
                int8_target,
                int8_report,
            )

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
            int8=int8_options,
        )
        for path in (result.onnx, result.fp16_onnx, result.int8_onnx, result.golden,
                     result.segments, result.temporal, result.engine):  # fmt: skip
            if path is not None:
                typer.echo(f"wrote {path}")
        for folder in result.triton:
            typer.echo(f"wrote Triton model {folder}")
        if result.int8_report:
            typer.echo(result.int8_report)
        for report in result.reports:
            typer.echo(report.table())
        if result.engine is None:
            typer.echo(f"no TensorRT engine built: {result.engine_skipped}")
            typer.echo(f"on a GPU machine with TensorRT 10+: {result.trtexec}")
        if result.trtexec_int8:
            typer.echo(f"INT8 engine (explicit Q/DQ quantization): {result.trtexec_int8}")
        if not result.passed:
            raise VerificationError("verification failed (see the table above)")
        if engine and result.engine is None:
            raise UnavailableError(f"--engine was requested but {result.engine_skipped}")

    @pe_command(app, "verify")
    def verify_cmd(
        ref: Path = typer.Argument(..., help="Golden file (.golden.npz) or checkpoint (.pth)."),
        artifact: Path = typer.Argument(..., help="Artifact to check (.onnx or .engine)."),
        backend: str = typer.Option(
            "auto", "--backend", help="auto, onnxruntime, openvino or tensorrt."
        ),
        device: str | None = typer.Option(
            None, "--device", help="cpu, cuda, tensorrt (ONNX Runtime); CPU, GPU, NPU (OpenVINO)."
        ),
        precision: str = typer.Option(
            "auto", "--precision", help="auto, fp32, fp16, bf16 (OpenVINO) or int8."
        ),
        images: Path | None = typer.Option(
            None, "--images", help="Also verify on real photos from this folder (REF: a .pth)."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Compare ARTIFACT with the PyTorch reference per resolution and on real photos, at the
        thresholds of the precision it computes in; exit 5 on failure."""
        from perceptual_edge.export.verify import photo_reference, verify

        photos = None
        if images is not None:
            if ref.suffix.lower() not in (".pth", ".pt"):
                raise InputError("--images needs a checkpoint (.pth) as REF for the reference")
            photos = photo_reference(ref, images)
        report = verify(
            ref, artifact, backend=backend, device=device, precision=precision, photos=photos
        )
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
