"""`pe eval sr`: PSNR/SSIM of an SR model or the bicubic baseline with the standard protocol.

paper_cmds.py owns the `eval` sub-app and calls `register_eval_sr(eval_app)`.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from perceptual_edge.cli.common import pe_command
from perceptual_edge.errors import InputError


def register_eval_sr(eval_app: typer.Typer) -> None:
    @pe_command(eval_app, "sr")
    def eval_sr(
        model: Path | None = typer.Option(
            None, "--model", "-m", help="SR model: .pth, .onnx or .engine (or use --method)."
        ),
        data: Path = typer.Option(..., "--data", "-d", help="Folder of HR images (e.g. Set5)."),
        factor: int = typer.Option(4, "--factor", "-f", help="Upscaling factor: 2, 3, 4 or 8."),
        method: str | None = typer.Option(
            None, "--method", help="'bicubic' to score the MATLAB-bicubic baseline."
        ),
        blur: float | None = typer.Option(
            None,
            "--blur",
            help="Gaussian blur sigma before downsampling (the paper's degradation: 1.0).",
        ),
        histogram_match: bool = typer.Option(
            False,
            "--histogram-match",
            help="Also score the output histogram-matched to the LR input.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        grid: Path | None = typer.Option(
            None, "--grid", help="Write a PNG grid of crops (bicubic | model | HR)."
        ),
        limit: int | None = typer.Option(None, "--limit", help="Score only the first N images."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --grid."),
        device: str | None = typer.Option(
            None, "--device", help="Model device, e.g. cpu or cuda (default: the backend's)."
        ),
    ) -> None:
        """Score super-resolution with the standard protocol (Y channel, MATLAB bicubic)."""
        from perceptual_edge.paper.sreval import evaluate_sr, format_table

        if method is not None and method != "bicubic":
            raise InputError(f"--method must be 'bicubic', got {method!r}")
        if (model is None) == (method is None):
            raise InputError("give either --model M (.pth/.onnx/.engine) or --method bicubic")
        result = evaluate_sr(
            data,
            factor=factor,
            model=model,
            blur=blur,
            histogram_match=histogram_match,
            limit=limit,
            grid=grid,
            overwrite=overwrite,
            device=device,
        )
        if as_json:
            typer.echo(json.dumps(result.to_dict(), allow_nan=False))
        else:
            typer.echo(format_table(result))
