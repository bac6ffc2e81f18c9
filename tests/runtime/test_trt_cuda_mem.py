"""The CUDA-memory helpers that need no GPU: array-interface and DLPack pointer checks, and the
binding loader's error when neither cuda-python nor pycuda is installed."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from perceptual_edge.errors import UnavailableError
from perceptual_edge.runtime.cuda_mem import cuda_array_pointer


def test_cuda_array_pointer_checks():
    class A:
        __cuda_array_interface__ = {
            "shape": (1, 3, 4, 4),
            "typestr": "<f4",
            "data": (1234, False),
            "strides": (192, 64, 16, 4),
        }

    assert cuda_array_pointer(A(), np.float32, (1, 3, 4, 4)) == 1234
    A.__cuda_array_interface__["strides"] = (192, 4, 48, 12)  # NHWC in disguise
    with pytest.raises(ValueError, match="contiguous"):
        cuda_array_pointer(A(), np.float32, (1, 3, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        cuda_array_pointer(A(), np.float32, (1, 3, 4, 5))


def test_load_cuda_without_bindings_names_both(monkeypatch):
    from perceptual_edge.runtime import cuda_mem

    for mod in (
        "cuda",
        "cuda.bindings",
        "cuda.bindings.runtime",
        "cuda.cudart",
        "pycuda",
        "pycuda.driver",
    ):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(UnavailableError, match="cuda-python.*pycuda"):
        cuda_mem.load_cuda()


def test_dlpack_views(dlpack_cls):
    from perceptual_edge.runtime.cuda_mem import device_input, dlpack_view, is_device_array

    a = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    v = dlpack_view(a)  # numpy speaks DLPack for CPU arrays
    assert v.pointer == a.ctypes.data and v.shape == a.shape and v.dtype == np.float32
    assert v.device_type == 1 and not is_device_array(a)
    with pytest.raises(ValueError, match="not CUDA"):
        device_input(dlpack_cls(a.ctypes.data, a.shape, device_type=1), np.float32, a.shape, 7)
    d = dlpack_cls(0xABC000, (1, 3, 16, 24))
    assert is_device_array(d)
    assert device_input(d, np.float32, (1, 3, 16, 24)).pointer == 0xABC000
    with pytest.raises(ValueError, match="dtype"):
        device_input(dlpack_cls(0xABC000, (1, 3, 16, 24), 16), np.float32, (1, 3, 16, 24))
