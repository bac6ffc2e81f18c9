"""CUDA memory and streams behind one small interface: cuda-python first, pycuda second.

cuda-python (`cuda.bindings.runtime`, what NVIDIA's TensorRT samples use; older releases
expose the same module as `cuda.cudart`) ships wheels; pycuda ships sources that need the CUDA
toolkit, but is common on Jetson. Both are optional: `load_cuda()` raises UnavailableError
naming what is missing. Device pointers are plain ints; streams are opaque handles whose int
value is what TensorRT's `execute_async_v3` takes.
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

    def close(self) -> None:
        for ptr in list(self._allocs):
            self.free(ptr)
        if self._ctx is not None:
            self._ctx.pop()
            self._ctx = None


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
        "install cuda-python (pip install 'perceptual-edge[trt]') or pycuda"
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


def dlpack_view(x: Any) -> DLPackView:
    """Read the tensor behind `x.__dlpack__()` without consuming the capsule (its deleter
    runs when the capsule is collected, as the protocol requires for unconsumed capsules)."""
    try:
        capsule = x.__dlpack__(stream=None)
    except TypeError:
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
    return DLPackView(ptr, int(t.device.device_type), shape, strides, dtype, capsule)


def is_device_array(x: Any) -> bool:
    """A CUDA array by `__cuda_array_interface__`, or by DLPack with a CUDA device."""
    if isinstance(x, np.ndarray):
        return False
    if hasattr(x, "__cuda_array_interface__"):
        return True
    dev = getattr(x, "__dlpack_device__", None)
    return dev is not None and int(dev()[0]) == DL_CUDA


def device_pointer(x: Any, dtype: np.dtype, shape: tuple[int, ...]) -> tuple[int, Any]:
    """(pointer, keep-alive object) of a C-contiguous CUDA array of this dtype and shape."""
    if hasattr(x, "__cuda_array_interface__"):
        return cuda_array_pointer(x, dtype, shape), x
    v = dlpack_view(x)
    if v.device_type != DL_CUDA:
        raise ValueError(f"DLPack array is on device type {v.device_type}, not CUDA")
    if v.dtype != np.dtype(dtype):
        raise ValueError(f"device array has dtype {v.dtype}, engine wants {np.dtype(dtype)}")
    if v.shape != tuple(shape):
        raise ValueError(f"device array has shape {v.shape}, expected {shape}")
    contiguous = tuple(int(s) for s in np.cumprod((1, *shape[::-1]))[:-1][::-1])
    if v.strides is not None and v.strides != contiguous:
        raise ValueError("device array is not C-contiguous")
    return v.pointer, v.capsule
