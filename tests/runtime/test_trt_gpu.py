"""The real TensorRT backend: runs only where TensorRT, a CUDA binding and a GPU exist."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def trt_engine(style_onnx, tmp_path_factory):
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    from perceptual_edge.errors import UnavailableError
    from perceptual_edge.runtime.cuda_mem import load_cuda

    try:
        cuda = load_cuda()
    except UnavailableError as e:
        pytest.skip(str(e))
    gpu = cuda.device_info()
    cuda.close()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(style_onnx.read_bytes()), parser.get_error(0)
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    shapes = {"min": [1, 3, 16, 16], "opt": [1, 3, 128, 128], "max": [2, 3, 256, 256]}
    profile.set_shape("input", shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    engine = tmp_path_factory.mktemp("trt") / "style.engine"
    engine.write_bytes(bytes(plan))
    from perceptual_edge.runtime.ort_backend import read_onnx_spec

    side = {
        "spec": read_onnx_spec(style_onnx).to_dict(),
        "profile": shapes,
        "precision": "fp32",
        "tensorrt_version": trt.__version__,
        "gpu": {"name": gpu.name, "compute_capability": gpu.compute_capability},
        "onnx_sha256": None,
    }
    engine.with_name(engine.name + ".json").write_text(json.dumps(side))
    return engine


def test_trt_matches_onnxruntime(trt_engine, style_onnx):
    from perceptual_edge.runtime import Session

    img = np.random.default_rng(0).integers(0, 256, (100, 140, 3), dtype=np.uint8)
    with Session(style_onnx, device="cpu") as ref, Session(trt_engine) as s:
        assert s.backend_name.startswith("tensorrt")
        a, b = ref.run(img), s.run(img)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2
        assert np.array_equal(s.run(img), b)  # buffers reused, same result
        big = np.random.default_rng(1).integers(0, 256, (300, 260, 3), dtype=np.uint8)
        with pytest.warns(RuntimeWarning):
            assert s.run(big).shape == big.shape  # beyond the profile: tiled


def test_trt_takes_device_arrays(trt_engine):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    from perceptual_edge.runtime import Session

    with Session(trt_engine) as s:
        x = torch.rand(1, 3, 64, 64, device="cuda") * 255
        host = s.run_batch(x.cpu().numpy())
        dev = s.run_batch(x)
        np.testing.assert_allclose(dev, host, atol=1e-3)
        out = torch.empty(1, 3, 64, 64, device="cuda")
        s._require().infer_device(x, out)
        np.testing.assert_allclose(out.cpu().numpy(), host, atol=1e-3)
