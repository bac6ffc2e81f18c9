"""perceptual_edge.video and the threaded video pipeline: timing kept, audio copied byte for
byte, truncated inputs, odd sizes, failures that leave no file behind."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from helpers import InvertBackend, invert_session

from perceptual_edge.errors import InputError, OutputExistsError
from perceptual_edge.runtime.postprocess import Processor, RunOptions
from perceptual_edge.runtime.video_run import process_video
from perceptual_edge.samples import write_sample_clip
from perceptual_edge.spec import style_spec
from perceptual_edge.video import (
    VideoFrame,
    VideoReader,
    VideoWriter,
    is_video_path,
)


def probe(path: Path) -> dict:
    """Frame count (decoded), rate, durations and the audio packets' bytes of a file."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {
            "fps": Fraction(v.average_rate),
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "duration": c.duration / 1e6 if c.duration else None,
            "audio_codec": c.streams.audio[0].codec_context.name if c.streams.audio else None,
        }
        streams = [v] + list(c.streams.audio[:1])
        frames, audio, pts = [], [], []
        for packet in c.demux(*streams):
            if packet.stream.type == "audio":
                if packet.dts is not None:
                    audio.append(bytes(packet))
            else:
                for f in packet.decode():
                    frames.append(f.to_ndarray(format="rgb24"))
                    pts.append(float(f.pts * f.time_base))
    info.update(frames=frames, audio=audio, pts=sorted(pts))
    return info


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_clip(
        tmp_path_factory.mktemp("clip") / "clip.mp4", frames=12, size=(64, 48), fps=12
    )


def test_sample_clip_has_audio_and_pans(clip):
    info = probe(clip)
    assert len(info["frames"]) == 12 and info["fps"] == 12
    assert (info["width"], info["height"]) == (64, 48)
    assert info["audio_codec"] == "aac" and len(info["audio"]) > 10
    assert info["duration"] == pytest.approx(1.0, abs=0.05)
    f0, f11 = info["frames"][0].astype(int), info["frames"][-1].astype(int)
    assert np.abs(f0 - f11).mean() > 3  # the camera pans


def test_reader_info_and_items(clip):
    with VideoReader(clip) as r:
        assert r.info.frames == 12 and r.info.fps == 12 and r.info.audio_codec == "aac"
        items = list(r)
    frames = [i for i in items if isinstance(i, VideoFrame)]
    assert len(frames) == 12 and frames[0].image.shape == (48, 64, 3)
    assert [f.index for f in frames] == list(range(12))
    assert len(items) > len(frames)  # audio packets interleaved
    assert r.warning is None


@pytest.mark.parametrize("batch", [1, 5])
def test_pipeline_keeps_timing_order_and_audio(clip, tmp_path, batch):
    out = tmp_path / "out.mp4"
    res = process_video(Processor(invert_session()[0]), clip, out, batch=batch, crf=0)
    assert res.items == 12 and res.audio == "copied" and res.warnings == []
    a, b = probe(clip), probe(out)
    assert len(b["frames"]) == len(a["frames"]) and b["fps"] == a["fps"]
    assert b["pts"] == pytest.approx(a["pts"], abs=1e-3)
    assert b["duration"] == pytest.approx(a["duration"], abs=0.03)
    assert b["audio"] == a["audio"]  # remuxed, not re-encoded
    for fa, fb in zip(a["frames"], b["frames"], strict=True):  # order kept through the batches
        assert np.abs((255 - fa.astype(int)) - fb.astype(int)).mean() < 4


def test_pipeline_sr_and_max_size(clip, tmp_path):
    out = tmp_path / "sr.mkv"
    p = Processor(invert_session("sr")[0], RunOptions(max_size=33, even=True))
    res = process_video(p, clip, out, batch=3)
    info = probe(out)
    # 64x48 -> long side 33 -> 33x25 -> even 32x24 -> x4
    assert (info["width"], info["height"]) == (128, 96) and res.size == (96, 128)
    assert len(info["frames"]) == 12 and len(info["audio"]) == len(probe(clip)["audio"])


def test_odd_output_size_is_kept(tmp_path):
    src = write_sample_clip(tmp_path / "odd.mkv", frames=4, size=(33, 21), fps=8, with_audio=False)
    out = tmp_path / "odd.out.mp4"
    res = process_video(Processor(invert_session()[0], RunOptions(even=True)), src, out)
    info = probe(out)
    assert (info["width"], info["height"]) == (33, 21) and len(info["frames"]) == 4
    assert res.audio == "none" and any("yuv444p" in n for n in res.warnings)


def test_webm_output_reencodes_aac_with_a_note(clip, tmp_path):
    out = tmp_path / "out.webm"
    res = process_video(Processor(invert_session()[0]), clip, out)
    info = probe(out)
    assert info["audio_codec"] == "opus" and res.audio == "re-encoded"
    assert len(info["frames"]) == 12
    assert any("re-encoded to opus" in n for n in res.warnings)


def test_truncated_video_gives_frames_up_to_damage(tmp_path, shared_data):
    data = (shared_data / "video" / "friday.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 5])
    out = tmp_path / "cut.out.mp4"
    p = Processor(invert_session()[0], RunOptions(max_size=32, even=True))
    res = process_video(p, cut, out, batch=4)
    assert 0 < res.items < 185
    assert len(probe(out)["frames"]) == res.items
    assert any("truncated" in w or "damaged" in w for w in res.warnings)


def test_friday_audio_copied_byte_for_byte(tmp_path, shared_data):
    src = shared_data / "video" / "friday.mp4"
    out = tmp_path / "friday.out.mp4"
    p = Processor(invert_session()[0], RunOptions(max_size=32, even=True))
    res = process_video(p, src, out, batch=8)
    a, b = probe(src), probe(out)
    assert res.items == len(a["frames"]) == len(b["frames"]) == 185
    assert b["fps"] == a["fps"] == 30
    assert b["duration"] == pytest.approx(a["duration"], abs=0.04)
    assert b["audio"] == a["audio"] and len(a["audio"]) == 265


def test_bad_video_inputs(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path, msg in [
        (junk, "not a readable video"),
        (empty, "empty"),
        (tmp_path / "no.mp4", "no such"),
    ]:
        with pytest.raises(InputError, match=msg):
            VideoReader(path)


@pytest.mark.parametrize("error", [InputError("boom"), KeyboardInterrupt()])
def test_failure_mid_video_leaves_no_file(clip, tmp_path, error):
    class Boom(InvertBackend):
        def infer(self, batch):
            if len(self.calls) >= 2:
                raise error
            return super().infer(batch)

    session, _ = invert_session(backend=Boom(style_spec()))
    out = tmp_path / "out.mp4"
    with pytest.raises(type(error)):
        process_video(Processor(session), clip, out, batch=2)
    assert list(tmp_path.iterdir()) == []  # not even the temporary file


def test_existing_output_and_bad_codec(clip, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        process_video(Processor(invert_session()[0]), clip, out)
    assert out.read_bytes() == b"keep"
    with pytest.raises(InputError, match="encoder"):
        process_video(Processor(invert_session()[0]), clip, tmp_path / "x.mp4", codec="nope264")
    with pytest.raises(InputError, match="cannot hold"):
        process_video(Processor(invert_session()[0]), clip, tmp_path / "x.webm", codec="libx264")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_writer_rejects_unknown_suffix(clip, tmp_path):
    with VideoReader(clip) as r:
        with pytest.raises(InputError, match="suffix"):
            VideoWriter(tmp_path / "x.gif", r.info)
    assert is_video_path("a.MKV") and not is_video_path("a.png")


@pytest.mark.parametrize(
    ("src_suffix", "dst_suffix"), [(".avi", ".mp4"), (".mp4", ".avi"), (".mov", ".mkv")]
)
def test_container_pairs_keep_frames_and_duration(tmp_path, src_suffix, dst_suffix):
    # AVI has no presentation timestamps and counts time in frames: the risky pairings.
    src = write_sample_clip(tmp_path / f"in{src_suffix}", frames=10, size=(32, 24), fps=10)
    out = tmp_path / f"out{dst_suffix}"
    res = process_video(Processor(invert_session()[0]), src, out, batch=3)
    a, b = probe(src), probe(out)
    assert res.items == len(b["frames"]) == 10 and res.audio == "copied"
    assert b["fps"] == 10
    # Relative times: MKV shifts the whole file by the encoder delay, AVI counts from frame 1.
    rel = [t - b["pts"][0] for t in b["pts"]]
    assert rel == pytest.approx([i / 10 for i in range(10)], abs=1e-3)
    assert b["audio_codec"] == a["audio_codec"] == "aac"
