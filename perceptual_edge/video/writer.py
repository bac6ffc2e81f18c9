"""VideoWriter: frames encoded atomically, the audio stream copied (or re-encoded, with a note)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, first_line
from perceptual_edge.fsutil import atomic_path
from perceptual_edge.video.formats import (
    DEFAULT_CRF,
    VIDEO_FORMATS,
    VideoFrame,
    VideoInfo,
    check_encoder,
    default_codec,
    import_av,
)

# Codecs whose 4:2:0 output needs even frame sizes; odd sizes are encoded as 4:4:4 instead.
_CHROMA_SUBSAMPLED = ("yuv420p", "yuvj420p", "nv12")


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
        if self.path.suffix.lower() not in VIDEO_FORMATS:
            check_encoder(self.path)  # raises the one-line unknown-suffix error
        self.codec = self.codec or default_codec(self.path)
        self._container: Any = None
        self._vstream: Any = None
        self._astream: Any = None
        self._reencoder: _AudioReencoder | None = None
        self._pending_audio: list[Any] = []
        self._stack = contextlib.ExitStack()
        self._tb: Fraction = self.info.time_base

    def __enter__(self) -> VideoWriter:
        av = import_av()
        self._codec = check_encoder(self.path, self.codec)
        tmp = self._stack.enter_context(atomic_path(self.path, self.overwrite))
        fmt = VIDEO_FORMATS[self.path.suffix.lower()]
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        try:
            self._container = av.open(str(tmp), "w", format=fmt, options=options)
        except (av.FFmpegError, OSError) as e:
            self._stack.close()
            raise InputError(f"{self.path}: cannot write ({first_line(e)})") from None
        return self

    def _open_video(self, height: int, width: int) -> None:
        av = import_av()
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
        av = import_av()
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
            av = import_av()
            if isinstance(exc, av.FFmpegError):
                raise InputError(f"{self.path}: encoding failed ({first_line(exc)})") from None
            raise
        self._stack.close()
