"""Run a model over a video: decode, inference and encode overlap in three threads joined by
bounded queues, so the network (the slow stage) never waits for I/O and memory stays bounded.

    decode thread --q_in--> inference (calling thread, `batch` frames per call) --q_out--> encode

Audio packets travel through the same queues in file order, so the encoder interleaves them
with the video it belongs to. Any stage's failure stops the others; the output is written
atomically, so a failure or Ctrl-C leaves no half-written file. Also here: the same work for a
single image, a folder (tree mirrored) and stdin, so that the CLI only parses and prints.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, OutputExistsError, PeError
from perceptual_edge.fsutil import check_output
from perceptual_edge.image import (
    decode_image_bytes,
    encode_image,
    iter_image_files,
    load_image,
    save_image,
)
from perceptual_edge.progress import Progress
from perceptual_edge.runtime.postprocess import Processor
from perceptual_edge.video import VideoFrame, VideoReader, VideoWriter

_END = object()  # end of stream
_ABORT = object()  # another stage failed: stop without committing anything


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


def open_model(path: str | Path, backend: str = "auto", device: str | None = None) -> Any:
    """A Session for .onnx/.engine files; the torch reference (`TorchSession`) for a .pth
    checkpoint, imported only then, so the runtime stays torch-free for everything else."""
    p = check_model_path(path)
    if p.suffix.lower() in (".pth", ".pt"):
        from perceptual_edge.runtime.torch_session import TorchSession

        return TorchSession(p, backend=backend, device=device)
    from perceptual_edge.runtime.session import Session

    return Session(p, backend=backend, device=device)


def check_model_path(path: str | Path) -> Path:
    """Fail fast (before any output checks or work) on a missing or unknown model file."""
    from perceptual_edge.runtime.backend import artifact_kind

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such model file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, expected a model file (.onnx, .engine or .pth)")
    if artifact_kind(p) == "unknown" and p.suffix.lower() not in (".pth", ".pt"):
        raise InputError(
            f"{p}: unknown model file type {p.suffix!r} "
            "(expected .onnx, .engine/.plan/.trt, or a .pth checkpoint)"
        )
    return p


def process_image(processor: Processor, src: Path, dst: Path, overwrite: bool = False) -> RunResult:
    t0 = time.perf_counter()
    check_output(dst, overwrite)
    image = load_image(src)
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
    if dst is not None:
        check_output(dst, overwrite)
    image = decode_image_bytes(data) if data is not None else load_image(src or Path("-"))
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


def folder_outputs(src: Path, dst: Path, suffix: str | None = None) -> list[tuple[Path, Path]]:
    """(input, output) pairs: the tree under `src` mirrored under `dst` (same names, or the
    image suffix replaced by `suffix`)."""
    pairs = []
    inner = dst.resolve().is_relative_to(src.resolve())  # outputs inside the input tree
    for p in iter_image_files(src):
        if inner and p.resolve().is_relative_to(dst.resolve()):
            continue  # earlier outputs are not inputs
        rel = p.relative_to(src)
        out = dst / rel
        if suffix:
            out = out.with_suffix(suffix)
        pairs.append((p, out))
    return pairs


def process_folder(
    processor: Processor,
    src: Path,
    dst: Path,
    overwrite: bool = False,
    suffix: str | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Every image under `src` (recursively) into the mirrored tree under `dst`. Unreadable
    images are skipped and listed in `failed`; existing outputs are refused up front unless
    `overwrite`, so nothing is half-done."""
    t0 = time.perf_counter()
    if dst.exists() and not dst.is_dir():
        raise InputError(f"{dst} exists and is not a folder")
    if dst.resolve() == src.resolve() and suffix is None:
        raise InputError("the output folder is the input folder: outputs would replace inputs")
    pairs = folder_outputs(src, dst, suffix)
    if not pairs:
        raise InputError(f"{src}: no image files found (looked for .png, .jpg, ... recursively)")
    existing = [o for _, o in pairs if o.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{len(existing)} output(s) exist under {dst} (first: {existing[0]}); "
            "pass --overwrite to replace them"
        )
    dst.mkdir(parents=True, exist_ok=True)
    if not os.access(dst, os.W_OK):
        raise InputError(f"output folder {dst} is not writable")
    result = RunResult("folder", str(dst))
    with Progress(len(pairs), "images", enabled=progress) as bar:
        for src_file, out_file in pairs:
            try:
                image = load_image(src_file)
                t1 = time.perf_counter()
                out = processor.run(image)
                result.infer_seconds += time.perf_counter() - t1
                out_file.parent.mkdir(parents=True, exist_ok=True)
                save_image(out, out_file, overwrite=overwrite)
                result.items += 1
                result.size = (out.shape[0], out.shape[1])
            except PeError as e:
                result.failed.append(str(e))
            bar.update()
    result.seconds = time.perf_counter() - t0
    return result


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event) -> Any:
    while not stop.is_set():
        try:
            return q.get(timeout=0.05)
        except queue.Empty:
            continue
    return _ABORT


class _Aborted(Exception):
    pass


def process_video(
    processor: Processor,
    src: Path,
    dst: Path,
    *,
    batch: int = 1,
    codec: str | None = None,
    crf: int | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    queue_frames: int = 8,
    on_frame: Callable[[int], None] | None = None,
) -> RunResult:
    """Run `processor` over every frame of `src` into `dst` (same frame count, rate and
    timestamps; audio copied). A truncated input gives the frames up to the damage and a
    warning in the result."""
    if batch < 1:
        raise InputError(f"--batch must be >= 1, got {batch}")
    t0 = time.perf_counter()
    check_output(dst, overwrite)
    reader = VideoReader(src)
    info = reader.info
    total = info.frames or (round(info.duration * info.fps) if info.duration else None)
    stop = threading.Event()
    errors: list[BaseException] = []
    q_in: queue.Queue = queue.Queue(maxsize=max(queue_frames, 2 * batch))
    q_out: queue.Queue = queue.Queue(maxsize=max(queue_frames, 2 * batch))
    result = RunResult("video", str(dst))

    def fail(e: BaseException) -> None:
        errors.append(e)
        stop.set()

    def decode() -> None:
        try:
            for item in reader:
                if isinstance(item, VideoFrame):  # resize here, off the inference thread
                    item.image = processor.prepare(item.image)
                if not _put(q_in, item, stop):
                    return
            _put(q_in, _END, stop)
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            fail(e)

    def encode(bar: Progress) -> None:
        try:
            while True:
                item = _get(q_out, stop)
                if item is _END:
                    break
                if item is _ABORT:
                    raise _Aborted
                if isinstance(item, tuple):
                    image, timing = item
                    writer.write_frame(image, timing)
                    result.size = (image.shape[0], image.shape[1])
                    bar.update()
                    if on_frame is not None:
                        on_frame(writer.frames_written)
                else:
                    writer.write_audio(item)
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            writer.__exit__(type(e), e, None)  # removes the temporary file
            if not isinstance(e, _Aborted):
                fail(e)
            return
        try:
            writer.__exit__(None, None, None)  # flush the encoder, rename into place
        except BaseException as e:  # noqa: BLE001
            fail(e)

    try:
        writer = VideoWriter(dst, info, reader.audio_stream, codec, crf, overwrite)
        writer.__enter__()  # refuse a bad codec/suffix/output before any work
    except BaseException:
        reader.close()
        raise
    with Progress(total, "frames", enabled=progress) as bar:
        decoder = threading.Thread(target=decode, name="pe-decode", daemon=True)
        encoder = threading.Thread(target=encode, args=(bar,), name="pe-encode", daemon=True)
        decoder.start()
        encoder.start()
        try:
            _infer_loop(processor, q_in, q_out, stop, batch, result)
        except BaseException as e:
            fail(e)
        finally:
            if errors:
                stop.set()
            decoder.join()
            encoder.join()
            reader.close()
    if errors:
        err = errors[0]
        if isinstance(err, PeError | KeyboardInterrupt):
            raise err
        import av

        if isinstance(err, av.FFmpegError):
            raise InputError(f"{dst}: video encoding failed ({err})") from None
        raise err
    result.items = writer.frames_written
    result.audio = writer.audio_mode
    result.warnings.extend(writer.notes)
    if reader.warning:
        result.warnings.append(reader.warning)
    if reader.dropped_streams:
        result.warnings.append(
            f"{src}: kept the first video and audio stream; {reader.dropped_streams} other "
            "stream(s) (extra audio tracks, subtitles, data) were not copied"
        )
    result.seconds = time.perf_counter() - t0
    return result


def _infer_loop(
    processor: Processor,
    q_in: queue.Queue,
    q_out: queue.Queue,
    stop: threading.Event,
    batch: int,
    result: RunResult,
) -> None:
    frames: list[VideoFrame] = []
    audio: list[Any] = []  # packets that arrived while a batch was filling

    def flush() -> bool:
        if frames:
            t = time.perf_counter()
            outputs = processor.run_many([f.image for f in frames], prepared=True)
            result.infer_seconds += time.perf_counter() - t
            for f, out in zip(frames, outputs, strict=True):
                if not _put(q_out, (np.ascontiguousarray(out), f), stop):
                    return False
            frames.clear()
        for packet in audio:
            if not _put(q_out, packet, stop):
                return False
        audio.clear()
        return True

    while True:
        item = _get(q_in, stop)
        if item is _ABORT:
            return
        if item is _END:
            if flush():
                _put(q_out, _END, stop)
            return
        if isinstance(item, VideoFrame):
            frames.append(item)
            if len(frames) >= batch and not flush():
                return
        else:
            audio.append(item)
            if not frames and not flush():
                return
