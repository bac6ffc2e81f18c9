"""The image side of `pe run`: one image, stdin/stdout, a folder (tree mirrored), each through a
`Processor`. What to run was validated once by `runtime.plan`; these functions only do the work
(the atomic writers still refuse a file that appeared in between). Video is in `video_run`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perceptual_edge.errors import InputError, PeError
from perceptual_edge.fsutil import FolderMaker
from perceptual_edge.image import (
    decode_image_bytes,
    encode_image,
    iter_image_files,
    load_image,
    save_image,
)
from perceptual_edge.progress import Progress
from perceptual_edge.runtime.postprocess import Processor


@dataclass
class RunResult:
    """What `pe run` reports (and prints with --json)."""

    kind: str  # image | folder | video | stream
    output: str
    items: int = 0  # images or frames written
    seconds: float = 0.0  # wall time end to end
    infer_seconds: float = 0.0  # time inside the network and its pre/post steps
    failed: list[str] = field(default_factory=list)  # "path: reason" for skipped inputs
    warnings: list[str] = field(default_factory=list)
    audio: str | None = None  # none | copied | re-encoded (video)
    size: tuple[int, int] | None = None  # (H, W) of the (last) output

    @property
    def fps(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items()}
        d["fps"] = round(self.fps, 3)
        d["seconds"] = round(self.seconds, 4)
        d["infer_seconds"] = round(self.infer_seconds, 4)
        d["size"] = list(self.size) if self.size else None
        return d


def process_image(processor: Processor, src: Path, dst: Path, overwrite: bool = False) -> RunResult:
    t0 = time.perf_counter()
    image = load_image(src, still=True)
    t1 = time.perf_counter()
    out = processor.run(image)
    infer = time.perf_counter() - t1
    save_image(out, dst, overwrite=overwrite)
    return RunResult(
        "image", str(dst), 1, time.perf_counter() - t0, infer, size=(out.shape[0], out.shape[1])
    )


def process_stream(
    processor: Processor,
    data: bytes | None,
    src: Path | None = None,
    dst: Path | None = None,
    overwrite: bool = False,
) -> tuple[bytes | None, RunResult]:
    """stdin and stdout: the input from `data` (image bytes) or `src`; the result written to
    `dst`, or, with no `dst`, returned as PNG bytes (for stdout)."""
    t0 = time.perf_counter()
    if data is not None:
        image = decode_image_bytes(data)
    else:
        image = load_image(src or Path("-"), still=True)
    t1 = time.perf_counter()
    out = processor.run(image)
    infer = time.perf_counter() - t1
    encoded = None
    if dst is None:
        encoded = encode_image(out, "PNG")
    else:
        save_image(out, dst, overwrite=overwrite)
    result = RunResult(
        "stream", str(dst or "-"), 1, time.perf_counter() - t0, infer, size=out.shape[:2]
    )
    return encoded, result


def folder_outputs(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    """(input, output) pairs: the tree under `src` mirrored under `dst`."""
    pairs = []
    inner = dst.resolve().is_relative_to(src.resolve())  # outputs inside the input tree
    for p in iter_image_files(src):
        if inner and p.resolve().is_relative_to(dst.resolve()):
            continue  # earlier outputs are not inputs
        pairs.append((p, dst / p.relative_to(src)))
    return pairs


def process_folder(
    processor: Processor,
    pairs: tuple[tuple[Path, Path], ...],
    dst: Path,
    overwrite: bool = False,
    progress: bool | None = None,
) -> RunResult:
    """Every (input, output) pair; unreadable images are skipped and listed in `failed`."""
    t0 = time.perf_counter()
    folders = FolderMaker()  # folders that end up empty (every image failed) are removed
    folders.make(dst)
    if not os.access(dst, os.W_OK):
        folders.remove_empty()
        raise InputError(f"output folder {dst} is not writable")
    result = RunResult("folder", str(dst))
    with folders, Progress(len(pairs), "images", enabled=progress) as bar:
        for src_file, out_file in pairs:
            try:
                image = load_image(src_file, still=True)
                t1 = time.perf_counter()
                out = processor.run(image)
                result.infer_seconds += time.perf_counter() - t1
                folders.make(out_file.parent)
                save_image(out, out_file, overwrite=overwrite)
                result.items += 1
                result.size = (out.shape[0], out.shape[1])
            except PeError as e:
                result.failed.append(str(e))
            bar.update()
    result.seconds = time.perf_counter() - t0
    return result
