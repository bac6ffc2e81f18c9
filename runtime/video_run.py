"""Run a model over a video: decode, inference and encode overlap in three threads joined by
bounded queues, so the network (the slow stage) never waits for I/O and memory stays bounded.

    decode thread --q_in--> inference (calling thread, `batch` frames per call) --q_out--> encode

Audio packets travel through the same queues in file order, so the encoder interleaves them
with the video it belongs to. Each thread owns what it uses: the decoder its reader, the encoder
its writer (opened and closed as a context manager in that thread). Any stage's failure stops
the others; the output is written atomically, so a failure or Ctrl-C leaves no half file.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, PeError
from perceptual_edge.progress import Progress
from perceptual_edge.runtime.pipeline import RunResult
from perceptual_edge.runtime.postprocess import Processor
from perceptual_edge.video import VideoFrame, VideoReader, VideoWriter

_END = object()  # end of stream
_ABORT = object()  # another stage failed: stop without committing anything


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
    t0 = time.perf_counter()
    reader = VideoReader(src)
    info = reader.info
    total = info.frames or (round(info.duration * info.fps) if info.duration else None)
    stop = threading.Event()
    errors: list[BaseException] = []
    q_in: queue.Queue = queue.Queue(maxsize=max(queue_frames, 2 * batch))
    q_out: queue.Queue = queue.Queue(maxsize=max(queue_frames, 2 * batch))
    result = RunResult("video", str(dst))
    writer = VideoWriter(dst, info, reader.audio_stream, codec, crf, overwrite)

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
            with writer:  # leaving by an exception removes the temporary file
                _drain_into(writer, q_out, stop, bar, result, on_frame)
        except _Aborted:
            return
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            fail(e)

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
        raise _user_error(errors[0], dst)
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


def _drain_into(
    writer: VideoWriter,
    q_out: queue.Queue,
    stop: threading.Event,
    bar: Progress,
    result: RunResult,
    on_frame: Callable[[int], None] | None,
) -> None:
    """The encoder's loop: frames and audio packets from `q_out` into the open writer."""
    while True:
        item = _get(q_out, stop)
        if item is _END:
            return
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


def _user_error(err: BaseException, dst: Path) -> BaseException:
    """The first failure of any stage, as the exception the caller sees."""
    if isinstance(err, PeError | KeyboardInterrupt):
        return err
    import av

    if isinstance(err, av.FFmpegError):
        return InputError(f"{dst}: video encoding failed ({err})")
    return err


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
