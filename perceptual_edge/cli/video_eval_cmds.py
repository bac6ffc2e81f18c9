"""`pe eval video`: temporal warping error and style fidelity of styled videos
(perceptual_edge/paper/temporal.py). paper_cmds.py owns the `eval` sub-app."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from perceptual_edge.cli.common import pe_command


def register_eval_video(eval_app: typer.Typer) -> None:
    @pe_command(eval_app, "video")
    def eval_video(
        input_: Path = typer.Argument(..., metavar="INPUT", help="The original clip."),
        styled: list[Path] = typer.Argument(..., help="Styled versions of it (same frames)."),
        style: Path | None = typer.Option(
            None, "--style", help="The style image: adds the style-fidelity figure."
        ),
        loss_net: str = typer.Option("vgg16", "--loss-net", help="vgg16 or random."),
        vgg_weights: Path | None = typer.Option(None, "--vgg-weights", help="vgg16 weights."),
        frames: int | None = typer.Option(None, "--frames", min=2, help="Only the first N."),
        strip: Path | None = typer.Option(
            None, "--strip", help="Write a PNG of consecutive frames: input, then each video."
        ),
        strip_start: int = typer.Option(0, "--strip-start", min=0, help="First strip frame."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace the strip."),
    ) -> None:
        """Flicker (E_warp, Lai et al. 2018: flow of the input, occlusion-masked) of each
        styled video against the input's own, and its style loss to --style."""
        from perceptual_edge.fsutil import check_output
        from perceptual_edge.paper.temporal import style_fidelity, warping_error, write_strip

        if strip is not None:
            check_output(strip, overwrite)
        report = warping_error(input_, list(styled), frames)
        if style is not None:
            for path in styled:
                report.style_loss[str(path)] = style_fidelity(path, style, loss_net, vgg_weights)
        if strip is not None:
            write_strip([input_, *styled], strip, start=strip_start, overwrite=overwrite)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), sort_keys=True))
            return
        typer.echo(
            f"{report.input}: {report.frames} frames, {report.pairs} pairs, "
            f"{report.visible:.0%} of pixels visible in both frames of a pair"
        )
        typer.echo(f"  input E_warp {report.input_e_warp:.5f} (the floor)")
        for path, e in report.e_warp.items():
            loss = report.style_loss.get(path)
            extra = f", style loss {loss:.4g}" if loss is not None else ""
            typer.echo(f"  {path}: E_warp {e:.5f}{extra}")
        if strip is not None:
            typer.echo(f"wrote {strip}")
