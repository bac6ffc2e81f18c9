"""The README's main job (`make demo` = `python -m perceptual_edge.demo`), end to end at a tiny
size: train -> export -> verify -> run on an image and a clip with audio."""

import subprocess
import sys

import av


def test_main_job_end_to_end(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "perceptual_edge.demo", "--out", str(out),
         "--iterations", "2", "--image-size", "32", "--loss-net", "random"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for rel in ["style.pth", "export/style.onnx", "export/style.fp16.onnx",
                "export/style.golden.npz", "triton/style_onnx/config.pbtxt",
                "photo.style.png", "clip.style.mp4"]:  # fmt: skip
        assert (out / rel).is_file(), rel
    assert "PASSED" in done.stdout and "demo: done" in done.stdout
    with av.open(str(out / "clip.style.mp4")) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
