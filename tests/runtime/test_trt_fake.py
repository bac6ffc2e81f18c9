"""The TensorRT backend's logic against fakes of `tensorrt` and the CUDA interface: sidecar
checks before deserialising, profile limits, buffer reuse, device arrays. The real thing runs
under the `gpu` marker (test_trt_gpu.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from trt_fakes import GPU, DeviceArray, write_engine

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.runtime import Session
from perceptual_edge.runtime.cuda_mem import GpuInfo
from perceptual_edge.runtime.trt_sidecar import check_engine_compat, read_sidecar
from perceptual_edge.spec import sr_spec


def test_runs_and_reuses_buffers_per_shape(tmp_path, fakes):
    trt, cuda = fakes(scale=1)
    with Session(write_engine(tmp_path)) as s:
        assert s.backend_name == "tensorrt:fp16:fake-cuda"
        assert s.max_input_hw == (64, 96) and s.max_batch == 2
        img = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
        for _ in range(3):
            np.testing.assert_array_equal(s.run(img), 255 - img)
        assert cuda.allocs == 2  # one input and one output buffer for three same-shape calls
        s.run(np.zeros((20, 20, 3), np.uint8))
        assert cuda.allocs == 4 and cuda.frees == 2  # a new shape replaces them
        # Larger than the profile: tiled automatically, and said so.
        big = np.random.default_rng(1).integers(0, 256, (150, 130, 3), dtype=np.uint8)
        with pytest.warns(RuntimeWarning, match="profile"):
            np.testing.assert_array_equal(s.run(big), 255 - big)
        assert s.last_run_tiled
    assert cuda.closed and not cuda.mem  # everything freed on exit


def test_images_below_the_profile_minimum_are_padded_up_to_it(tmp_path, fakes):
    # Issue 9, case 4: the default profile's minimum is 64, the network's own 16; a 30x41 image
    # (or a small tile) used to fail with "outside the engine's optimisation profile".
    trt, cuda = fakes(scale=1)
    trt.profile = {"min": [1, 3, 64, 64], "opt": [1, 3, 256, 256], "max": [1, 3, 512, 512]}
    with Session(write_engine(tmp_path, profile=trt.profile)) as s:
        img = np.random.default_rng(2).integers(0, 256, (30, 41, 3), dtype=np.uint8)
        np.testing.assert_array_equal(s.run(img), 255 - img)  # padded to 64x64, cropped back
        tall = np.random.default_rng(3).integers(0, 256, (100, 12, 3), dtype=np.uint8)
        np.testing.assert_array_equal(s.run(tall), 255 - tall)
        tiled = np.random.default_rng(4).integers(0, 256, (90, 100, 3), dtype=np.uint8)
        np.testing.assert_array_equal(s.run(tiled, tile=32), 255 - tiled)  # small tiles too
        assert s.last_run_tiled


def test_sr_engine_and_device_arrays(tmp_path, fakes):
    trt, cuda = fakes(scale=4)
    with Session(write_engine(tmp_path, spec=sr_spec(4))) as s:
        x = DeviceArray(cuda, (1, 3, 16, 24))
        x.host()[:] = np.arange(16 * 24 * 3, dtype=np.float32).reshape(1, 3, 16, 24) % 255
        copies_before = cuda.allocs
        y = s.run_batch(x)  # device input bound directly; host float32 output
        assert y.shape == (1, 3, 64, 96)
        np.testing.assert_allclose(y, (255.0 - x.host()).repeat(4, 2).repeat(4, 3))
        backend = s._require()
        out = DeviceArray(cuda, (1, 3, 64, 96))
        backend.infer_device(x, out)
        np.testing.assert_allclose(out.host(), y)
        assert cuda.allocs == copies_before + 1 + 2  # the `out` array + the shape's buffers
        with pytest.raises(InputError, match="dtype"):
            backend.infer(DeviceArray(cuda, (1, 3, 16, 24), np.float16))


def test_shapes_outside_the_profile_are_clear_errors(tmp_path, fakes):
    fakes()
    with Session(write_engine(tmp_path)) as s:
        backend = s._require()
        with pytest.raises(InputError, match="outside the engine's optimisation profile"):
            backend.infer(np.zeros((3, 3, 32, 32), np.float32))  # batch 3 > max 2
        with pytest.raises(InputError, match="outside"):
            backend.infer(np.zeros((1, 3, 8, 8), np.float32))  # below min
        with pytest.raises(InputError, match="larger than the engine's profile"):
            s.run(np.zeros((80, 80, 3), np.uint8), tile=128)


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"tensorrt_version": "10.3.0"}, "built with TensorRT 10.3.0"),
        ({"gpu": {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": [8, 0]}}, "A100"),
        ({"gpu": {"name": "NVIDIA H100 PCIe", "compute_capability": "9.0"}}, "H100 PCIe"),
    ],
)
def test_mismatched_engine_is_refused_before_deserialising(tmp_path, fakes, changes, match):
    trt, cuda = fakes()
    with pytest.raises(UnavailableError, match=match):
        Session(write_engine(tmp_path, **changes))
    assert trt.state["deserialised"] == 0
    assert cuda.closed


def test_flat_sidecar_layout_is_read(tmp_path, fakes):
    fakes()
    engine = write_engine(tmp_path, gpu=GPU.name, compute_capability="9.0", format=1)
    assert read_sidecar(engine).compute_capability == "9.0"
    with Session(engine) as s:
        assert s.spec.kind == "style"
    engine = write_engine(tmp_path, gpu="unknown", compute_capability="unknown")
    with Session(engine) as s:  # built without nvidia-smi: tried, with a warning in the log
        assert s.max_batch == 2


def test_build_number_does_not_matter_and_other_gpu_can_be_allowed(tmp_path, fakes):
    trt, _ = fakes(version="10.9.0.1")
    side = read_sidecar(write_engine(tmp_path))
    check_engine_compat(side, "10.9.0.1", GPU)  # same major.minor.patch
    other = GpuInfo("NVIDIA H100 PCIe", "9.0")
    with pytest.raises(UnavailableError):
        check_engine_compat(side, "10.9.0", other)
    check_engine_compat(side, "10.9.0", other, allow_other_gpu=True)


@pytest.mark.parametrize(
    "sidecar_text,match",
    [
        (None, "no sidecar"),
        ("{not json", "unreadable"),
        ('{"spec": {"kind": "style"}}', "missing or has a bad field"),
        ("[]", "missing or has a bad field"),
    ],
)
def test_bad_sidecars(tmp_path, fakes, sidecar_text, match):
    engine = write_engine(tmp_path)
    side = tmp_path / "model.fp16.engine.json"
    if sidecar_text is None:
        side.unlink()
    else:
        side.write_text(sidecar_text)
    with pytest.raises(InputError, match=match):
        Session(engine)


def test_corrupt_plan_and_cpu_device(tmp_path, fakes):
    trt, cuda = fakes()
    with pytest.raises(InputError, match="could not deserialise"):
        Session(write_engine(tmp_path, plan=b"garbage"))
    assert cuda.closed
    with pytest.raises(InputError, match="runs on a CUDA GPU"):
        Session(write_engine(tmp_path), device="cpu")
    with pytest.raises(InputError, match="cannot load a engine"):
        Session(write_engine(tmp_path), backend="onnxruntime")


def test_without_tensorrt_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(UnavailableError, match="TensorRT is not usable here"):
        Session(write_engine(tmp_path))


def test_old_tensorrt_is_refused(tmp_path, fakes):
    fakes(version="8.6.1")
    with pytest.raises(UnavailableError, match="too old"):
        Session(write_engine(tmp_path))


def test_engine_takes_a_dlpack_device_array(tmp_path, fakes, dlpack_cls):
    trt, cuda = fakes(scale=1)
    with Session(write_engine(tmp_path)) as s:
        x = DeviceArray(cuda, (1, 3, 16, 24))
        x.host()[:] = 7.0
        y = s.run_batch(dlpack_cls(x.ptr, x.shape))
        np.testing.assert_allclose(y, 248.0)


def test_device_arrays_wait_for_their_producers_stream(tmp_path, fakes):
    # Issue 9, case 7: an input filled on a non-blocking stream (torch.cuda.Stream, CuPy) was
    # read by TensorRT on its own stream without waiting: the fake leaves the producer's write
    # undone until someone waits on that stream, as a real race can.
    trt, cuda = fakes(scale=1)
    with Session(write_engine(tmp_path)) as s:
        backend = s._require()
        values = np.arange(3 * 16 * 24, dtype=np.float32).reshape(1, 3, 16, 24) % 200
        x = DeviceArray(cuda, (1, 3, 16, 24), stream=0xBEEF)
        x.write_later(values)
        np.testing.assert_array_equal(backend.infer(x), 255 - values)
        assert cuda.waits == [(7, 0xBEEF)]  # TensorRT's stream waited on the producer's
        # The output array of infer_device too (its producer may still be using it).
        out = DeviceArray(cuda, (1, 3, 16, 24), stream=0xCAFE)
        backend.infer_device(DeviceArray(cuda, (1, 3, 16, 24)), out)
        assert cuda.waits[-1] == (7, 0xCAFE)
        # No stream (or None) in the interface: the data is ready, nothing to wait for.
        n = len(cuda.waits)
        backend.infer(DeviceArray(cuda, (1, 3, 16, 24)))
        assert len(cuda.waits) == n
        with pytest.raises(InputError, match="stream 0"):
            backend.infer(DeviceArray(cuda, (1, 3, 16, 24), stream=0))


def test_device_arrays_on_another_gpu_are_refused(tmp_path, fakes, dlpack_cls):
    trt, cuda = fakes(scale=1)
    with Session(write_engine(tmp_path)) as s:
        backend = s._require()
        with pytest.raises(InputError, match="on GPU 1, but this engine runs on GPU 0"):
            backend.infer(DeviceArray(cuda, (1, 3, 16, 24), device=1))
        # DLPack names its device; the producer is handed TensorRT's stream to order before.
        ptr = DeviceArray(cuda, (1, 3, 16, 24)).ptr
        d = dlpack_cls(ptr, (1, 3, 16, 24))
        backend.infer(d)
        assert d.streams == [7]
        with pytest.raises(InputError, match="on GPU 2"):
            backend.infer(dlpack_cls(ptr, (1, 3, 16, 24), device_id=2))
        # A pointer CUDA does not know (host memory behind a wrong interface).
        fake = DeviceArray(cuda, (1, 3, 16, 24))
        fake.__cuda_array_interface__ = dict(fake.__cuda_array_interface__, data=(0x42, False))
        with pytest.raises(InputError, match="not in CUDA device memory"):
            backend.infer(fake)
