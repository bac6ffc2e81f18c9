"""CUDA memory and streams behind one small interface: cuda-python first, pycuda second.

cuda-python (`cuda.bindings.runtime`, what NVIDIA's TensorRT samples use; older releases
expose the same module as `cuda.cudart`) ships wheels; pycuda ships sources that need the CUDA
toolkit, but is common on Jetson. Both are optional: `load_cuda()` raises UnavailableError
naming what is missing. Device pointers are plain ints; streams are opaque handles whose int
value is what TensorRT's `execute_async_v3` takes.

A device array handed in by another library was produced on that library's stream, which may be
a non-blocking one (a `torch.cuda.Stream`, CuPy's streams): work queued on our stream does not
wait for it by itself. `device_input` therefore returns the producer's stream as the protocols
give it (`__cuda_array_interface__` v3's "stream"; for DLPack the producer is handed our stream
and orders its own work before it, as `__dlpack__(stream=...)` requires), and the backend makes
its stream wait on that one (an event recorded there, `cudaStreamWaitEvent` here) before
TensorRT reads the memory. It also returns the GPU that holds the memory, so that a tensor on
another GPU is refused instead of read through a pointer that means nothing on this one.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from perceptual_edge.errors import UnavailableError


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str  # "9.0"


class CudaApi(Protocol):
    name: str

    def device_info(self) -> GpuInfo: ...
    def alloc(self, nbytes: int) -> int: ...
    def free(self, ptr: int) -> None: ...
    def alloc_pinned(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray: ...
    def free_pinned(self, array: np.ndarray) -> None: ...
    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None: ...
    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None: ...
    def dtod_async(self, dst: int, src: int, nbytes: int, stream: Any) -> None: ...
    def stream_create(self) -> Any: ...
    def stream_handle(self, stream: Any) -> int: ...
    def stream_sync(self, stream: Any) -> None: ...
    def stream_destroy(self, stream: Any) -> None: ...
    def stream_wait(self, stream: Any, producer: int) -> None: ...
    def pointer_device(self, ptr: int) -> int: ...
    def close(self) -> None: ...


def _import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6

        return cudart
    except ImportError:
        from cuda import cudart  # type: ignore[no-redef]  # older cuda-python

        return cudart


class CudaPythonApi:
    """cuda-python's runtime API: every call returns (error, *values)."""

    name = "cuda-python"

    def __init__(self, device: int = 0) -> None:
        self._rt = _import_cudart()
        self._device = device
        self._call(self._rt.cudaSetDevice(device))
        self._pinned: dict[int, int] = {}  # id(array) -> host pointer

    def _call(self, result: Any) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self._rt.cudaError_t.cudaSuccess:
            _, msg = self._rt.cudaGetErrorString(err)
            raise UnavailableError(f"CUDA error {err}: {msg.decode(errors='replace')}")
        return values[0] if len(values) == 1 else values

    def device_info(self) -> GpuInfo:
        prop = self._call(self._rt.cudaGetDeviceProperties(self._device))
        name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else prop.name
        return GpuInfo(name.rstrip("\x00").strip(), f"{prop.major}.{prop.minor}")

    def alloc(self, nbytes: int) -> int:
        return int(self._call(self._rt.cudaMalloc(max(1, nbytes))))

    def free(self, ptr: int) -> None:
        self._call(self._rt.cudaFree(ptr))

    def alloc_pinned(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        dt = np.dtype(dtype)
        count = int(np.prod(shape))
        ptr = int(self._call(self._rt.cudaMallocHost(max(1, count * dt.itemsize))))
        buf = (ctypes.c_byte * (count * dt.itemsize)).from_address(ptr)
        arr = np.frombuffer(buf, dtype=dt, count=count).reshape(shape)
        self._pinned[id(arr)] = ptr
        return arr

    def free_pinned(self, array: np.ndarray) -> None:
        ptr = self._pinned.pop(id(array), None)
        if ptr is not None:
            self._call(self._rt.cudaFreeHost(ptr))

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call(self._rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream))

    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call(self._rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream))

    def dtod_async(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        self._call(self._rt.cudaMemcpyAsync(dst, src, nbytes, kind, stream))

    def stream_create(self) -> Any:
        return self._call(self._rt.cudaStreamCreate())

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def stream_sync(self, stream: Any) -> None:
        self._call(self._rt.cudaStreamSynchronize(stream))

    def stream_destroy(self, stream: Any) -> None:
        self._call(self._rt.cudaStreamDestroy(stream))

    def stream_wait(self, stream: Any, producer: int) -> None:
        """Work queued on `stream` from now on waits for what is queued on `producer` (a
        stream handle; 1 and 2 are CUDA's legacy and per-thread default streams)."""
        rt = self._rt
        event = self._call(rt.cudaEventCreateWithFlags(rt.cudaEventDisableTiming))
        try:
            self._call(rt.cudaEventRecord(event, producer))
            self._call(rt.cudaStreamWaitEvent(stream, event, 0))
        finally:
            self._call(rt.cudaEventDestroy(event))  # released once the wait has happened

    def pointer_device(self, ptr: int) -> int:
        """The CUDA device ordinal that holds this memory (-1: not CUDA device memory)."""
        attrs = self._call(self._rt.cudaPointerGetAttributes(ptr))
        managed = attrs.type == self._rt.cudaMemoryType.cudaMemoryTypeManaged
        on_device = attrs.type == self._rt.cudaMemoryType.cudaMemoryTypeDevice or managed
        return int(attrs.device) if on_device else -1

    def close(self) -> None:
        for ptr in list(self._pinned.values()):
            self._call(self._rt.cudaFreeHost(ptr))
        self._pinned.clear()


class PycudaApi:
    """pycuda's driver API on the device's primary context (the one TensorRT and the CUDA
    runtime use), pushed for the lifetime of this object."""

    name = "pycuda"

    def __init__(self, device: int = 0) -> None:
        import pycuda.driver as drv

        self._drv = drv
        drv.init()
        self._dev = drv.Device(device)
        self._ctx = self._dev.retain_primary_context()
        self._ctx.push()
        self._allocs: dict[int, Any] = {}  # pointer -> DeviceAllocation (freed when dropped)

    def device_info(self) -> GpuInfo:
        major, minor = self._dev.compute_capability()
        return GpuInfo(self._dev.name().strip(), f"{major}.{minor}")

    def alloc(self, nbytes: int) -> int:
        a = self._drv.mem_alloc(max(1, nbytes))
        self._allocs[int(a)] = a
        return int(a)

    def free(self, ptr: int) -> None:
        a = self._allocs.pop(ptr, None)
        if a is not None:
            a.free()

    def alloc_pinned(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return self._drv.pagelocked_empty(shape, dtype)

    def free_pinned(self, array: np.ndarray) -> None:
        base = getattr(array, "base", None)
        if base is not None and hasattr(base, "free"):
            base.free()

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self._drv.memcpy_htod_async(dst, src, stream)

    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self._drv.memcpy_dtoh_async(dst, src, stream)

    def dtod_async(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self._drv.memcpy_dtod_async(dst, src, nbytes, stream)

    def stream_create(self) -> Any:
        return self._drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_sync(self, stream: Any) -> None:
        stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        return None  # pycuda destroys the stream when the object is collected

    # pycuda cannot wrap a foreign stream handle or read pointer attributes: the driver API
    # (libcuda, in the context pycuda pushed) does both.
    def stream_wait(self, stream: Any, producer: int) -> None:
        cu, event = _libcuda(), ctypes.c_void_p()
        _cu_check(cu.cuEventCreate(ctypes.byref(event), 0x2), "cuEventCreate")  # no timing
        try:
            _cu_check(cu.cuEventRecord(event, ctypes.c_void_p(producer)), "cuEventRecord")
            handle = ctypes.c_void_p(self.stream_handle(stream))
            _cu_check(cu.cuStreamWaitEvent(handle, event, 0), "cuStreamWaitEvent")
        finally:
            _cu_check(cu.cuEventDestroy_v2(event), "cuEventDestroy")

    def pointer_device(self, ptr: int) -> int:
        cu, ordinal = _libcuda(), ctypes.c_int(-1)
        CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL = 9
        err = cu.cuPointerGetAttribute(
            ctypes.byref(ordinal), CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, ctypes.c_uint64(ptr)
        )
        return int(ordinal.value) if err == 0 else -1

    def close(self) -> None:
        for ptr in list(self._allocs):
            self.free(ptr)
        if self._ctx is not None:
            self._ctx.pop()
            self._ctx = None


def _libcuda() -> Any:
    return ctypes.CDLL("libcuda.so.1")


def _cu_check(err: int, what: str) -> None:
    if err != 0:
        raise UnavailableError(f"CUDA driver error {err} in {what}")


BINDINGS = {"cuda-python": CudaPythonApi, "pycuda": PycudaApi}


def load_cuda(device: int = 0, prefer: str | None = None) -> CudaApi:
    """The first CUDA binding that imports and starts: cuda-python, then pycuda."""
    order = [prefer] if prefer else list(BINDINGS)
    errors = []
    for name in order:
        if name not in BINDINGS:
            raise UnavailableError(f"unknown CUDA binding {name!r}; choose from {list(BINDINGS)}")
        try:
            return BINDINGS[name](device)
        except UnavailableError as e:
            errors.append(f"{name}: {e}")
        except Exception as e:  # ImportError, or a driver error at init
            errors.append(f"{name}: {type(e).__name__}: {e}")
    raise UnavailableError(
        "no usable CUDA Python binding (" + "; ".join(errors) + "); "
        "install cuda-python (pip install 'perceptual-edge[cuda13]' or [cuda12]) or pycuda"
    )


def cuda_array_pointer(x: Any, dtype: np.dtype, shape: tuple[int, ...]) -> int:
    """The device pointer of a C-contiguous CUDA array (`__cuda_array_interface__`) of the given
    dtype and shape; ValueError says what does not match."""
    cai = x.__cuda_array_interface__
    if np.dtype(cai["typestr"]) != np.dtype(dtype):
        raise ValueError(f"device array has dtype {np.dtype(cai['typestr'])}, engine wants {dtype}")
    if tuple(cai["shape"]) != tuple(shape):
        raise ValueError(f"device array has shape {tuple(cai['shape'])}, expected {shape}")
    strides = cai.get("strides")
    if strides is not None:
        expected = np.empty(0, dtype).itemsize * np.cumprod((1, *shape[::-1]))[:-1][::-1]
        if tuple(strides) != tuple(int(s) for s in expected):
            raise ValueError("device array is not C-contiguous")
    return int(cai["data"][0])


# DLPack (https://dmlc.github.io/dlpack/latest/c_api.html): the C structs, for objects that
# export `__dlpack__` but not `__cuda_array_interface__` (e.g. JAX arrays).
class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


DL_CPU, DL_CUDA = 1, 2
_DL_CODES = {0: "i", 1: "u", 2: "f"}  # kDLInt, kDLUInt, kDLFloat


@dataclass(frozen=True)
class DLPackView:
    pointer: int  # data + byte_offset
    device_type: int
    shape: tuple[int, ...]
    strides: tuple[int, ...] | None  # in elements, as DLPack gives them
    dtype: np.dtype
    capsule: Any  # keeps the producer's memory alive while the pointer is used
    device_id: int = 0


def dlpack_view(x: Any, stream: int | None = None) -> DLPackView:
    """Read the tensor behind `x.__dlpack__(stream=...)` without consuming the capsule (its
    deleter runs when the capsule is collected, as the protocol requires for unconsumed
    capsules). `stream`: the consumer's CUDA stream, on which the producer must order its work;
    None leaves it to the producer (the legacy default stream). As the protocol asks, the
    device is read first: a stream means something only for a CUDA array."""
    dev = getattr(x, "__dlpack_device__", None)
    if stream is not None and (dev is None or int(dev()[0]) != DL_CUDA):
        stream = None
    try:
        capsule = x.__dlpack__(stream=stream)
    except TypeError:  # a producer from before the stream argument
        capsule = x.__dlpack__()
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    # DLManagedTensor starts with its DLTensor, so the capsule pointer is a DLTensor*.
    t = _DLTensor.from_address(get(capsule, b"dltensor"))
    shape = tuple(int(t.shape[i]) for i in range(t.ndim))
    strides = tuple(int(t.strides[i]) for i in range(t.ndim)) if t.strides else None
    if t.dtype.code not in _DL_CODES or t.dtype.lanes != 1:
        raise ValueError(f"unsupported DLPack dtype (code {t.dtype.code}, lanes {t.dtype.lanes})")
    dtype = np.dtype(f"{_DL_CODES[t.dtype.code]}{t.dtype.bits // 8}")
    ptr = int(t.data or 0) + int(t.byte_offset)
    dev = t.device
    return DLPackView(ptr, int(dev.device_type), shape, strides, dtype, capsule, int(dev.device_id))


def is_device_array(x: Any) -> bool:
    """A CUDA array by `__cuda_array_interface__`, or by DLPack with a CUDA device."""
    if isinstance(x, np.ndarray):
        return False
    if hasattr(x, "__cuda_array_interface__"):
        return True
    dev = getattr(x, "__dlpack_device__", None)
    return dev is not None and int(dev()[0]) == DL_CUDA


@dataclass(frozen=True)
class DeviceInput:
    """A device array as a pointer, with what using it safely takes."""

    pointer: int
    keep: Any  # keeps the producer's memory alive while the pointer is used
    stream: int | None  # the producer's stream to wait on; None: nothing to wait for
    device: int | None  # the CUDA device ordinal holding it; None: ask the driver


def device_input(
    x: Any, dtype: np.dtype, shape: tuple[int, ...], consumer_stream: int | None = None
) -> DeviceInput:
    """A C-contiguous CUDA array of this dtype and shape (ValueError says what does not match),
    with its producer's stream: `__cuda_array_interface__` names it (absent or None: the data
    is ready); a DLPack producer is given `consumer_stream` and orders its work before it."""
    if hasattr(x, "__cuda_array_interface__"):
        ptr = cuda_array_pointer(x, dtype, shape)
        stream = x.__cuda_array_interface__.get("stream")
        if stream == 0:  # the protocol forbids 0 (ambiguous between the two default streams)
            raise ValueError("device array gives stream 0, which __cuda_array_interface__ forbids")
        return DeviceInput(ptr, x, None if stream is None else int(stream), None)
    v = dlpack_view(x, consumer_stream)
    if v.device_type != DL_CUDA:
        raise ValueError(f"DLPack array is on device type {v.device_type}, not CUDA")
    if v.dtype != np.dtype(dtype):
        raise ValueError(f"device array has dtype {v.dtype}, engine wants {np.dtype(dtype)}")
    if v.shape != tuple(shape):
        raise ValueError(f"device array has shape {v.shape}, expected {shape}")
    contiguous = tuple(int(s) for s in np.cumprod((1, *shape[::-1]))[:-1][::-1])
    if v.strides is not None and v.strides != contiguous:
        raise ValueError("device array is not C-contiguous")
    return DeviceInput(v.pointer, v.capsule, None, v.device_id)
