"""A `pe run` invocation, validated once, before any model loads: `plan_run` checks the model
path, the input and every output (kind, suffix, existence, writability, the video encoder) and
returns a `RunPlan`; `execute` carries it out with an open Session. Nothing downstream checks
the same things again (the atomic writers still refuse to replace a file that appeared since).

    plan = plan_run("wave.onnx", "clip.mp4", options=RunOptions(max_size=640))
    with Session(plan.model) as session:
        encoded, result = execute(plan, session)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from perceptual_edge.errors import InputError, OutputExistsError
from perceptual_edge.fsutil import check_output
from perceptual_edge.image import IMAGE_EXTENSIONS
from perceptual_edge.runtime.backend import check_model_path
from perceptual_edge.runtime.pipeline import (
    RunResult,
    folder_outputs,
    process_folder,
    process_image,
    process_stream,
)
from perceptual_edge.runtime.postprocess import Processor, RunOptions
from perceptual_edge.video import VIDEO_EXTENSIONS, check_encoder, is_video_path

if TYPE_CHECKING:
    from perceptual_edge.runtime.session import Session

KINDS = ("image", "folder", "video", "stream")  # stream: an image from stdin


@dataclass(frozen=True)
class VideoOptions:
    batch: int = 1  # frames per inference call
    codec: str | None = None  # None: the container's default (libx264, libvpx-vp9 for .webm)
    crf: int | None = None


@dataclass(frozen=True)
class RunPlan:
    model: Path
    kind: str  # one of KINDS
    source: Path | None  # None: stdin
    output: Path | None  # None: stdout (PNG bytes)
    options: RunOptions = field(default_factory=RunOptions)
    video: VideoOptions = field(default_factory=VideoOptions)
    overwrite: bool = False
    pairs: tuple[tuple[Path, Path], ...] = ()  # folder runs: (input, output) per image


def default_output(source: Path, model: Path) -> Path:
    """photo.jpg + wave.onnx -> photo.wave.jpg; photos/ -> photos.wave/ (beside the input)."""
    tag = model.stem
    if source.is_dir():
        resolved = source.resolve()
        return resolved.parent / f"{resolved.name}.{tag}"
    return source.with_name(f"{source.stem}.{tag}{source.suffix}")


def plan_run(
    model: str | os.PathLike[str],
    input_: str,
    output: str | None = None,
    options: RunOptions | None = None,
    video: VideoOptions | None = None,
    overwrite: bool = False,
) -> RunPlan:
    """Validate a run: `input_` is a path or "-" (stdin), `output` a path, "-" (stdout) or None
    (the default beside the input; stdout for stdin)."""
    model_path = check_model_path(model)
    to_stdout = output == "-" or (input_ == "-" and output is None)
    source: Path | None = None
    if input_ == "-":
        kind = "stream"
    else:
        source = Path(input_)
        if not source.exists():
            raise InputError(f"{source}: no such file or folder")
        kind = "folder" if source.is_dir() else "video" if is_video_path(source) else "image"
    if to_stdout and kind in ("folder", "video"):
        raise InputError(f"-o - (stdout) takes a single image, not a {kind}")
    dst = None if to_stdout else Path(output) if output else default_output(source, model_path)
    if video is None:
        video = VideoOptions()
    if video.batch < 1:
        raise InputError(f"--batch must be >= 1, got {video.batch}")
    options = dataclasses.replace(options or RunOptions(), even=kind == "video")
    pairs: tuple[tuple[Path, Path], ...] = ()
    if kind == "folder":
        assert source is not None and dst is not None
        pairs = _folder_pairs(source, dst, overwrite)
    elif dst is not None:
        if dst.is_dir() and source is not None:
            # -o FOLDER for one image or video: into the folder under its own name, as a folder
            # run names its outputs.
            dst = dst / source.name
        if source is not None and dst.exists() and dst.resolve() == source.resolve():
            raise InputError(f"{dst}: the output would replace the input")
        _check_file_output(dst, kind, overwrite)
        if kind == "video":
            check_encoder(dst, video.codec)
    return RunPlan(model_path, kind, source, dst, options, video, overwrite, pairs)


def _check_file_output(dst: Path, kind: str, overwrite: bool) -> None:
    suffix = dst.suffix.lower()
    if kind == "video" and suffix not in VIDEO_EXTENSIONS:
        known = ", ".join(sorted(VIDEO_EXTENSIONS))
        raise InputError(f"{dst}: a video output needs one of {known}")
    if kind != "video" and suffix not in IMAGE_EXTENSIONS:
        raise InputError(f"{dst}: unknown image suffix {dst.suffix!r} (use .png or .jpg)")
    check_output(dst, overwrite)


def _folder_pairs(src: Path, dst: Path, overwrite: bool) -> tuple[tuple[Path, Path], ...]:
    """Every (input, output) of a folder run; refuses up front what would fail half-way."""
    if dst.exists() and not dst.is_dir():
        raise InputError(f"{dst} exists and is not a folder")
    if dst.resolve() == src.resolve():
        raise InputError("the output folder is the input folder: outputs would replace inputs")
    pairs = folder_outputs(src, dst)
    if not pairs:
        raise InputError(f"{src}: no image files found (looked for .png, .jpg, ... recursively)")
    existing = [o for _, o in pairs if o.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{len(existing)} output(s) exist under {dst} (first: {existing[0]}); "
            "pass --overwrite to replace them"
        )
    return tuple(pairs)


def execute(
    plan: RunPlan, session: Session, stdin: bytes | None = None, progress: bool | None = None
) -> tuple[bytes | None, RunResult]:
    """Carry out a plan with an open session. Returns (PNG bytes for stdout or None, result)."""
    from perceptual_edge.runtime.video_run import process_video

    if plan.options.temporal is not None and plan.kind != "video":
        raise InputError("--temporal applies to video inputs")
    processor = Processor(session, plan.options)
    if plan.kind == "stream" or plan.output is None:
        data = stdin if plan.kind == "stream" else None
        if plan.kind == "stream" and data is None:
            raise InputError("reading an image from stdin: no data given")
        return process_stream(processor, data, plan.source, plan.output, plan.overwrite)
    if plan.kind == "image":
        assert plan.source is not None
        return None, process_image(processor, plan.source, plan.output, plan.overwrite)
    if plan.kind == "folder":
        return None, process_folder(processor, plan.pairs, plan.output, plan.overwrite, progress)
    assert plan.source is not None
    v = plan.video
    result = process_video(
        processor,
        plan.source,
        plan.output,
        batch=v.batch,
        codec=v.codec,
        crf=v.crf,
        overwrite=plan.overwrite,
        progress=progress,
    )
    return None, result
