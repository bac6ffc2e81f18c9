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
    """Device memory as numpy byte buffers keyed by fake pointers.

    Streams as CUDA orders them, where the tests look: work another library queued on its own
    stream (`pending`, per stream handle) has not happened until a stream of ours is made to
    wait on that stream (`stream_wait`, i.e. an event recorded there and cudaStreamWaitEvent
    here); syncing our own stream does not finish it. So a consumer that forgets the wait reads
    what the memory held before, as a real non-blocking producer stream can make it do.
    `pointer_device` answers as cudaPointerGetAttributes does: the device ordinal holding the
    memory, -1 for memory CUDA does not know.
    """

    name = "fake-cuda"

    def __init__(self) -> None:
        self.mem: dict[int, np.ndarray] = {}
        self.next = 0x1000
        self.allocs = self.frees = self.syncs = 0
        self.closed = False
        self.pending: dict[int, list] = {}  # producer stream handle -> queued writes
        self.waits: list[tuple[int, int]] = []  # (our stream, producer stream)
        self.device_of: dict[int, int] = {}  # pointer -> device ordinal (default 0)

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

    def stream_wait(self, stream, producer: int) -> None:
        self.waits.append((int(stream), int(producer)))
        for write in self.pending.pop(int(producer), []):
            write()

    def pointer_device(self, ptr: int) -> int:
        return self.device_of.get(ptr, 0) if ptr in self.mem else -1

    def close(self) -> None:
        self.closed = True


class DeviceArray:
    """A CUDA-array-interface (v3) object living in FakeCuda memory, produced on `stream`
    (None: the data is ready, as the protocol means by a missing or None stream) on `device`."""

    def __init__(
        self, cuda: FakeCuda, shape, dtype=np.float32, stream: int | None = None, device: int = 0
    ) -> None:
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.ptr = cuda.alloc(int(np.prod(shape)) * self.dtype.itemsize)
        self.cuda = cuda
        cuda.device_of[self.ptr] = device
        self.__cuda_array_interface__ = {
            "shape": self.shape,
            "typestr": self.dtype.str,
            "data": (self.ptr, False),
            "version": 3,
            "strides": None,
            "stream": stream,
        }

    def host(self) -> np.ndarray:
        return self.cuda.mem[self.ptr].view(self.dtype).reshape(self.shape)

    def write_later(self, values: np.ndarray) -> None:
        """The producer's kernel that fills the array, queued on its stream, not yet run."""
        stream = self.__cuda_array_interface__["stream"]
        assert stream is not None, "a write on no stream has already happened"

        def write() -> None:
            self.host()[:] = values

        self.cuda.pending.setdefault(stream, []).append(write)


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
