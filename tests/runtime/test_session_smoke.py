import numpy as np

from perceptual_edge.runtime import Session


def test_style_onnx_any_size_in_same_size_out(style_onnx):
    with Session(style_onnx) as s:
        assert s.spec.kind == "style"
        for h, w in [(1, 1), (333, 517), (64, 64)]:
            img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
            assert s.run(img).shape == (h, w, 3)


def test_sr_onnx_scales(sr4_onnx):
    with Session(sr4_onnx) as s:
        out = s.run(np.zeros((7, 9, 3), np.uint8))
        assert out.shape == (28, 36, 3)
