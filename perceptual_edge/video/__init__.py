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

Contract floor: numpy and PyAV only (PyAV imported inside the functions), no torch. The
reader and the writer are separate modules; this package re-exports the public names.
"""

from perceptual_edge.video.formats import (
    DEFAULT_CODEC,
    DEFAULT_CODECS,
    DEFAULT_CRF,
    VIDEO_EXTENSIONS,
    VIDEO_FORMATS,
    VideoFrame,
    VideoInfo,
    check_encoder,
    default_codec,
    import_av,
    is_video_path,
)
from perceptual_edge.video.reader import VideoReader
from perceptual_edge.video.writer import VideoWriter

__all__ = [
    "DEFAULT_CODEC",
    "DEFAULT_CODECS",
    "DEFAULT_CRF",
    "VIDEO_EXTENSIONS",
    "VIDEO_FORMATS",
    "VideoFrame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "check_encoder",
    "default_codec",
    "import_av",
    "is_video_path",
]
