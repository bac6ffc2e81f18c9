"""The TensorRT backend's logic against fakes of `tensorrt` and the CUDA interface: sidecar
checks before deserialising, profile limits, buffer reuse, device arrays. The real thing runs
under the `gpu` marker (test_trt_gpu.py)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.runtime import Session
from perceptual_edge.runtime.cuda_mem import GpuInfo
from perceptual_edge.runtime.trt_backend import check_engine_compat, read_sidecar
from perceptual_edge.spec import sr_spec, style_spec

GPU = GpuInfo("NVIDIA H100 80GB HBM3", "9.0")
PROFILE = {"min": [1, 3, 16, 16], "opt": [1, 3, 64, 64], "max": [2, 3, 64, 96]}


class FakeCuda:
    """Device memory as numpy byte buffers keyed by fake pointers."""

    name = "fake-cuda"

    def __init__(self) -> None:
        self.mem: dict[int, np.ndarray] = {}
        self.next = 0x1000
        self.allocs = self.frees = self.syncs = 0
        self.closed = False

    def device_info(self) -> GpuInfo:
        return GPU

    def alloc(self, nbytes: int) -> int:
        self.allocs += 1
        self.next += 0x100000
        self.mem[self.next] = np.zeros(nbytes, np.uint8)
        return self.next

    def free(self, ptr: int) -> None:
        self.frees += 1
        del self.mem[ptr]

    def alloc_pinned(self, shape, dtype):
        return np.zeros(shape, dtype)

    def free_pinned(self, array) -> None:
        pass

    def htod_async(self, dst, src, stream) -> None:
        self.mem[dst][: src.nbytes] = src.reshape(-1).view(np.uint8)

    def dtoh_async(self, dst, src, stream) -> None:
        dst.reshape(-1).view(np.uint8)[:] = self.mem[src][: dst.nbytes]

    def dtod_async(self, dst, src, nbytes, stream) -> None:
        self.mem[dst][:nbytes] = self.mem[src][:nbytes]

    def stream_create(self):
        return 7

    def stream_handle(self, stream) -> int:
        return int(stream)

    def stream_sync(self, stream) -> None:
        self.syncs += 1

    def stream_destroy(self, stream) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class DeviceArray:
    """A CUDA-array-interface object living in FakeCuda memory."""

    def __init__(self, cuda: FakeCuda, shape, dtype=np.float32) -> None:
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.ptr = cuda.alloc(int(np.prod(shape)) * self.dtype.itemsize)
        self.cuda = cuda
        self.__cuda_array_interface__ = {
            "shape": self.shape,
            "typestr": self.dtype.str,
            "data": (self.ptr, False),
            "version": 3,
            "strides": None,
        }

    def host(self) -> np.ndarray:
        return self.cuda.mem[self.ptr].view(self.dtype).reshape(self.shape)


def fake_tensorrt(cuda: FakeCuda, scale: int, version: str = "10.9.0.34") -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=0: None})
    trt.nptype = lambda dt: {"float": np.float32, "half": np.float16}[dt]
    state = {"deserialised": 0}
    trt.profile = dict(PROFILE)  # what the plan's optimisation profile says (tests change it)

    class Context:
        def __init__(self) -> None:
            self.shape = None
            self.addr: dict[str, int] = {}

        def set_input_shape(self, name, shape):
            # Like IExecutionContext.set_input_shape: False for a shape outside the profile.
            lo, hi = trt.profile["min"], trt.profile["max"]
            if not all(a <= s <= b for s, a, b in zip(shape, lo, hi, strict=True)):
                return False
            self.shape = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            n, c, h, w = self.shape
            return (n, c, h, w) if name == "input" else (n, c, h * scale, w * scale)

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr

        def execute_async_v3(self, stream_handle):
            assert stream_handle == 7
            x = cuda.mem[self.addr["input"]].view(np.float32)[: int(np.prod(self.shape))]
            x = x.reshape(self.shape)
            y = (255.0 - x).repeat(scale, 2).repeat(scale, 3)
            cuda.mem[self.addr["output"]][: y.nbytes] = y.reshape(-1).view(np.uint8)
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i):
            return ["input", "output"][i]

        def get_tensor_mode(self, name):
            return "in" if name == "input" else "out"

        def get_tensor_dtype(self, name):
            return "float"

        def get_tensor_profile_shape(self, name, index):
            return [trt.profile["min"], trt.profile["opt"], trt.profile["max"]]

        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, data):
            state["deserialised"] += 1
            return Engine() if data == b"PLAN" else None

    trt.Runtime = Runtime
    trt.state = state
    return trt


def write_engine(tmp_path: Path, spec=None, **changes) -> Path:
    engine = tmp_path / "model.fp16.engine"
    engine.write_bytes(changes.pop("plan", b"PLAN"))
    side = {
        "spec": (spec or style_spec()).to_dict(),
        "profile": PROFILE,
        "precision": "fp16",
        "tensorrt_version": "10.9.0.34",
        "gpu": {"name": GPU.name, "compute_capability": "9.0"},
        "onnx_sha256": "0" * 64,
    }
    side.update(changes)
    (tmp_path / "model.fp16.engine.json").write_text(json.dumps(side))
    return engine


@pytest.fixture
def fakes(monkeypatch):
    from perceptual_edge.runtime import trt_backend

    def install(scale: int = 1, version: str = "10.9.0.34"):
        cuda = FakeCuda()
        trt = fake_tensorrt(cuda, scale, version)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(trt_backend, "load_cuda", lambda index, binding=None: cuda)
        return trt, cuda

    return install


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
