"""Fakes of `tensorrt` (the runtime side: Runtime, engine, execution context) and of the CUDA
interface, for the TensorRT backend's tests (the `fakes` fixture in tests/runtime/conftest.py).
They behave like the real APIs in what those tests rely on: named tensors, a profile that
set_input_shape enforces, device memory by pointer."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np

from perceptual_edge.runtime.cuda_mem import GpuInfo
from perceptual_edge.spec import style_spec

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
