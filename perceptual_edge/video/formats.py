"""Video containers and codecs this project writes, PyAV's import, and the frame records that
travel from the reader to the writer. numpy and PyAV only (PyAV imported inside functions)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from perceptual_edge.errors import InputError, UnavailableError, first_line

VIDEO_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
VIDEO_EXTENSIONS = frozenset(VIDEO_FORMATS)
DEFAULT_CODEC = "libx264"
DEFAULT_CODECS = {".webm": "libvpx-vp9"}  # WebM holds only VP8/VP9/AV1
DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libvpx-vp9": 31, "libvpx": 10}


def is_video_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def default_codec(path: str | os.PathLike[str]) -> str:
    return DEFAULT_CODECS.get(Path(path).suffix.lower(), DEFAULT_CODEC)


def check_encoder(path: str | os.PathLike[str], codec: str | None = None) -> Any:
    """The `av.Codec` that writes `path`'s video (`codec`, or the suffix's default), after
    checking that it exists, encodes video and fits the container; one clear line if not."""
    av = import_av()
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_FORMATS:
        raise InputError(
            f"{path}: unknown video suffix {suffix!r} "
            f"(use one of {', '.join(sorted(VIDEO_EXTENSIONS))})"
        )
    name = codec or default_codec(path)
    try:
        found = av.Codec(name, "w")
    except (av.FFmpegError, ValueError) as e:
        raise InputError(f"unknown video encoder {name!r} ({first_line(e)})") from None
    if found.type != "video":
        raise InputError(f"{name!r} is not a video encoder")
    fmt = VIDEO_FORMATS[suffix]
    with av.open(io.BytesIO(), "w", format=fmt) as probe:  # in memory: no file is touched
        supported = probe.supported_codecs
    if found.name not in supported and found.canonical_name not in supported:
        raise InputError(f"a {fmt} file cannot hold {name} video; pick another --codec or suffix")
    return found


def import_av() -> Any:
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
