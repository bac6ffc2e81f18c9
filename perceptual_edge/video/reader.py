"""VideoReader: a video's frames (and its audio stream's packets) in file order."""

from __future__ import annotations

import os
from fractions import Fraction
from types import TracebackType
from typing import Any

from perceptual_edge.errors import InputError, first_line
from perceptual_edge.fsutil import check_input
from perceptual_edge.video.formats import VideoFrame, VideoInfo, import_av


class VideoReader:
    """Iterate a video's frames (`VideoFrame`) interleaved with its audio packets (`av.Packet`)
    in file order. A damaged or truncated file yields what decodes up to the damage; `warning`
    then says what happened."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        av = import_av()
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
        av = import_av()
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
