"""Fixtures of the runtime tests (the shared fakes are in tests/helpers.py)."""

from __future__ import annotations

import sys

import pytest
from trt_fakes import FakeCuda, fake_tensorrt


class DLPackOnly:
    """A CUDA tensor that speaks only DLPack (like a JAX array): a hand-made DLManagedTensor."""

    def __init__(
        self, ptr: int, shape, dtype_bits: int = 32, device_type: int = 2, device_id: int = 0
    ) -> None:
        import ctypes

        from perceptual_edge.runtime import cuda_mem as cm

        self.shape = tuple(shape)
        self._shape = (ctypes.c_int64 * len(shape))(*shape)
        self._t = cm._DLTensor(
            data=ptr,
            device=cm._DLDevice(device_type, device_id),
            ndim=len(shape),
            dtype=cm._DLDataType(2, dtype_bits, 1),
            shape=self._shape,
            strides=None,
            byte_offset=0,
        )
        # DLManagedTensor = DLTensor + manager_ctx + deleter; a NULL deleter is allowed.
        self._managed = (ctypes.c_byte * (ctypes.sizeof(self._t) + 16))()
        ctypes.memmove(self._managed, ctypes.addressof(self._t), ctypes.sizeof(self._t))
        self._device_type, self._device_id = device_type, device_id
        self.streams: list = []  # the consumer streams it was asked to order its work before

    def __dlpack_device__(self):
        return (self._device_type, self._device_id)

    def __dlpack__(self, stream=None):
        import ctypes

        self.streams.append(stream)
        new = ctypes.pythonapi.PyCapsule_New
        new.restype, new.argtypes = (
            ctypes.py_object,
            [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p],
        )
        return new(ctypes.addressof(self._managed), b"dltensor", None)


@pytest.fixture
def dlpack_cls() -> type[DLPackOnly]:
    return DLPackOnly


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
