"""How the ONNX Runtime backend configures its GPU providers (issue 9, case 5), on a machine
without a GPU: onnxruntime.InferenceSession is replaced by a fake that records the providers and
options it is given and behaves like the real one where these tests look:
- providers come as names or (name, options) pairs, and get_providers() lists them in the order
  registered (the real one drops those it lacks; every provider here is "present");
- get_provider_options() returns each provider's options as strings;
- a provider whose work fails, fails at run(), as the TensorRT EP does when it builds its engine
  at the first inference (and cuDNN when an algorithm is not supported);
- the graph itself (inputs, metadata, numbers) comes from a real CPU session of the same file.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.runtime import Session
from perceptual_edge.runtime import ort_backend as ob
from perceptual_edge.spec import default_profile, format_shape

GPU_LISTED = [ob.TENSORRT, ob.CUDA, ob.CPU]


class FakeGpuOrt:
    """Stands in for onnxruntime.InferenceSession; `fail_run` maps a provider to its error."""

    def __init__(self, real_cls) -> None:
        self.real_cls = real_cls
        self.created: list[list[tuple[str, dict[str, str]]]] = []
        self.fail_run: dict[str, str] = {}

    def __call__(self, path, sess_options=None, providers=None, provider_options=None):
        fake = self

        chain = []
        for p in providers or [ob.CPU]:
            name, opts = (p, {}) if isinstance(p, str) else p
            chain.append((name, {k: str(v) for k, v in opts.items()}))
        fake.created.append(chain)
        real = fake.real_cls(str(path), providers=[ob.CPU])

        class _Session:
            def get_providers(self):
                return [name for name, _ in chain]

            def get_provider_options(self):
                return dict(chain)

            def run(self, outputs, feeds):
                first = chain[0][0]
                if first in fake.fail_run:
                    raise RuntimeError(fake.fail_run[first])
                return real.run(outputs, feeds)

            def __getattr__(self, name):  # get_inputs, get_outputs, get_modelmeta
                return getattr(real, name)

        return _Session()


@pytest.fixture
def gpu_ort(monkeypatch, tmp_path):
    import onnxruntime as ort

    fake = FakeGpuOrt(ort.InferenceSession)
    monkeypatch.setattr(ort, "InferenceSession", fake)
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(GPU_LISTED))
    monkeypatch.setattr(ob, "provider_library_error", lambda p: None)
    monkeypatch.setenv(ob.CACHE_ENV_VAR, str(tmp_path / "trt-cache"))
    return fake


def _gpu_sessions(fake):
    """The sessions created for inference (not the CPU one that reads the contract)."""
    return [c for c in fake.created if c[0][0] != ob.CPU]


def test_tensorrt_ep_gets_cuda_behind_it_a_profile_and_caches(style_onnx, gpu_ort, tmp_path):
    with Session(style_onnx, device="tensorrt") as s:
        assert s.backend_name == "onnxruntime:TensorrtExecutionProvider"
        (chain,) = _gpu_sessions(gpu_ort)
        assert [name for name, _ in chain] == [ob.TENSORRT, ob.CUDA, ob.CPU]
        trt, cuda = chain[0][1], chain[1][1]
        # The same ranges as `pe export --trt`, named by the graph's input.
        p = default_profile(s.spec)
        assert trt["trt_profile_min_shapes"] == f"input:{format_shape(p.min)}"
        assert trt["trt_profile_opt_shapes"] == f"input:{format_shape(p.opt)}"
        assert trt["trt_profile_max_shapes"] == f"input:{format_shape(p.max)}"
        assert trt["trt_engine_cache_enable"] == trt["trt_timing_cache_enable"] == "True"
        cache = trt["trt_engine_cache_path"]
        assert cache == trt["trt_timing_cache_path"]
        assert cache.startswith(str(tmp_path / "trt-cache")) and os.path.isdir(cache)
        assert cuda["cudnn_conv_algo_search"] == "HEURISTIC"
        # The Session keeps to the profile: pads small frames, tiles large ones, one per call.
        assert s.min_input_hw == (64, 64) and s.max_input_hw == (2160, 3840)
        assert s.max_batch == 1
        img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
        assert s.run(img).shape == img.shape


def test_cuda_ep_uses_heuristic_search_on_the_gpu_asked_for(style_onnx, gpu_ort):
    with Session(style_onnx, device="cuda:1") as s:
        assert s.backend_name == "onnxruntime:CUDAExecutionProvider"
        assert s.max_input_hw is None and s.min_input_hw is None and s.max_batch is None
    (chain,) = _gpu_sessions(gpu_ort)
    assert chain == [
        (ob.CUDA, {"device_id": "1", "cudnn_conv_algo_search": "HEURISTIC"}),
        (ob.CPU, {}),
    ]


def test_auto_prefers_cuda_and_never_builds_an_engine_unasked(style_onnx, gpu_ort):
    with Session(style_onnx) as s:
        assert s.backend_name == "onnxruntime:CUDAExecutionProvider"
    assert all(chain[0][0] != ob.TENSORRT for chain in gpu_ort.created)


def test_a_provider_that_fails_its_first_frame_is_skipped_by_auto(style_onnx, gpu_ort, caplog):
    gpu_ort.fail_run[ob.CUDA] = "CUDNN_STATUS_NOT_SUPPORTED: cudnnConvolutionForward"
    gpu_ort.fail_run[ob.TENSORRT] = "TensorRT EP failed to create engine from network"
    caplog.set_level(logging.WARNING, logger="perceptual_edge.runtime")
    with Session(style_onnx) as s:
        # Today's code kept the first provider that constructed, and failed at the first image.
        assert s.backend_name == "onnxruntime:CPUExecutionProvider"
        img = np.zeros((32, 32, 3), np.uint8)
        assert s.run(img).shape == img.shape
    assert "skipping CUDAExecutionProvider" in caplog.text
    assert "skipping TensorrtExecutionProvider" in caplog.text
    assert "failed to create engine" in caplog.text
    # Asked for by name, the same failure is an error when the session opens, not at run().
    with pytest.raises(UnavailableError, match="TensorrtExecutionProvider.*could not run"):
        Session(style_onnx, device="tensorrt")


def test_engine_cache_is_per_model_and_optional(style_onnx, gpu_ort, tmp_path, caplog, monkeypatch):
    other = tmp_path / "other.onnx"
    other.write_bytes(style_onnx.read_bytes() + b"\0")  # different content, same graph
    a, b = ob.trt_cache_dir(style_onnx), ob.trt_cache_dir(other)
    assert a is not None and b is not None and a != b
    assert a.name == b.name and "ort-" in a.name and "_trt-" in a.name
    # A cache root that cannot be made: run without caches, and say so.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv(ob.CACHE_ENV_VAR, str(blocker / "cache"))
    caplog.set_level(logging.WARNING, logger="perceptual_edge.runtime")
    with Session(style_onnx, device="tensorrt"):
        pass
    trt = _gpu_sessions(gpu_ort)[-1][0][1]
    assert "trt_engine_cache_enable" not in trt and "trt_profile_min_shapes" in trt
    assert "engine cache disabled" in caplog.text


def test_device_names():
    assert ob.parse_device("cuda") == ("cuda", 0)
    assert ob.parse_device("TensorRT:2") == ("tensorrt", 2)
    for bad in ("cuda:x", "cpu:1", "gpu", "cuda:-1"):
        with pytest.raises(InputError, match="unknown device"):
            ob.parse_device(bad)
