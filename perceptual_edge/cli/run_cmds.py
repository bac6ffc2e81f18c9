"""`pe run`: a model over an image, a folder, stdin or a video. Parses, calls
perceptual_edge.runtime.pipeline, prints, sets the exit code. Heavy imports stay inside."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from perceptual_edge.cli.common import pe_command
from perceptual_edge.errors import InputError

if TYPE_CHECKING:
    from perceptual_edge.runtime.pipeline import RunResult

RUN_HELP = "\n\n".join(
    " ".join(paragraph.split())
    for paragraph in (
        """Run a style or super-resolution model on an image, a folder, stdin or a video.""",
        """MODEL is an .onnx file, a TensorRT .engine, or a .pth checkpoint (run with
        PyTorch). Default outputs (when -o is left out) sit beside the input, named after the
        model:""",
        """Image: photo.jpg -> photo.MODELSTEM.jpg (e.g. photo.wave.jpg).""",
        """Folder: photos/ -> photos.MODELSTEM/, the tree mirrored; unreadable images are
        skipped and listed, and the exit code is non-zero if any failed.""",
        """Stdin: - -> PNG bytes on stdout (or -o FILE); `-o -` sends any image to stdout.""",
        """Video (.mp4 .mov .mkv .webm .avi): clip.mp4 -> clip.MODELSTEM.mp4 with the same
        frame count, frame rate and duration and the audio stream copied untouched (re-encoded,
        with a note, only when the output container cannot hold it); a truncated video gives
        the frames up to the damage and a warning.""",
        """Nothing is overwritten without --overwrite; outputs are written atomically.""",
    )
)


def register(app: typer.Typer) -> None:
    @pe_command(app, "run", help=RUN_HELP)
    def run(
        model: Path = typer.Argument(..., help="Model: .onnx, .engine/.plan/.trt, or .pth."),
        input_: str = typer.Option(
            ..., "--input", "-i", help="Image, folder, video, or - for stdin."
        ),
        output: str | None = typer.Option(
            None, "--output", "-o", help="Output path (see above for defaults); - for stdout."
        ),
        backend: str = typer.Option(
            "auto", help="auto | onnxruntime | openvino | tensorrt | torch (for .pth)."
        ),
        device: str | None = typer.Option(
            None,
            help="cpu | cuda[:N] | tensorrt[:N] (ONNX Runtime provider, GPU N), "
            "CPU | GPU | NPU | AUTO (OpenVINO), or a torch device.",
        ),
        precision: str = typer.Option(
            "auto",
            help="auto | fp32 | fp16 | bf16 (OpenVINO, CPUs with BF16) | int8 (MODEL.int8.onnx, "
            "found beside MODEL).",
        ),
        batch: int = typer.Option(1, min=1, help="Video frames per inference call."),
        crf: int | None = typer.Option(
            None, min=0, max=63, help="Video quality (lower is better; libx264 default 18)."
        ),
        codec: str | None = typer.Option(
            None, help="Video encoder (default libx264; libvpx-vp9 for .webm)."
        ),
        max_size: int | None = typer.Option(
            None, min=1, help="Shrink the input so its long side is at most this many pixels."
        ),
        tile: int | None = typer.Option(
            None,
            min=1,
            help="Run in tiles of N pixels (bounded memory), the same picture as untiled when "
            "NAME.segments/ (from pe export) sits beside the model; else blended, approximate.",
        ),
        tile_overlap: int | None = typer.Option(
            None, min=0, help="Overlap of blended tiles in pixels (no segments folder)."
        ),
        temporal: float | None = typer.Option(
            None,
            min=0.0,
            max=0.99,
            help="Video: steady the style across frames (0..0.99, e.g. 0.8): instance-norm "
            "statistics carried over (NAME.temporal.onnx), flow-guided blending with its texture "
            "detail restored; resets at cuts.",
        ),
        preserve_color: bool = typer.Option(
            False, "--preserve-color", help="Keep the input's colours; take only luminance."
        ),
        strength: float = typer.Option(
            1.0, min=0.0, max=1.0, help="Blend with the input: 0 = input, 1 = full effect."
        ),
        spec: Path | None = typer.Option(
            None,
            "--spec",
            help="A TensorRT plan without NAME.engine.json: the .onnx (or sidecar) it was built "
            "from, for its model contract (default: the .onnx beside the plan).",
        ),
        allow_other_gpu: bool = typer.Option(
            False,
            "--allow-other-gpu",
            help="Run a plan whose sidecar names another GPU of the same compute capability.",
        ),
        as_json: bool = typer.Option(
            False, "--json", help="Print one JSON summary line on stdout."
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    ) -> None:
        from perceptual_edge.models import open_model
        from perceptual_edge.runtime.plan import VideoOptions, execute, plan_run
        from perceptual_edge.runtime.postprocess import RunOptions

        options = RunOptions(
            max_size=max_size,
            tile=tile,
            tile_overlap=tile_overlap,
            preserve_color=preserve_color,
            strength=strength,
            temporal=temporal,
        )
        plan = plan_run(
            model, input_, output, options, VideoOptions(batch, codec, crf), overwrite=overwrite
        )
        if plan.output is None and as_json:
            raise InputError("--json cannot be used when the image goes to stdout (-o -)")
        stdin = sys.stdin.buffer.read() if plan.kind == "stream" else None
        engine = {"spec": spec, "allow_other_gpu": allow_other_gpu}
        with open_model(plan.model, backend, device, precision, **engine) as session:
            encoded, result = execute(plan, session, stdin=stdin)
            backend_name = session.backend_name
        if encoded is not None:
            sys.stdout.buffer.write(encoded)
            sys.stdout.buffer.flush()
            return
        for line in result.failed:
            typer.echo(f"pe: skipped: {line}", err=True)
        for line in result.warnings:
            typer.echo(f"pe: warning: {line}", err=True)
        if as_json:
            summary = {"model": str(model), "backend": backend_name, "input": input_}
            summary.update(result.to_dict())
            typer.echo(json.dumps(summary, sort_keys=True))
        else:
            typer.echo(_describe(result))
        if result.failed:
            raise typer.Exit(InputError.exit_code)


def _describe(result: RunResult) -> str:
    if result.kind == "video":
        audio = {"copied": "audio copied", "re-encoded": "audio re-encoded"}.get(
            result.audio or "", "no audio"
        )
        return f"wrote {result.output} ({result.items} frames, {result.fps:.2f} frames/s, {audio})"
    if result.kind == "folder":
        failed = f", {len(result.failed)} failed" if result.failed else ""
        return f"wrote {result.items} images under {result.output}{failed}"
    return f"wrote {result.output}"
