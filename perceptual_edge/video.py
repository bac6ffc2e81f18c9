"""Video files through PyAV: read frames (and the audio stream's packets), write frames with the
audio copied untouched, and make a sample clip with a sound track.

    with VideoReader("clip.mp4") as r:
        with VideoWriter("out.mp4", r.info, audio=r.audio_stream) as w:
            for item in r:
                if isinstance(item, VideoFrame):
                    w.write_frame(process(item.image), item)
                else:
                    w.write_audio(item)

Timing is carried over frame by frame (each output frame gets its input frame's pts and
duration in the input stream's time base), so frame count, frame rate and duration match. The
audio packets are remuxed as they are (no re-encode) when the output container can hold their
codec; otherwise they are decoded and re-encoded to the container's default audio codec, and the
writer says so in `notes`. Outputs are written atomically (temporary file, then rename).

Core module: numpy and PyAV only (PyAV imported inside the functions), no torch.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError, first_line
from perceptual_edge.fsutil import atomic_path, check_input

VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
VIDEO_EXTENSIONS = frozenset(VIDEO_FORMATS)
DEFAULT_CODEC = "libx264"
DEFAULT_CODECS = {".webm": "libvpx-vp9"}  # WebM holds only VP8/VP9/AV1
DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libvpx-vp9": 31, "libvpx": 10}
# Codecs whose 4:2:0 output needs even frame sizes; odd sizes are encoded as 4:4:4 instead.
_CHROMA_SUBSAMPLED = ("yuv420p", "yuvj420p", "nv12")


def is_video_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def default_codec(path: str | os.PathLike[str]) -> str:
    return DEFAULT_CODECS.get(Path(path).suffix.lower(), DEFAULT_CODEC)


def _import_av() -> Any:
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a base dependency
        raise UnavailableError(f"video needs PyAV (pip install av): {e}") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction  # average frame rate
    time_base: Fraction  # of the video stream; frame pts are in this unit
    frames: int | None  # as the container declares it (None if unknown)
    duration: float | None  # seconds, of the video stream
    codec: str
    audio_codec: str | None  # None when there is no audio stream


@dataclass
class VideoFrame:
    """One decoded frame, (H, W, 3) uint8 RGB, with the timing the output must keep."""

    image: np.ndarray
    index: int
    pts: int | None
    duration: int | None
    time_base: Fraction | None


class VideoReader:
    """Iterate a video's frames (`VideoFrame`) interleaved with its audio packets (`av.Packet`)
    in file order. A damaged or truncated file yields what decodes up to the damage; `warning`
    then says what happened."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        av = _import_av()
        self.path = p = check_input(path, "a video file")
        try:
            self._container = av.open(str(p), "r")
        except (av.FFmpegError, OSError, ValueError) as e:
            raise InputError(f"{p}: not a readable video ({first_line(e)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{p}: has no video stream")
        self.video_stream = self._container.streams.video[0]
        self.video_stream.thread_type = "AUTO"  # frame-threaded decoding: decode keeps up
        audio = self._container.streams.audio
        self.audio_stream = audio[0] if audio else None
        # Streams the output will not carry (further audio tracks, subtitles, data).
        self.dropped_streams = len(self._container.streams) - 1 - (1 if audio else 0)
        self.warning: str | None = None
        self._index_timing = self._container.format.name == "avi"
        self._last_pts: int | None = None
        self._last_end: int | None = None  # end of the last frame, in the stream's time base
        self.frames_read = 0
        vs, cc = self.video_stream, self.video_stream.codec_context
        if not cc.width or not cc.height:
            self._container.close()
            raise InputError(f"{p}: video stream has no frame size (corrupt header?)")
        tb = vs.time_base or Fraction(1, 90000)
        self.info = VideoInfo(
            width=cc.width,
            height=cc.height,
            fps=Fraction(vs.average_rate or vs.guessed_rate or 25),
            time_base=Fraction(tb),
            frames=int(vs.frames) or None,
            duration=(
                float(vs.duration * tb)
                if vs.duration
                else (self._container.duration / 1e6 if self._container.duration else None)
            ),
            codec=cc.name,
            audio_codec=self.audio_stream.codec_context.name if self.audio_stream else None,
        )

    def __iter__(self) -> Any:
        av = _import_av()
        streams = [self.video_stream] + ([self.audio_stream] if self.audio_stream else [])
        try:
            for packet in self._container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    yield packet
                    continue
                for frame in packet.decode():
                    yield self._frame(frame)
        except (av.FFmpegError, OSError, ValueError) as e:
            self.warning = (
                f"{self.path}: damaged or truncated after frame {self.frames_read} "
                f"({first_line(e)}); the output has the frames up to the damage"
            )
            yield from self._drain(av)
            return
        expected = self.info.frames
        if expected and self.frames_read < expected:
            self.warning = (
                f"{self.path}: truncated: decoded {self.frames_read} of {expected} frames; "
                "the output has the frames up to the damage"
            )
        elif not expected and self.info.duration and self._last_end is not None:
            # No frame count in the header (MKV, WebM): compare with the declared duration.
            start = self.video_stream.start_time or 0
            tb = self.info.time_base
            ended = float((self._last_end - start) * tb)
            if ended < self.info.duration - 1.5 / float(self.info.fps):
                self.warning = (
                    f"{self.path}: truncated: the video stops at {ended:.2f} s of "
                    f"{self.info.duration:.2f} s; the output has the frames up to the damage"
                )

    def _drain(self, av: Any) -> Any:
        """The frames still inside the (threaded) decoder when the input broke off."""
        try:
            frames = self.video_stream.codec_context.decode(None)
        except (av.FFmpegError, ValueError):
            return
        for frame in frames:
            yield self._frame(frame)

    def _frame(self, frame: Any) -> VideoFrame:
        image = frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8
        tb = Fraction(frame.time_base) if frame.time_base else self.info.time_base
        step = 1 / (self.info.fps * tb)  # one frame, in time-base units
        pts = frame.pts
        # AVI stores no presentation times (decoded frames carry decode-order guesses), and
        # some files have gaps or repeats: number such frames at the declared frame rate.
        if (
            self._index_timing
            or pts is None
            or (self._last_pts is not None and pts <= self._last_pts)
        ):
            pts = (self._last_pts + round(step)) if self._last_pts is not None else 0
            if self._index_timing:
                pts = round(self.frames_read * step)
        self._last_pts = pts
        self._last_end = round((pts + (frame.duration or step)) * tb / self.info.time_base)
        out = VideoFrame(
            image=image,
            index=self.frames_read,
            pts=pts,
            duration=frame.duration or max(1, round(step)),
            time_base=tb,
        )
        self.frames_read += 1
        return out

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass
class _AudioReencoder:
    stream: Any
    resampler: Any


@dataclass
class VideoWriter:
    """Encode frames to `path` atomically; remux (or, if impossible, re-encode) the audio.

    Frames must all have one size (H, W), known when the first one arrives; `info` supplies the
    frame rate and time base of the input.
    """

    path: Path
    info: VideoInfo
    audio: Any = None  # the input's audio stream (a template), or None
    codec: str | None = None
    crf: int | None = None
    overwrite: bool = False
    notes: list[str] = field(default_factory=list)
    audio_mode: str = "none"  # none | copied | re-encoded
    frames_written: int = 0

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_FORMATS:
            raise InputError(
                f"{self.path}: unknown video suffix {suffix!r} "
                f"(use one of {', '.join(sorted(VIDEO_EXTENSIONS))})"
            )
        self.codec = self.codec or default_codec(self.path)
        self._container: Any = None
        self._vstream: Any = None
        self._astream: Any = None
        self._reencoder: _AudioReencoder | None = None
        self._pending_audio: list[Any] = []
        self._stack = contextlib.ExitStack()
        self._tb: Fraction = self.info.time_base

    def __enter__(self) -> VideoWriter:
        av = _import_av()
        try:
            codec = av.Codec(self.codec, "w")
        except (av.FFmpegError, ValueError) as e:
            raise InputError(f"unknown video encoder {self.codec!r} ({first_line(e)})") from None
        if codec.type != "video":
            raise InputError(f"{self.codec!r} is not a video encoder")
        self._codec = codec
        tmp = self._stack.enter_context(atomic_path(self.path, self.overwrite))
        fmt = VIDEO_FORMATS[self.path.suffix.lower()]
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        try:
            self._container = av.open(str(tmp), "w", format=fmt, options=options)
        except (av.FFmpegError, OSError) as e:
            self._stack.close()
            raise InputError(f"{self.path}: cannot write ({first_line(e)})") from None
        if codec.name not in self._container.supported_codecs and (
            codec.canonical_name not in self._container.supported_codecs
        ):
            self._abort()
            raise InputError(
                f"a {fmt} file cannot hold {self.codec} video; pick another --codec or suffix"
            )
        return self

    def _open_video(self, height: int, width: int) -> None:
        av = _import_av()
        vs = self._container.add_stream(self.codec, rate=self.info.fps)
        vs.width, vs.height = width, height
        formats = [f.name for f in (self._codec.video_formats or [])]
        pix_fmt = "yuv420p" if "yuv420p" in formats or not formats else formats[0]
        if (width % 2 or height % 2) and pix_fmt in _CHROMA_SUBSAMPLED:
            if "yuv444p" in formats:
                pix_fmt = "yuv444p"  # keeps the exact (odd) size; 4:2:0 needs even sides
                self.notes.append(
                    f"odd frame size {width}x{height}: encoded as yuv444p (some players "
                    "only play yuv420p; use an even --max-size for those)"
                )
            else:
                raise InputError(
                    f"{self.codec} needs even frame sizes, the output is {width}x{height}; "
                    "use --codec libx264 or an even --max-size"
                )
        vs.pix_fmt = pix_fmt
        # Encode in the input's time base, so each frame keeps its exact pts and duration.
        # AVI counts time in frames (time base = 1/fps): a finer base there would declare
        # thousands of empty frames, so timestamps are converted to frame numbers instead.
        self._tb = self.info.time_base
        if self._container.format.name == "avi":
            self._tb = 1 / self.info.fps
        vs.time_base = self._tb
        vs.codec_context.time_base = self._tb
        crf = self.crf if self.crf is not None else DEFAULT_CRF.get(self.codec)
        opts: dict[str, str] = {}
        if crf is not None:
            if self.codec not in DEFAULT_CRF:
                self.notes.append(f"--crf is ignored by {self.codec}")
            else:
                opts["crf"] = str(crf)
                if self.codec.startswith("libvpx"):
                    opts["b"] = "0"  # constant-quality mode in libvpx needs bitrate 0
        vs.options = opts
        self._vstream = vs
        if self.audio is not None:
            self._open_audio(av)

    def _open_audio(self, av: Any) -> None:
        name = self.audio.codec_context.codec.canonical_name  # "mp3", not decoder "mp3float"
        if name in self._container.supported_codecs:
            self._astream = self._container.add_stream_from_template(self.audio)
            self.audio_mode = "copied"
            return
        target = self._container.default_audio_codec
        rates = av.Codec(target, "w").audio_rates
        rate = self.audio.codec_context.sample_rate or 48000
        if rates and rate not in rates:
            rate = max(rates)
        astream = self._container.add_stream(target, rate=rate)
        fmts = [f.name for f in (av.Codec(target, "w").audio_formats or [])]
        layout = self.audio.codec_context.layout.name or "stereo"
        astream.layout = layout
        fmt = fmts[0] if fmts else "fltp"
        astream.format = fmt
        self._reencoder = _AudioReencoder(
            astream, av.AudioResampler(format=fmt, layout=layout, rate=rate)
        )
        self._astream = astream
        self.audio_mode = "re-encoded"
        self.notes.append(
            f"a {self._container.format.name} file cannot hold {name} audio: re-encoded to {target}"
        )

    def write_frame(self, image: np.ndarray, timing: VideoFrame | None = None) -> None:
        """Encode one (H, W, 3) uint8 RGB frame, with the pts/duration of its input frame."""
        av = _import_av()
        if self._vstream is None:
            self._open_video(image.shape[0], image.shape[1])
            for item in self._pending_audio:
                self.write_audio(item)
            self._pending_audio.clear()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        in_tb = timing.time_base if timing is not None and timing.time_base else self.info.time_base
        if timing is not None and timing.pts is not None:
            frame.pts = int(round(timing.pts * in_tb / self._tb))
            if timing.duration:
                frame.duration = max(1, int(round(timing.duration * in_tb / self._tb)))
        else:  # no timestamps in the input: number the frames at the declared rate
            frame.pts = int(round(self.frames_written / (self.info.fps * self._tb)))
        frame.time_base = self._tb
        for packet in self._vstream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def write_audio(self, item: Any) -> None:
        """Mux one audio packet as it is, or (re-encode mode) encode one decoded audio frame."""
        if self._vstream is None:  # streams are created with the first video frame
            self._pending_audio.append(item)
            return
        if self._astream is None:
            return
        if self._reencoder is not None:
            frames = [item] if not hasattr(item, "decode") else item.decode()
            for frame in frames:
                frame.pts = None  # the resampler and encoder renumber the samples
                for f in self._reencoder.resampler.resample(frame):
                    for packet in self._astream.encode(f):
                        self._container.mux(packet)
            return
        item.stream = self._astream
        self._container.mux(item)

    def _finish(self) -> None:
        if self._vstream is None:
            raise InputError(f"{self.path}: no frames to write (the input had none that decoded)")
        for packet in self._vstream.encode(None):
            self._container.mux(packet)
        if self._reencoder is not None:
            for f in self._reencoder.resampler.resample(None):
                for packet in self._astream.encode(f):
                    self._container.mux(packet)
            for packet in self._astream.encode(None):
                self._container.mux(packet)
        self._container.close()

    def _abort(self) -> None:
        with contextlib.suppress(Exception):
            self._container.close()
        with contextlib.suppress(Exception):
            # Raising into the atomic_path context removes the temporary file.
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is not None:
            self._abort()
            return
        try:
            self._finish()
        except BaseException as exc:
            self._abort()
            av = _import_av()
            if isinstance(exc, av.FFmpegError):
                raise InputError(f"{self.path}: encoding failed ({first_line(exc)})") from None
            raise
        self._stack.close()
