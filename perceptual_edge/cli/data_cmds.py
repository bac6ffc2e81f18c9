"""`pe data coco`: the paper's training images, downloaded, checked and unpacked where
`pe train` looks when `--data` is not given (perceptual_edge.train.datasets)."""

from __future__ import annotations

from pathlib import Path

import typer

from perceptual_edge.cli.common import pe_command
from perceptual_edge.progress import Progress

data_app = typer.Typer(
    name="data",
    help="Download the paper's training data to where `pe train` finds it.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@pe_command(data_app, "coco")
def coco_cmd(
    dir: Path = typer.Option(
        None,
        "--dir",
        help="Where to put it (default: $PE_DATA_HOME/coco, else "
        "~/.local/share/perceptual-edge/coco; `pe train` looks there).",
    ),
    subset: int = typer.Option(
        None,
        "--subset",
        help="Unpack only the first N images by name into train2014-N/ (the paper's SR set: "
        "10000).",
    ),
    keep_zip: bool = typer.Option(
        False, "--keep-zip", help="Keep train2014.zip (13.5 GB) after unpacking."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """MS-COCO train2014 (about 83k images, the paper's style set): resumable download from
    cocodataset.org, MD5-checked, unpacked atomically. Run it again after an interruption."""
    from perceptual_edge.train import datasets  # a runtime-only install has no train/ to load

    root = dir if dir is not None else datasets.coco_dir()
    enabled = False if quiet else None
    with (
        Progress(None, "MiB", enabled=enabled) as down,
        Progress(None, "images", enabled=enabled) as up,
    ):

        def on_bytes(done: int, total: int | None) -> None:
            down.total = total // (1 << 20) if total else None
            down.set(done >> 20)

        def on_image(done: int, total: int) -> None:
            down.close()
            up.total = total
            up.set(done)

        datasets.fetch_dataset(
            datasets.COCO_TRAIN2014,
            root,
            subset=subset,
            keep_zip=keep_zip,
            log=lambda m: typer.echo(m, err=True),
            download_progress=on_bytes,
            unpack_progress=on_image,
        )
